"""EmoDB leave-one-speaker-out: three heads in one model against the emotion head alone.

The three-head recipe (``configs/recipes/emodb_multihead.yaml``: emotion, gender and
the listeners' recognition rate) and ``configs/recipes/emodb_tier1.yaml`` with the same
head options (only the emotion head) are
trained on the same 10 leave-one-speaker-out folds (validation: one of the nine
training speakers, chosen by the run seed; the test speaker is never seen). Each
fold's ``model.pt`` is then scored on its test speaker through ``vocalis eval``'s
function, and the test predictions of all folds are pooled:

- emotion: pooled UAR / accuracy / macro-F1 and the mean ± std of the fold UARs;
- gender: pooled UAR (a speaker-independent task: the test voice is new);
- recognition (% of 20 listeners): pooled CCC, MAE and RMSE in percent.

Usage::

    python bench/heads_emodb.py --epochs 20 --out bench/results/emodb_heads_loso.json

Wall and CPU time are recorded per system (the machine is shared), and the speed
of the two systems is quoted as a ratio of their CPU times in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
from benchenv import emodb_dir

HERE = Path(__file__).resolve().parent
RECIPE = HERE.parent / "configs" / "recipes" / "emodb_multihead.yaml"
BASELINE = HERE.parent / "configs" / "recipes" / "emodb_tier1.yaml"


def _cpu() -> float:
    self_ = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


def run_system(name, recipe, rows, overrides, out_dir, speakers):
    """LOSO of one system; returns pooled per-head predictions and fold numbers."""
    from vocalis.data.targets import encode_targets
    from vocalis.evaluation import evaluate
    from vocalis.inference import Predictor
    from vocalis.metrics.classification import classification_metrics
    from vocalis.training import load_config, train

    cfg = load_config(recipe, overrides)
    spk = np.asarray(rows.speakers)
    fold_uar, pooled = {}, {"true": [], "pred": [], "heads": []}
    t0, c0 = time.time(), _cpu()
    for s in speakers:
        test = np.nonzero(spk == s)[0]
        trainval = np.nonzero(spk != s)[0]
        run = out_dir / name / f"speaker_{s}"
        train(cfg, run, manifest=rows.select(trainval.tolist()), progress=False)
        test_rows = rows.select(test.tolist())
        m = evaluate(run, test_rows, None, visualize=False, progress=False)
        fold_uar[f"speaker_{s}"] = m["uar"]
        predictor = Predictor.from_checkpoint(run, min_speech=None)
        preds = predictor.predict_many(test_rows.paths, progress=False)
        pooled["true"] += list(test_rows.labels())
        pooled["pred"] += [p.label for p in preds]
        if predictor.heads:
            packed = encode_targets(test_rows, predictor.heads)
            pooled["heads"].append((predictor.heads, packed, [p.heads for p in preds]))
        print(f"{name} speaker {s}: emotion UAR {m['uar']:.4f}", flush=True)
    wall, cpu = time.time() - t0, _cpu() - c0
    emo = classification_metrics(pooled["true"], pooled["pred"])
    result = {
        "emotion": {
            "pooled_uar": emo["uar"],
            "accuracy": emo["accuracy"],
            "macro_f1": emo["macro_f1"],
            "fold_uar_mean": float(np.mean(list(fold_uar.values()))),
            "fold_uar_std": float(np.std(list(fold_uar.values()))),
            "per_fold_uar": fold_uar,
        },
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
    }
    if pooled["heads"]:
        result.update(_pool_heads(pooled["heads"]))
    return result


def _pool_heads(parts):
    """Pooled gender UAR and recognition CCC / MAE / RMSE over the folds' test rows."""
    from vocalis.metrics.classification import classification_metrics, regression_metrics

    gender_t, gender_p, rec_t, rec_p = [], [], [], []
    for heads, packed, answers in parts:
        names = [h.name for h in heads]
        g, r = names.index("gender"), names.index("recognition")
        cols = np.cumsum([0] + [h.width for h in heads])
        for i, a in enumerate(answers):
            gv, rv = packed[i, cols[g]], packed[i, cols[r]]
            if np.isfinite(gv):
                gender_t.append(heads[g].classes[int(gv)])
                gender_p.append(a["gender"]["label"])
            if np.isfinite(rv):
                rec_t.append(rv * heads[r].std[0] + heads[r].mean[0])
                rec_p.append(a["recognition"]["values"]["recognition"])
    gm = classification_metrics(gender_t, gender_p)
    rm = regression_metrics(np.asarray(rec_t), np.asarray(rec_p))
    return {
        "gender": {"pooled_uar": gm["uar"], "accuracy": gm["accuracy"], "n": len(gender_t)},
        "recognition": {k: rm[k] for k in ("ccc", "pearson", "mae", "rmse")} | {"n": rm["n"]},
    }


def main(argv=None):
    """Run both systems and write the results JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--out", default=str(HERE / "results" / "emodb_heads_loso.json"))
    p.add_argument("--work", default="runs/bench_heads")
    p.add_argument("--speakers", nargs="*", help="test speakers (default: all 10)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from vocalis.data import prepare

    rows = prepare("emodb", emodb_dir())
    speakers = args.speakers or sorted(set(rows.speakers))
    common = [
        f"train.epochs={args.epochs}",
        "dataset.val_fraction=0.12",
        "features.workers=1",
        f"features.cache_dir={Path(args.work) / 'cache'}",
    ]
    same_heads = ["model.params.head_hidden=64", "model.params.temperature=true"]
    systems = {  # the same tier1 model, heads and schedule; only the label heads differ
        "three_heads": (RECIPE, common),
        "emotion_only": (BASELINE, [*common, *same_heads]),
    }
    results = {}
    for name, (recipe, overrides) in systems.items():
        results[name] = run_system(name, recipe, rows, overrides, Path(args.work), speakers)
    results["_meta"] = {
        "command": "python bench/heads_emodb.py " + " ".join(argv or sys.argv[1:]),
        "recipe": str(RECIPE.relative_to(HERE.parent)),
        "epochs": args.epochs,
        "folds": speakers,
        "validation": "one training speaker held out (dataset.val_fraction=0.12 of 9 speakers)",
        "machine": f"{platform.machine()}, shared CPU",
        "date": time.strftime("%Y-%m-%d"),
        "cpu_ratio_three_heads_vs_emotion_only": round(
            results["three_heads"]["cpu_s"] / max(results["emotion_only"]["cpu_s"], 1e-9), 3
        ),
    }
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "_meta"}, indent=1))


if __name__ == "__main__":
    main()
