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
