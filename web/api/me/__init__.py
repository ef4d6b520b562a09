"""The caller's own requests and access."""
