r"""Split folders: fixed train / validation / test parts given as lists of utterance ids.

A split folder (local or an fsspec URL such as ``gs://bucket/splits/``) holds::

    train.csv   the ids to train on (required)
    test.csv    the ids to test the best weights on (required)
    val.csv     the ids to validate on (optional: without it, validation rows are
                held out of train.csv by ``dataset.val_protocol``)

Each file is a CSV of ids: a header naming the id column (``id``, ``uid``,
``utt_id``, ``utterance_id``, ``file_id``, ``file`` or ``name``: the first such
column is used) or one column without a header. An id matches the manifest's
``id`` column (by default the file stem); ids that match no ``id`` are tried
against the audio file names (``03a01Wa.wav``). A part listing an id the manifest
lacks, or an id in two parts, is refused in one line: test rows are never trained
on.

Example:
    >>> import tempfile, pathlib
    >>> from vocalis.data import Manifest
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "train.csv").write_text("uid\na\nb\n")
    >>> _ = (d / "test.csv").write_text("c\n")
    >>> m = Manifest([{"path": f"/x/{k}.wav", "label": "l"} for k in "abc"])
    >>> parts = read_split_dir(d).indices(m)
    >>> parts.train.tolist(), parts.val, parts.test.tolist()
    ([0, 1], None, [2])
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
from dataclasses import dataclass

import numpy as np

from vocalis.errors import DataError
from vocalis.io import as_path

#: Header names read as the id column of a split file (the first one present wins).
ID_COLUMNS = ("id", "uid", "utt_id", "utterance_id", "file_id", "file", "name")

#: The files of a split folder: part -> file name; ``val`` is optional.
SPLIT_FILES = {"train": "train.csv", "val": "val.csv", "test": "test.csv"}


def read_ids(path: str | os.PathLike) -> list[str]:
    """The ids of one split file (see the module docstring for its format).

    Raises:
        DataError: missing, empty, or several columns none of which is an id column.
    """
    file = as_path(path)
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: split file not found") from None
    rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO(text)) if any(r)]
    if not rows:
        raise DataError(f"{path}: split file is empty; expected one utterance id per line")
    header = [h.lower() for h in rows[0]]
    column = next((header.index(c) for c in ID_COLUMNS if c in header), None)
    if column is not None:
        rows = rows[1:]
    elif len(header) == 1:
        column = 0
    else:
        raise DataError(
            f"{path}: {len(header)} columns ({', '.join(rows[0])}) and none is an id column; "
            f"name it one of {', '.join(ID_COLUMNS)} or keep one column of ids"
        )
    ids = [r[column] for r in rows if len(r) > column and r[column]]
    if not ids:
        raise DataError(f"{path}: split file lists no id")
    return ids


@dataclass(frozen=True)
class ListedParts:
    """Manifest row indices of each part (``val`` is ``None`` when the folder has none)."""

    train: np.ndarray
    val: np.ndarray | None
    test: np.ndarray


@dataclass(frozen=True)
class SplitDir:
    """The ids of a split folder.

    Attributes:
        source: the folder (or URL) read.
        train: ids to train on.
        val: ids to validate on, or ``None``.
        test: ids to test on.
    """

    source: str
    train: list[str]
    val: list[str] | None
    test: list[str]

    def indices(self, manifest) -> ListedParts:
        """The rows of ``manifest`` each part lists.

        Raises:
            DataError: an id the manifest lacks (named, with how many more), an id
                listed twice in one part, or an id in two parts.
        """
        by_id = {i: n for n, i in enumerate(manifest.column("id"))}
        by_name: dict[str, int] = {}
        for n, p in enumerate(manifest.paths):
            by_name.setdefault(posixpath.basename(p.replace("\\", "/")), n)
        parts: dict[str, np.ndarray] = {}
        owner: dict[int, str] = {}
        for part in ("train", "val", "test"):
            ids = getattr(self, part)
            if ids is None:
                continue
            where = f"{self.source}/{SPLIT_FILES[part]}"
            rows = [by_id.get(i, by_name.get(i)) for i in ids]
            absent = [i for i, r in zip(ids, rows, strict=True) if r is None]
            if absent:
                more = f" and {len(absent) - 1} more" if len(absent) > 1 else ""
                raise DataError(
                    f"{where}: id '{absent[0]}'{more} not in {manifest.source} (matched against "
                    "its id column and file names); fix the split file or pass the manifest it "
                    "was made for"
                )
            for i, r in zip(ids, rows, strict=True):
                if r in owner:
                    other = owner[r]
                    again = "twice" if other == part else f"in {SPLIT_FILES[other]} too"
                    raise DataError(
                        f"{where}: id '{i}' is listed {again}; every row belongs to one part "
                        "(test rows are never trained on)"
                    )
                owner[r] = part
            parts[part] = np.asarray(rows, dtype=np.int64)
        return ListedParts(parts["train"], parts.get("val"), parts["test"])


def read_split_dir(folder: str | os.PathLike) -> SplitDir:
    """Read ``train.csv``, ``test.csv`` and (when present) ``val.csv`` of ``folder``.

    Args:
        folder: a local folder or an fsspec URL.

    Raises:
        DataError: the folder lacks ``train.csv`` or ``test.csv``, or a file is malformed.
    """
    root = as_path(folder)
    text = str(folder).rstrip("/")
    lacking = [f for p, f in SPLIT_FILES.items() if p != "val" and not (root / f).is_file()]
    if lacking:
        raise DataError(
            f"{text}: split folder without {' and '.join(lacking)}; it needs train.csv and "
            "test.csv (and optionally val.csv) of utterance ids"
        )
    val = root / SPLIT_FILES["val"]
    return SplitDir(
        source=text,
        train=read_ids(root / SPLIT_FILES["train"]),
        val=read_ids(val) if val.is_file() else None,
        test=read_ids(root / SPLIT_FILES["test"]),
    )


def split_manifest(manifest, folder: str | os.PathLike) -> dict[str, object]:
    """The rows of each part of the split folder ``folder``: ``{"train": Manifest, ...}``.

    ``val`` is present only when the folder has a ``val.csv``. Each part's
    ``source`` names the manifest and the part (``m.csv [test.csv of splits/]``).

    Raises:
        DataError: as :func:`read_split_dir` and :meth:`SplitDir.indices`.
    """
    split = read_split_dir(folder)
    parts = split.indices(manifest)
    out = {}
    for part in ("train", "val", "test"):
        idx = getattr(parts, part)
        if idx is not None:
            sub = manifest.select(idx.tolist())
            sub.source = f"{manifest.source} [{SPLIT_FILES[part]} of {split.source}]"
            out[part] = sub
    return out


__all__ = [
    "ID_COLUMNS",
    "SPLIT_FILES",
    "ListedParts",
    "SplitDir",
    "read_ids",
    "read_split_dir",
    "split_manifest",
]
