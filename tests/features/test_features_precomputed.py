"""Precomputed inputs: .pt files keyed by utterance id, .npy files, and training on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vocalis.errors import ConfigError, DataError, ModelError
from vocalis.features.precomputed import load_pt, read_inputs, rows_from_pt, stack_inputs

torch.set_num_threads(1)

SPEAKERS = ("a", "b", "c")


def _pt_files(tmp_path, n_per=6, layers=3, hidden=8, c=5):
    """An embedding .pt (L, T', H) per id + speakers, a feature .pt (C, T) per id."""
    g = torch.Generator().manual_seed(0)
    emb, feats, spk = {}, {}, {}
    for s_i, s in enumerate(SPEAKERS):
        for k in range(n_per):
            rid = f"{s}_{k}"
            t = 20 + 3 * k
            # speaker-dependent offsets so that two steps can learn something
            emb[rid] = torch.randn(layers, t // 2, hidden, generator=g) + s_i
            feats[rid] = torch.randn(c, t, generator=g) - s_i
            spk[rid] = s
    e, f = tmp_path / "embedding.pt", tmp_path / "feature.pt"
    torch.save({"embeddings": emb, "speakers": spk}, e)
    torch.save({rid: {"features": x, "speaker": spk[rid]} for rid, x in feats.items()}, f)
    return e, f, emb, feats


def test_stack_puts_layers_first_then_features_on_the_feature_frames():
    emb = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)  # L=2, T'=3, H=4
    feats = torch.full((5, 6), -1.0)  # C=5, T=6
    x = stack_inputs(emb, feats)
    assert x.shape == (2 * 4 + 5, 6)
    # channel l*H + h at frame k is layer l, hidden h, PTM frame k*3//6
    assert x[4 + 1, 5].item() == emb[1, 2, 1].item() and x[0, 0].item() == emb[0, 0, 0].item()
    assert torch.all(x[8:] == -1)
    vec = stack_inputs(torch.ones(7), feats)  # one vector per utterance: on every frame
    assert vec.shape == (12, 6) and torch.all(vec[:7] == 1)
    assert stack_inputs(emb, None).shape == (8, 3) and stack_inputs(None, feats) is feats


def test_pt_layouts_and_errors(tmp_path):
    e, f, emb, _ = _pt_files(tmp_path)
    a, b = load_pt(e), load_pt(f)
    assert set(a.tensors) == set(b.tensors) == set(emb) and a.speakers == b.speakers
    torch.save({"x1": torch.ones(3)}, tmp_path / "plain.pt")
    assert load_pt(tmp_path / "plain.pt").speakers == {}
    with pytest.raises(DataError, match="no speaker labels"):
        rows_from_pt(str(tmp_path / "plain.pt"))
    torch.save({"x1": "text"}, tmp_path / "bad.pt")
    with pytest.raises(DataError, match="entry 'x1' is a str, expected a tensor"):
        load_pt(tmp_path / "bad.pt")
    with pytest.raises(DataError, match="do not exist"):
        load_pt(tmp_path / "missing.pt")
    rows = rows_from_pt(str(e), str(f))
    assert len(rows) == 18 and rows[0]["label"] == rows[0]["speaker"]
    x, missing = read_inputs(["a_0", "zz"], embedding_path=str(e), feature_path=str(f))
    assert x[0].shape == (3 * 8 + 5, 20) and x[1] is None and missing[0][0] == "zz"


def test_npy_folder_and_refusals(tmp_path):
    np.save(tmp_path / "u1.npy", np.ones((4, 9), dtype=np.float32))
    x, missing = read_inputs(["u1", "u2"], dir=str(tmp_path))
    assert x[0].shape == (4, 9) and x[1] is None and "u2" in missing[0][1]
    np.save(tmp_path / "u3.npy", np.ones(9))
    with pytest.raises(DataError, match=r"expected \(C, T\)"):
        read_inputs(["u3"], dir=str(tmp_path))
    with pytest.raises(ConfigError, match="keep one"):
        read_inputs(["u1"], dir=str(tmp_path), feature_path="f.pt")
    from vocalis.training.config import load_config

    with pytest.raises(ConfigError, match="precomputed inputs go together"):
        load_config(None, ["features=npy"])
    with pytest.raises(ConfigError, match="precomputed inputs go together"):
        load_config(None, ["features.dir=somewhere"])


def _tiny(mode: int, hidden: int = 8) -> list[str]:
    return [
        f"model.mode={mode}",
        "model.fusion=gating",
        f"model.ptm_hidden={hidden}",
        "model.width=16",
        "model.cnn_channels=[16]",
        "model.ecapa_channels=[16,16,16,48]",
        "model.embedding_dim=8",
        "model.se_channels=4",
        "model.attention_channels=4",
        "train.epochs=1",
        "train.batch_size=8",
        "train.crop_seconds=null",
        "train.device=cpu",
        "dataset.val_fraction=0.3",
    ]


def test_train_on_pt_files_without_a_manifest(tmp_path, capsys):
    from vocalis.cli.main import main
    from vocalis.inference.pipeline import load_pipeline

    e, f, _, _ = _pt_files(tmp_path)
    out = tmp_path / "run"
    args = ["train", "--config", "sv_fusion", "--embedding-path", str(e), "--feature-path",
            str(f), "--out", str(out), "--no-progress", *_tiny(3)]  # fmt: skip
    assert main(args) == 0
    assert (out / "model.pt").is_file() and (out / "gating.csv").is_file()
    log = (out / "log.txt").read_text()
    assert "precomputed features (F=29" in log and "3 classes (a, b, c)" in log
    with pytest.raises((ConfigError, ModelError), match="read from files"):
        load_pipeline(out / "model.pt")


def test_train_on_npy_folder(tmp_path):
    import csv

    from vocalis.training import train
    from vocalis.training.config import load_config

    feats_dir = tmp_path / "npy"
    feats_dir.mkdir()
    rows = []
    rng = np.random.default_rng(0)
    for s_i, s in enumerate(SPEAKERS):
        for k in range(6):
            rid = f"{s}{k}"
            np.save(feats_dir / f"{rid}.npy", (rng.normal(size=(41, 25)) + s_i).astype(np.float32))
            rows.append({"path": f"/nowhere/{rid}.wav", "id": rid, "speaker": s, "label": "x"})
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    over = [f"dataset.manifest={manifest}", "features=npy", f"features.dir={feats_dir}",
            "model.features=mfcc_pitch", *_tiny(2)]  # fmt: skip
    result = train(load_config("sv_fusion", over), tmp_path / "run", progress=False)
    assert result.history and len(result.classes) == 3
