"""Every shipped recipe trains for one epoch on a tiny corpus and writes a full run folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from vocalis.training import load_config, train
from vocalis.training.runfolder import RUN_FILES

ALL_RECIPES = sorted((Path(__file__).resolve().parents[2] / "configs" / "recipes").glob("*.yaml"))
#: Neural recipes; the ensemble ones (``kind: ensemble``) have their tests in tests/ensemble.
RECIPES = [p for p in ALL_RECIPES if "kind: ensemble" not in p.read_text()]

#: Shrink the models (the recipes' architecture and training settings stay as shipped).
SMALL = {
    "tier1": [
        "model.params.channels=[8]",
        "model.params.lstm_hidden=8",
        "model.params.pooling_hidden=8",
    ],
    "ecapa": [
        "model.params.preset=null",
        "model.params.channels=[16,16,16,16,48]",
        "model.params.se_channels=8",
        "model.params.attention_channels=8",
        "model.params.embedding_dim=16",
        "model.params.res2net_scale=4",
    ],
    "sv_fusion": [
        "model.params.width=16",
        "model.params.cnn_channels=[16]",
        "model.params.ecapa_channels=[16,16,16,48]",
        "model.params.se_channels=4",
        "model.params.attention_channels=4",
        "model.params.embedding_dim=8",
    ],
    "ssl": ["model.params.mlp=[8]"],
}


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory) -> str:
    """A tiny random wav2vec 2.0 folder standing in for a recipe's real model."""
    pytest.importorskip("transformers")
    from vocalis.testing import save_tiny_hf_encoder

    return str(save_tiny_hf_encoder(tmp_path_factory.mktemp("w2v") / "w2v", "wav2vec2", "layer"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_smoke(recipe, corpus, tmp_path, request):
    shipped = load_config(recipe, [])
    name = shipped.model.name
    extra = list(SMALL[name])
    if name == "ssl" and shipped.model.params.encoder.source != "ge2e":
        extra.append(f"model.encoder.source={request.getfixturevalue('tiny_wav2vec2')}")
    cfg = load_config(
        recipe,
        [
            f"dataset.manifest={corpus}",
            "dataset.val_fraction=0.34",
            "features.cache_dir=null",
            "features.workers=1",
            "train.epochs=1",
            "train.batch_size=4",
            *extra,
        ],
    )
    out = tmp_path / recipe.stem
    result = train(cfg, out, test_indices=[0, 9], progress=False)
    members = shipped.train.members
    runs = [out / "members" / str(k) for k in range(members)] if members > 1 else [out]
    for run in runs:  # every member is a complete run folder
        for f in (*RUN_FILES, "predictions.csv"):
            assert (run / f).is_file(), (run, f)
    if members > 1:  # the ensemble: one model.pt of every member, scored on the test rows
        assert len(result.model.members) == members and result.test_metrics is not None
        for f in ("model.pt", "metrics.json", "predictions.csv", "config.yaml"):
            assert (out / f).is_file(), f
    else:
        assert len(result.history) == 1
