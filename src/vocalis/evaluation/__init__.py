"""Vocalis evaluation."""
