"""Cross-validation of a model with several heads: every head is pooled and reported.

A tiny synthetic corpus (3 speakers x 2 tones x 3 takes) carries a class label, a
2-class column, a numeric column (in "percent", far from z-scores) and two 0/1
columns; a tier-1 model with four heads runs a 3-fold LOSO. The pooled per-head
numbers are checked against metrics computed here, independently, from the folds'
own prediction files.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from vocalis.evaluation.crossval import loso, plan_folds

HEADS = [
    "dataset.label_columns=[label,gender,recognition,[loud,soft]]",
    "train.loss={label: ce, gender: ce, recognition: mse, loud+soft: bce}",
    "model.params.head_hidden=8",
    "model.params.shared_dim=12",
]


def _corpus(root: Path) -> Path:
    from vocalis.testing import synth_tone, write_wav

    path = root / "heads.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "id", "speaker", "gender", "recognition", "loud", "soft"])
        for s, spk in enumerate(["s1", "s2", "s3"]):
            for label, f0 in (("low", 300.0), ("high", 900.0)):
                for k in range(3):
                    wav = synth_tone(f0 * (1 + 0.05 * s), 0.3 + 0.1 * k)
                    uid = f"{spk}_{label}_{k}"
                    w.writerow([
                        write_wav(root / f"{uid}.wav", wav), label, uid, spk,
                        "f" if (k + s) % 2 else "m", 60.0 + 10 * k + 5 * (label == "high") + s,
                        int(label == "high"), int(k == 0),
                    ])  # fmt: skip
    return path


def _config(manifest: Path, cache: Path, *overrides: str):
    from vocalis.testing.checkpoints import TINY_MODEL_OVERRIDES
    from vocalis.training import load_config

    return load_config(
        None,
        [
            f"dataset.manifest={manifest}", *TINY_MODEL_OVERRIDES, f"features.cache_dir={cache}",
            "train=default", "train.epochs=2", "train.batch_size=4",
            "train.lr=0.01", "train.warmup_epochs=0", "train.patience=0", *overrides,
        ],
    )  # fmt: skip


@pytest.fixture(scope="module")
def heads_loso(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cvheads")
    manifest = _corpus(root)
    cfg = _config(manifest, root / "cache", *HEADS)
    out = root / "loso"
    return cfg, manifest, out, loso(cfg, out, progress=False)


def _table(out: Path, folds: list[str]) -> list[dict[str, str]]:
    rows = []
    for fold in folds:
        with open(out / fold / "predictions_heads.csv") as fh:
            rows += list(csv.DictReader(fh))
    return rows


def _ccc(a: np.ndarray, b: np.ndarray) -> float:
    cov = np.mean((a - a.mean()) * (b - b.mean()))
    return float(2 * cov / (a.var() + b.var() + (a.mean() - b.mean()) ** 2))


def test_every_head_is_pooled_from_the_folds_predictions(heads_loso):
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    _, manifest, out, cv = heads_loso
    folds = [f"speaker_{s}" for s in ("s1", "s2", "s3")]
    assert cv["n_finished"] == 3 and not cv["failed"]
    heads = cv["heads"]
    assert list(heads) == ["label", "gender", "recognition", "loud+soft"]
    assert [h["kind"] for h in heads.values()] == [
        "multiclass", "multiclass", "regression", "multilabel",
    ]  # fmt: skip
    assert all(h["n_folds"] == 3 and sorted(h["folds"]) == folds for h in heads.values())
    # the first head is today's top-level result
    assert heads["label"]["pooled"]["uar"] == pytest.approx(cv["pooled"]["uar"])
    assert heads["label"]["pooled"]["accuracy"] == pytest.approx(cv["pooled"]["accuracy"])

    rows = _table(out, folds)
    assert len(rows) == 18 and heads["gender"]["pooled"]["n"] == 18
    with open(out / "predictions_heads.csv") as fh:
        assert list(csv.DictReader(fh)) == rows  # the folds' tables, concatenated
    # gender: UAR of the pooled predictions (not the mean of the folds' UARs)
    g_true, g_pred = [r["gender_true"] for r in rows], [r["gender_pred"] for r in rows]
    assert heads["gender"]["pooled"]["uar"] == pytest.approx(
        balanced_accuracy_score(g_true, g_pred), abs=1e-9
    )
    assert heads["gender"]["pooled"]["accuracy"] == pytest.approx(
        np.mean(np.array(g_true) == np.array(g_pred)), abs=1e-9
    )
    # recognition: in percent, the manifest's own values, though every fold has its scaler
    with open(manifest) as fh:
        want = {r["path"]: float(r["recognition"]) for r in csv.DictReader(fh)}
    y = np.array([float(r["recognition_true"]) for r in rows])
    p = np.array([float(r["recognition_pred"]) for r in rows])
    np.testing.assert_allclose(y, [want[r["path"]] for r in rows], rtol=1e-5)
    rec = heads["recognition"]["pooled"]
    assert rec["ccc"] == pytest.approx(_ccc(y, p), abs=1e-4)
    assert rec["mae"] == pytest.approx(np.mean(np.abs(y - p)), rel=1e-4)
    assert rec["rmse"] == pytest.approx(np.sqrt(np.mean((y - p) ** 2)), rel=1e-4)
    assert rec["mae"] > 0.5  # percent, not z-scores: a tiny model is off by points
    # loud+soft: per-label F1 of the folds' decisions (each at its own thresholds) ...
    ml = heads["loud+soft"]["pooled"]
    for label in ("loud", "soft"):
        t = [label in r["loud+soft_true"].split(";") for r in rows]
        d = [label in r["loud+soft_pred"].split(";") for r in rows]
        assert ml["per_label"][label]["f1"] == pytest.approx(f1_score(t, d), abs=1e-9)
    # ... and AUC of the scores centred on each fold's thresholds, from the fold records
    scores, truth = [], []
    for fold in folds:
        with np.load(out / fold / "head_outputs.npz") as z:
            spec = json.loads(str(z["heads"]))[3]
            scores.append(z["outputs"][:, -2:] - np.array(spec["thresholds"]) + 0.5)
            truth.append(z["targets"][:, -2:])
    s, t = np.concatenate(scores), np.concatenate(truth)
    for j, label in enumerate(("loud", "soft")):
        assert ml["per_label"][label]["auc"] == pytest.approx(roc_auc_score(t[:, j], s[:, j]))

    # per fold: the fold's metrics.json sections; mean ± std over them
    for name in ("gender", "recognition", "loud+soft"):
        fold_values = []
        for fold in folds:
            record = json.loads((out / fold / "metrics.json").read_text())
            test = record["heads"][name]["test"]
            key = "ccc" if name == "recognition" else "uar"
            assert heads[name]["folds"][fold][key] == pytest.approx(test[key])
            fold_values.append(test[key])
        assert heads[name]["mean"][key] == pytest.approx(np.mean(fold_values))
        assert heads[name]["std"][key] == pytest.approx(np.std(fold_values, ddof=1))
    on_disk = json.loads((out / "cv_results.json").read_text())
    assert on_disk["heads"]["recognition"]["pooled"]["mae"] == pytest.approx(rec["mae"])


def test_fold_heads_are_scored_as_the_trainer_tests(heads_loso):
    """A fold's per-head test metrics equal those of train() given the same test rows."""
    from vocalis.data import read_manifest
    from vocalis.training import train

    cfg, manifest, out, _ = heads_loso
    rows = read_manifest(manifest)
    plan = plan_folds(rows, "loso", seed=cfg.dataset.seed or cfg.train.seed)[0]
    ref = out.parent / "ref"
    train(
        cfg, ref, manifest=rows, train_indices=plan.train, val_indices=plan.val,
        test_indices=plan.test, progress=False,
    )  # fmt: skip
    want = json.loads((ref / "metrics.json").read_text())["heads"]
    got = json.loads((out / plan.name / "metrics.json").read_text())["heads"]
    for name, key in (("label", "uar"), ("gender", "uar"), ("recognition", "mae")):
        assert got[name]["test"][key] == pytest.approx(want[name]["test"][key], abs=1e-6)
    for label in ("loud", "soft"):
        a, b = got["loud+soft"]["test"]["per_label"][label], want["loud+soft"]["test"]["per_label"]
        assert a["threshold"] == pytest.approx(b[label]["threshold"])
        assert a["f1"] == pytest.approx(b[label]["f1"], abs=1e-6)


def test_resume_pools_finished_folds_without_refitting(heads_loso, monkeypatch, capsys):
    from vocalis.cli.cv import print_summary
    from vocalis.training.estimator import NeuralEstimator

    cfg, _, out, cv = heads_loso

    def no_fit(*args, **kwargs):
        raise AssertionError("a finished fold was fitted again")

    monkeypatch.setattr(NeuralEstimator, "fit", no_fit)
    (out / "cv_results.json").unlink()
    again = loso(cfg, out, progress=False)
    assert again["n_finished"] == 3 and not again["failed"]
    assert again["heads"] == cv["heads"] and again["pooled"] == cv["pooled"]
    print_summary(again)
    text = capsys.readouterr().out
    assert "head gender: pooled UAR" in text and "head recognition: pooled CCC" in text
    assert "head loud+soft: pooled UAR" in text and "head label" not in text


def test_report_and_compare_show_every_pooled_head(heads_loso, tmp_path):
    from vocalis.evaluation.compare import compare
    from vocalis.evaluation.records import load_record
    from vocalis.evaluation.report import report

    _, _, out, cv = heads_loso
    rows = {r["head"]: r for r in load_record(out).head_rows()}
    assert list(rows) == ["label", "gender", "recognition", "loud+soft"]
    assert {r["scored_on"] for r in rows.values()} == {"pooled"}
    assert rows["recognition"]["mae"] == pytest.approx(cv["heads"]["recognition"]["pooled"]["mae"])
    assert rows["gender"]["uar"] == pytest.approx(cv["heads"]["gender"]["pooled"]["uar"])
    table = compare([out])
    assert "gender UAR" in str(table) and "recognition CCC" in str(table)
    html = Path(report(out, tmp_path / "report.html")).read_text()
    assert "<h2>Heads</h2>" in html and "recognition" in html


@pytest.mark.parametrize(
    "overrides",
    [
        ["dataset.label_column=gender", "dataset.label_map={F: [f], M: [m]}"],
        ["dataset.label_columns=[gender,recognition]", "train.loss={gender: ce, recognition: mse}"],
    ],
    ids=["label_map", "first_head_not_label"],
)
def test_folds_are_scored_on_the_recipes_labels(heads_loso, overrides):
    """The truth is the recipe's label (its column, its label map), not the manifest's
    ``label`` column (here the tone: another task); before, every fold failed."""
    _, manifest, out, _ = heads_loso
    cfg = _config(manifest, out.parent / "cache", *overrides)
    name = "_".join(o.split("=")[0].split(".")[-1] for o in overrides)
    cv = loso(cfg, out.parent / name, progress=False)
    assert cv["n_finished"] == 3 and not cv["failed"] and cv["pooled"]["n"] == 18
    with open(manifest) as fh:
        gender = {r["path"]: r["gender"] for r in csv.DictReader(fh)}
    with open(out.parent / name / "predictions.csv") as fh:
        pred = list(csv.DictReader(fh))
    mapped = {"f": "F", "m": "M"} if "label_map" in str(overrides) else {"f": "f", "m": "m"}
    assert [r["true_label"] for r in pred] == [mapped[gender[r["path"]]] for r in pred]
    if "recognition" in str(overrides):
        assert list(cv["heads"]) == ["gender", "recognition"]


def test_a_regression_first_head_is_refused_before_any_fold_trains(heads_loso):
    from vocalis.errors import ConfigError

    _, manifest, out, _ = heads_loso
    cfg = _config(
        manifest,
        out.parent / "cache",
        "dataset.label_columns=[recognition,gender]",
        "train.loss={recognition: mse, gender: ce}",
    )
    with pytest.raises(ConfigError, match="'recognition' is a regression head; put a class"):
        loso(cfg, out.parent / "regression_first", progress=False)
    assert not (out.parent / "regression_first").exists()
