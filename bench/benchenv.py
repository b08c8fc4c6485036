"""Shared by the benchmarks: where EmoDB is, and what CPU the numbers come from.

The scripts run as ``python bench/<name>.py``, so this folder is on ``sys.path``.
"""

from __future__ import annotations

import platform
from pathlib import Path


def emodb_dir() -> Path:
    """EmoDB's folder: ``$VOCALIS_EMODB`` or ``<repo>/../shared/data/emodb``.

    Falls back to the conventional path when neither holds the corpus, so that a
    script's "not found" message names where it looked.
    """
    from vocalis.testing import emodb_root

    root = emodb_root()
    return root if root is not None else Path(__file__).resolve().parents[2] / "shared/data/emodb"


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (or what :mod:`platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
