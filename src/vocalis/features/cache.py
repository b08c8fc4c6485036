"""A feature cache keyed on audio content and the whole pipeline config.

Key = SHA-256 of the audio file's **bytes** (not its path or mtime) + SHA-256 of
the canonical JSON of the pipeline config (tier-0 config, feature config, the
Vocalis version and the entry format version). Renaming or touching a file
keeps its entry; editing the audio, any config value or upgrading Vocalis gives
a new key. Content hashes of unchanged local files are remembered
(:mod:`vocalis.features.hashindex`), so a cached run does not re-read the corpus.

Layout under ``root`` (a local folder or an fsspec URL such as ``s3://b/feats``,
``gs://b/feats`` or ``memory://feats``)::

    <root>/configs/<config sha>.json                       # the config, once per config
    <root>/<config sha[:16]>/<audio sha[:2]>/<audio sha>.vfeat

An entry is self-describing and pickle-free::

    b"VFEAT003" | uint32 little-endian header length | header JSON | raw array bytes

The small header names the config hash (whose JSON is the sidecar above), the
audio hash, dtype, shape and the CRC-32 of the array bytes (a corruption check;
the keys themselves are SHA-256); it is space-padded so the array starts 64-byte
aligned and is viewed without a copy. Entries are written atomically
(:func:`vocalis.io.atomic_open`). A truncated, corrupt or mismatching entry is
logged as a warning naming the file, deleted, and reported as ``"corrupt"`` so
the caller recomputes it; it is never served. When the config sidecar of a
config with entries is missing or corrupt, those entries cannot be interpreted:
a warning names the sidecar and they are reported as ``"stale"`` (recomputed,
which rewrites the sidecar).

The read path imports neither torch nor numpy: :meth:`FeatureCache.read` returns
a :class:`CachedEntry` (header + buffer) that becomes an array with ``.numpy()``
or ``.torch()`` (zero-copy) when someone needs one.

Example:
    >>> import torch
    >>> cache = FeatureCache("memory://doctest-cache")
    >>> key = cache.key(b"RIFF...", {"features": "mfcc"})
    >>> cache.put(key, torch.ones(2, 3))
    >>> cache.get(key).shape, cache.stats.hits
    (torch.Size([2, 3]), 1)
    >>> entry, status = cache.read(key)
    >>> status, entry.shape, entry.numpy().dtype.str
    ('hit', (2, 3), '<f4')
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vocalis import __version__
from vocalis.errors import CacheError
from vocalis.features.hashindex import HashIndex, file_sha256
from vocalis.io import atomic_open, is_url, read_bytes, remove_stale_parts, write_text

if TYPE_CHECKING:
    import numpy as np
    import torch

logger = logging.getLogger(__name__)

#: Entry layout version: part of every key, so a format change starts a fresh namespace
#: (old entries become misses, not "corrupt").
FORMAT_VERSION = 3
MAGIC = b"VFEAT%03d" % FORMAT_VERSION
SUFFIX = ".vfeat"
CONFIGS = "configs"
_ALIGN = 64
_PREFIX = len(MAGIC) + 4
_ITEMSIZE = {"<f4": 4, "<f8": 8, "<f2": 2, "<i4": 4, "<i8": 8, "|u1": 1, "|b1": 1}


def canonical_config(config: Any) -> str:
    """Canonical JSON of ``config`` (a dataclass or plain data) plus the Vocalis version.

    Example:
        >>> canonical_config({"b": 1, "a": [1.5]})[:39]
        '{"config":{"a":[1.5],"b":1},"format":3,'
    """
    from vocalis.config import to_dict

    data = to_dict(config) if dataclasses.is_dataclass(config) else config
    return _canonical({"config": data, "format": FORMAT_VERSION, "vocalis": __version__})


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


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
    """Where one entry lives: the audio content hash and the config it was computed with.

    ``config_json`` is the canonical config text (written once per config as the
    sidecar by :meth:`FeatureCache.put`; a key without it can only read).
    """

    audio_sha256: str
    config_sha256: str
    config_json: str = ""


@dataclass
class CacheStats:
    """Counters of one :class:`FeatureCache` (reset with ``cache.stats = CacheStats()``)."""

    hits: int = 0
    misses: int = 0
    regenerated: int = 0
    writes: int = 0


class CachedEntry:
    """A checked entry: its header and the buffer holding the array bytes.

    ``shape`` and ``dtype`` need no array library; :meth:`numpy` and :meth:`torch`
    view the buffer without copying (it is writable, so tensors own their memory
    safely).
    """

    __slots__ = ("_buffer", "_offset", "dtype", "shape")

    def __init__(self, buffer: Any, offset: int, dtype: str, shape: tuple[int, ...]) -> None:
        self._buffer = buffer
        self._offset = offset
        self.dtype = dtype
        self.shape = shape

    def __repr__(self) -> str:
        return f"CachedEntry(shape={self.shape}, dtype={self.dtype!r})"

    @property
    def num_frames(self) -> int:
        """The last dimension (frames for ``(F, N)`` features), 0 for a scalar."""
        return self.shape[-1] if self.shape else 0

    def numpy(self, writable: bool = True) -> np.ndarray:
        """The array, a view of the entry's buffer.

        It is copied when ``writable`` is asked for and the buffer is read-only
        (see :meth:`FeatureCache.read`).
        """
        import numpy as np

        count = 1
        for n in self.shape:
            count *= n
        array = np.frombuffer(
            self._buffer, dtype=np.dtype(self.dtype), count=count, offset=self._offset
        ).reshape(self.shape)
        if not array.flags.aligned or (writable and not array.flags.writeable):
            array = array.copy()
        return array

    def torch(self) -> torch.Tensor:
        """The array as a CPU tensor sharing the buffer."""
        import torch

        return torch.from_numpy(self.numpy())


class FeatureCache:
    """Content-addressed feature store under a local folder or an fsspec URL.

    Args:
        root: folder or URL (``memory://``, ``s3://``, ``gs://``, ...).
        hash_index: remember local files' content hashes in
            ``<root>/content-hashes.json``, validated by size, inode, mtime and
            ctime (see :mod:`vocalis.features.hashindex`), so unchanged files are
            not re-read on every run. The key is the content hash either way.

    The ``audio`` arguments of :meth:`get`, :meth:`put` and :meth:`get_or_compute`
    accept an audio path (its bytes are hashed), raw ``bytes``, or a
    :class:`CacheKey` from :meth:`key` (to hash once and reuse).
    """

    def __init__(self, root: str | os.PathLike, hash_index: bool = True) -> None:
        self.root = str(root).rstrip("/")
        self.stats = CacheStats()
        self.hash_index = HashIndex(f"{self.root}/content-hashes.json") if hash_index else None
        self._url = is_url(self.root)
        self._config_ok: dict[str, bool] = {}  # config sha -> sidecar valid (or no entries)
        self._sidecars_written: set[str] = set()
        self._config_memo: dict[Any, tuple[str, str]] = {}
        self._lock = threading.Lock()
        stale = remove_stale_parts(self.root)
        if stale:
            logger.info("%s: removed %d unfinished write(s) of killed runs", self.root, len(stale))

    def __repr__(self) -> str:
        return f"FeatureCache({self.root!r})"

    # keys and paths -------------------------------------------------------
    def key(self, audio: str | os.PathLike | bytes | CacheKey, config: Any = None) -> CacheKey:
        """The :class:`CacheKey` of ``audio`` (path or bytes) under ``config``."""
        if isinstance(audio, CacheKey):
            return audio
        text, config_sha = self.config_key(config)
        if isinstance(audio, bytes):
            audio_sha = sha256_bytes(audio)
        elif self.hash_index is not None and not is_url(audio):
            audio_sha = self.hash_index.sha256(audio)
        else:
            audio_sha = content_hash(audio)
        return CacheKey(audio_sha, config_sha, text)

    def keys(
        self,
        paths: Sequence[str | os.PathLike],
        config: Any = None,
        *,
        workers: int = 1,
    ) -> list[CacheKey | OSError]:
        """Keys of many audio files at once (``OSError`` in place of unreadable files).

        Local files known to the hash index cost one ``os.stat`` each; the others
        are hashed, in ``workers`` threads.
        """
        text, config_sha256 = self.config_key(config)
        names = [str(p) for p in paths]
        shas: list[str | OSError] = [""] * len(names)
        local = [i for i, n in enumerate(names) if not is_url(n)]
        remote = [i for i, n in enumerate(names) if is_url(n)]
        if self.hash_index is not None and local:
            found = self.hash_index.sha256_many([names[i] for i in local], workers)
            for i, sha in zip(local, found, strict=True):
                shas[i] = sha
        else:
            remote = list(range(len(names)))

        def one(i: int) -> str | OSError:
            try:
                return content_hash(names[i])
            except OSError as err:
                return err

        for i, sha in zip(remote, _map(one, remote, workers), strict=True):
            shas[i] = sha
        return [
            sha if isinstance(sha, OSError) else CacheKey(sha, config_sha256, text) for sha in shas
        ]

    def save_index(self) -> None:
        """Persist the remembered content hashes (called by ``extract_many``)."""
        if self.hash_index is not None:
            self.hash_index.save()

    def config_key(self, config: Any) -> tuple[str, str]:
        """Canonical JSON of ``config`` and its SHA-256 (memoised for frozen dataclasses)."""
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

    def config_path(self, config_sha256: str) -> str:
        """Location of the JSON sidecar of a config hash."""
        return f"{self.root}/{CONFIGS}/{config_sha256}.json"

    # filesystem helpers --------------------------------------------------
    def _fs(self, entry: str) -> tuple[Any, str]:
        import fsspec

        return fsspec.core.url_to_fs(entry)

    def _read(self, entry: str, writable: bool = True) -> bytes | bytearray | None:
        try:
            if self._url:
                fs, target = self._fs(entry)
                if not fs.exists(target):
                    return None
                return fs.cat_file(target)
            fd = os.open(entry, os.O_RDONLY)
            try:
                size = os.fstat(fd).st_size
                if not writable:  # immutable bytes: no zero-fill
                    data = os.read(fd, size)
                    while len(data) < size and (more := os.read(fd, size - len(data))):
                        data += more
                    return data
                buf = bytearray(size)  # writable: tensors may share it
                got = os.readv(fd, [buf])
                while got < size:  # short read (rare): finish it
                    more = os.read(fd, size - got)
                    if not more:
                        return buf[:got]
                    buf[got : got + len(more)] = more
                    got += len(more)
                return buf
            finally:
                os.close(fd)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise CacheError(
                f"{entry}: cannot read cache entry ({err}); check the cache root"
            ) from None

    def _exists(self, path: str) -> bool:
        if self._url:
            fs, target = self._fs(path)
            return bool(fs.exists(target))
        return os.path.exists(path)

    def _delete(self, entry: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self._url:
                fs, target = self._fs(entry)
                fs.rm(target)
            else:
                os.unlink(entry)

    def _sidecar_ok(self, config_sha: str, warn: bool = True) -> bool:
        """Whether entries of ``config_sha`` may be served (checked once per config)."""
        ok = self._config_ok.get(config_sha)
        if ok is not None:
            return ok
        location = self.config_path(config_sha)
        problem = None
        try:
            text = read_bytes(location)
            if sha256_bytes(_canonical(json.loads(text)).encode()) != config_sha:
                problem = "corrupt (its content does not hash to its name)"
        except FileNotFoundError:
            problem = "missing"
        except (OSError, ValueError, UnicodeDecodeError) as err:
            problem = f"unreadable ({err})"
        ok = problem is None
        folder = f"{self.root}/{config_sha[:16]}"
        if ok or not self._exists(folder):
            ok = True  # valid, or no entries yet: nothing to distrust
        elif warn:
            logger.warning(
                "feature cache: config sidecar %s is %s; the entries under %s cannot be "
                "interpreted and are recomputed",
                location,
                problem,
                folder,
            )
        with self._lock:
            self._config_ok[config_sha] = ok
        return ok

    def _write_sidecar(self, key: CacheKey) -> None:
        sha = key.config_sha256
        if sha in self._sidecars_written or not key.config_json:
            return
        location = self.config_path(sha)
        try:
            current = read_bytes(location)
            valid = sha256_bytes(_canonical(json.loads(current)).encode()) == sha
        except (OSError, ValueError, UnicodeDecodeError):
            valid = False
        if not valid:
            try:
                write_text(location, json.dumps(json.loads(key.config_json), indent=2) + "\n")
            except OSError as err:
                raise CacheError(
                    f"{location}: cannot write the config sidecar ({err}); check the cache root"
                ) from None
        with self._lock:
            self._sidecars_written.add(sha)
            self._config_ok[sha] = True  # interpretable again (entries are keyed on sha)

    # public API ----------------------------------------------------------
    def read(
        self,
        audio: str | os.PathLike | bytes | CacheKey,
        config: Any = None,
        *,
        repair: bool = True,
        writable: bool = True,
    ) -> tuple[CachedEntry | None, str]:
        """The checked entry and what happened: ``"hit"``, ``"miss"``, ``"corrupt"`` or ``"stale"``.

        Imports neither numpy nor torch. A corrupt entry is warned about (naming
        it) and deleted when ``repair`` is true; with ``repair=False`` it is only
        reported (a dry look-up that changes nothing). ``"stale"``: the entry exists
        but its config sidecar is missing or corrupt (warned once per config), so it
        is recomputed. ``writable=False`` reads into immutable bytes (a little
        cheaper; ``entry.numpy()`` then copies unless called with ``writable=False``).
        Thread-safe.
        """
        key = self.key(audio, config)
        entry = self.entry_path(key)
        if not self._sidecar_ok(key.config_sha256, warn=repair) and self._exists(entry):
            if repair:
                self._count("regenerated")
            return None, "stale"
        data = self._read(entry, writable)
        if data is None:
            if repair:
                self._count("misses")
            return None, "miss"
        try:
            found = parse_entry(data, key)
        except CacheError as err:
            if repair:
                logger.warning(
                    "feature cache: corrupt entry %s (%s); deleted, recomputing", entry, err
                )
                self._delete(entry)
                self._count("regenerated")
            return None, "corrupt"
        self._count("hits")
        return found, "hit"

    def read_many(
        self, keys: Sequence[CacheKey], *, repair: bool = True, workers: int = 1
    ) -> list[tuple[CachedEntry | None, str]]:
        """:meth:`read` for many keys (threads only help remote roots)."""
        return list(_map(lambda k: self.read(k, repair=repair), keys, workers if self._url else 1))

    def get(
        self, audio: str | os.PathLike | bytes | CacheKey, config: Any = None
    ) -> torch.Tensor | None:
        """The cached features, or ``None`` when absent (or corrupt: then deleted and warned)."""
        return self.lookup(audio, config)[0]

    def lookup(
        self, audio: str | os.PathLike | bytes | CacheKey, config: Any = None
    ) -> tuple[torch.Tensor | None, str]:
        """Like :meth:`get`, also saying what happened (see :meth:`read`)."""
        found, status = self.read(audio, config)
        return (found.torch() if found is not None else None), status

    def _count(self, field: str) -> None:
        with self._lock:
            setattr(self.stats, field, getattr(self.stats, field) + 1)

    def put(
        self,
        audio: str | os.PathLike | bytes | CacheKey,
        features: Any,
        config: Any = None,
    ) -> None:
        """Store ``features`` (tensor or numpy array) for ``audio`` under ``config``, atomically."""
        key = self.key(audio, config)
        entry = self.entry_path(key)
        self._write_sidecar(key)
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


def _map(fn: Callable, items: Sequence, workers: int) -> list:
    """``[fn(x) for x in items]``, in ``workers`` threads when that can help."""
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def _encode(features: Any, key: CacheKey) -> Iterator[bytes]:
    """Yield the entry's bytes: magic, header length, header, payload."""
    import numpy as np

    if hasattr(features, "detach"):  # a torch tensor
        features = features.detach().cpu().numpy()
    array = np.ascontiguousarray(features)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    if array.dtype.str not in _ITEMSIZE:
        raise CacheError(
            f"cannot cache dtype {array.dtype.str}; expected one of {', '.join(_ITEMSIZE)}"
        )
    payload = array.tobytes()
    header = json.dumps(
        {
            "format": FORMAT_VERSION,
            "config_sha256": key.config_sha256,
            "audio_sha256": key.audio_sha256,
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "payload_crc32": zlib.crc32(payload),
        },
        sort_keys=True,
    ).encode()
    header += b" " * (-(_PREFIX + len(header)) % _ALIGN)  # array starts 64-byte aligned
    yield MAGIC + struct.pack("<I", len(header))
    yield header
    yield payload


def read_header(data: bytes | bytearray | memoryview) -> dict:
    """Parse an entry's header (raises ``CacheError`` on anything malformed)."""
    if len(data) < _PREFIX or data[: len(MAGIC)] != MAGIC:
        raise CacheError("not a Vocalis feature entry (bad magic or truncated)")
    (size,) = struct.unpack_from("<I", data, len(MAGIC))
    if _PREFIX + size > len(data):
        raise CacheError("truncated header")
    try:
        header = json.loads(bytes(data[_PREFIX : _PREFIX + size]))
    except (UnicodeDecodeError, ValueError):
        raise CacheError("unreadable header") from None
    if not isinstance(header, dict):
        raise CacheError("unreadable header")
    header["_payload_offset"] = _PREFIX + size
    return header


def parse_entry(data: bytes | bytearray | memoryview, key: CacheKey | None = None) -> CachedEntry:
    """Check an entry's bytes without decoding the array. Raises ``CacheError`` naming the fault."""
    header = read_header(data)
    if key is not None:
        if header.get("config_sha256") != key.config_sha256:
            raise CacheError("written with a different config")
        if header.get("audio_sha256") != key.audio_sha256:
            raise CacheError("written for different audio")
    offset = header["_payload_offset"]
    dtype = header.get("dtype")
    shape = header.get("shape")
    if (
        dtype not in _ITEMSIZE
        or not isinstance(shape, list)
        or not all(isinstance(n, int) and n >= 0 for n in shape)
    ):
        raise CacheError(f"bad dtype/shape {dtype!r} {shape!r}")
    expected = _ITEMSIZE[dtype]
    for n in shape:
        expected *= n
    payload = memoryview(data)[offset:]
    if len(payload) != expected:
        raise CacheError(f"payload is {len(payload)} bytes, expected {expected}")
    if zlib.crc32(payload) != header.get("payload_crc32"):
        raise CacheError("payload checksum mismatch")
    return CachedEntry(data, offset, dtype, tuple(shape))


def decode_entry(data: bytes | bytearray | memoryview, key: CacheKey | None = None) -> torch.Tensor:
    """Check and decode an entry to a tensor. Raises ``CacheError`` naming what is wrong."""
    return parse_entry(data, key).torch()
