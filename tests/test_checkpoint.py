"""The checkpoint format: atomic save, validated load, slim copies for shipping."""

from __future__ import annotations

import pytest
import torch

from vocalis.checkpoint import TRAINING_KEYS, load_checkpoint, save_checkpoint, slim_checkpoint
from vocalis.errors import ModelError

PAYLOAD = {
    "model": {"name": "m", "config": {}, "input_dim": 2, "num_classes": 2},
    "model_state": {"w": torch.ones(2)},
    "pipeline": {"tier0": {}, "features": {}},
    "normalization": {"mode": "none", "state": None},
    "labels": {"classes": ["a", "b"]},
}


def test_roundtrip_and_slim(tmp_path):
    full = dict(PAYLOAD, optimizer={"state": {}}, rng={"torch": torch.zeros(3)}, epoch=4)
    save_checkpoint(tmp_path / "run.pt", full)
    assert load_checkpoint(tmp_path / "run.pt")["epoch"] == 4
    slim = slim_checkpoint(tmp_path / "run.pt", tmp_path / "ship.pt")
    loaded = load_checkpoint(tmp_path / "ship.pt")
    assert not set(TRAINING_KEYS) & set(loaded) and not set(TRAINING_KEYS) & set(slim)
    assert torch.equal(loaded["model_state"]["w"], torch.ones(2)) and loaded["epoch"] == 4
    assert (tmp_path / "ship.pt").stat().st_size < (tmp_path / "run.pt").stat().st_size


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not a Vocalis checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    save_checkpoint(tmp_path / "new.pt", PAYLOAD)
    data = torch.load(tmp_path / "new.pt", weights_only=True)
    data["format_version"] = 99
    torch.save(data, tmp_path / "new.pt")
    with pytest.raises(ModelError, match="newer than this Vocalis"):
        load_checkpoint(tmp_path / "new.pt")
    with pytest.raises(ModelError, match="lacks"):
        save_checkpoint(tmp_path / "x.pt", {"model": {}})
