"""Reading the event log in tests."""

from __future__ import annotations

from collections import Counter


def event_counts(app) -> Counter:
    """How many events of each type each aggregate recorded: ``{(originator_id, "ApproverReminded"): 1}``."""
    counts: Counter = Counter()
    for item in app.recorder.select_notifications(start=1, limit=1_000_000):
        counts[(item.originator_id, item.topic.rpartition(".")[2])] += 1
    return counts
