"""Several heads in one model: multi-class, multi-label and regression, end to end.

One small synthetic corpus with a 3-class label, a 2-class column, a
numeric column and two 0/1 columns trains a tier-1 model with four heads; the run
is then resumed after a kill (bit-identical), evaluated, predicted, embedded,
exported and served.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from _training_helpers import interrupt_then_resume, tiny_overrides, write_corpus

from vocalis.training import load_config, train

HEADS = [
    "dataset.label_columns=[label,gender,dur,[loud,soft]]",
    "train.loss={label: ce, gender: ce, dur: mse, loud+soft: bce}",
    "train.loss_weights={gender: 0.3}",
    "model.params.head_hidden=8",
    "model.params.shared_dim=12",
]


@pytest.fixture(scope="module")
def heads_corpus(tmp_path_factory):
    return write_corpus(
        tmp_path_factory.mktemp("heads"),
        labels=("low", "mid", "high"),
        per_cell=2,
        extra_columns={
            "gender": lambda spk, lab, k: "f" if (k + int(spk[1])) % 2 else "m",
            "dur": lambda spk, lab, k: str(1.0 + 0.5 * k + (lab == "high")),
            "loud": lambda spk, lab, k: str(int(lab == "high")),
            "soft": lambda spk, lab, k: str(int(lab == "low")),
        },
    )


def _cfg(manifest, *extra, epochs=2):
    return load_config(None, [*tiny_overrides(manifest, epochs), *HEADS, *extra])


@pytest.fixture(scope="module")
def heads_run(heads_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    cfg = _cfg(heads_corpus, "model.params.temperature=true")
    result = train(cfg, out, test_indices=list(range(6)), progress=False)
    return out, result


def test_every_head_is_trained_and_recorded(heads_run):
    out, _ = heads_run
    with open(out / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    cols = set(rows[0])
    for col in ("val_label_uar", "val_gender_uar", "val_dur_ccc", "val_dur_mae", "val_ccc"):
        assert col in cols, col
    assert "val_loud+soft_macro_auc" in cols
    metrics = json.loads((out / "metrics.json").read_text())
    heads = metrics["heads"]
    assert list(heads) == ["label", "gender", "dur", "loud+soft"]
    assert [heads[h]["kind"] for h in heads] == [
        "multiclass",
        "multiclass",
        "regression",
        "multilabel",
    ]
    assert heads["gender"]["weight"] == 0.3
    assert {"uar", "macro_f1"} <= set(heads["label"]["test"])
    assert {"ccc", "mae", "rmse"} <= set(heads["dur"]["test"])
    assert set(heads["loud+soft"]["test"]["per_label"]) == {"loud", "soft"}
    assert {"auc", "f1", "threshold"} <= set(heads["loud+soft"]["test"]["per_label"]["loud"])
    # the top-level keys stay the first class head's
    assert metrics["test"]["uar"] == pytest.approx(heads["label"]["test"]["uar"])
    assert metrics["classes"] == ["high", "low", "mid"]
    calib = metrics["details"]["calibration"]["heads"]
    assert set(calib) == {"label", "gender"}
    for r in calib.values():
        assert r["temperature"] > 0 and r["nll_after"] <= r["nll_before"] + 1e-9
        assert 0 <= r["ece_after"] <= 1 and 0 <= r["ece_before"] <= 1
    with open(out / "predictions_heads.csv") as fh:
        pred = list(csv.DictReader(fh))
    assert len(pred) == 6 and {"label_pred", "gender_pred", "dur_pred", "loud+soft_pred"} <= set(
        pred[0]
    )


def test_the_checkpoint_carries_heads_scaler_thresholds_and_temperatures(heads_run):
    from vocalis.checkpoint import load_checkpoint

    out, _ = heads_run
    ckpt = load_checkpoint(out / "model.pt")
    heads = {h["name"]: h for h in ckpt.model.heads}
    assert ckpt.model.num_classes == [3, 2, 1, 2]
    assert heads["dur"]["mean"][0] > 1.0 and heads["dur"]["std"][0] > 0
    assert len(heads["loud+soft"]["thresholds"]) == 2
    t = ckpt.model_state["temperature"]
    assert t.shape == (4,) and t[2] == 1.0 and t[3] == 1.0  # only softmax heads are scaled


def test_predict_eval_embed_export_and_serve_every_head(heads_run, heads_corpus, tmp_path):
    from vocalis.evaluation import evaluate
    from vocalis.inference import Predictor
    from vocalis.inference.embed import embed
    from vocalis.inference.export import export, read_metadata

    out, _ = heads_run
    predictor = Predictor.from_checkpoint(out, min_speech=None)
    with open(heads_corpus) as fh:
        first = next(csv.DictReader(fh))
    pred = predictor.predict_file(first["path"])
    assert set(pred.heads) == {"label", "gender", "dur", "loud+soft"}
    assert pred.label == pred.heads["label"]["label"]
    assert sum(pred.heads["gender"]["probs"].values()) == pytest.approx(1.0)
    assert 0.0 < pred.heads["dur"]["values"]["dur"] < 5.0  # in seconds, not z-scores
    assert set(pred.to_dict()["heads"]) == set(pred.heads)

    metrics = evaluate(out, heads_corpus, tmp_path / "eval", visualize=False, progress=False)
    assert set(metrics["heads"]) == {"label", "gender", "dur", "loud+soft"}
    assert metrics["heads"]["dur"]["n"] == metrics["n"]
    record = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert record["heads"]["dur"]["test"]["ccc"] == pytest.approx(metrics["heads"]["dur"]["ccc"])

    emb = embed(out, heads_corpus, kind="ft", pooling="sum", progress=False)
    assert emb.embeddings.shape[1] == 8
    assert embed(out, heads_corpus, kind="st", progress=False).embeddings.shape[1] == 12
    model = predictor.pipeline.model
    feats = torch.randn(2, model.input_dim, 40)
    with torch.no_grad():
        x = model.head.shared(model.encode(feats, torch.tensor([40, 40])))  # the shared layer
        linear = sum(h.hidden[0](h.norm(x)) for h in model.head.heads)  # before the ReLU
        assert torch.allclose(model.embed(feats, kind="ft", pooling="sum"), linear, atol=1e-6)
        assert (linear < 0).any()  # an activation output would be >= 0

    pytest.importorskip("onnxruntime")
    report = export(out, tmp_path / "m.onnx", format="onnx")
    assert report.max_abs_diff < 1e-4
    meta = read_metadata(tmp_path / "m.onnx")
    assert [h["name"] for h in meta["heads"]] == ["label", "gender", "dur", "loud+soft"]
    assert meta["heads"][-1]["outputs"] == [6, 8]


def test_serve_answers_every_head(heads_run, heads_corpus):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from vocalis.inference.service import create_app

    out, _ = heads_run
    with open(heads_corpus) as fh:
        path = next(csv.DictReader(fh))["path"]
    from vocalis.inference import Predictor

    app = create_app(predictor=Predictor.from_checkpoint(out, min_speech=None))
    with TestClient(app) as client, open(path, "rb") as fh:
        r = client.post("/predict", files={"file": ("a.wav", fh, "audio/wav")})
        health = client.get("/health").json()
    assert [h["name"] for h in health["heads"]] == ["label", "gender", "dur", "loud+soft"]
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["heads"]) == {"label", "gender", "dur", "loud+soft"}
    assert body["heads"]["dur"]["kind"] == "regression"


@pytest.mark.parametrize("stop_after_steps", [4], ids=["mid-epoch"])
def test_a_multi_head_run_resumes_bit_identically(
    heads_corpus, tmp_path, monkeypatch, stop_after_steps
):
    cfg = _cfg(
        heads_corpus,
        "augment.mixup.p=1",
        "augment.mixup.alpha=0.4",
        "train.class_weights=auto",
        epochs=2,
    )
    full = train(cfg, tmp_path / "full", progress=False)
    resumed = interrupt_then_resume(cfg, tmp_path / "cut", monkeypatch, stop_after_steps)
    sa, sb = full.model.state_dict(), resumed.model.state_dict()
    assert max(float((sa[k].float() - sb[k].float()).abs().max()) for k in sa) <= 1e-6
    keys = ["train_loss", "val_dur_ccc", "val_gender_uar"]
    for a, b in zip(full.history, resumed.history, strict=True):
        assert [a[k] for k in keys] == pytest.approx([b[k] for k in keys], abs=1e-9, nan_ok=True)


def test_regression_only_run_follows_ccc(heads_corpus, tmp_path):
    cfg = load_config(
        None, [*tiny_overrides(heads_corpus, 2), "dataset.label_columns=[dur]", "train.loss=mse"]
    )
    result = train(cfg, tmp_path / "reg", progress=False)
    metrics = json.loads((tmp_path / "reg" / "metrics.json").read_text())
    assert metrics["details"]["monitor"] == "val_ccc"
    assert np.isfinite(result.history[-1]["val_ccc"])
    assert "val_dur_mae" in result.history[-1]


def test_the_tier1_valence_arousal_head_is_reported_like_any_head(heads_corpus, tmp_path):
    from vocalis.inference import Predictor

    cfg = load_config(
        None,
        [
            *tiny_overrides(heads_corpus, 2),
            "model.params.va_head=true",
            "train.multitask_lambda=0.5",
            "dataset.regression_columns=[dur,loud]",  # the head gives 2 values
        ],
    )
    result = train(cfg, tmp_path / "va", test_indices=list(range(6)), progress=False)
    assert "val_dur+loud_ccc" in result.history[-1]
    metrics = json.loads((tmp_path / "va" / "metrics.json").read_text())
    assert list(metrics["heads"]) == ["label", "dur+loud"]
    assert {"ccc", "mae", "rmse"} <= set(metrics["heads"]["dur+loud"]["test"])
    assert set(metrics["heads"]["dur+loud"]["test"]["per_target"]) == {"dur", "loud"}
    assert metrics["test"]["uar"] == pytest.approx(metrics["heads"]["label"]["test"]["uar"])
    with open(heads_corpus) as fh:
        path = next(csv.DictReader(fh))["path"]
    pred = Predictor.from_checkpoint(tmp_path / "va", min_speech=None).predict_file(path)
    assert set(pred.heads) == {"label", "dur+loud"} and pred.label == pred.heads["label"]["label"]
    assert set(pred.heads["dur+loud"]["values"]) == {"dur", "loud"}


def test_heads_train_with_waveform_augmentation(heads_corpus, tmp_path):
    cfg = _cfg(heads_corpus, "augment=waveform_default", epochs=1)
    result = train(cfg, tmp_path / "aug", progress=False)
    assert np.isfinite(result.history[0]["train_loss"]) and "val_dur_ccc" in result.history[0]


def test_a_run_made_before_the_head_keys_still_resumes(heads_corpus, tmp_path):
    import yaml

    cfg = load_config(None, tiny_overrides(heads_corpus, 1))
    train(cfg, tmp_path / "old", progress=False)
    path = tmp_path / "old" / "config.yaml"
    stored = yaml.safe_load(path.read_text())
    for key in ("label_columns", "label_groups"):  # what an older Vocalis wrote
        del stored["dataset"][key]
    del stored["train"]["loss_weights"]
    path.write_text(yaml.safe_dump(stored))
    more = load_config(None, [*tiny_overrides(heads_corpus, 2)])
    assert len(train(more, tmp_path / "old", progress=False).history) == 2


def test_cli_label_groups_bce_then_predict_json_and_eval(heads_corpus, tmp_path, capsys):
    from vocalis.cli.main import main

    groups = tmp_path / "labels.txt"
    groups.write_text("loud,soft\nlabel\n")
    out = tmp_path / "cli"
    args = ["train", "--label-groups", str(groups), "--loss", "bce", "--out", str(out)]
    args += ["--no-progress", *tiny_overrides(heads_corpus, 1)]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [metrics["heads"][h]["kind"] for h in ("loud+soft", "label")] == [
        "multilabel",
        "multiclass",
    ]
    capsys.readouterr()
    with open(heads_corpus) as fh:
        wav = next(csv.DictReader(fh))["path"]
    assert main(["predict", wav, "--checkpoint", str(out), "--json", "--no-speech-check"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert set(answer["heads"]) == {"loud+soft", "label"}
    assert main(["eval", str(out), "--manifest", str(heads_corpus), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "loud+soft" in printed and "macro AUC" in printed
    groups.write_text("loud,,soft\n")
    assert main([*args, "--overwrite"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{groups}:1: empty label name" in err[0]


def test_auto_class_weights_balance_each_label_of_a_multilabel_head():
    from vocalis.data.targets import HeadLayout, HeadSpec
    from vocalis.training.losses import BinaryCrossEntropy, build_head_losses

    layout = HeadLayout([HeadSpec("x", "multilabel", ("a", "b"), ("a", "b"), "bce")])
    (loss,) = build_head_losses(layout, [torch.tensor([3.0, 1.0])])
    assert isinstance(loss, BinaryCrossEntropy) and loss.pos_weight.tolist() == [3.0, 1.0]
    logits, target = torch.zeros(1, 2), torch.tensor([[1.0, 1.0]])
    # ln 2 per label, the positive of "a" weighed 3x
    assert float(loss(logits, target)) == pytest.approx(np.log(2) * (3 + 1) / 2)
