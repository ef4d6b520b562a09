"""Approvals awaiting the caller, and their history."""
