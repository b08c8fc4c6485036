"""`vocalis train model=ssl features=waveform`: fine-tune, tiers in the log, reload, predict, ONNX.

Tiny runs on four bundled EmoDB clips (anger / sadness of two speakers; one
held out by a split column): the GE2E encoder shipped with Vocalis and a tiny
random WavLM saved with ``save_pretrained`` (layer-norm feature encoder, so the
whole batch runs at once and the graph exports).
"""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vocalis.testing import samples_dir

TOL = 1e-4
CLIPS = [  # path, label, speaker, split
    ("wav/09a02Wb.wav", "anger", "09", "train"),
    ("wav/09a07Ta.wav", "sadness", "09", "train"),
    ("wav/11a02Tc.wav", "sadness", "11", "train"),
    ("wav/11a01Wc.wav", "anger", "11", "val"),
]

needs_ort = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnx / onnxruntime not installed (pip install 'vocalis[export]')",
)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ssl_data") / "m.csv"
    root = samples_dir()
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "speaker", "split"])
        for rel, label, spk, split in CLIPS:
            w.writerow([str(root / rel), label, spk, split])
    return path


@pytest.fixture(scope="module")
def tiny_wavlm(tmp_path_factory) -> str:
    pytest.importorskip("transformers")
    from vocalis.testing import save_tiny_hf_encoder

    return str(save_tiny_hf_encoder(tmp_path_factory.mktemp("ssl_hf") / "wavlm", "wavlm", "layer"))


def _argv(manifest: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--manifest",
        str(manifest),
        "--out",
        str(out),
        "--no-progress",
        "model=ssl",
        "features=waveform",
        "train=default",
        "features.workers=1",
        "dataset.val_protocol=split_column",
        "model.params.mlp=[16,8]",
        "model.params.encoder.freeze_layers=1",
        "model.params.encoder.unfreeze_after_epochs=1",
        "train.epochs=2",
        "train.batch_size=2",
        "train.warmup_epochs=0",
        "train.device=cpu",
        "train.optimizer=adamw",
        "train.lr_tiers={frozen: 0.01, encoder: 0.1, head: 1.0}",
        *extra,
    ]


def _waveforms() -> list[np.ndarray]:
    from vocalis.audio.io import load_audio

    root = samples_dir()
    return [load_audio(root / c[0], 16000, normalize="none").numpy() for c in CLIPS[:3]]


def _check_predict_and_export(run: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    from vocalis.inference.export import export
    from vocalis.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(run)
    assert set(predictor.classes) == {"anger", "sadness"}
    clips = _waveforms()
    probs = [np.array(list(predictor.predict_waveform(c, 16000).probs.values())) for c in clips]
    for p in probs:
        assert p.shape == (2,) and abs(p.sum() - 1) < 1e-5
    report = export(run, tmp_path / "m.onnx", format="onnx")
    assert report.max_abs_diff < TOL and report.padded_batches
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    n = np.array([len(c) for c in clips], dtype=np.int64)
    batch = np.zeros((len(clips), n.max()), dtype=np.float32)
    for i, c in enumerate(clips):
        batch[i, : len(c)] = c
    got = sess.run(["probs"], {"waveform": batch, "lengths": n})[0]
    assert np.abs(got - np.stack(probs)).max() < TOL


def _run_files(run: Path) -> str:
    for name in ("model.pt", "config.yaml", "history.csv", "metrics.json", "log.txt"):
        assert (run / name).is_file(), name
    assert len((run / "history.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    assert "lr_tiers" in (run / "config.yaml").read_text()
    return (run / "log.txt").read_text()


@needs_ort
def test_fine_tunes_ge2e_logs_the_tiers_then_predicts_and_exports(manifest, tmp_path):
    from vocalis.checkpoint import load_checkpoint
    from vocalis.cli.main import main
    from vocalis.encoders import open_encoder

    run = tmp_path / "run"
    mixup = ("model.params.encoder.layers=[1,2]", "augment.mixup.p=1", "augment.mixup.alpha=0.4")
    assert main(_argv(manifest, run, *mixup)) == 0
    log = _run_files(run)
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    for row in rows:  # clean accuracy: whole hits on the 3 un-mixed targets; mixup's: lam-weighted
        hits = float(row["train_acc"]) * 3
        assert hits == pytest.approx(round(hits), abs=1e-4)
        assert 0.0 <= float(row["train_mixup_acc"]) <= 1.0
    assert "Parameter group head: lr 0.001 (train.lr x 1)" in log
    assert (
        "Parameter group frozen: lr 1e-05 (train.lr x 0.01), 305,152 parameters (0 trainable" in log
    )
    assert "Parameter group encoder: lr 0.0001 (train.lr x 0.1), 526,336 parameters" in log
    state = load_checkpoint(run / "model.pt").model_state
    shipped = open_encoder("ge2e", [1, 2]).state_dict()
    best = json.loads((run / "metrics.json").read_text())["best_epoch"]  # 1-based

    def moved(key: str) -> bool:
        return not torch.equal(state[f"encoder.{key}"], shipped[key])

    assert moved("layers.1.weight_hh_l0")  # LSTM layer 2: trained from the start
    assert moved("layers.0.weight_hh_l0") == (best == 2)  # layer 1: frozen in epoch 1 only
    _check_predict_and_export(run, tmp_path)


@needs_ort
def test_fine_tunes_a_tiny_hf_model_with_its_feature_encoder_frozen(manifest, tiny_wavlm, tmp_path):
    from vocalis.checkpoint import load_checkpoint
    from vocalis.cli.main import main
    from vocalis.encoders import open_encoder

    run = tmp_path / "run"
    extra = (  # the spelling: model.encoder.* is model.params.encoder.*
        f"model.encoder.source={tiny_wavlm}",
        "model.encoder.freeze_feature_encoder=true",
        "model.encoder.layer_weights=learned",
        "train.gradient_checkpointing=true",
    )
    assert main(_argv(manifest, run, *extra)) == 0
    log = _run_files(run)
    with open(run / "history.csv") as f:
        assert all(row["train_mixup_acc"] == "nan" for row in csv.DictReader(f))  # no mixup
    saved = (run / "config.yaml").read_text()
    assert f"source: {tiny_wavlm}" in saved and "gradient_checkpointing: true" in saved
    assert "Parameter group frozen: lr 1e-05" in log
    state = load_checkpoint(run / "model.pt").model_state
    pretrained = open_encoder(tiny_wavlm).state_dict()
    conv = "model.feature_extractor.conv_layers.0.conv.weight"
    assert torch.equal(state[f"encoder.{conv}"], pretrained[conv])  # frozen for good
    top = "model.encoder.layers.1.feed_forward.output_dense.weight"
    assert not torch.equal(state[f"encoder.{top}"], pretrained[top])  # fine-tuned
    _check_predict_and_export(run, tmp_path)


def test_a_wrong_lr_tier_is_one_line(manifest, tmp_path, capsys):
    from vocalis.cli.main import main

    argv = _argv(manifest, tmp_path / "run", "train.lr_tiers={frozen: 0.01, encodr: 0.1}")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "train.lr_tiers.encodr" in err and "did you mean 'encoder'" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "run" / "model.pt").exists()


def test_an_absent_encoder_is_one_line(manifest, tmp_path, capsys, monkeypatch):
    import vocalis.training.trainer as trainer
    from vocalis.cli.main import main

    def no_data(*args, **kwargs):
        raise AssertionError("the audio was read before the encoder was checked")

    monkeypatch.setattr(trainer, "prepare_data", no_data)
    missing = tmp_path / "no-such-model"
    argv = _argv(manifest, tmp_path / "run", f"model.encoder.source={missing}")
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert str(missing) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # refused before the run folder and the features
    assert "features:" not in out + err


@pytest.mark.parametrize("problem", ["absent", "too_many_frozen"])
def test_an_unusable_encoder_under_loso_is_one_line_before_any_fold(
    problem, manifest, tiny_wavlm, tmp_path, capsys
):
    """Not one failure per fold: the encoder is opened once, before the folds start."""
    from vocalis.cli.main import main

    missing = tmp_path / "no-such-model"
    extra, expected = {
        "absent": ([f"model.encoder.source={missing}"], str(missing)),
        "too_many_frozen": (  # the tiny model has 2 transformer layers
            [f"model.encoder.source={tiny_wavlm}", "model.encoder.freeze_layers=5"],
            "model.params.encoder.freeze_layers: got 5, expected at most 2",
        ),
    }[problem]
    argv = ["loso", *_argv(manifest, tmp_path / "cv", *extra)[1:]]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert expected in err and len(err.strip().splitlines()) == 1
    assert "speaker_" not in out + err and not (tmp_path / "cv").exists()  # no fold ran


def test_encoder_keys_and_checkpointing_need_an_encoder():
    from vocalis.errors import ConfigError
    from vocalis.models import build_model
    from vocalis.training.config import load_config

    with pytest.raises(ConfigError, match=r"unknown key 'model\.params\.encoder'"):
        load_config(None, ["model.encoder.source=ge2e"])
    tier1 = build_model("tier1", {}, 13, 2)
    with pytest.raises(ConfigError, match=r"train\.gradient_checkpointing"):
        tier1.set_gradient_checkpointing(True)


@needs_ort
def test_a_group_norm_encoder_trains_predicts_and_exports_for_one_clip_per_call(
    manifest, tmp_path, capsys
):
    """wav2vec 2.0 base's group norm spans the whole input: the graph is exact per clip."""
    pytest.importorskip("transformers")
    import onnxruntime as ort

    from vocalis.cli.main import main
    from vocalis.inference.export import read_metadata
    from vocalis.inference.predictor import Predictor
    from vocalis.testing import save_tiny_hf_encoder

    w2v = save_tiny_hf_encoder(tmp_path / "w2v", "wav2vec2", "group")  # wav2vec 2.0 base's norm
    run = tmp_path / "run"
    argv = _argv(manifest, run, f"model.encoder.source={w2v}", "train.epochs=1")
    assert main(argv) == 0
    predictor = Predictor.from_checkpoint(run)
    wave = _waveforms()[0]
    probs = predictor.predict_waveform(wave, 16000).probs
    assert abs(sum(probs.values()) - 1) < 1e-5
    for fmt, name in (("onnx", "m.onnx"), ("torchscript", "m.pt")):
        capsys.readouterr()
        out = tmp_path / name
        assert main(["export", "--checkpoint", str(run), "--format", fmt, "--out", str(out)]) == 0
        said = capsys.readouterr()
        assert "NOT exact: one clip per call" in said.out, said
        assert "loss_type" not in said.err  # no transformers noise
        meta = read_metadata(out)
        assert meta["padded_batches"] is False and meta["max_abs_diff"] < 1e-4
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = wave[None].astype(np.float32)
    got = session.run(["probs"], {"waveform": x, "lengths": np.array([x.shape[1]])})[0][0]
    want = [probs[c] for c in meta["classes"]]
    assert np.abs(got - np.array(want)).max() < TOL
