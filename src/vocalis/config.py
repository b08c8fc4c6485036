"""Typed configs: frozen dataclasses built from plain dicts, validated at the edge.

Every config in Vocalis (tier 0, features, model, training, ...) is a frozen
dataclass. :func:`from_dict` builds one from a dict (read from YAML, a
checkpoint or the command line), rejects unknown keys with the nearest valid
key suggested, and checks simple types; :func:`to_dict` turns it back into
plain data for YAML, JSON or a checkpoint.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opt:
    ...     lr: float = 1e-3
    ...     epochs: int = 10
    >>> from_dict(Opt, {"lr": 0.01})
    Opt(lr=0.01, epochs=10)
    >>> from_dict(Opt, {"epoch": 3})
    Traceback (most recent call last):
    ...
    vocalis.errors.ConfigError: unknown key 'epoch' (did you mean 'epochs'?); valid keys: lr, epochs
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar, Union, get_args, get_origin

from vocalis.errors import ConfigError
from vocalis.registry import did_you_mean

C = TypeVar("C")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert where it is safe."""
    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is typing.Literal:
        if value not in get_args(tp):
            choices = ", ".join(map(str, get_args(tp)))
            raise ConfigError(f"{where}: got {value!r}, expected one of: {choices}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: got {value!r}, expected a list")
        args = get_args(tp)
        inner = args[0] if args else Any
        items = [_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: got {value!r}, expected a mapping")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: got {value!r}, expected a mapping")
        return from_dict(tp, value, where=where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        raise ConfigError(f"{where}: got {value!r}, expected true or false")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, str, float)):
            raise ConfigError(f"{where}: got {value!r}, expected an integer")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except ValueError:
            raise ConfigError(f"{where}: got {value!r}, expected an integer") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: got {value!r}, expected a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: got {value!r}, expected a number") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: got {value!r}, expected a string")
        return str(value)
    return value


def from_dict(cls: type[C], data: dict[str, Any] | None, where: str = "") -> C:
    """Build the dataclass ``cls`` from ``data``.

    Args:
        cls: a dataclass type (nested dataclass fields are built recursively).
        data: plain mapping; missing keys take the defaults.
        where: dotted prefix used in error messages (``"model"``).

    Raises:
        ConfigError: an unknown key (with the nearest valid one suggested), a value
            of the wrong type, or a missing required key.
    """
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f.name for f in fields]
    for key in data:
        if key not in names:
            at = f"{where}.{key}" if where else key
            raise ConfigError(
                f"unknown key '{at}'{did_you_mean(str(key), names)}; valid keys: {', '.join(names)}"
            )
    kwargs = {}
    for f in fields:
        at = f"{where}.{f.name}" if where else f.name
        if f.name in data:
            kwargs[f.name] = _convert(data[f.name], hints[f.name], at)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key '{at}'")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where or cls.__name__}: {err}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-data copy of a dataclass config (tuples become lists)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(config)
