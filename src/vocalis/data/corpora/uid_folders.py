"""Corpora stored as one folder per recording plus CSV files listing UIDs.

Layout::

    root/
      train.csv            uid,emotion,arousal,...   (one CSV per split)
      test.csv
      <uid>/waveform.wav   (any extension: waveform.flac, waveform.opus, ...)
      <uid>/metadata.json  {"encoding": "pcm_s16le", "sample_rate_hz": 16000, ...}

Every column of the split CSVs is kept. The ``split`` column comes from the
CSV when it has one, otherwise from the CSV's file name (``train.csv`` ->
``train``). ``label`` is the CSV's ``label`` column, or the column chosen with
``label_column`` (default: the first column that is not the UID, split or
speaker). A ``speaker``/``speaker_id`` column becomes ``speaker``. The scalar
fields of ``metadata.json`` (at least ``encoding`` and ``sample_rate_hz``)
become columns too.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from vocalis.data.corpora import CORPORA
from vocalis.data.corpora.base import check_root, log
from vocalis.data.manifest import Manifest
from vocalis.errors import DataError

UID_COLUMNS = ("uid", "id", "utt_id", "utterance_id", "recording_id", "uuid")
SPEAKER_COLUMNS = ("speaker", "speaker_id", "spk", "spk_id")
REQUIRED_METADATA = ("encoding", "sample_rate_hz")


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in reader]
        return [c.strip() for c in reader.fieldnames or []], rows


def _metadata(folder: Path) -> dict[str, str]:
    meta_path = folder / "metadata.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{meta_path}: missing; every recording folder needs metadata.json"
        ) from None
    except json.JSONDecodeError as err:
        raise DataError(f"{meta_path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{meta_path}: expected a JSON object, got {type(meta).__name__}")
    absent = [k for k in REQUIRED_METADATA if k not in meta]
    if absent:
        raise DataError(
            f"{meta_path}: missing key(s) {', '.join(absent)}; found: {', '.join(meta) or 'none'}"
        )
    return {k: str(v) for k, v in meta.items() if isinstance(v, (str, int, float, bool))}


@CORPORA.register("uid-folders")
def prepare_uid_folders(
    root: str | os.PathLike,
    *,
    splits: str | Sequence[str] | None = None,
    uid_column: str | None = None,
    label_column: str | None = None,
    missing: Literal["error", "skip"] = "error",
) -> Manifest:
    """Manifest of a UID-folder corpus.

    Args:
        root: folder holding the ``<uid>/`` folders (and, by default, the CSVs).
        splits: split CSV path(s), relative to ``root`` or absolute; default all
            ``*.csv`` directly in ``root``.
        uid_column: the CSV column with the UIDs (default: the first of
            ``uid, id, utt_id, utterance_id, recording_id, uuid`` present).
        label_column: the column copied to ``label`` when there is no ``label``.
        missing: a UID without folder or waveform raises (``error``) or is
            skipped with a warning (``skip``).

    Raises:
        DataError: no CSV, a CSV without UID column or rows, a UID without
            ``waveform.*`` or ``metadata.json`` (with ``missing="error"``).
    """
    if missing not in ("error", "skip"):
        raise DataError(f"uid-folders: missing={missing!r}; expected error or skip")
    base = check_root(root, "uid-folders", "<uid>/waveform.EXT, <uid>/metadata.json and split CSVs")
    if splits is None:
        csvs = sorted(p for p in base.glob("*.csv") if not p.name.startswith("."))
    else:
        names = [splits] if isinstance(splits, str) else list(splits)
        csvs = [Path(n) if Path(n).is_absolute() else base / n for n in names]
        for c in csvs:
            if not c.is_file():
                raise DataError(f"uid-folders: split CSV {c} not found")
    if not csvs:
        raise DataError(
            f"uid-folders root {root}: no split CSV (e.g. train.csv with a uid column); "
            "add one or pass splits=[...]"
        )
    rows, skipped = [], []
    for csv_path in csvs:
        header, records = _read_csv(csv_path)
        uid_col = uid_column or next((c for c in UID_COLUMNS if c in header), None)
        if uid_col is None or uid_col not in header:
            raise DataError(
                f"{csv_path}: no UID column ({uid_column or ', '.join(UID_COLUMNS)}); found: "
                f"{', '.join(header)}; pass uid_column=..."
            )
        if not records:
            raise DataError(f"{csv_path}: split CSV has a header but no rows")
        spk_col = next((c for c in SPEAKER_COLUMNS if c in header), None)
        if label_column is not None and label_column not in header:
            raise DataError(
                f"{csv_path}: label_column '{label_column}' not found; columns: {', '.join(header)}"
            )
        candidates = [c for c in header if c not in (uid_col, "split", spk_col, "path")]
        lab_col = label_column or ("label" if "label" in header else None)
        lab_col = lab_col or (candidates[0] if candidates else None)
        for rec in records:
            uid = rec[uid_col]
            folder = base / uid
            waves = sorted(folder.glob("waveform.*")) if folder.is_dir() else []
            if len(waves) != 1 or not (folder / "metadata.json").is_file():
                why = (
                    "no folder"
                    if not folder.is_dir()
                    else f"{len(waves)} waveform.* files"
                    if len(waves) != 1
                    else "no metadata.json"
                )
                if missing == "error":
                    raise DataError(
                        f"{csv_path}: UID '{uid}' has {why} in {folder}; expected "
                        "waveform.EXT and metadata.json (or pass missing='skip')"
                    )
                skipped.append(uid)
                continue
            row = {k: v for k, v in _metadata(folder).items() if k not in rec}
            row.update({k: v for k, v in rec.items() if k not in ("path", uid_col)})
            if spk_col and spk_col != "speaker":
                row["speaker"] = rec[spk_col]
            row["path"] = str(waves[0])
            row["id"] = uid
            row["split"] = rec.get("split") or csv_path.stem
            row["label"] = rec.get(lab_col, "") if lab_col else ""
            rows.append(row)
    if skipped:
        log.warning(
            "uid-folders: skipped %d UID(s) without audio (first: %s)", len(skipped), skipped[0]
        )
    if not rows:
        raise DataError(f"uid-folders root {root}: no usable recordings")
    return Manifest(rows, source=f"uid-folders:{base}")
