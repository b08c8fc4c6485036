"""Real local object stores for tests: a GCS emulator and an S3 server, one call each.

:func:`gcs_emulator` starts ``gcp-storage-emulator`` in this process (in memory),
:func:`s3_server` starts ``moto`` in server mode; both listen on a free local port,
create a bucket, point fsspec at it (``gs://`` through gcsfs, ``s3://`` through
s3fs) and give back a :class:`LocalStore` with the bucket's URL and the
environment a subprocess needs to reach the same store. Nothing is mocked: the
clients talk HTTP to the servers as they would to Google or AWS.

Example:
    >>> with s3_server() as store:  # doctest: +SKIP
    ...     vocalis.io.write_text(f"{store.url}/a.txt", "hi")
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

#: What each store needs installed (the reason a test is skipped without it).
GCS_PACKAGES = ("gcsfs", "gcp_storage_emulator")
S3_PACKAGES = ("s3fs", "moto")


@dataclass(frozen=True)
class LocalStore:
    """A running local store.

    Attributes:
        url: the bucket's root URL (``gs://vocalis-test``).
        endpoint: the server's HTTP address.
        env: environment variables that make a subprocess use this store.
    """

    url: str
    endpoint: str
    env: dict[str, str] = field(default_factory=dict)


def missing(packages: tuple[str, ...]) -> str | None:
    """The skip reason when one of ``packages`` cannot be imported, else ``None``."""
    import importlib.util

    absent = [p for p in packages if importlib.util.find_spec(p) is None]
    if not absent:
        return None
    return f"needs {', '.join(absent)} (pip install gcsfs s3fs gcp-storage-emulator 'moto[server]')"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _fsspec_config(protocols: tuple[str, ...], options: dict[str, str]) -> Iterator[None]:
    import fsspec.config

    old = {p: fsspec.config.conf.get(p) for p in protocols}
    for p in protocols:
        fsspec.config.conf[p] = dict(options)
    try:
        yield
    finally:
        for p, v in old.items():
            if v is None:
                fsspec.config.conf.pop(p, None)
            else:
                fsspec.config.conf[p] = v


@contextlib.contextmanager
def gcs_emulator(bucket: str = "vocalis-test") -> Iterator[LocalStore]:
    """Run ``gcp-storage-emulator`` on a free port with ``bucket``; fsspec's ``gs://`` uses it.

    gcsfs is asked for its plain client (``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false``):
    the extended one probes the bucket layout over gRPC, which an emulator does not
    serve (a 60 s stall per bucket).

    Raises:
        ImportError: gcsfs or gcp-storage-emulator is not installed.
    """
    import fsspec
    import gcsfs.core
    from gcp_storage_emulator.server import create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "STORAGE_EMULATOR_HOST": endpoint,
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "FSSPEC_GS_TOKEN": "anon",
        "FSSPEC_GS_PROJECT": "vocalis-test",
    }
    old = {p: fsspec.get_filesystem_class(p) for p in ("gs", "gcs")}
    try:
        with _environment(env), _fsspec_config(("gs",), {"token": "anon", "project": "t"}):
            for p in ("gs", "gcs"):
                fsspec.register_implementation(p, gcsfs.core.GCSFileSystem, clobber=True)
            gcsfs.core.GCSFileSystem.clear_instance_cache()
            yield LocalStore(url=f"gs://{bucket}", endpoint=endpoint, env=env)
    finally:
        for p, cls in old.items():
            fsspec.register_implementation(p, cls, clobber=True)
        gcsfs.core.GCSFileSystem.clear_instance_cache()
        server.stop()


@contextlib.contextmanager
def s3_server(bucket: str = "vocalis-test") -> Iterator[LocalStore]:
    """Run ``moto`` in server mode on a free port with ``bucket``; fsspec's ``s3://`` uses it.

    Raises:
        ImportError: s3fs or moto (with its server extra) is not installed.
    """
    import s3fs
    from moto.server import ThreadedMotoServer

    port = _free_port()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
    }
    try:
        with _environment(env), _fsspec_config(("s3",), {"endpoint_url": endpoint}):
            s3fs.S3FileSystem.clear_instance_cache()
            s3fs.S3FileSystem(endpoint_url=endpoint).mkdir(bucket)
            yield LocalStore(url=f"s3://{bucket}", endpoint=endpoint, env=env)
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


__all__ = ["GCS_PACKAGES", "S3_PACKAGES", "LocalStore", "gcs_emulator", "missing", "s3_server"]
