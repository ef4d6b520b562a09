"""Read models built from the event log (pending, history, requests, assignments, deadlines).

Each read model will live in its own module here, with its own tables and tracking position."""
