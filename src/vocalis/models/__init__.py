"""Vocalis models."""
