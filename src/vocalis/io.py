"""Atomic writes and fsspec-aware paths, shared by caches, run folders and manifests."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def is_url(path: str | os.PathLike) -> bool:
    """True for fsspec URLs such as ``s3://b/k``, ``gs://b/k`` or ``memory://x``."""
    return "://" in str(path) and not str(path).startswith("file://")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing and rename it into place.

    A reader never sees a half-written file: the rename happens only after the
    block finished without error (and the data was flushed to disk); on error the
    temporary file is removed and any existing ``path`` is left as it was. Parts
    of the same target left by killed writers are removed first (see
    :func:`remove_stale_parts`).
    fsspec URLs are written with a single ``put`` of the finished bytes.
    """
    if "w" not in mode:
        raise ValueError("atomic_open is for writing")
    if is_url(path):
        import fsspec

        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "part"
            with open(local, mode) as fh:
                yield fh
            fs, target = fsspec.core.url_to_fs(str(path))
            parent = target.rsplit("/", 1)[0]
            if parent and parent != target:
                fs.makedirs(parent, exist_ok=True)
            fs.put_file(str(local), target)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path.parent.glob(f".{glob.escape(path.name)}.*.part"))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_TAG}.", suffix=".part")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-global and not thread-safe

#: Writer tag in temporary names, ``<host>-<pid>``: a sweep removes only the
#: parts of writers that are gone (no live process may lose its file).
_HOST = socket.gethostname().replace(".", "_").replace("-", "_") or "host"
_TAG = f"{_HOST}-{os.getpid()}"
_PART = re.compile(r"^\..+\.(?P<host>[^.]+)-(?P<pid>\d+)\.[^.]+\.part$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_parts(folder: str | os.PathLike, max_age_s: float = 86400.0) -> list[Path]:
    """Delete the temporary ``.part`` files that killed writers left in ``folder``.

    :func:`atomic_open` names its temporary file ``.<name>.<host>-<pid>.<random>.part``.
    A process killed with SIGKILL never removes it; the next run calls this on its
    cache or run folder. A part is removed when its writer was on this host and
    is no longer running, or (another host, or an untagged name from an older
    Vocalis) when it is older than ``max_age_s``. Parts of live writers stay.
    The folder is searched recursively; a missing folder or a URL is a no-op.

    Args:
        folder: a local folder (cache root, run folder).
        max_age_s: age after which a part of an unknown writer counts as stale.

    Returns:
        The removed paths.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / f".a.json.{_HOST}-999999999.x1.part").write_text("{")
        >>> [p.name for p in remove_stale_parts(d)] == [f".a.json.{_HOST}-999999999.x1.part"]
        True
    """
    root = Path(folder)
    if is_url(folder) or not root.is_dir():
        return []
    return _remove_stale(root.rglob(".*.part"), max_age_s)


def _remove_stale(parts: Iterator[Path], max_age_s: float = 86400.0) -> list[Path]:
    removed = []
    now = time.time()
    for part in parts:
        m = _PART.match(part.name)
        try:
            if m and m["host"] == _HOST:
                stale = int(m["pid"]) != os.getpid() and not _alive(int(m["pid"]))
            else:
                stale = now - part.stat().st_mtime > max_age_s
            if stale:
                part.unlink()
                removed.append(part)
        except FileNotFoundError:  # its writer finished (renamed it) meanwhile
            continue
    return removed


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_bytes(path: str | os.PathLike) -> bytes:
    """Read a local path or an fsspec URL."""
    if is_url(path):
        import fsspec

        with fsspec.open(str(path), "rb") as fh:
            return fh.read()
    return Path(path).read_bytes()


def exists(path: str | os.PathLike) -> bool:
    """``os.path.exists`` that also understands fsspec URLs."""
    if is_url(path):
        import fsspec

        fs, target = fsspec.core.url_to_fs(str(path))
        return fs.exists(target)
    return Path(path).exists()
