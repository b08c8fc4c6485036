"""Vocalis training."""
