"""The run folder: the record of one training run.

::

    runs/x/
      config.yaml          resolved experiment config
      env.json             python/torch/vocalis versions, git revision, device, host, world size
      log.txt              everything the run printed
      history.csv          one row per epoch
      label_map.json       the label encoder
      metrics.json         one schema for every run (see :class:`RunMetrics`)
      predictions.csv      test predictions (when the run has test rows)
      model.pt             the slim deployable checkpoint (best weights, no training state)
      checkpoints/best.pt  best epoch by ``train.monitor``
      checkpoints/last.pt  latest state, for resuming

Every file is written atomically; only rank 0 writes. The folder may be a local
path or an fsspec URL (``gs://bucket/runs/x``, ``s3://...``; see :mod:`vocalis.io`):
on a store without appends ``log.txt`` is rewritten whole, at most every
:data:`LOG_FLUSH_S` seconds and whenever the history, metrics or a checkpoint is
written, so a killed run loses at most those last seconds of its log.

``metrics.json`` has one schema for every kind of run (a neural training run, an
ensemble fit, a cross-validation fold, the evaluation of a checkpoint on a
manifest), written only by :meth:`RunFolder.write_metrics` and read by
:meth:`RunFolder.read_metrics` (:mod:`vocalis.evaluation.records` reads it too)::

    {"schema": 1, "kind": "train", "model": "neural", "best_epoch": 7, "epochs_run": 10,
     "val": {"uar": 0.61, ...} | null, "test": {"uar": 0.58, ...} | null,
     "n_rows": {"train": 300, "val": 60, "test": 75}, "classes": ["anger", ...],
     "seconds": 41.2, "fold": "speaker_03" | null, "details": {...}}

Example:
    >>> import tempfile
    >>> run = RunFolder(tempfile.mkdtemp())
    >>> m = run.write_metrics(kind="eval", model="neural", test={"uar": 0.5},
    ...                       n_rows={"test": 4}, classes=["a", "b"])
    >>> run.read_metrics().test, run.read_metrics().n_rows
    ({'uar': 0.5}, {'train': 0, 'val': 0, 'test': 4})
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vocalis.errors import DataError
from vocalis.io import URLPath, as_path, remove_stale_parts, write_json, write_text

#: Columns of ``history.csv``. ``train_acc`` is the "clean" training accuracy: the
#: predictions on the (possibly mixed) batch against the un-mixed targets;
#: ``train_mixup_acc`` is mixup's ``lam``-weighted accuracy against both targets
#: (empty without mixup); ``train_loss`` is the loss that was optimised.
HISTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "train_mixup_acc",
    "val_loss",
    "val_acc",
    "val_uar",
    "val_macro_f1",
    "lr",
    "seconds",
)

#: Files a finished run folder always has.
RUN_FILES = (
    "config.yaml",
    "env.json",
    "log.txt",
    "history.csv",
    "label_map.json",
    "metrics.json",
    "model.pt",
    "checkpoints/best.pt",
    "checkpoints/last.pt",
    "model_summary.txt",
)

#: Files of the end-of-training analyses, when the run has them (removed by ``--overwrite``).
ANALYSIS_FILES = (
    "training_curves.png",
    "confusion_val.png",
    "gating.csv",
    "gating_summary.csv",
    "gating.png",
)


#: Seconds between two rewrites of ``log.txt`` on a store without appends.
LOG_FLUSH_S = 5.0

#: Version of the ``metrics.json`` schema written by :meth:`RunFolder.write_metrics`.
METRICS_SCHEMA = 1

#: What a run folder records: ``train`` (fit a model on rows; a cross-validation
#: fold is a ``train`` run with test rows and a ``fold`` name) or ``eval`` (score a
#: trained model on a manifest).
METRICS_KINDS = ("train", "eval")

#: The kinds of model a run folder holds (the checkpoint's ``model.kind``).
MODEL_KINDS = ("neural", "ensemble")

#: The keys of ``RunMetrics.n_rows``.
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class RunMetrics:
    """The content of ``metrics.json`` (schema :data:`METRICS_SCHEMA`), for every kind of run.

    Args:
        kind: ``train`` or ``eval`` (see :data:`METRICS_KINDS`).
        model: ``neural`` or ``ensemble``.
        val: metrics of the best epoch on the validation rows
            (:func:`vocalis.metrics.classification.classification_metrics` plus ``loss``),
            or ``None`` (no validation rows, e.g. an ensemble fit or an evaluation).
        test: metrics on the test rows (the same dict), or ``None``.
        best_epoch: 1-based epoch whose weights were kept (neural), else ``None``.
        epochs_run: epochs trained so far (neural), else ``None``.
        n_rows: rows per split, ``{"train": n, "val": n, "test": n}`` (missing ones are 0).
        classes: class names in id order.
        seconds: wall time of the run, or ``None``.
        fold: the cross-validation fold this run is (``speaker_03``), or ``None``.
        details: what only one kind of run has (early stopping of a neural run, the
            chosen ``C`` and fusion weights of an ensemble, the checkpoint and manifest
            of an evaluation); plain JSON data.
        heads: per-head sections of a multi-head run, ``{head: {"kind", "columns",
            "classes", "loss", "weight", "val", "test"}}`` (metrics of its kind, see
            :mod:`vocalis.metrics.heads`); ``None`` (and absent from the file) for a
            single class head, whose metrics are ``val`` / ``test``. With several heads
            ``val`` / ``test`` hold the first class head's metrics.
    """

    kind: Literal["train", "eval"]
    model: Literal["neural", "ensemble"]
    val: dict[str, Any] | None = None
    test: dict[str, Any] | None = None
    best_epoch: int | None = None
    epochs_run: int | None = None
    n_rows: dict[str, int] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    seconds: float | None = None
    fold: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    heads: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in METRICS_KINDS:
            raise ValueError(f"kind: got {self.kind!r}, expected one of {METRICS_KINDS}")
        if self.model not in MODEL_KINDS:
            raise ValueError(f"model: got {self.model!r}, expected one of {MODEL_KINDS}")
        unknown = set(self.n_rows) - set(SPLITS)
        if unknown:
            raise ValueError(f"n_rows: unknown split(s) {sorted(unknown)}, expected {SPLITS}")
        object.__setattr__(
            self, "n_rows", {k: int(self.n_rows.get(k, 0)) for k in SPLITS}
        )  # always all three, in order

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``metrics.json`` (``schema`` first)."""
        return {
            "schema": METRICS_SCHEMA,
            "kind": self.kind,
            "model": self.model,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "val": _plain(self.val),
            "test": _plain(self.test),
            "n_rows": dict(self.n_rows),
            "classes": [str(c) for c in self.classes],
            "seconds": self.seconds,
            "fold": self.fold,
            "details": _plain(self.details),
            **({"heads": _plain(self.heads)} if self.heads is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "metrics.json") -> RunMetrics:
        """Read the JSON object of a ``metrics.json``.

        Raises:
            DataError: not this schema (e.g. written by an older Vocalis), or malformed.
        """
        if not isinstance(data, dict) or data.get("schema") != METRICS_SCHEMA:
            got = data.get("schema") if isinstance(data, dict) else None
            raise DataError(
                f"{where}: metrics schema {got!r}, this Vocalis reads schema {METRICS_SCHEMA} "
                "(written by another Vocalis version); rerun the training or evaluation"
            )
        body = {k: v for k, v in data.items() if k != "schema"}
        names = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(body) - names)
        if unknown:
            raise DataError(f"{where}: unknown key '{unknown[0]}' in a schema-1 metrics file")
        try:
            return cls(**body)
        except (TypeError, ValueError) as err:
            raise DataError(f"{where}: {err}") from None


def _plain(value: Any) -> Any:
    """JSON-safe copy (numpy scalars and arrays become Python values, tuples lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _plain(value.tolist())  # numpy arrays and scalars, 0-d tensors
    return value


def read_metrics(path: str | os.PathLike) -> RunMetrics | None:
    """The :class:`RunMetrics` of a folder's ``metrics.json``, or ``None`` when it has none.

    Args:
        path: a run, fold or evaluation folder.

    Raises:
        DataError: a ``metrics.json`` that is not valid JSON or not this schema.
    """
    file = as_path(path) / "metrics.json"
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{file}: not valid JSON ({err.msg} at line {err.lineno})") from None
    return RunMetrics.from_dict(data, where=str(file))


def git_revision() -> str | None:
    """The source tree's git commit (with ``-dirty``), or ``None`` outside a checkout."""
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return None
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")


def environment(device: str, world_size: int) -> dict[str, Any]:
    """What ``env.json`` records."""
    import numpy
    import torch

    from vocalis import __version__

    return {
        "vocalis": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.version.cuda,
        "device": device,
        "device_name": torch.cuda.get_device_name(0)
        if device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "world_size": world_size,
        "git_revision": git_revision(),
        "command": " ".join(sys.argv),
    }


class RunFolder:
    """Writer of one run folder (inactive on ranks other than 0).

    Args:
        path: the folder, or ``None`` for a run that writes nothing.
        active: False on non-zero ranks.
    """

    def __init__(self, path: str | os.PathLike | None, active: bool = True) -> None:
        self.path = as_path(path) if path is not None else None
        self.main = active
        self.active = active and self.path is not None
        self._log_lines: list[str] = []
        self.opened = False
        self._remote_log: list[str] | None = None  # log.txt of a URL folder, rewritten whole
        self._flushed = 0.0

    def file(self, name: str) -> Path | URLPath:
        """The path of ``name`` inside the folder (``ValueError`` without a folder)."""
        if self.path is None:
            raise ValueError("this run has no folder")
        return self.path / name

    @property
    def last(self) -> Path | URLPath | None:
        """``checkpoints/last.pt`` (the resumable latest state), or ``None`` without a folder."""
        return None if self.path is None else self.path / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path | URLPath | None:
        """``checkpoints/best.pt`` (resumable best epoch), or ``None`` without a folder."""
        return None if self.path is None else self.path / "checkpoints" / "best.pt"

    @property
    def model(self) -> Path | URLPath | None:
        """``model.pt`` (the slim deployable checkpoint), or ``None`` without a folder."""
        return None if self.path is None else self.path / "model.pt"

    def exists(self) -> bool:
        """True when the folder already holds a run (a config or a checkpoint)."""
        return self.path is not None and (
            (self.path / "config.yaml").is_file()
            or (self.path / "checkpoints" / "last.pt").is_file()
        )

    def clear(self) -> None:
        """Remove the files of a previous run (``--overwrite``); other files stay."""
        if not self.active:
            return
        for name in (*RUN_FILES, *ANALYSIS_FILES, "predictions.csv"):
            p = self.path / name
            if p.is_file():
                p.unlink()

    def log(self, message: str, echo: bool = True) -> None:
        """Print ``message`` (above any progress bar) and append it to ``log.txt``.

        ``echo=False`` only records it (for lines another component already printed).
        """
        if not self.main:
            return
        if echo:
            from tqdm.auto import tqdm

            tqdm.write(message, file=sys.stdout)
        if not self.active:
            return
        if not self.opened:  # nothing is written before the run is known to start
            self._log_lines.append(message)
            return
        self._append_log([message])

    def _append_log(self, lines: list[str]) -> None:
        if self._remote_log is None:
            with open(self.file("log.txt"), "a", encoding="utf-8") as fh:
                fh.writelines(line + "\n" for line in lines)
            return
        self._remote_log.extend(lines)
        if time.monotonic() - self._flushed >= LOG_FLUSH_S:
            self.flush()

    def flush(self) -> None:
        """Write the log lines not yet on the store (URL folders; local logs are appended)."""
        if self.active and self.opened and self._remote_log is not None:
            write_text(self.file("log.txt"), "".join(line + "\n" for line in self._remote_log))
            self._flushed = time.monotonic()

    def open(self, env: dict[str, Any], resumed: bool) -> None:
        """Create the folder, record the environment and flush the buffered log lines.

        A resumed run keeps the first run's ``env.json`` and appends this process's
        environment to its ``resumes`` list.
        """
        if not self.active:
            return
        self.path.mkdir(parents=True, exist_ok=True)  # checkpoints/ comes with the first save
        for part in remove_stale_parts(self.path):  # left by a run killed mid-write
            self.log(f"removed {part.name}, an unfinished write of a killed run", echo=False)
        if isinstance(self.path, URLPath):  # no appends on object stores: keep the log here
            log = self.file("log.txt")
            old = log.read_text().splitlines() if resumed and log.is_file() else []
            self._remote_log = old
        env_path = self.file("env.json")
        if resumed and env_path.is_file():
            try:
                first = json.loads(env_path.read_text())
            except json.JSONDecodeError:
                first = {}
            first.setdefault("resumes", []).append(env)
            env = first
        write_json(env_path, env)
        self.opened = True
        pending, self._log_lines = self._log_lines, []
        self._append_log(pending)
        self.flush()

    def write_text(self, name: str, text: str) -> None:
        """Write ``text`` to ``name`` atomically (active folders only)."""
        if self.active:
            write_text(self.file(name), text)

    def write_json(self, name: str, data: Any) -> None:
        """Write ``data`` as JSON to ``name`` atomically (active folders only)."""
        if self.active:
            write_json(self.file(name), data)

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite ``history.csv`` from all epochs so far.

        The :data:`HISTORY_COLUMNS` come first; a multi-head run adds its
        ``val_<head>_<metric>`` columns (and ``val_ccc``) after them.
        """
        if not self.active:
            return
        buf = io.StringIO()
        extra = [k for k in (rows[0] if rows else {}) if k not in HISTORY_COLUMNS]
        writer = csv.DictWriter(
            buf,
            fieldnames=list(HISTORY_COLUMNS) + extra,
            extrasaction="ignore",
            lineterminator="\n",
        )
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
        write_text(self.file("history.csv"), buf.getvalue())
        self.flush()

    def read_config(self) -> dict[str, Any] | None:
        """The ``config.yaml`` of an existing run, or ``None``."""
        if self.path is None or not (self.path / "config.yaml").is_file():
            return None
        import yaml

        return yaml.safe_load((self.path / "config.yaml").read_text())

    def write_metrics(
        self,
        *,
        kind: Literal["train", "eval"],
        model: Literal["neural", "ensemble"],
        val: dict[str, Any] | None = None,
        test: dict[str, Any] | None = None,
        best_epoch: int | None = None,
        epochs_run: int | None = None,
        n_rows: dict[str, int] | None = None,
        classes: list[str] | tuple[str, ...] = (),
        seconds: float | None = None,
        fold: str | None = None,
        details: dict[str, Any] | None = None,
        heads: dict[str, Any] | None = None,
    ) -> RunMetrics:
        """Write ``metrics.json``: the one writer of the one schema (see :class:`RunMetrics`).

        Every kind of run calls this: the trainer (after each epoch and at the end),
        an ensemble fit, a cross-validation fold, the evaluation of a checkpoint.
        Nothing is written on an inactive folder (rank > 0, or no path); the record
        is returned either way.

        Args:
            kind: ``train`` or ``eval``.
            model: ``neural`` or ``ensemble``.
            val: validation metrics of the kept model, or ``None``.
            test: test metrics, or ``None``.
            best_epoch: 1-based epoch of the kept weights (neural).
            epochs_run: epochs trained (neural).
            n_rows: rows per split (``train``, ``val``, ``test``).
            classes: class names in id order.
            seconds: wall time.
            fold: cross-validation fold name.
            details: kind-specific plain data.
            heads: per-head sections of a multi-head run (see :class:`RunMetrics`).

        Returns:
            The :class:`RunMetrics` written.

        Raises:
            ValueError: an unknown ``kind``, ``model`` or split name (a programming error).
        """
        record = RunMetrics(
            kind=kind,
            model=model,
            val=val,
            test=test,
            best_epoch=best_epoch,
            epochs_run=epochs_run,
            n_rows=dict(n_rows or {}),
            classes=list(classes),
            seconds=seconds,
            fold=fold,
            details=dict(details or {}),
            heads=heads,
        )
        if self.active:
            write_json(self.file("metrics.json"), record.to_dict())
            self.flush()
        return record

    def read_metrics(self) -> RunMetrics | None:
        """This folder's ``metrics.json`` (see :func:`read_metrics`), or ``None``."""
        return None if self.path is None else read_metrics(self.path)
