"""A functionals recipe through ``vocalis train``, ``predict``, ``eval`` and ``serve``.

A small recipe (lld_stats and ge2e_stats members, one C each) on the bundled
EmoDB excerpt (14 clips, 2 speakers, 7 emotions).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from vocalis.cli.main import main
from vocalis.testing import sample_manifest, sample_manifest_path

RECIPE = {
    "kind": "ensemble",
    "ensemble": {
        "normalization": "online",
        "fusion_resolution": 2,
        "members": [
            {
                "functionals": {"name": "lld_stats", "lld": "mfcc", "deltas": False},
                "linear": {"classifier": "svm", "balanced": True, "c_grid": [0.01]},
                "speed_factors": [],
            },
            {
                "functionals": {"name": "ge2e_stats", "layers": [2]},
                "linear": {"classifier": "svm", "balanced": True, "c_grid": [0.001]},
                "speed_factors": [],
            },
        ],
    },
}

RUN_FILES = ("config.yaml", "env.json", "log.txt", "label_map.json", "metrics.json", "model.pt")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """``vocalis train`` of the recipe on the sample clips; the run folder."""
    root = tmp_path_factory.mktemp("ens")
    recipe = root / "ens.yaml"
    recipe.write_text(yaml.safe_dump(dict(RECIPE, cache_dir=str(root / "cache"))))
    out = root / "run"
    argv = ["train", "--config", str(recipe), "--manifest", str(sample_manifest_path())]
    assert main([*argv, "--out", str(out)]) == 0
    return out


def test_train_writes_the_run_folder(run, capsys):
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    assert not (run / "checkpoints").exists()  # an ensemble has no epochs to resume
    classes = sorted(set(sample_manifest().labels()))
    assert json.loads((run / "label_map.json").read_text())["classes"] == classes
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["schema"], metrics["kind"], metrics["model"]) == (1, "train", "ensemble")
    assert metrics["n_rows"]["train"] == 14 and metrics["classes"] == classes
    weights = metrics["details"]["ensemble"]["weights"]
    assert len(weights) == 2 and math.isclose(sum(weights), 1.0, abs_tol=1e-3)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["ensemble"]["members"][1]["functionals"]["name"] == "ge2e_stats"
    assert "inner LOSO UAR" in (run / "log.txt").read_text()
    # a second train into the same folder refuses in one line; --overwrite refits
    recipe = run.parent / "ens.yaml"
    argv = ["train", "--config", str(recipe), "--manifest", str(sample_manifest_path())]
    assert main([*argv, "--out", str(run)]) != 0
    err = capsys.readouterr().err
    assert "--overwrite" in err and "Traceback" not in err
    assert main([*argv, "--out", str(run), "--epochs", "3"]) != 0
    assert "only apply to neural recipes" in capsys.readouterr().err


def test_predict_a_clip_and_eval_the_manifest(run, tmp_path, capsys):
    rows = sample_manifest()
    capsys.readouterr()
    assert main(["predict", rows.paths[0], "--checkpoint", str(run / "model"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert math.isclose(sum(out["probs"].values()), 1.0, abs_tol=1e-5) and len(out["probs"]) == 7
    assert out["label"] == rows.labels()[0]  # a training clip: the fit gets it right
    assert main(["eval", str(run), "--manifest", str(sample_manifest_path()), "--out",
                 str(tmp_path / "ev")]) == 0  # fmt: skip
    record = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert record["model"] == "ensemble" and record["n_rows"]["test"] == 14
    # the training clips themselves: the fitted SVMs separate them well above chance (1/7)
    assert record["test"]["uar"] > 0.5


def test_the_saved_model_equals_the_fit(run):
    from vocalis.inference import Predictor
    from vocalis.training import load_recipe
    from vocalis.training.ensemble_estimator import EnsembleEstimator

    rows = sample_manifest()
    idx = np.arange(len(rows))
    recipe = load_recipe(run.parent / "ens.yaml")
    fitted = EnsembleEstimator(recipe).fit(rows, idx, idx[:0], None)
    predictor = Predictor.from_checkpoint(run)
    batch = predictor.predict_many(rows.paths, batch_size=5, progress=False)
    got = np.array([[p.probs[c] for c in predictor.classes] for p in batch])
    np.testing.assert_allclose(got, fitted.predict_proba(rows, idx), atol=1e-6, rtol=0)


def test_serve(run):
    pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")
    from fastapi.testclient import TestClient

    from vocalis.inference.service import create_app

    clip = Path(sample_manifest().paths[3])
    with TestClient(create_app(run / "model"), raise_server_exceptions=False) as client:
        health = client.get("/health").json()
        assert health["kind"] == "ensemble" and len(health["classes"]) == 7
        r = client.post("/predict", files={"file": (clip.name, clip.read_bytes(), "audio/wav")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert math.isclose(sum(body["probabilities"].values()), 1.0, abs_tol=1e-5)
        assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)


def test_export_refuses_in_one_line(run, tmp_path, capsys):
    argv = ["export", "--checkpoint", str(run), "--format", "torchscript"]
    assert main([*argv, "--out", str(tmp_path / "m.pt")]) != 0
    err = capsys.readouterr().err
    assert "cannot be exported" in err and "vocalis serve" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "m.pt").exists()


def test_speaker_norm_scores_a_manifest_by_speaker_and_refuses_one_clip(run, tmp_path, capsys):
    from vocalis.ensemble.recipe_file import recipe_from_dict
    from vocalis.inference import Predictor
    from vocalis.training.ensemble_estimator import train_ensemble

    data = json.loads(json.dumps(RECIPE))
    data["ensemble"]["normalization"] = "speaker_norm"
    recipe = recipe_from_dict(dict(data, cache_dir=str(run.parent / "cache")))
    rows = sample_manifest()
    fitted = train_ensemble(recipe, tmp_path / "sn", manifest=rows)
    capsys.readouterr()
    assert main(["predict", rows.paths[0], "--checkpoint", str(tmp_path / "sn")]) != 0
    err = capsys.readouterr().err
    assert "speaker_norm" in err and "speaker column" in err and "online recipe" in err
    assert len(err.strip().splitlines()) == 1
    predictor = Predictor.from_checkpoint(tmp_path / "sn")
    assert predictor.needs_speakers
    batch = predictor.predict_speakers(rows.paths, rows.speakers, progress=False)
    got = np.array([[p.probs[c] for c in predictor.classes] for p in batch])
    want = fitted.predict_proba(rows, np.arange(len(rows)))
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    csv_out = tmp_path / "pred.csv"
    argv = ["predict", str(sample_manifest_path()), "--checkpoint", str(tmp_path / "sn")]
    assert main([*argv, "--out", str(csv_out), "--no-progress"]) == 0
    import csv

    with csv_out.open() as fh:
        written = {r["path"]: r for r in csv.DictReader(fh)}
    assert len(written) == 14
    first = written[rows.paths[0]]
    assert float(first[f"p_{predictor.classes[0]}"]) == pytest.approx(want[0, 0], abs=1e-5)
    ev = tmp_path / "ev"
    argv = ["eval", str(tmp_path / "sn"), "--manifest", str(sample_manifest_path()), "--out"]
    assert main([*argv, str(ev)]) == 0
    from vocalis.metrics.predictions import read_predictions

    scored = read_predictions(ev / "predictions.csv")
    order = [rows.paths.index(p) for p in scored.path]
    np.testing.assert_allclose(scored.probs, want[order], atol=1e-5)  # csv keeps 6 digits


def test_eval_applies_the_recipes_label_map(tmp_path, capsys):
    recipe = {
        "kind": "ensemble",
        "label_map": "4class",
        "unmapped": "drop",
        "cache_dir": str(tmp_path / "cache"),
        "ensemble": {"members": [RECIPE["ensemble"]["members"][0]], "fusion_resolution": 0},
    }
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    manifest = str(sample_manifest_path())
    assert main(["train", "--config", str(path), "--manifest", manifest, "--out", str(out)]) == 0
    classes = json.loads((out / "label_map.json").read_text())["classes"]
    assert set(classes) <= {"angry", "happy", "neutral", "sad"} and len(classes) >= 3
    capsys.readouterr()
    # the raw manifest has the 7 EmoDB emotions: eval maps them as training did
    assert main(["eval", str(out), "--manifest", manifest, "--out", str(tmp_path / "ev")]) == 0
    record = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    kept = [lab for lab in sample_manifest().labels() if lab != "boredom"]
    assert record["n_rows"]["test"] == len(kept) and record["classes"] == classes


def test_embed_gives_the_members_functionals(run, tmp_path, capsys):
    from vocalis.features.functionals import FunctionalsConfig, compute_functionals, functionals_dim
    from vocalis.inference import Predictor

    members = [FunctionalsConfig(**m["functionals"]) for m in RECIPE["ensemble"]["members"]]
    dim = sum(functionals_dim(c) for c in members)
    out = tmp_path / "emb.npz"
    manifest = str(sample_manifest_path())
    argv = ["embed", "--checkpoint", str(run), "--manifest", manifest, "--no-progress"]
    assert main([*argv, "--type", "pt", "--out", str(out)]) == 0
    data = np.load(out)
    assert data["embeddings"].shape == (14, dim)
    # pt is exactly the functionals the members read, clip by clip
    predictor = Predictor.from_checkpoint(str(run))
    wav = predictor.load(sample_manifest().paths[0])
    first = compute_functionals(wav, 16000, members[0]).numpy()
    np.testing.assert_allclose(data["embeddings"][0, : first.shape[0]], first, rtol=1e-5, atol=1e-6)
    assert main([*argv, "--type", "ft", "--out", str(tmp_path / "ft.npz")]) == 0
    ft = np.load(tmp_path / "ft.npz")["embeddings"]
    assert ft.shape == (14, dim) and np.abs(ft).max() <= 5.0 + 1e-6  # standardised, clipped
    capsys.readouterr()
    assert main([*argv, "--type", "st", "--out", str(tmp_path / "st.npz")]) != 0
    err = capsys.readouterr().err
    assert "no shared layer" in err and len(err.strip().splitlines()) == 1
