"""A fake estimator for the backend tests: instant, deterministic, optionally slow or lost once.

Ray and submitit workers do not have the tests folder on their path, so the tests
register this module to be pickled by value (``register_pickle_by_value``).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from pathlib import Path

from vocalis.testing import ScriptedFitted

CLASSES = ("ang", "hap", "neu", "sad")
SPEAKERS = ("a", "b", "c")


def make_manifest(folder: Path, speakers=SPEAKERS) -> Path:
    """3 rows per class per speaker; the files need not exist (the fake reads no audio)."""
    path = folder / "m.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "id", "speaker"])
        n = 0
        for s in speakers:
            for rep in range(3):
                for c in CLASSES:
                    w.writerow([f"/audio/{s}_{c}_{rep}.wav", c, f"u{n}", s])
                    n += 1
    return path


@dataclasses.dataclass
class FakeEstimator:
    """The Estimator contract; ``hang_on`` folds write ``<fold>.<attempt>.pid`` and sleep
    ``hang_s`` on their first attempt (a test kills that worker), later attempts are instant.
    """

    manifest: str = ""
    hang_on: tuple = ()
    hang_s: float = 60.0
    needs_validation: bool = True
    val_fraction: float = 0.2
    seed: int = 0

    @property
    def setup(self):
        return {"normalization": {"protocol": "online"}, "model": "fake"}

    def with_normalization(self, protocol):
        return self

    def rows(self, manifest):
        return manifest, manifest

    def prepare(self, rows):
        pass

    def fit(self, rows, train, val, run_dir):
        from vocalis.training.runfolder import RunFolder

        out = Path(run_dir)
        out.mkdir(parents=True, exist_ok=True)
        attempt = len(list(out.glob("attempt.*.pid"))) + 1
        (out / f"attempt.{attempt}.pid").write_text(str(os.getpid()))
        if out.name in self.hang_on and attempt == 1:
            time.sleep(self.hang_s)
        RunFolder(out).write_metrics(
            kind="train", model="neural", best_epoch=3, n_rows={"train": len(train)}
        )
        return ScriptedFitted(CLASSES, {"best_error": 0.4, "best_epoch": 3})
