"""Integration: tier1 on a subset of real EmoDB with speaker-independent validation."""

from __future__ import annotations

import json

import pytest
from _training_helpers import interrupt_then_resume

from vocalis.testing import EMODB_SKIP_REASON, emodb_root

ROOT = emodb_root()


#: A small tier1 that trains on a few EmoDB speakers in seconds (both tests below).
SMALL_TIER1 = [
    "train.batch_size=16",
    "train.warmup_epochs=0",
    "features.cache_dir=null",
    "model.params.channels=[32,64]",
    "model.params.lstm_hidden=32",
    "model.params.lstm_layers=1",
    "model.params.pooling_hidden=32",
]


@pytest.mark.emodb
@pytest.mark.skipif(ROOT is None, reason=EMODB_SKIP_REASON)
def test_tier1_learns_on_emodb_subset_with_a_held_out_speaker(tmp_path):
    """A held-out speaker validates; the run learns; its val scores are its best weights'."""
    from vocalis.data import prepare
    from vocalis.inference import Predictor
    from vocalis.metrics.classification import classification_metrics
    from vocalis.training import load_config, train

    full = prepare("emodb", ROOT)
    keep = [i for i, s in enumerate(full.speakers) if s in {"03", "08", "09", "10", "12"}]
    subset = full.select(keep)
    cfg = load_config(
        "configs/recipes/emodb_tier1.yaml",
        [
            "train.epochs=4",
            *SMALL_TIER1,
            "dataset.val_fraction=0.2",
        ],
    )
    result = train(cfg, tmp_path / "run", manifest=subset, progress=False)
    assert len(result.history) == 4 and len(result.classes) == 7
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n_rows"]["train"] + metrics["n_rows"]["val"] == len(subset)
    log = (tmp_path / "run" / "log.txt").read_text()
    val_line = next(line for line in log.splitlines() if line.startswith("Validation speakers"))
    held = val_line.split(":")[1].split("(")[0].replace(",", " ").split()
    assert len(held) == 1  # one of five speakers held out, so validation is speaker-independent
    assert "none of them in training" in val_line
    val_rows = [r for r in subset if r["speaker"] == held[0]]
    assert metrics["n_rows"]["val"] == len(val_rows)
    # The validation UAR the run recorded is the UAR of its best weights on the held-out
    # speaker, recomputed here through the deployable inference path (same features,
    # same normalisation statistics, read back from the checkpoint).
    predictor = Predictor.from_checkpoint(tmp_path / "run" / "model.pt")
    preds = predictor.predict_many([r["path"] for r in val_rows], progress=False)
    assert len(preds) == len(val_rows) and not preds.failures
    recomputed = classification_metrics(
        [r["label"] for r in val_rows], [p.label for p in preds], classes=result.classes
    )
    assert metrics["val"]["confusion"] == recomputed["confusion"]
    assert result.best_metrics["val_uar"] == pytest.approx(recomputed["uar"], abs=1e-9)
    # four epochs on four speakers learn something about an unseen one (chance: 1/7;
    # this run reaches ~0.40 with seed 0)
    assert result.best_metrics["val_uar"] > 0.25


@pytest.mark.emodb
@pytest.mark.skipif(ROOT is None, reason=EMODB_SKIP_REASON)
def test_three_heads_on_emodb_resume_eval_predict_embed_export_serve(tmp_path, monkeypatch):
    """Emotion (7 classes), gender and listeners' recognition rate (regression) at once.

    Trained on three speakers (validation one, test one more, all speaker-independent),
    killed mid-run and resumed; then every head goes through eval, predict, ``ft``
    embeddings, ONNX export and the service.
    """
    from vocalis.data import prepare
    from vocalis.evaluation import evaluate
    from vocalis.inference import Predictor
    from vocalis.inference.embed import embed
    from vocalis.training import load_config

    full = prepare("emodb", ROOT)
    keep = [i for i, s in enumerate(full.speakers) if s in {"03", "08", "09", "10", "16"}]
    rows = full.select(keep)
    test = [i for i, s in enumerate(rows.speakers) if s == "16"]
    cfg = load_config(
        "configs/recipes/emodb_tier1.yaml",
        [
            "dataset.label_columns=[label,gender,recognition]",
            "train.loss={label: ce, gender: ce, recognition: mse}",
            "train.loss_weights={gender: 0.3, recognition: 0.5}",
            "dataset.val_fraction=0.25",
            "train.epochs=3",
            *SMALL_TIER1,
            "model.params.head_hidden=16",
            "model.params.temperature=true",
        ],
    )
    out = tmp_path / "run"
    # killed in epoch 2, then resumed
    result = interrupt_then_resume(cfg, out, monkeypatch, 9, manifest=rows, test_indices=test)
    assert len(result.history) == 3 and "Resumed from" in (out / "log.txt").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    heads = metrics["heads"]
    assert [heads[h]["kind"] for h in ("label", "gender", "recognition")] == [
        "multiclass",
        "multiclass",
        "regression",
    ]
    assert len(heads["label"]["classes"]) == 7 and heads["gender"]["classes"] == ["female", "male"]
    assert {"ccc", "mae", "rmse"} <= set(heads["recognition"]["test"])
    assert set(metrics["details"]["calibration"]["heads"]) == {"label", "gender"}

    test_rows = rows.select(test)
    m = evaluate(out, test_rows, tmp_path / "eval", visualize=False, progress=False)
    assert m["n"] == len(test) and set(m["heads"]) == {"label", "gender", "recognition"}
    assert m["heads"]["label"]["uar"] == pytest.approx(heads["label"]["test"]["uar"], abs=1e-6)
    pred = Predictor.from_checkpoint(out, min_speech=None).predict_file(test_rows.paths[0])
    assert 0.0 <= pred.heads["recognition"]["values"]["recognition"] <= 120.0  # percent
    emb = embed(out, inputs=test_rows.paths[:4], kind="ft", pooling="sum", progress=False)
    assert emb.embeddings.shape == (4, 16)

    pytest.importorskip("onnxruntime")
    from vocalis.inference.export import export

    assert export(out, tmp_path / "m.onnx", format="onnx").max_abs_diff < 1e-4
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from vocalis.inference.service import create_app

    app = create_app(predictor=Predictor.from_checkpoint(out, min_speech=None))
    with TestClient(app) as client, open(test_rows.paths[0], "rb") as fh:
        body = client.post("/predict", files={"file": ("a.wav", fh, "audio/wav")}).json()
    assert set(body["heads"]) == {"label", "gender", "recognition"}
