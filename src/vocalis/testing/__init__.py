"""Vocalis testing."""
