"""The per-run error summary: which manifest rows a verb skipped, at what stage, and why.

Every verb that reads a manifest collects a :class:`Skipped` record for each
row it could not use and writes them to ``errors.csv`` in its output folder
(columns ``id, path, stage, kind, reason``), with the counts in its metrics
JSON (:func:`summary`: ``n_rows``, ``n_used``, ``n_skipped`` by kind).

Example:
    >>> rows = [Skipped("a", "a.wav", "features", "unreadable_audio", "a.wav: empty file")]
    >>> summary(rows, n_rows=10)
    {'n_rows': 10, 'n_used': 9, 'n_skipped': {'unreadable_audio': 1}}
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from vocalis.errors import DataError
from vocalis.io import as_path

#: Columns of ``errors.csv``.
COLUMNS = ("id", "path", "stage", "kind", "reason")


@dataclass(frozen=True)
class Skipped:
    """One manifest row a verb could not use.

    Args:
        id: the row's id.
        path: its audio file.
        stage: where it failed (``decode``, ``features``, ``test``, ``predict``...).
        kind: a short category the counts use (``unreadable_audio``, ``unseen_label``).
        reason: the one-line message.
    """

    id: str
    path: str
    stage: str
    kind: str
    reason: str


def classify(message: str) -> str:
    """The ``kind`` of a one-line failure message (what the counts group by).

    Example:
        >>> classify("a.wav: no such file (working directory /x); check the path")
        'missing_file'
    """
    text = message.lower()
    for kind, words in (
        ("missing_file", ("no such file", "not found")),
        ("truncated_audio", ("truncated",)),
        ("empty_audio", ("empty file", "no audio samples")),
        ("too_short", ("too short", "shorter than")),
        ("too_long", ("longer than the limit",)),
        ("non_finite_audio", ("nan or inf",)),
        ("out_of_range_audio", ("beyond the full scale",)),
        ("unseen_label", ("never seen in training", "in no training speaker")),
    ):
        if any(w in text for w in words):
            return kind
    return "unreadable_audio"


def errors_path(out: str | os.PathLike) -> Path:
    """Where a verb that writes the file ``out`` puts its summary: ``<out stem>.errors.csv``.

    Example:
        >>> errors_path("runs/preds.csv").name
        'preds.errors.csv'
    """
    out = as_path(out)
    return out.with_name(out.stem + ".errors.csv")


def write_errors(path: str | os.PathLike, skipped: Iterable[Skipped]) -> str:
    """Write ``errors.csv`` (header only when nothing was skipped); returns the path."""
    from vocalis.io import write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in skipped:
        writer.writerow(asdict(row))
    write_text(path, buf.getvalue())
    return str(path)


def read_errors(path: str | os.PathLike) -> list[Skipped]:
    """Read an ``errors.csv`` written by :func:`write_errors`."""
    text = as_path(path).read_text(encoding="utf-8")
    return [Skipped(**{k: r[k] for k in COLUMNS}) for r in csv.DictReader(io.StringIO(text))]


def summary(skipped: Sequence[Skipped], n_rows: int) -> dict:
    """The counts a metrics JSON records: ``n_rows``, ``n_used``, ``n_skipped`` by kind."""
    ids = {s.id for s in skipped}
    return {
        "n_rows": int(n_rows),
        "n_used": int(n_rows) - len(ids),
        "n_skipped": dict(sorted(Counter(s.kind for s in skipped).items())),
    }


def parse_max_failures(text: str) -> float | int:
    """Parse ``--max-failures``: ``0.1`` -> a fraction, ``3`` -> a count.

    Raises:
        ValueError: neither (argparse turns it into a one-line usage error).
    """
    value = float(text) if any(c in text for c in ".eE") else int(text)
    if value < 0 or (isinstance(value, float) and value > 1):
        raise ValueError(f"{text}: expected a fraction in [0, 1] or a count >= 0")
    return value


def allowed_failures(max_failures: float | int, total: int) -> int:
    """How many of ``total`` rows may fail: a count (int) or a fraction (float in [0, 1]).

    Example:
        >>> allowed_failures(0.1, 50), allowed_failures(3, 50), allowed_failures(0.0, 50)
        (5, 3, 0)
    """
    if isinstance(max_failures, bool) or max_failures < 0:
        raise DataError(f"max_failures={max_failures!r}: expected a count >= 0 or a fraction")
    if isinstance(max_failures, float):
        if max_failures > 1:
            raise DataError(f"max_failures={max_failures}: a fraction must be in [0, 1]")
        return int(max_failures * total)
    return int(max_failures)


def check_failures(
    skipped: Sequence[Skipped], total: int, max_failures: float | int, what: str
) -> None:
    """Raise when more rows were skipped than ``max_failures`` allows.

    Raises:
        DataError: names the count, the limit, the first failure and the fix.
    """
    failed = len({s.id for s in skipped})
    allowed = allowed_failures(max_failures, total)
    if failed > allowed:
        first = skipped[0].reason
        raise DataError(
            f"{what}: {failed} of {total} rows failed, more than max_failures={max_failures} "
            f"allows ({allowed}); first: {first}; fix or remove them, or raise --max-failures"
        )


__all__ = [
    "COLUMNS",
    "Skipped",
    "allowed_failures",
    "check_failures",
    "classify",
    "errors_path",
    "parse_max_failures",
    "read_errors",
    "summary",
    "write_errors",
]
