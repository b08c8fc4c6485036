"""A feature cache keyed on audio content and the whole pipeline config.

Key = SHA-256 of the audio file's **bytes** (not its path or mtime) + SHA-256 of
the canonical JSON of the pipeline config (tier-0 config, feature config, the
Vocalis version and the entry format version). Renaming or touching a file
keeps its entry; editing the audio, any config value or upgrading Vocalis gives
a new key. Content hashes of unchanged local files are remembered
(:mod:`vocalis.features.hashindex`), so a cached run does not re-read the corpus.

Layout under ``root`` (a local folder or an fsspec URL such as ``s3://b/feats``,
``gs://b/feats`` or ``memory://feats``)::

    <root>/<config sha[:16]>/config.json          # the config, for humans
    <root>/<config sha[:16]>/<audio sha[:2]>/<audio sha>.vfeat

An entry is self-describing and pickle-free::

    b"VFEAT002" | uint32 little-endian header length | header JSON | raw array bytes

(the header is space-padded so the array starts 64-byte aligned and is read
without a copy)
where the header holds the config JSON and its hash, the audio hash, dtype,
shape and the CRC-32 of the array bytes (a corruption check, 2.5x cheaper than
SHA-256 on cache hits; the keys themselves are SHA-256). Entries are written atomically
(:func:`vocalis.io.atomic_open`). A truncated, corrupt or mismatching entry is
logged as a warning naming the file, deleted, and reported as missing so the
caller recomputes it; it is never served.

Example:
    >>> import torch
    >>> cache = FeatureCache("memory://doctest-cache")
    >>> key = cache.key(b"RIFF...", {"features": "mfcc"})
    >>> cache.put(key, torch.ones(2, 3))
    >>> cache.get(key).shape, cache.stats.hits
    (torch.Size([2, 3]), 1)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vocalis import __version__
from vocalis.config import to_dict
from vocalis.errors import CacheError
from vocalis.features.hashindex import HashIndex, file_sha256
from vocalis.io import atomic_open, exists, is_url, read_bytes, write_text

logger = logging.getLogger(__name__)

#: Entry layout version: part of every key, so a format change starts a fresh namespace
#: (old entries become misses, not "corrupt").
FORMAT_VERSION = 2
MAGIC = b"VFEAT%03d" % FORMAT_VERSION
SUFFIX = ".vfeat"
_ALIGN = 64
_ALLOWED_DTYPES = ("<f4", "<f8", "<f2", "<i4", "<i8", "|u1", "|b1")


def canonical_config(config: Any) -> str:
    """Canonical JSON of ``config`` (a dataclass or plain data) plus the Vocalis version.

    Example:
        >>> canonical_config({"b": 1, "a": [1.5]})[:39]
        '{"config":{"a":[1.5],"b":1},"format":2,'
    """
    data = to_dict(config) if dataclasses.is_dataclass(config) else config
    return json.dumps(
        {"config": data, "format": FORMAT_VERSION, "vocalis": __version__},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def content_hash(path: str | os.PathLike) -> str:
    """SHA-256 of the file's bytes (local path or fsspec URL), read in 1 MiB chunks."""
    if is_url(path):
        return sha256_bytes(read_bytes(path))
    return file_sha256(path)


@dataclass(frozen=True)
class CacheKey:
    """Where one entry lives: the audio content hash and the config it was computed with."""

    audio_sha256: str
    config_sha256: str
    config_json: str


@dataclass
class CacheStats:
    """Counters of one :class:`FeatureCache` (reset with ``cache.stats = CacheStats()``)."""

    hits: int = 0
    misses: int = 0
    regenerated: int = 0
    writes: int = 0


class FeatureCache:
    """Content-addressed feature store under a local folder or an fsspec URL.

    Args:
        root: folder or URL (``memory://``, ``s3://``, ``gs://``, ...).
        hash_index: remember local files' content hashes in
            ``<root>/content-hashes.json``, validated by size, inode, mtime and
            ctime (see :mod:`vocalis.features.hashindex`), so unchanged files are
            not re-read on every run. The key is the content hash either way.

    The ``path`` arguments of :meth:`get`, :meth:`put` and :meth:`get_or_compute`
    accept an audio path (its bytes are hashed), raw ``bytes``, or a
    :class:`CacheKey` from :meth:`key` (to hash once and reuse).
    """

    def __init__(self, root: str | os.PathLike, hash_index: bool = True) -> None:
        self.root = str(root).rstrip("/")
        self.stats = CacheStats()
        self.hash_index = HashIndex(f"{self.root}/content-hashes.json") if hash_index else None
        self._url = is_url(self.root)
        self._written_configs: set[str] = set()
        self._config_memo: dict[Any, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FeatureCache({self.root!r})"

    # keys and paths -------------------------------------------------------
    def key(self, audio: str | os.PathLike | bytes | CacheKey, config: Any = None) -> CacheKey:
        """The :class:`CacheKey` of ``audio`` (path or bytes) under ``config``."""
        if isinstance(audio, CacheKey):
            return audio
        text, config_sha = self._config_key(config)
        if isinstance(audio, bytes):
            audio_sha = sha256_bytes(audio)
        elif self.hash_index is not None and not is_url(audio):
            audio_sha = self.hash_index.sha256(audio)
        else:
            audio_sha = content_hash(audio)
        return CacheKey(audio_sha, config_sha, text)

    def save_index(self) -> None:
        """Persist the remembered content hashes (called by ``extract_many``)."""
        if self.hash_index is not None:
            self.hash_index.save()

    def _config_key(self, config: Any) -> tuple[str, str]:
        """Canonical JSON and its hash, memoised for hashable (frozen dataclass) configs."""
        try:
            memo = self._config_memo.get(config)
        except TypeError:  # unhashable (a dict)
            text = canonical_config(config)
            return text, sha256_bytes(text.encode())
        if memo is None:
            text = canonical_config(config)
            memo = self._config_memo[config] = (text, sha256_bytes(text.encode()))
        return memo

    def entry_path(self, key: CacheKey) -> str:
        """Location of the entry for ``key``."""
        a = key.audio_sha256
        return f"{self.root}/{key.config_sha256[:16]}/{a[:2]}/{a}{SUFFIX}"

    # filesystem helpers --------------------------------------------------
    def _read(self, entry: str) -> bytes | memoryview | None:
        try:
            if self._url:
                import fsspec

                fs, target = fsspec.core.url_to_fs(entry)
                if not fs.exists(target):
                    return None
                return fs.cat_file(target)
            with open(entry, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                buf = np.empty(size, dtype=np.uint8)  # no zero-fill, writable
                got = fh.readinto(memoryview(buf))
                return memoryview(buf[:got])
        except FileNotFoundError:
            return None
        except OSError as err:
            raise CacheError(
                f"{entry}: cannot read cache entry ({err}); check the cache root"
            ) from None

    def _delete(self, entry: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self._url:
                import fsspec

                fs, target = fsspec.core.url_to_fs(entry)
                fs.rm(target)
            else:
                os.unlink(entry)

    # public API ----------------------------------------------------------
    def get(
        self, audio: str | os.PathLike | bytes | CacheKey, config: Any = None
    ) -> torch.Tensor | None:
        """The cached features, or ``None`` when absent (or corrupt: then deleted and warned)."""
        return self.lookup(audio, config)[0]

    def lookup(
        self, audio: str | os.PathLike | bytes | CacheKey, config: Any = None
    ) -> tuple[torch.Tensor | None, str]:
        """Like :meth:`get`, also saying what happened: ``"hit"``, ``"miss"`` or ``"corrupt"``.

        Thread-safe: several threads may look up entries of one cache at once.
        """
        key = self.key(audio, config)
        entry = self.entry_path(key)
        data = self._read(entry)
        if data is None:
            self._count("misses")
            return None, "miss"
        try:
            feats = decode_entry(data, key)
        except CacheError as err:
            logger.warning("feature cache: corrupt entry %s (%s); deleted, recomputing", entry, err)
            self._delete(entry)
            self._count("regenerated")
            return None, "corrupt"
        self._count("hits")
        return feats, "hit"

    def _count(self, field: str) -> None:
        with self._lock:
            setattr(self.stats, field, getattr(self.stats, field) + 1)

    def put(
        self,
        audio: str | os.PathLike | bytes | CacheKey,
        features: torch.Tensor,
        config: Any = None,
    ) -> None:
        """Store ``features`` for ``audio`` under ``config`` atomically."""
        key = self.key(audio, config)
        entry = self.entry_path(key)
        folder = f"{self.root}/{key.config_sha256[:16]}"
        if folder not in self._written_configs:
            cfg_file = f"{folder}/config.json"
            with contextlib.suppress(OSError):
                if not exists(cfg_file):
                    write_text(cfg_file, json.dumps(json.loads(key.config_json), indent=2) + "\n")
            self._written_configs.add(folder)
        try:
            with atomic_open(entry, "wb") as fh:
                for chunk in _encode(features, key):
                    fh.write(chunk)
        except OSError as err:
            raise CacheError(
                f"{entry}: cannot write cache entry ({err}); check the cache root"
            ) from None
        self._count("writes")

    def get_or_compute(
        self,
        audio: str | os.PathLike | bytes | CacheKey,
        config: Any,
        compute: Callable[[], torch.Tensor],
    ) -> torch.Tensor:
        """Cached features, or ``compute()`` stored then returned."""
        key = self.key(audio, config)
        feats = self.get(key)
        if feats is None:
            feats = compute()
            self.put(key, feats)
        return feats


def _encode(features: torch.Tensor, key: CacheKey) -> Iterator[bytes]:
    """Yield the entry's bytes: magic, header length, header, payload."""
    array = np.ascontiguousarray(features.detach().cpu().numpy())
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    array = array.astype(dtype, copy=False)
    payload = array.tobytes()
    header = json.dumps(
        {
            "format": FORMAT_VERSION,
            "vocalis": __version__,
            "config_sha256": key.config_sha256,
            "config": json.loads(key.config_json),
            "audio_sha256": key.audio_sha256,
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "payload_crc32": zlib.crc32(payload),
        },
        sort_keys=True,
    ).encode()
    # pad the header with spaces so the array starts 64-byte aligned
    pad = -(len(MAGIC) + 4 + len(header)) % _ALIGN
    header += b" " * pad
    yield MAGIC + struct.pack("<I", len(header))
    yield header
    yield payload


def read_header(data: bytes | bytearray | memoryview) -> dict:
    """Parse an entry's header (raises ``CacheError`` on anything malformed)."""
    if len(data) < len(MAGIC) + 4 or bytes(data[: len(MAGIC)]) != MAGIC:
        raise CacheError("not a Vocalis feature entry (bad magic or truncated)")
    (size,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    if start + size > len(data):
        raise CacheError("truncated header")
    try:
        header = json.loads(bytes(data[start : start + size]))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CacheError("unreadable header") from None
    if not isinstance(header, dict):
        raise CacheError("unreadable header")
    header["_payload_offset"] = start + size
    return header


def decode_entry(data: bytes | bytearray | memoryview, key: CacheKey | None = None) -> torch.Tensor:
    """Check and decode an entry. Raises ``CacheError`` naming what is wrong."""
    header = read_header(data)
    if key is not None:
        if header.get("config_sha256") != key.config_sha256:
            raise CacheError("written with a different config")
        if header.get("audio_sha256") != key.audio_sha256:
            raise CacheError("written for different audio")
    payload = memoryview(data)[header["_payload_offset"] :]
    dtype = header.get("dtype")
    shape = header.get("shape")
    if dtype not in _ALLOWED_DTYPES or not isinstance(shape, list):
        raise CacheError(f"bad dtype/shape {dtype!r} {shape!r}")
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if len(payload) != expected:
        raise CacheError(f"payload is {len(payload)} bytes, expected {expected}")
    if zlib.crc32(payload) != header.get("payload_crc32"):
        raise CacheError("payload checksum mismatch")
    array = np.frombuffer(payload, dtype=np.dtype(dtype)).reshape(shape)
    if not (array.flags.writeable and array.flags.aligned):  # immutable bytes: own a copy
        array = array.copy()
    return torch.from_numpy(array)
