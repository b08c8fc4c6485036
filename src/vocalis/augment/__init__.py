"""Vocalis augment."""
