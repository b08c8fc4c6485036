"""Vocalis inference."""
