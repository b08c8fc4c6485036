"""Vocalis: train, evaluate and serve speech classifiers.

``import vocalis`` is cheap: heavy optional packages are imported inside the
functions that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
