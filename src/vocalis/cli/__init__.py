"""Vocalis cli."""
