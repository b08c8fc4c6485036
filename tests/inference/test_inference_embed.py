"""Embeddings: kinds, shapes, saved arrays, errors, batch invariance."""

from __future__ import annotations

import numpy as np
import pytest

from vocalis.errors import ConfigError, ModelError
from vocalis.inference.embed import embed


@pytest.fixture(scope="module")
def manifest(clips_dir):
    path = clips_dir / "labelled.csv"
    path.write_text("path,label,speaker\na.wav,sad,s1\nsub/b.wav,angry,s2\nc.flac,sad,s1\n")
    return path


def test_pt_embeddings_to_npz(tier1_ckpt, manifest, tmp_path, clips_dir):
    out = tmp_path / "emb.npz"
    result = embed(tier1_ckpt, manifest=manifest, kind="pt", out=out, batch_size=2, progress=False)
    data = np.load(out)
    assert data["embeddings"].shape == result.embeddings.shape == (3, result.embeddings.shape[1])
    assert data["embeddings"].dtype == np.float32
    assert list(data["ids"]) == ["a", "b", "c"]
    assert list(data["labels"]) == ["sad", "angry", "sad"]
    assert next(iter(data["paths"])) == str(clips_dir / "a.wav")
    assert str(data["kind"]) == "pt"
    # batching does not change an embedding
    alone = embed(tier1_ckpt, inputs=[clips_dir / "c.flac"], progress=False)
    assert alone.labels is None
    np.testing.assert_allclose(alone.embeddings[0], result.embeddings[2], atol=1e-5)


def test_st_needs_a_shared_layer(tier1_ckpt, ecapa_ckpt, manifest, tmp_path):
    with pytest.raises(ModelError, match="shared") as err:
        embed(tier1_ckpt, manifest=manifest, kind="st", out=tmp_path / "x.npz", progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "x.npz").exists()
    st = embed(ecapa_ckpt, manifest=manifest, kind="st", progress=False)
    assert st.embeddings.shape == (3, 12)  # the fixture's shared_dim
    ft = embed(ecapa_ckpt, manifest=manifest, kind="ft", pooling="sum", progress=False)
    assert ft.embeddings.shape == (3, 10) and np.isfinite(ft.embeddings).all()


def test_unknown_kind_and_unreadable_files(tier1_ckpt, clips_dir):
    with pytest.raises(ConfigError, match="--type"):
        embed(tier1_ckpt, inputs=[clips_dir / "a.wav"], kind="xx", progress=False)
    result = embed(
        tier1_ckpt, inputs=[clips_dir / "a.wav", clips_dir / "broken.wav"], progress=False
    )
    assert result.ids == ["a"] and result.failed == [str(clips_dir / "broken.wav")]
