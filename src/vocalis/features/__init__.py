"""Vocalis features."""
