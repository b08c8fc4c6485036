"""Vocalis data."""
