"""Assignments (access held)."""
