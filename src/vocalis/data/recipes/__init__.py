"""Vocalis data/recipes."""
