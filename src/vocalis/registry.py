"""Name -> object registries for features, models, recipes, losses, ...

Users plug in their own component by registering it under a new name::

    >>> from vocalis.registry import Registry
    >>> COLOURS = Registry("colour")
    >>> @COLOURS.register("red")
    ... def red() -> str:
    ...     return "#f00"
    >>> COLOURS.get("red")()
    '#f00'
    >>> COLOURS.names()
    ['red']
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from vocalis.errors import ConfigError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry(Generic[T]):
    """A mapping from names to components of one kind.

    Args:
        kind: what the registry holds, used in error messages ("model", "feature").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None, *, overwrite: bool = False):
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is None."""

        def _add(item: T) -> T:
            if name in self._items and not overwrite:
                raise ConfigError(f"{self.kind} '{name}' is already registered")
            self._items[name] = item
            return item

        if obj is not None:
            return _add(obj)
        return _add

    def get(self, name: str) -> T:
        """Return the component called ``name``.

        Raises:
            ConfigError: the name is unknown; the message lists the valid names.
        """
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} '{name}'{did_you_mean(name, self.names())}; "
                f"choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


Factory = Callable[..., T]
