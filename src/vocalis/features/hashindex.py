"""Remembered content hashes of local files, validated by ``stat`` (as git and DVC do).

The feature cache is keyed on the SHA-256 of each audio file's bytes. Hashing a
corpus means reading all of it, which dominates a fully cached run. The index
remembers, per absolute path, the hash together with the file's size, inode,
modification time and status-change time (nanoseconds); when any of them
differs the file is read and hashed again. ``ctime`` cannot be set by users
(``touch`` and copies with preserved times still change it), so an edited file
is always re-hashed. Losing or deleting the index only costs time.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.wav").write_bytes(b"RIFF")
    >>> index = HashIndex(d / "hashes.json")
    >>> index.sha256(d / "a.wav")[:12], index.stats
    ('a40ff3d5900f', {'hashed': 1, 'remembered': 0})
    >>> _ = index.sha256(d / "a.wav"); index.stats
    {'hashed': 1, 'remembered': 1}
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence

from vocalis.io import exists, read_bytes, write_text

logger = logging.getLogger(__name__)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a local file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _signature(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


class HashIndex:
    """``path -> sha256`` memo stored as JSON at ``location`` (local path or fsspec URL).

    Thread-safe. Call :meth:`save` to persist new entries (merged with what is
    on disk, so concurrent runs lose at most each other's additions).
    """

    def __init__(self, location: str | os.PathLike) -> None:
        self.location = str(location)
        self.stats = {"hashed": 0, "remembered": 0}
        self._entries: dict[str, list] | None = None
        self._dirty = False
        self._lock = threading.Lock()

    def _load(self) -> dict[str, list]:
        if self._entries is None:
            entries: dict[str, list] = {}
            try:
                if exists(self.location):
                    data = json.loads(read_bytes(self.location))
                    if isinstance(data, dict) and isinstance(data.get("files"), dict):
                        entries = data["files"]
            except (OSError, ValueError, UnicodeDecodeError) as err:
                logger.warning("ignoring unreadable hash index %s (%s)", self.location, err)
            self._entries = entries
        return self._entries

    def sha256(self, path: str | os.PathLike) -> str:
        """Content hash of ``path``: remembered when its ``stat`` is unchanged, else computed.

        Raises:
            FileNotFoundError, OSError: the file cannot be read.
        """
        name = os.path.abspath(path)
        st = os.stat(name)
        sig = _signature(st)
        with self._lock:
            known = self._load().get(name)
            if known is not None and known[:4] == sig:
                self.stats["remembered"] += 1
                return known[4]
        digest = file_sha256(name)
        if os.stat(name).st_mtime_ns != st.st_mtime_ns:  # changed while reading
            return digest
        with self._lock:
            self._load()[name] = [*sig, digest]
            self._dirty = True
            self.stats["hashed"] += 1
        return digest

    def sha256_many(
        self, paths: Sequence[str | os.PathLike], workers: int = 1
    ) -> list[str | OSError]:
        """:meth:`sha256` of many files.

        One ``os.stat`` each for remembered files, the others hashed in
        ``workers`` threads; an ``OSError`` in place of unreadable files.
        """
        names = [os.path.abspath(p) for p in paths]
        out: list[str | OSError] = [""] * len(names)
        todo: list[int] = []
        with self._lock:
            known = self._load()
        remembered = 0
        for i, name in enumerate(names):
            try:
                st = os.stat(name)
            except OSError as err:
                out[i] = err
                continue
            entry = known.get(name)
            if entry is not None and entry[:4] == _signature(st):
                out[i] = entry[4]
                remembered += 1
            else:
                todo.append(i)
        with self._lock:
            self.stats["remembered"] += remembered

        def one(i: int) -> str | OSError:
            try:
                return self.sha256(names[i])
            except OSError as err:
                return err

        if workers > 1 and len(todo) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=workers) as pool:
                hashed = list(pool.map(one, todo))
        else:
            hashed = [one(i) for i in todo]
        for i, sha in zip(todo, hashed, strict=True):
            out[i] = sha
        return out

    def save(self) -> None:
        """Write new entries (atomically), merged with the index on disk."""
        with self._lock:
            if not self._dirty or self._entries is None:
                return
            mine = self._entries
            self._entries = None
            merged = self._load()
            merged.update(mine)
            self._entries = merged
            self._dirty = False
        try:
            write_text(self.location, json.dumps({"format": 1, "files": merged}) + "\n")
        except OSError as err:
            logger.warning("cannot save hash index %s (%s)", self.location, err)
