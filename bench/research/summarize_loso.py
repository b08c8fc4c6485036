"""A committed cv summary (``bench/results/emodb_*loso*.json``) from a ``vocalis loso`` folder.

    python bench/research/summarize_loso.py RUN_DIR TIMING.json[,MORE.json] RECIPE OUT.json

``TIMING.json`` is what ``bench/research/timed.py`` wrote around the command (wall and
CPU time, children included); a run stopped and resumed (finished folds are skipped,
a fold in progress resumes from its ``last.pt``) gives one file per segment, summed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("timing", help="timed.py JSON file(s), comma-separated")
    ap.add_argument("recipe")
    ap.add_argument("out", type=Path)
    ap.add_argument("--note", default="")
    a = ap.parse_args()
    cv = json.loads((a.run / "cv_results.json").read_text())
    segments = [json.loads(Path(t).read_text()) for t in a.timing.split(",")]
    timing = {
        "command": " && ".join(t["command"] for t in segments),
        "wall_s": round(sum(t["wall_s"] for t in segments), 1),
        "cpu_s": round(sum(t["cpu_s"] for t in segments), 1),
        "max_rss_mb": max(t["max_rss_mb"] for t in segments),
    }
    out = {
        "command": f"vocalis loso --config {a.recipe} --manifest work/emodb.csv "
        f"--out runs/{a.out.stem} --parallel 2",
        "ran": timing["command"],
        "date": dt.date.today().isoformat(),
        "machine": f"{os.cpu_count()} CPU cores, x86_64, shared with other jobs",
        "recipe": a.recipe,
        "normalization": cv["normalization"],
        "validation": cv["validation"],
        "pooled": cv["pooled"],
        "fold_mean": cv["mean"],
        "fold_std": cv["std"],
        "seconds": timing["wall_s"],
        "wall_s": timing["wall_s"],
        "cpu_s": timing["cpu_s"],
        "max_rss_mb": timing["max_rss_mb"],
        "per_fold_uar": {k: v.get("uar") for k, v in cv["folds"].items()},
        "segments": len(segments),
        "n_finished": cv["n_finished"],
        "failed": cv["failed"],
    }
    if a.note:
        out["note"] = a.note
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("seconds", "cpu_s")}), "pooled UAR", out["pooled"]["uar"])


if __name__ == "__main__":
    main()
