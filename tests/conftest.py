"""Shared pytest setup: the ``emodb`` marker and data fixtures.

Tests marked ``@pytest.mark.emodb`` need the real Berlin EmoDB (found by
:func:`vocalis.testing.emodb_root`: ``$VOCALIS_EMODB`` or
``../shared/data/emodb`` next to the repository); they are skipped with a clear
reason when it is absent, so the unit tests pass anywhere.
"""

from __future__ import annotations

import os

# The test machine is shared: keep BLAS/torch from grabbing every core.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# Caches (``cache_dir: auto``) go to a fresh folder, never to the user's cache.
if not os.environ.get("VOCALIS_CACHE"):
    import tempfile

    os.environ["VOCALIS_CACHE"] = tempfile.mkdtemp(prefix="vocalis-test-cache-")

import pytest

from vocalis.testing import (
    EMODB_SKIP_REASON,
    emodb_root,
    sample_manifest_path,
)


def pytest_collection_modifyitems(config, items):
    if emodb_root() is not None:
        return
    skip = pytest.mark.skip(reason=EMODB_SKIP_REASON)
    for item in items:
        if item.get_closest_marker("emodb") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def emodb_path():
    """The EmoDB corpus folder (holding ``wav/``); skips the test when absent."""
    root = emodb_root()
    if root is None:
        pytest.skip(EMODB_SKIP_REASON)
    return root


@pytest.fixture(scope="session")
def sample_manifest_csv():
    """Path of the bundled 14-clip EmoDB excerpt's ``manifest.csv``."""
    return sample_manifest_path()


@pytest.fixture(scope="session")
def gcs_store():
    """A GCS emulator (gcp-storage-emulator) serving ``gs://vocalis-test``; skips when absent."""
    from vocalis.testing.stores import GCS_PACKAGES, gcs_emulator, missing

    reason = missing(GCS_PACKAGES)
    if reason:
        pytest.skip(f"GCS emulator: {reason}")
    with gcs_emulator() as store:
        yield store


@pytest.fixture(scope="session")
def s3_store():
    """An S3 server (moto in server mode) serving ``s3://vocalis-test``; skips when absent."""
    from vocalis.testing.stores import S3_PACKAGES, missing, s3_server

    reason = missing(S3_PACKAGES)
    if reason:
        pytest.skip(f"S3 server: {reason}")
    with s3_server() as store:
        yield store


@pytest.fixture(params=["gcs", "s3"])
def object_store(request):
    """Each real local object store in turn (the GCS emulator, then the S3 server)."""
    return request.getfixturevalue(f"{request.param}_store")
