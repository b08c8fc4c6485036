"""Utterance-level classifiers on functionals and late fusion of probabilities."""
