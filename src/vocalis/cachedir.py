"""Where Vocalis keeps its caches: ``$VOCALIS_CACHE``, else the user's cache folder.

Feature and functionals caches are keyed on file content and config, so one
folder per user serves every project and working directory. ``cache_dir: auto``
(the shipped config groups and recipes) resolves with :func:`resolve_cache_dir`
to ``<user cache>/<kind>``, where the user cache is, in order:

1. ``$VOCALIS_CACHE`` (any local path or fsspec URL, e.g. ``s3://bucket/cache``);
2. the platform's cache folder from ``platformdirs`` when it is installed
   (``~/.cache/vocalis`` on Linux, ``~/Library/Caches/vocalis`` on macOS,
   ``%LOCALAPPDATA%/vocalis/Cache`` on Windows);
3. ``$XDG_CACHE_HOME/vocalis``, else ``~/.cache/vocalis``.

It is never a folder relative to the working directory. An explicit path is used
as given (``~`` expanded); ``null`` (or ``none``) turns the cache off.

Example:
    >>> import os
    >>> os.environ["VOCALIS_CACHE"] = "/tmp/vc"
    >>> resolve_cache_dir("auto", "features"), resolve_cache_dir(None, "features")
    ('/tmp/vc/features', None)
    >>> resolve_cache_dir("runs/cache", "features")
    'runs/cache'
    >>> del os.environ["VOCALIS_CACHE"]
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["AUTO", "ENV", "resolve_cache_dir", "user_cache_dir"]

#: Environment variable naming the cache root.
ENV = "VOCALIS_CACHE"

#: The ``cache_dir`` value that means "the user cache folder".
AUTO = "auto"


def user_cache_dir() -> str:
    """The root of Vocalis's caches (see the module docstring for the order).

    Returns:
        An absolute local path, or the URL ``$VOCALIS_CACHE`` gives.
    """
    env = os.environ.get(ENV, "").strip()
    if env:
        return env if "://" in env else str(Path(env).expanduser().absolute())
    try:
        import platformdirs
    except ImportError:
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
        return str(Path(base).expanduser().absolute() / "vocalis")
    return str(Path(platformdirs.user_cache_dir("vocalis", appauthor=False)).absolute())


def resolve_cache_dir(value: str | os.PathLike | None, kind: str) -> str | None:
    """The cache folder a ``cache_dir`` setting stands for.

    Args:
        value: ``auto`` (the user cache), a path or URL, or ``None`` / ``""`` /
            ``null`` / ``none`` (no cache).
        kind: sub-folder of the user cache for ``auto`` (``features``, ``functionals``).

    Returns:
        The folder or URL, or ``None`` for no cache.
    """
    if value is None:
        return None
    text = str(value).strip()
    if text.lower() in ("", "null", "none"):
        return None
    if text == AUTO:
        root = user_cache_dir()
        return f"{root.rstrip('/')}/{kind}" if "://" in root else str(Path(root) / kind)
    return text if "://" in text else str(Path(text).expanduser())
