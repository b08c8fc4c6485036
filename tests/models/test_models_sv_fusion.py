"""sv_fusion: every mode and fusion builds, masks padding, trains, saves, reloads and embeds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from vocalis.errors import ConfigError
from vocalis.models import build_model
from vocalis.models.fusion import build_fusion

torch.set_num_threads(1)

#: A tiny back-end and fusion width (a training step takes milliseconds).
TINY = {
    "ptm_layers": 3,
    "ptm_hidden": 8,
    "width": 16,
    "cnn_channels": [16],
    "ecapa_channels": [16, 16, 16, 48],
    "embedding_dim": 8,
    "se_channels": 4,
    "attention_channels": 4,
    "attention_heads": 4,
    "dropout": 0.0,
}

CASES = [
    (1, "concat", 24),
    (2, "concat", 41),
    (3, "concat", 24 + 41),
    (3, "cross_attention", 24 + 41),
    (3, "gating", 24 + 41),
]


def _model(mode: int, fusion: str, dim: int, **extra):
    cfg = {**TINY, "mode": mode, "fusion": fusion, "features": "mfcc_pitch", **extra}
    return build_model("sv_fusion", cfg, dim, 4).eval()


@pytest.mark.parametrize(("mode", "fusion", "dim"), CASES)
def test_padded_batch_gives_each_item_alone(mode, fusion, dim):
    torch.manual_seed(0)
    model = _model(mode, fusion, dim)
    x = torch.randn(2, dim, 30)
    x[1, :, 18:] = 1e3 * torch.randn(dim, 12)  # loud garbage in the padding shows any leak
    lengths = torch.tensor([30, 18])
    with torch.no_grad():
        batch = model.embed(x, lengths, kind="sv")
        alone = model.embed(x[1:, :, :18], torch.tensor([18]), kind="sv")
    assert batch.shape == (2, 8)
    torch.testing.assert_close(batch[1:], alone, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("per", ["frame", "utterance"])
def test_gate_values_lie_in_zero_one_and_mix_the_streams(per):
    fusion = build_fusion("gating", 6, gate=per)
    with torch.no_grad():
        fusion.gate.bias.fill_(40.0)  # gate saturated at 1: the PTM stream alone
        p, h = torch.randn(3, 6, 7), torch.randn(3, 6, 7)
        fused, gate = fusion(p, h, torch.tensor([7, 5, 2]))
        assert gate.shape == (3, 7) and bool(((gate >= 0) & (gate <= 1)).all())
        torch.testing.assert_close(fused, p)
        fusion.gate.bias.fill_(-40.0)
        torch.testing.assert_close(fusion(p, h, None)[0], h)
    model = _model(3, "gating", 65, gate=per)
    out = model(torch.randn(4, 65, 20) * 5, torch.tensor([20, 11, 7, 3]))
    g = out.extras["gate"]
    assert g.shape == (4,) and bool(((g >= 0) & (g <= 1)).all())


def test_layer_weights_are_a_softmax_that_learns():
    model = _model(1, "concat", 24)
    assert model.layer_weights() == pytest.approx([1 / 3] * 3)
    model.train()
    out = model(torch.randn(4, 24, 20), torch.tensor([20, 20, 15, 10]))
    torch.nn.functional.cross_entropy(30 * out.logits, torch.tensor([0, 1, 2, 3])).backward()
    assert model.layer_mix.logits.grad is not None and model.layer_mix.logits.grad.abs().sum() > 0


def test_wrong_input_size_names_the_features_to_use():
    with pytest.raises(ConfigError, match=r"mode 1: got F=30.*3 x 8 = 24.*name=ptm"):
        _model(1, "concat", 30)
    with pytest.raises(ConfigError, match=r"mode 3: got F=24.*ptm_mfcc_pitch"):
        _model(3, "gating", 24)
    with pytest.raises(ConfigError, match=r"model.params.mode: got 4"):
        _model(4, "gating", 24)
    with pytest.raises(ConfigError, match=r"fusion"):
        _model(3, "sum", 65)
    with pytest.raises(ConfigError, match=r"heads do not divide width 16"):
        _model(3, "cross_attention", 65, attention_heads=3)


def test_recipe_picks_the_extractor_of_each_mode():
    from vocalis.training.config import load_config

    names = {}
    for mode in (1, 2, 3):
        cfg = load_config("sv_fusion", [f"model.mode={mode}", "model.features=mfcc_pitch"])
        names[mode] = cfg.features.extractor.name
        assert cfg.train.loss == "aam" and cfg.model.params.head == "cosine"
    assert names == {1: "ptm", 2: "mfcc_pitch", 3: "ptm_mfcc_pitch"}
    cfg = load_config("sv_fusion", ["model.fusion=cross_attention"])
    assert cfg.model.params.fusion == "cross_attention"


@pytest.fixture(scope="module")
def speakers_corpus(tmp_path_factory):
    from tests.training._training_helpers import write_corpus

    root = tmp_path_factory.mktemp("sv")
    return write_corpus(
        root, speakers=("a", "b", "c", "d"), labels=("low", "high"), per_cell=3, seconds=0.3
    ), root


def _overrides(manifest, cache, mode, fusion):
    tiny = {k: v for k, v in TINY.items() if k not in ("ptm_hidden",)}
    return [
        f"dataset.manifest={manifest}",
        "dataset.val_fraction=0.25",
        f"features.cache_dir={cache}",
        "features.workers=0",
        f"model.mode={mode}",
        f"model.fusion={fusion}",
        "model.features=mfcc_only",
        "model.ptm_hidden=256",
        *(f"model.{k}={list(v) if isinstance(v, list) else v}" for k, v in tiny.items()),
        "train.epochs=1",
        "train.batch_size=9",
        "train.crop_seconds=null",
        "train.warmup_epochs=0",
        "train.device=cpu",
    ]


@pytest.mark.parametrize(("mode", "fusion"), [(m, f) for m, f, _ in CASES])
def test_every_mode_trains_saves_reloads_and_scores(speakers_corpus, tmp_path, mode, fusion):
    from vocalis.audio import run_tier0
    from vocalis.evaluation.compare import compare, to_markdown
    from vocalis.evaluation.plots import plot_run
    from vocalis.inference.pipeline import load_pipeline
    from vocalis.training import train
    from vocalis.training.config import load_config

    manifest, root = speakers_corpus
    cfg = load_config("sv_fusion", _overrides(manifest, root / "cache", mode, fusion))
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.history[0]["epoch"] == 1 and len(result.classes) == 4
    run = tmp_path / "run"
    pngs = {Path(p).name for p in plot_run(run)}  # what `vocalis train` draws at the end
    for name in ("model.pt", "model_summary.txt", "metrics.json", "training_curves.png"):
        assert (run / name).is_file(), name
    assert "confusion_val.png" in pngs
    assert "total parameters" in (run / "model_summary.txt").read_text()
    details = json.loads((run / "metrics.json").read_text())["details"]
    ver = details["verification_val"]
    assert 0.0 <= ver["eer"] <= 1.0 and ver["target_trials"] > 0 and ver["nontarget_trials"] > 0
    assert ver["identification_accuracy"] == pytest.approx(result.best_metrics["val_acc"])
    row = compare([run])[0]
    assert (row["mode"], row["eer_on"], row["eer"]) == (mode, "val", pytest.approx(ver["eer"]))
    assert row["fusion"] == (fusion if mode == 3 else None)
    assert row["feature"] == (None if mode == 1 else "mfcc_only")
    assert row["best_val_loss"] == pytest.approx(result.best_metrics["val_loss"])
    assert "eer" in to_markdown([row]).splitlines()[0]
    if fusion == "gating" and mode == 3:
        with open(run / "gating.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 6 and all(0.0 <= float(r["gate_ptm"]) <= 1.0 for r in rows)
        assert {r["class"] for r in rows} <= {"low", "high"}
        assert "gating.png" in pngs and (run / "gating_summary.csv").is_file()
        assert 0.0 <= details["gating"]["mean"] <= 1.0
    else:
        assert not (run / "gating.csv").exists()
    pipe = load_pipeline(run / "model.pt")
    wavs = sorted((root / "wav").glob("*.wav"))[:3]
    batch = [run_tier0(str(p), pipe.tier0) for p in wavs]
    lengths = torch.tensor([len(w) for w in batch])
    padded = torch.nn.utils.rnn.pad_sequence(batch, batch_first=True)
    with torch.no_grad():
        emb = pipe.neural.embed(padded, lengths, kind="sv")
    assert emb.shape == (3, 8) and torch.isfinite(emb).all()
    from vocalis.verification import load_embedder  # what vocalis sv score / verify load

    torch.testing.assert_close(load_embedder(run / "model.pt").embed(padded, lengths), emb)
    score = torch.nn.functional.cosine_similarity(emb[0], emb[1], dim=0)
    assert -1.0 <= float(score) <= 1.0
    with torch.no_grad():
        # the reloaded module gives what the trained model gives
        feats, frames = pipe.neural.features(padded, lengths)
        again = result.model.eval().embed(pipe.neural.head.norm(feats, frames), frames, kind="sv")
    torch.testing.assert_close(emb, again, atol=1e-4, rtol=1e-4)


def test_default_experiment_name_carries_mode_fusion_feature_and_time():
    from vocalis.cli.train import experiment_name
    from vocalis.training.config import load_config

    cfg = load_config("sv_fusion", ["model.mode=3", "model.fusion=gating"])
    name = experiment_name(cfg, when=0.0)
    assert name.startswith("mode3_gating_mfbe_pitch_") and len(name.split("_")[-1]) == 6
    assert experiment_name(load_config("sv_fusion", ["model.mode=2"])).startswith("mode2_mfbe")
    assert experiment_name(load_config("emodb_tier1")) is None


def test_aam_margin_warms_up_linearly():
    from vocalis.training.losses import AAMSoftmax

    loss = AAMSoftmax(margin=0.2, scale=30.0)
    assert [loss.warm_up(e, 2) for e in (0, 1, 2, 5)] == pytest.approx([0.0, 0.1, 0.2, 0.2])
    cos = torch.tensor([[0.5, 0.1]])
    loss.warm_up(0, 2)
    plain = torch.nn.functional.cross_entropy(30 * cos, torch.tensor([0]))
    torch.testing.assert_close(loss(cos, torch.tensor([0])), plain)


def test_sweep_tabulates_eer_per_mode(speakers_corpus, tmp_path):
    from vocalis.evaluation.sweep import sweep

    manifest, root = speakers_corpus
    over = [o for o in _overrides(manifest, root / "cache", 1, "concat") if "mode=" not in o]
    result = sweep("sv_fusion", ["model.mode=1,2", "seed=1", *over], tmp_path / "sweep")
    header = result["table"].splitlines()[0]
    assert "eer" in header and "min_dcf" in header and "best_val_loss" in header
    assert len(result["groups"]) == 2


def test_cosine_t_max_reaches_the_floor_and_stays():
    from vocalis.training.config import TrainConfig
    from vocalis.training.optim import lr_factor

    cfg = TrainConfig(epochs=10, scheduler="cosine", cosine_t_max_epochs=4, min_lr=1e-4, lr=1e-3)
    assert lr_factor(0, cfg, 10) == pytest.approx(1.0)
    assert lr_factor(20, cfg, 10) == pytest.approx(0.1 + 0.9 * 0.5)  # half of T_max
    assert lr_factor(40, cfg, 10) == lr_factor(90, cfg, 10) == pytest.approx(0.1)
    whole = TrainConfig(epochs=10, scheduler="cosine")
    assert lr_factor(50, whole, 10) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="cosine_t_max_epochs"):
        TrainConfig(cosine_t_max_epochs=0)


def test_compare_prefers_held_out_scores(tmp_path):
    from vocalis.evaluation.compare import compare
    from vocalis.evaluation.records import HELDOUT_SCORES

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(
        "model:\n  name: sv_fusion\n  params: {mode: 2, features: pitch_only}\n"
    )
    (run / "predictions.csv").write_text("id,path,speaker,true_label,pred_label,correct\n")
    (run / HELDOUT_SCORES).write_text(json.dumps({"eer": 0.125, "min_dcf": 0.5}))
    row = compare([run])[0]
    assert (row["eer"], row["min_dcf"], row["eer_on"]) == (0.125, 0.5, "held-out")
    assert (row["mode"], row["fusion"], row["feature"]) == (2, None, "pitch_only")


def test_validation_loss_keeps_the_full_margin_during_warm_up():
    from vocalis.training.losses import AAMSoftmax

    loss = AAMSoftmax(margin=0.2, scale=30.0)
    loss.warm_up(0, 2)
    full = loss.with_full_margin()
    cos, y = torch.tensor([[0.6, 0.2]]), torch.tensor([0])
    assert loss.margin == 0.0 and full.margin == pytest.approx(0.2)
    assert float(full(cos, y)) > float(loss(cos, y))  # the margin makes the loss larger
