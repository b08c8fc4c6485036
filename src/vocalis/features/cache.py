"""A feature cache keyed on audio content and the whole pipeline config.

Key = SHA-256 of the audio file's **bytes** (not its path or mtime) + SHA-256 of
the canonical JSON of the pipeline config (tier-0 config, feature config and
the Vocalis version). Renaming or touching a file keeps its entry; editing the
audio, any config value or upgrading Vocalis gives a new key.

Layout under ``root`` (a local folder or an fsspec URL such as ``s3://b/feats``,
``gs://b/feats`` or ``memory://feats``)::

    <root>/<config sha[:16]>/config.json          # the config, for humans
    <root>/<config sha[:16]>/<audio sha[:2]>/<audio sha>.vfeat

An entry is self-describing and pickle-free::

    b"VFEAT001" | uint32 little-endian header length | header JSON | raw array bytes

where the header holds the config JSON and its hash, the audio hash, dtype,
shape and the SHA-256 of the array bytes. Entries are written atomically
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vocalis import __version__
from vocalis.config import to_dict
from vocalis.errors import CacheError
from vocalis.io import atomic_open, exists, is_url, read_bytes, write_text

logger = logging.getLogger(__name__)

MAGIC = b"VFEAT001"
SUFFIX = ".vfeat"
_ALLOWED_DTYPES = ("<f4", "<f8", "<f2", "<i4", "<i8", "|u1", "|b1")


def canonical_config(config: Any) -> str:
    """Canonical JSON of ``config`` (a dataclass or plain data) plus the Vocalis version.

    Example:
        >>> canonical_config({"b": 1, "a": [1.5]})[:28]
        '{"config":{"a":[1.5],"b":1},'
    """
    data = to_dict(config) if dataclasses.is_dataclass(config) else config
    return json.dumps(
        {"config": data, "vocalis": __version__},
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
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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

    The ``path`` arguments of :meth:`get`, :meth:`put` and :meth:`get_or_compute`
    accept an audio path (its bytes are hashed), raw ``bytes``, or a
    :class:`CacheKey` from :meth:`key` (to hash once and reuse).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = str(root).rstrip("/")
        self.stats = CacheStats()
        self._url = is_url(self.root)
        self._written_configs: set[str] = set()
        self._config_memo: dict[Any, tuple[str, str]] = {}

    def __repr__(self) -> str:
        return f"FeatureCache({self.root!r})"

    # keys and paths -------------------------------------------------------
    def key(self, audio: str | os.PathLike | bytes | CacheKey, config: Any = None) -> CacheKey:
        """The :class:`CacheKey` of ``audio`` (path or bytes) under ``config``."""
        if isinstance(audio, CacheKey):
            return audio
        text, config_sha = self._config_key(config)
        audio_sha = sha256_bytes(audio) if isinstance(audio, bytes) else content_hash(audio)
        return CacheKey(audio_sha, config_sha, text)

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
    def _read(self, entry: str) -> bytes | None:
        try:
            if self._url:
                import fsspec

                fs, target = fsspec.core.url_to_fs(entry)
                if not fs.exists(target):
                    return None
                return fs.cat_file(target)
            return Path(entry).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise CacheError(f"{entry}: cannot read cache entry ({err}); check the cache root") from None

    def _delete(self, entry: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self._url:
                import fsspec

                fs, target = fsspec.core.url_to_fs(entry)
                fs.rm(target)
            else:
                os.unlink(entry)

    # public API ----------------------------------------------------------
    def get(self, audio: str | os.PathLike | bytes | CacheKey, config: Any = None) -> torch.Tensor | None:
        """The cached features, or ``None`` when absent (or corrupt: then deleted and warned)."""
        key = self.key(audio, config)
        entry = self.entry_path(key)
        data = self._read(entry)
        if data is None:
            self.stats.misses += 1
            return None
        try:
            feats = decode_entry(data, key)
        except CacheError as err:
            logger.warning("feature cache: corrupt entry %s (%s); deleted, recomputing", entry, err)
            self._delete(entry)
            self.stats.regenerated += 1
            return None
        self.stats.hits += 1
        return feats

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
            raise CacheError(f"{entry}: cannot write cache entry ({err}); check the cache root") from None
        self.stats.writes += 1

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
            "format": 1,
            "vocalis": __version__,
            "config_sha256": key.config_sha256,
            "config": json.loads(key.config_json),
            "audio_sha256": key.audio_sha256,
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "payload_sha256": sha256_bytes(payload),
        },
        sort_keys=True,
    ).encode()
    yield MAGIC + struct.pack("<I", len(header))
    yield header
    yield payload


def read_header(data: bytes) -> dict:
    """Parse an entry's header (raises ``CacheError`` on anything malformed)."""
    if len(data) < len(MAGIC) + 4 or not data.startswith(MAGIC):
        raise CacheError("not a Vocalis feature entry (bad magic or truncated)")
    (size,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    if start + size > len(data):
        raise CacheError("truncated header")
    try:
        header = json.loads(data[start : start + size])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CacheError("unreadable header") from None
    if not isinstance(header, dict):
        raise CacheError("unreadable header")
    header["_payload_offset"] = start + size
    return header


def decode_entry(data: bytes, key: CacheKey | None = None) -> torch.Tensor:
    """Check and decode an entry. Raises ``CacheError`` naming what is wrong."""
    header = read_header(data)
    if key is not None:
        if header.get("config_sha256") != key.config_sha256:
            raise CacheError("written with a different config")
        if header.get("audio_sha256") != key.audio_sha256:
            raise CacheError("written for different audio")
    payload = data[header["_payload_offset"] :]
    dtype = header.get("dtype")
    shape = header.get("shape")
    if dtype not in _ALLOWED_DTYPES or not isinstance(shape, list):
        raise CacheError(f"bad dtype/shape {dtype!r} {shape!r}")
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if len(payload) != expected:
        raise CacheError(f"payload is {len(payload)} bytes, expected {expected}")
    if sha256_bytes(payload) != header.get("payload_sha256"):
        raise CacheError("payload checksum mismatch")
    array = np.frombuffer(payload, dtype=np.dtype(dtype)).reshape(shape).copy()
    return torch.from_numpy(array)
