"""Access requests."""
