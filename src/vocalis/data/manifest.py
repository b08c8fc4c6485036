"""The manifest: one row per recording, the hand-off from corpus preparers to the rest.

A :class:`Manifest` is a list of rows whose cells are strings. The columns with
a meaning are

============  ==============================================================
``path``      absolute local path or fsspec URL of the audio (required)
``label``     the target label (required by :func:`read_manifest`)
``id``        unique utterance id; defaults to the file stem
``speaker``   speaker id; needed for speaker-independent splits (LOSO)
``split``     ``train`` / ``dev`` / ``test`` where the corpus defines it
``gender``    ``male`` / ``female`` where known
============  ==============================================================

Any other column (extra labels, text codes, dimensional ratings) is kept as a
string. A missing cell is the empty string.

On disk a manifest is a CSV with a header. :func:`read_manifest` also accepts
the legacy column names listed in :data:`COLUMN_ALIASES` (``file_path`` for
``path``, ``emotion_code`` for ``label``, ...) and renames them on reading;
relative paths are resolved against the CSV's own folder (for a URL: against
the URL's parent), so a corpus folder with its manifest can be moved as a whole;
a relative local path that is not there but is under the working directory
resolves against the working directory instead (a CSV written next to a project,
as ``wav/a.wav`` run from the project root), and :func:`read_manifest` says once
which base it used.

Example:
    >>> m = Manifest([{"path": "/c/a.wav", "label": "sad", "speaker": "s1"},
    ...               {"path": "/c/b.wav", "label": "happy", "speaker": "s2"}])
    >>> len(m), m.columns
    (2, ('path', 'label', 'id', 'speaker'))
    >>> m.labels()
    ['sad', 'happy']
    >>> m.filter(lambda row: row["label"] == "happy").column("id")
    ['b']
"""

from __future__ import annotations

import csv
import io
import logging
import os
import posixpath
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, overload

from vocalis.errors import DataError
from vocalis.io import atomic_open, is_url, read_bytes

log = logging.getLogger(__name__)

#: Canonical columns, in the order they are written.
CORE_COLUMNS = ("path", "label", "id", "speaker", "split", "gender")

#: Legacy column names accepted by :func:`read_manifest` (used only when the
#: canonical column is absent): ``alias -> canonical``.
COLUMN_ALIASES: dict[str, str] = {
    "file_path": "path",
    "filepath": "path",
    "audio_path": "path",
    "wav_path": "path",
    "emotion_code": "label",
    "emotion": "label",
}

Row = dict[str, str]


def _stem(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    name = name.rsplit(os.sep, 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def _order(columns: Iterable[str]) -> tuple[str, ...]:
    cols = list(dict.fromkeys(columns))
    core = [c for c in CORE_COLUMNS if c in cols]
    return tuple(core + [c for c in cols if c not in CORE_COLUMNS])


class Manifest:
    """An ordered collection of recordings with string-valued columns.

    Args:
        rows: mappings with at least ``path``; values are converted to strings
            (``None`` becomes ``""``); ``id`` defaults to the stem of ``path``.
        columns: column order to keep (default: core columns first, then the
            others in order of first appearance).
        source: where the rows came from (a CSV path or a corpus name), used in
            error messages.

    Raises:
        DataError: a row without ``path``, or two rows with the same ``id``.
    """

    def __init__(
        self,
        rows: Iterable[Mapping[str, Any]],
        columns: Sequence[str] | None = None,
        source: str = "manifest",
    ) -> None:
        self.source = source
        #: Legacy column names renamed on reading (``{"file_path": "path"}``).
        self.renamed: dict[str, str] = {}
        #: ``(row, first row)`` numbers (1-based) of exact duplicate rows that were dropped.
        self.duplicates: list[tuple[int, int]] = []
        clean: list[Row] = []
        numbers: list[int] = []
        seen: dict[str, None] = {}
        given_ids = False
        for i, row in enumerate(rows):
            r = {str(k): "" if v is None else str(v) for k, v in row.items()}
            if not r.get("path"):
                raise DataError(
                    f"{source}: row {i + 1} has an empty 'path'; every row needs the audio's path"
                )
            given_ids = given_ids or bool(r.get("id"))
            if not r.get("id"):
                r["id"] = _stem(r["path"])
            seen.update(dict.fromkeys(r))
            clean.append(r)
            numbers.append(i + 1)
        cols = _order(list(columns or []) + list(seen) + ["path", "id"])
        rows_out: list[Row] = []
        first_of: dict[tuple[str, ...], int] = {}
        kept_numbers: list[int] = []
        for n, r in zip(numbers, clean, strict=True):
            full = {c: r.get(c, "") for c in cols}
            key = tuple(full.values())
            if key in first_of:  # the same recording listed twice: nothing to choose between
                self.duplicates.append((n, first_of[key]))
                continue
            first_of[key] = n
            rows_out.append(full)
            kept_numbers.append(n)
        if self.duplicates:
            shown = ", ".join(f"{a} (= {b})" for a, b in self.duplicates[:5])
            more = f" and {len(self.duplicates) - 5} more" if len(self.duplicates) > 5 else ""
            log.warning(
                "%s: dropped %d exact duplicate row(s): %s%s",
                source, len(self.duplicates), shown, more,
            )  # fmt: skip
        self._rows = rows_out
        self._columns = cols
        self._check_ids(kept_numbers, given_ids)

    def _check_ids(self, numbers: Sequence[int], given_ids: bool) -> None:
        first: dict[str, int] = {}
        for i, r in enumerate(self._rows):
            j = first.setdefault(r["id"], i)
            if j != i:
                hint = (
                    "give each row its own value in the 'id' column"
                    if given_ids
                    else "add an 'id' column with a unique value per row"
                )
                raise DataError(
                    f"{self.source}: rows {numbers[j]} and {numbers[i]} share the id "
                    f"'{r['id']}' ({self._rows[j]['path']}, {r['path']}); ids must be unique: "
                    f"{hint}, or remove one of the rows"
                )

    # -- container protocol -------------------------------------------------
    @property
    def columns(self) -> tuple[str, ...]:
        """Column names, core columns first."""
        return self._columns

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Row]:
        """Yield copies of the rows (editing them does not change the manifest)."""
        for r in self._rows:
            yield dict(r)

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> Manifest: ...

    def __getitem__(self, index):
        """A copy of row ``index``, or a manifest of the rows in a slice."""
        if isinstance(index, slice):
            return self._new(self._rows[index])
        return dict(self._rows[index])

    def __repr__(self) -> str:
        return f"Manifest({len(self)} rows, columns={list(self.columns)}, source={self.source!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Manifest):
            return NotImplemented
        return self.columns == other.columns and self._rows == other._rows

    # -- columns ------------------------------------------------------------
    def require(self, *columns: str) -> None:
        """Raise :class:`DataError` unless every column in ``columns`` exists."""
        missing = [c for c in columns if c not in self._columns]
        if missing:
            raise DataError(
                f"{self.source} lacks column(s) {', '.join(repr(c) for c in missing)}; "
                f"it has: {', '.join(self._columns)}"
            )

    def column(self, name: str) -> list[str]:
        """All values of column ``name`` in row order."""
        self.require(name)
        return [r[name] for r in self._rows]

    @property
    def paths(self) -> list[str]:
        """Audio paths (absolute or URLs) in row order."""
        return [r["path"] for r in self._rows]

    @property
    def ids(self) -> list[str]:
        """Utterance ids in row order."""
        return [r["id"] for r in self._rows]

    def labels(self, column: str = "label") -> list[str]:
        """Labels from ``column``.

        Raises:
            DataError: the column is missing or a row's label is empty.
        """
        values = self.column(column)
        for i, v in enumerate(values):
            if not v:
                raise DataError(
                    f"{self.source}: row {i + 1} ({self._rows[i]['path']}) has an empty "
                    f"'{column}'; fill it in or drop the row"
                )
        return values

    @property
    def speakers(self) -> list[str]:
        """Speaker ids in row order.

        Raises:
            DataError: there is no ``speaker`` column, or a row has none.
        """
        if "speaker" not in self._columns:
            raise DataError(
                f"{self.source} has no 'speaker' column; LOSO needs one: add it or use a "
                "recipe that sets it"
            )
        values = [r["speaker"] for r in self._rows]
        empty = [i for i, v in enumerate(values) if not v]
        if empty:
            raise DataError(
                f"{self.source}: {len(empty)} row(s) have an empty 'speaker' (first: row "
                f"{empty[0] + 1}, {self._rows[empty[0]]['path']}); fill them in or drop them"
            )
        return values

    def has(self, column: str) -> bool:
        """True when ``column`` exists and no row leaves it empty."""
        return column in self._columns and all(r[column] for r in self._rows)

    def counts(self, column: str = "label") -> dict[str, int]:
        """Value -> number of rows, most frequent first (ties by value)."""
        c = Counter(self.column(column))
        return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))

    # -- subsets and edits --------------------------------------------------
    def select(self, indices: Iterable[int]) -> Manifest:
        """The rows at ``indices`` (ints, numpy ints or a numpy array), in that order.

        Raises:
            DataError: an index is repeated (ids must stay unique).
        """
        picked = [int(i) for i in indices]
        if len(set(picked)) != len(picked):
            again = next(i for i in picked if picked.count(i) > 1)
            raise DataError(f"{self.source}: select() got row index {again} more than once")
        return self._new([self._rows[i] for i in picked])

    def filter(self, fn: Callable[[Row], bool]) -> Manifest:
        """The rows for which ``fn(row)`` is true."""
        return self._new([r for r in self._rows if fn(dict(r))])

    def with_column(self, name: str, values: Sequence[Any]) -> Manifest:
        """A copy with column ``name`` set (added or replaced) to ``values``."""
        if len(values) != len(self):
            raise DataError(
                f"{self.source}: column '{name}' got {len(values)} values for {len(self)} rows"
            )
        rows = [{**r, name: v} for r, v in zip(self._rows, values, strict=True)]
        return Manifest(rows, columns=[*self._columns, name], source=self.source)

    def _new(self, rows: list[Row]) -> Manifest:
        return Manifest([dict(r) for r in rows], columns=self._columns, source=self.source)

    @classmethod
    def concat(cls, manifests: Sequence[Manifest], source: str = "manifest") -> Manifest:
        """Rows of several manifests, one after the other (ids must stay unique)."""
        cols: list[str] = []
        rows: list[Row] = []
        for m in manifests:
            cols.extend(m.columns)
            rows.extend(m)
        return cls(rows, columns=cols, source=source)

    def summary(self, label_column: str = "label") -> str:
        """A few human-readable lines: rows, speakers, labels with counts."""
        lines = [f"{len(self)} rows"]
        if "speaker" in self._columns:
            spk = self.counts("speaker")
            lines.append(
                f"{len(spk)} speakers: " + ", ".join(f"{k} ({v})" for k, v in sorted(spk.items()))
            )
        else:
            lines.append("no speaker column (speaker-independent splits are not possible)")
        if label_column in self._columns:
            lab = self.counts(label_column)
            lines.append(f"{len(lab)} labels: " + ", ".join(f"{k} ({v})" for k, v in lab.items()))
        return "\n".join(lines)

    # -- storage ------------------------------------------------------------
    def write(self, path: str | os.PathLike) -> None:
        """Write the manifest as CSV, atomically.

        Audio paths inside the CSV's folder are written relative to it (so the
        folder can be moved as a whole); others stay absolute. :func:`read_manifest`
        reads the file back to an equal manifest.
        """
        out = str(path)
        base = _parent(out)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self._columns)
        for r in self._rows:
            row = dict(r, path=_relative(r["path"], base))
            writer.writerow([row[c] for c in self._columns])
        with atomic_open(out, "w") as fh:
            fh.write(buf.getvalue())

    def to_pandas(self):  # pragma: no cover - thin convenience
        """A :class:`pandas.DataFrame` copy (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self._rows, columns=list(self._columns))


def _parent(path: str) -> str:
    if is_url(path):
        return path.rstrip("/").rsplit("/", 1)[0]
    return str(Path(path).expanduser().resolve().parent)


def _relative(audio: str, base: str) -> str:
    """``audio`` relative to ``base`` when it lies inside it, else unchanged."""
    if is_url(audio) or is_url(base):
        prefix = base.rstrip("/") + "/"
        return audio[len(prefix) :] if is_url(audio) and audio.startswith(prefix) else audio
    try:
        return Path(audio).relative_to(base).as_posix()
    except ValueError:
        return audio


def _resolve_local(cell: str, base: str, cwd: str, used: Counter) -> str:
    """``cell`` against the CSV folder ``base``, else the working directory when only it has it."""
    text = cell.strip()
    if is_url(base) or is_url(text) or text.startswith("file://"):
        return _resolve(cell, base)
    p = Path(text).expanduser()
    if p.is_absolute():
        return str(p)
    beside = Path(os.path.normpath(Path(base) / p))
    if not beside.exists():
        here = Path(os.path.normpath(Path(cwd) / p))
        if here.exists():
            used["cwd"] += 1
            return str(here)
    used["csv"] += 1
    return str(beside)


def _resolve(cell: str, base: str) -> str:
    cell = cell.strip()
    if is_url(cell):
        return cell
    if cell.startswith("file://"):
        cell = cell[len("file://") :]
    if is_url(base):
        if PurePosixPath(cell).is_absolute():
            return cell
        scheme, rest = base.split("://", 1)
        return f"{scheme}://{posixpath.normpath(posixpath.join(rest, cell))}"
    p = Path(cell).expanduser()
    return str(p if p.is_absolute() else Path(os.path.normpath(Path(base) / p)))


def read_manifest(
    path: str | os.PathLike, *, required: Sequence[str] = ("path", "label")
) -> Manifest:
    r"""Read a manifest CSV (local path or fsspec URL).

    The CSV needs a header with at least ``path`` and ``label`` (or their
    aliases in :data:`COLUMN_ALIASES`, e.g. ``file_path,emotion_code``). Relative
    audio paths are resolved against the CSV's folder; all other columns are
    kept as strings. A relative path found only under the working directory
    resolves there (one warning line says how many did).

    Args:
        path: the CSV file.
        required: columns that must exist (after renaming aliases); ``path`` is
            always required. Pass ``required=("path",)`` for label-less lists,
            e.g. files to predict.

    Returns:
        The manifest, with ``source`` set to ``path`` and ``renamed`` recording
        the legacy columns it renamed (``{"file_path": "path", ...}``); writing
        it back uses the canonical names.

    Raises:
        DataError: the file is missing or empty, lacks required columns (the
            message lists the columns found), has an empty path cell (the
            message names the row) or duplicate ids.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "m.csv").write_text("file_path,emotion_code\nwav/a.wav,W\n")
        >>> m = read_manifest(d / "m.csv")
        >>> m.columns, m.paths == [str(d / "wav" / "a.wav")]
        (('path', 'label', 'id'), True)
    """
    name = str(path)
    try:
        raw = read_bytes(path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise DataError(
            f"{name}: manifest not found; check the path or run `vocalis prepare`"
        ) from None
    except OSError as err:
        raise DataError(f"{name}: cannot read the manifest ({err})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{name}: manifest is not UTF-8 text; save it as UTF-8 CSV") from None
    if not text.strip():
        raise DataError(f"{name}: manifest is empty; expected a CSV header with path,label")
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader)]
    renamed = list(header)
    for i, h in enumerate(header):
        canon = COLUMN_ALIASES.get(h)
        if canon and canon not in renamed:
            renamed[i] = canon
    missing = [c for c in dict.fromkeys(["path", *required]) if c not in renamed]
    if missing:
        aliases = ", ".join(f"{a}->{c}" for a, c in COLUMN_ALIASES.items())
        raise DataError(
            f"{name}: missing column(s) {', '.join(missing)}; found: {', '.join(header)}; "
            f"expected at least {','.join(dict.fromkeys(['path', *required]))} "
            f"(accepted aliases: {aliases})"
        )
    if len(set(renamed)) != len(renamed):
        dup = [c for c, n in Counter(renamed).items() if n > 1]
        raise DataError(f"{name}: duplicate column(s) {', '.join(dup)} in the header")
    base = _parent(name)
    cwd, used = os.getcwd(), Counter()
    rows: list[Row] = []
    for line_no, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        where = f"row {len(rows) + 1} (line {line_no})"
        if len(cells) > len(renamed):
            raise DataError(
                f"{name}: {where} has {len(cells)} cells but the header has "
                f"{len(renamed)}; quote cells that contain commas"
            )
        row = dict(zip(renamed, [c.strip() for c in cells], strict=False))
        if not row.get("path"):
            raise DataError(f"{name}: {where} has an empty path; fill it in or delete it")
        row["path"] = _resolve_local(row["path"], base, cwd, used)
        rows.append(row)
    if not rows:
        raise DataError(f"{name}: manifest has a header but no rows")
    if used["cwd"]:
        log.warning(
            "%s: %d relative audio path(s) resolved against the working directory %s (they are "
            "not in the CSV's folder %s)%s",
            name,
            used["cwd"],
            cwd,
            base,
            f"; {used['csv']} against the CSV's folder" if used["csv"] else "",
        )
    elif used["csv"]:
        log.info("%s: relative audio paths resolved against the CSV's folder %s", name, base)
    manifest = Manifest(rows, columns=renamed, source=name)
    manifest.renamed = {h: r for h, r in zip(header, renamed, strict=True) if h != r}
    return manifest
