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


class AudioTooLongError(AudioError):
    """Audio longer than a configured limit (the service answers 413).

    Args:
        message: the one-line message (names the file, its duration and the limit).
        seconds: the audio's duration (from its header, or decoded so far).
        limit_s: the limit.
    """

    def __init__(self, message: str, seconds: float, limit_s: float) -> None:
        super().__init__(message)
        self.seconds, self.limit_s = seconds, limit_s


class DataError(VocalisError):
    """A manifest, recipe, label or split that cannot be used."""


class ConfigError(VocalisError):
    """A configuration key or value that is unknown or invalid."""


class UnknownKeyError(ConfigError):
    """A config key that its section does not have (raised by :func:`vocalis.config.from_dict`).

    Args:
        message: the one-line message (the dotted path, the nearest key, the valid keys).
        path: the dotted path of the key as written (``train.unfreeze_after_epochs``).
        value: the value given to it (a mapping for a section).
    """

    def __init__(self, message: str, path: str, value: object = None) -> None:
        self.path, self.value = path, value
        super().__init__(message)


class ConfigValueError(ConfigError):
    """A config field with a value it does not allow: names the field, the value and the rule.

    Config dataclasses raise it from ``__post_init__`` with their own field name;
    :func:`vocalis.config.from_dict` re-raises it with the dotted path in front.

    Args:
        key: the field (or dotted path).
        value: the value received.
        expected: what is allowed (``"a positive odd number"``).

    Example:
        >>> err = ConfigValueError("kernel_size", 4, "a positive odd number")
        >>> str(err.at("model.params"))
        'model.params.kernel_size: got 4, expected a positive odd number'
    """

    def __init__(self, key: str, value: object, expected: str) -> None:
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"{key}: got {value!r}, expected {expected}")

    def at(self, prefix: str) -> ConfigValueError:
        """The same error with ``prefix.`` in front of its key (``prefix`` may be empty)."""
        key = f"{prefix}.{self.key}" if prefix else self.key
        return ConfigValueError(key, self.value, self.expected)


class CacheError(VocalisError):
    """A feature-cache entry that cannot be read or written."""


class StorageError(VocalisError):
    """An object store (``gs://``, ``s3://``) whose package is missing or that refused a call."""


class ModelError(VocalisError):
    """A model, checkpoint or input shape that does not fit."""
