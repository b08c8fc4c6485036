"""The exception hierarchy.

Every error a user can cause is a :class:`VocalisError`; its message names the
file or key, what was received, what was expected and what to do. The CLI prints
it as one line and exits non-zero.
"""

from __future__ import annotations


class VocalisError(Exception):
    """Base class of every error Vocalis raises for bad input or configuration."""


class AudioError(VocalisError):
    """Audio that cannot be read or used: missing, undecodable, empty, non-finite."""


class DataError(VocalisError):
    """A manifest, recipe, label or split that cannot be used."""


class ConfigError(VocalisError):
    """A configuration key or value that is unknown or invalid."""


class CacheError(VocalisError):
    """A feature-cache entry that cannot be read or written."""


class ModelError(VocalisError):
    """A model, checkpoint or input shape that does not fit."""
