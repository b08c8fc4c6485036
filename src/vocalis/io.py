"""Atomic writes and fsspec-aware paths, shared by caches, run folders and manifests.

Every output of Vocalis (run folders, checkpoints, feature caches, predictions,
reports) may live on a local disk or on any fsspec store: ``gs://bucket/runs/x``
(``pip install 'vocalis[gcs]'``), ``s3://bucket/runs/x`` (``vocalis[s3]``),
``memory://x`` (tests). :func:`as_path` turns what the user typed into a
:class:`pathlib.Path` or a :class:`URLPath` (the same small API over fsspec), so
no code builds a local folder named ``gs:`` by accident.

Atomicity (:func:`atomic_open`): the bytes are first written to a local temporary
file. On a local disk they are renamed into place; on an object store (GCS, S3,
Azure) they are sent with one upload, which the store makes visible only once it
completed (a killed upload leaves nothing under the final key); on any other
fsspec store they go to a temporary key ``.<name>.<host>-<pid>.<rand>.part``
beside the target, which is then renamed (moved) onto it.

Credentials and options of a store come from the store's own environment
(``GOOGLE_APPLICATION_CREDENTIALS``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``,
``STORAGE_EMULATOR_HOST``) or from fsspec's configuration, e.g.
``FSSPEC_GCS_PROJECT=my-project`` or ``FSSPEC_S3='{"endpoint_url": "http://..."}'``.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import posixpath
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from vocalis.errors import StorageError


def is_url(path: str | os.PathLike) -> bool:
    """True for fsspec URLs such as ``s3://b/k``, ``gs://b/k`` or ``memory://x``."""
    return "://" in str(path) and not str(path).startswith("file://")


#: Protocols whose single upload is atomic (the object appears only when it completed).
OBJECT_STORES = frozenset({"gs", "gcs", "s3", "s3a", "az", "abfs", "abfss", "adl"})

#: The extra that brings each protocol's fsspec package.
_EXTRAS = {"gs": "gcs", "gcs": "gcs", "s3": "s3", "s3a": "s3"}


def filesystem(url: str | os.PathLike) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path inside it.

    Args:
        url: an fsspec URL (``gs://bucket/key``).

    Returns:
        ``(fs, path)`` as :func:`fsspec.core.url_to_fs` gives them.

    Raises:
        StorageError: the protocol is unknown or its package is not installed.

    Example:
        >>> fs, key = filesystem("memory://doctest/a.txt")
        >>> type(fs).__name__, key
        ('MemoryFileSystem', '/doctest/a.txt')
    """
    import fsspec

    text = str(url)
    protocol = text.split("://", 1)[0]
    try:
        return fsspec.core.url_to_fs(text)
    except ImportError as err:
        extra = _EXTRAS.get(protocol)
        how = (
            f"pip install 'vocalis[{extra}]'"
            if extra
            else f"install the fsspec package for {protocol}://"
        )
        raise StorageError(
            f"{text}: {protocol}:// needs a package that is missing ({err}); {how}"
        ) from None
    except ValueError as err:
        raise StorageError(f"{text}: {err}; use a local path or a gs://, s3:// URL") from None


def set_storage_option(option: str) -> tuple[str, str, Any]:
    """Apply ``PROTOCOL.KEY=VALUE`` (``gs.project=my-project``) to every later fsspec call.

    The value is read as JSON when it parses (``true``, ``3``, ``{...}``), else kept as
    text. It goes into fsspec's configuration of this process and into the environment
    (``FSSPEC_GS_PROJECT``), so worker processes see it too.

    Returns:
        ``(protocol, key, value)``.

    Raises:
        StorageError: not of the form ``PROTOCOL.KEY=VALUE``.

    Example:
        >>> set_storage_option("doctestfs.retries=3")
        ('doctestfs', 'retries', 3)
        >>> import fsspec.config
        >>> fsspec.config.conf.pop("doctestfs"), os.environ.pop("FSSPEC_DOCTESTFS_RETRIES")
        ({'retries': 3}, '3')
    """
    import fsspec.config

    name, sep, text = option.partition("=")
    protocol, dot, key = name.strip().partition(".")
    if not (sep and dot and protocol and key):
        raise StorageError(
            f"--storage-option {option!r}: expected PROTOCOL.KEY=VALUE, e.g. gs.project=my-project "
            "or s3.endpoint_url=http://localhost:9000"
        )
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError:
        value = text
    fsspec.config.conf.setdefault(protocol, {})[key] = value
    os.environ[f"FSSPEC_{protocol.upper()}_{key.upper()}"] = text
    return protocol, key, value


def _object_store(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return any(p in OBJECT_STORES for p in protocols)


def _commit(local: str, url: str) -> None:
    """Send the finished local file ``local`` to ``url`` so that no reader sees half of it."""
    fs, target = filesystem(url)
    parent, name = posixpath.split(target)
    if not _object_store(fs) and parent:
        fs.makedirs(parent, exist_ok=True)
    try:
        if _object_store(fs):
            fs.put_file(local, target)  # visible only once the upload completed
            return
        tmp = posixpath.join(parent, f".{name}.{_TAG}.{os.urandom(4).hex()}.part")
        fs.put_file(local, tmp)
        try:
            fs.mv(tmp, target)
        except BaseException:
            with contextlib.suppress(Exception):
                fs.rm(tmp)
            raise
    except (FileNotFoundError, PermissionError) as err:  # no such bucket, no right to write
        raise StorageError(f"{url}: cannot write ({type(err).__name__}: {err})") from None


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing and rename it into place.

    A reader never sees a half-written file: the rename happens only after the
    block finished without error (and the data was flushed to disk); on error the
    temporary file is removed and any existing ``path`` is left as it was. Parts
    of the same target left by killed writers are removed first (see
    :func:`remove_stale_parts`).
    fsspec URLs are written locally first, then committed as the module docstring
    says (one upload on object stores, a temporary key and a rename elsewhere).
    """
    if "w" not in mode:
        raise ValueError("atomic_open is for writing")
    if is_url(path):
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "part"
            with open(local, mode) as fh:
                yield fh
            _commit(str(local), str(path))
        return
    path = as_path(path)
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
    if is_url(folder):  # object stores keep no parts; other stores' parts are renamed at once
        return []
    root = Path(folder)
    if not root.is_dir():
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


def write_npz(path: str | os.PathLike, arrays: dict[str, Any], compressed: bool = False) -> None:
    """Atomically write ``arrays`` (name -> numpy array) as an ``.npz`` (zip-compressed or not)."""
    import numpy as np

    with atomic_open(path, "wb") as fh:
        (np.savez_compressed if compressed else np.savez)(fh, **arrays)


def read_bytes(path: str | os.PathLike) -> bytes:
    """Read a local path or an fsspec URL."""
    return as_path(path).read_bytes()


def exists(path: str | os.PathLike) -> bool:
    """``os.path.exists`` that also understands fsspec URLs."""
    return as_path(path).exists()


def as_path(path: str | os.PathLike) -> Path | URLPath:
    """What the user typed as a path: a local :class:`~pathlib.Path` or a :class:`URLPath`.

    ``file://`` URLs become local paths; any other ``scheme://`` is a store URL.
    Call this instead of ``Path(...)`` on every user-given input or output path:
    ``Path("gs://b/x")`` is the local folder ``gs:/b/x``.

    Example:
        >>> as_path("runs/x"), as_path("memory://bucket/run") / "model.pt"
        (PosixPath('runs/x'), URLPath('memory://bucket/run/model.pt'))
        >>> as_path("file:///tmp/x")
        PosixPath('/tmp/x')
    """
    if isinstance(path, (Path, URLPath)):
        return path
    text = os.fspath(path) if not isinstance(path, str) else path
    if text.startswith("file://"):
        return Path(text[len("file://") :])
    if "://" in text:
        return URLPath(text)
    return Path(text)


def local_path(path: str | os.PathLike, what: str) -> Path:
    """A user-given path that must be on this machine; a store URL is refused in one line.

    For outputs that are not written through fsspec yet (for example plots drawn by
    matplotlib), so that ``gs://b/x`` never becomes a local folder named ``gs:``.

    Args:
        path: what the user gave.
        what: the option or argument it came from, for the message (``--out``).

    Raises:
        StorageError: ``path`` is a store URL.

    Example:
        >>> local_path("runs/x", "--out")
        PosixPath('runs/x')
    """
    resolved = as_path(path)
    if isinstance(resolved, URLPath):
        raise StorageError(
            f"{what} {path}: this output is written to local files only; "
            "give a local path (and copy it to the store afterwards)"
        )
    return resolved


class URLPath:
    r"""A file or folder on an fsspec store, with the part of :class:`pathlib.Path` Vocalis uses.

    It has no ``__fspath__`` on purpose: ``open()``, ``os`` and ``Path()`` refuse it
    instead of silently writing a local folder named after the URL.

    Args:
        url: ``protocol://bucket/key`` (a trailing ``/`` is dropped).

    Example:
        >>> run = URLPath("memory://doctest-run/exp1")
        >>> (run / "config.yaml").write_text("a: 1\n")
        >>> (run / "config.yaml").is_file(), run.is_dir(), (run / "x").exists()
        (True, True, False)
        >>> [p.name for p in run.iterdir()], (run / "config.yaml").read_text()
        (['config.yaml'], 'a: 1\n')
    """

    __slots__ = ("_url",)

    def __init__(self, url: str | URLPath) -> None:
        text = str(url)
        protocol, sep, rest = text.partition("://")
        if not sep or not protocol:
            raise ValueError(f"{text!r} is not a URL (protocol://path)")
        rest = rest.rstrip("/") if rest.strip("/") else rest
        self._url = f"{protocol}://{rest}"

    # names -------------------------------------------------------------
    def __str__(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"URLPath({self._url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, URLPath) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)

    def __truediv__(self, other: str | os.PathLike) -> URLPath:
        part = str(other).strip("/")
        return URLPath(f"{self._url}/{part}" if part else self._url)

    @property
    def protocol(self) -> str:
        """The scheme (``gs``, ``s3``, ``memory``)."""
        return self._url.split("://", 1)[0]

    @property
    def name(self) -> str:
        """The last part of the key (``model.pt``)."""
        return posixpath.basename(self._url.split("://", 1)[1])

    @property
    def stem(self) -> str:
        """:attr:`name` without its suffix."""
        return Path(self.name).stem

    @property
    def suffix(self) -> str:
        """The file suffix of :attr:`name` (``.pt``)."""
        return Path(self.name).suffix

    @property
    def parent(self) -> URLPath:
        """The folder above (the bucket root stays itself)."""
        protocol, rest = self._url.split("://", 1)
        head = posixpath.dirname(rest)
        return URLPath(f"{protocol}://{head}") if head else self

    def with_name(self, name: str) -> URLPath:
        """This path with its last part replaced by ``name``."""
        return self.parent / name

    def with_suffix(self, suffix: str) -> URLPath:
        """This path with its suffix replaced by ``suffix``."""
        return self.with_name(self.stem + suffix)

    def expanduser(self) -> URLPath:
        """Itself (a URL has no ``~``)."""
        return self

    def resolve(self) -> URLPath:
        """Itself (a URL is absolute)."""
        return self

    def is_absolute(self) -> bool:
        """True (a URL is absolute)."""
        return True

    # the store ---------------------------------------------------------
    def _fs(self) -> tuple[Any, str]:
        return filesystem(self._url)

    def _info(self) -> dict[str, Any] | None:
        """The store's entry for this path, ``None`` when absent.

        fsspec's own ``exists``/``isfile`` answer ``False`` on any error, so an
        unreachable endpoint or missing credentials would read as "no such run";
        here they are one :class:`~vocalis.errors.StorageError` line instead.
        """
        fs, key = self._fs()
        try:
            return fs.info(key)
        except FileNotFoundError:
            return None
        except Exception as err:  # each client raises its own types
            first = str(err).splitlines()[0] if str(err) else ""
            raise StorageError(
                f"{self}: the store did not answer ({type(err).__name__}: {first}); check the "
                "endpoint, the credentials and the network"
            ) from None

    def exists(self) -> bool:
        """True for an object or a non-empty folder (prefix)."""
        return self._info() is not None

    def is_file(self) -> bool:
        """True for an object."""
        info = self._info()
        return info is not None and info.get("type") == "file"

    def is_dir(self) -> bool:
        """True for a folder (on object stores: a prefix with objects below)."""
        info = self._info()
        return info is not None and info.get("type") == "directory"

    def read_bytes(self) -> bytes:
        """The object's bytes (``FileNotFoundError`` when absent)."""
        fs, key = self._fs()
        return fs.cat_file(key)

    def read_text(self, encoding: str = "utf-8") -> str:
        """The object decoded as text."""
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> None:
        """Write ``data`` atomically (see :func:`atomic_open`)."""
        with atomic_open(self, "wb") as fh:
            fh.write(data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        """Write ``text`` atomically."""
        self.write_bytes(text.encode(encoding))

    def open(self, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        """Open for reading (writes go through :func:`atomic_open`)."""
        if any(c in mode for c in "wax+"):
            raise ValueError(f"{self}: write with vocalis.io.atomic_open, not open({mode!r})")
        fs, key = self._fs()
        return fs.open(key, mode, **kwargs)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Create the folder (object stores have none: this is a no-op there)."""
        fs, key = self._fs()
        if not _object_store(fs):
            fs.makedirs(key, exist_ok=True)

    def unlink(self, missing_ok: bool = False) -> None:
        """Delete the object."""
        fs, key = self._fs()
        try:
            fs.rm_file(key)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def iterdir(self) -> Iterator[URLPath]:
        """The objects and folders directly below."""
        fs, key = self._fs()
        for entry in sorted(str(e) for e in fs.ls(key, detail=False)):
            if entry.rstrip("/") != key.rstrip("/"):
                yield URLPath(f"{self.protocol}://{entry.lstrip('/')}")

    def glob(self, pattern: str) -> Iterator[URLPath]:
        """Objects below that match ``pattern`` (fsspec glob, ``**`` included)."""
        fs, key = self._fs()
        for entry in sorted(fs.glob(posixpath.join(key, pattern))):
            yield URLPath(f"{self.protocol}://{str(entry).lstrip('/')}")

    def rglob(self, pattern: str) -> Iterator[URLPath]:
        """Objects anywhere below that match ``pattern``."""
        return self.glob(f"**/{pattern}")


#: What counts as a path (``isinstance(x, PATH_TYPES)``): text, a local path, a :class:`URLPath`.
PATH_TYPES = (str, os.PathLike, URLPath)
