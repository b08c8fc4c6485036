"""The run folder: the record of one training run.

::

    runs/x/
      config.yaml          resolved experiment config
      env.json             python/torch/vocalis versions, git revision, device, host, world size
      log.txt              everything the run printed
      history.csv          one row per epoch
      label_map.json       the label encoder
      metrics.json         best epoch, best validation metrics, test metrics
      predictions.csv      test predictions (when the run has test rows)
      checkpoints/best.pt  best epoch by ``train.monitor``
      checkpoints/last.pt  latest state, for resuming

Every file is written atomically; only rank 0 writes.
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
from pathlib import Path
from typing import Any

from vocalis.io import write_json, write_text

#: Columns of ``history.csv``.
HISTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
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
    "checkpoints/best.pt",
    "checkpoints/last.pt",
)


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
        self.path = Path(path) if path is not None else None
        self.main = active
        self.active = active and self.path is not None
        self._log_lines: list[str] = []
        self.opened = False

    def file(self, name: str) -> Path:
        if self.path is None:
            raise ValueError("this run has no folder")
        return self.path / name

    @property
    def last(self) -> Path | None:
        return None if self.path is None else self.path / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path | None:
        return None if self.path is None else self.path / "checkpoints" / "best.pt"

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
        for name in (*RUN_FILES, "predictions.csv"):
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
        with open(self.file("log.txt"), "a", encoding="utf-8") as fh:
            fh.write(message + "\n")

    def open(self, env: dict[str, Any], resumed: bool) -> None:
        """Create the folder, record the environment and flush the buffered log lines.

        A resumed run keeps the first run's ``env.json`` and appends this process's
        environment to its ``resumes`` list.
        """
        if not self.active:
            return
        (self.path / "checkpoints").mkdir(parents=True, exist_ok=True)
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
        for line in pending:
            with open(self.file("log.txt"), "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def write_text(self, name: str, text: str) -> None:
        if self.active:
            write_text(self.file(name), text)

    def write_json(self, name: str, data: Any) -> None:
        if self.active:
            write_json(self.file(name), data)

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite ``history.csv`` from all epochs so far."""
        if not self.active:
            return
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, fieldnames=list(HISTORY_COLUMNS), extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
        write_text(self.file("history.csv"), buf.getvalue())

    def read_config(self) -> dict[str, Any] | None:
        """The ``config.yaml`` of an existing run, or ``None``."""
        if self.path is None or not (self.path / "config.yaml").is_file():
            return None
        import yaml

        return yaml.safe_load((self.path / "config.yaml").read_text())

    def read_metrics(self) -> dict[str, Any]:
        if self.path is None or not (self.path / "metrics.json").is_file():
            return {}
        return json.loads((self.path / "metrics.json").read_text())
