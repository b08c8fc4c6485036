"""The checkpoint format: typed spec, atomic save, validated load, slim copies for shipping."""

from __future__ import annotations

import pytest
import torch

from vocalis.checkpoint import (
    FORMAT_VERSION,
    TRAINING_KEYS,
    Checkpoint,
    load_checkpoint,
    save_checkpoint,
    slim_checkpoint,
)
from vocalis.errors import ModelError

PAYLOAD = {
    "model": {"kind": "neural", "name": "m", "config": {}, "input_dim": 2, "num_classes": 2},
    "model_state": {"w": torch.ones(2)},
    "pipeline": {"tier0": {"sample_rate": 8000}, "features": {"name": "mfcc"}},
    "normalization": {"mode": "none", "state": None},
    "labels": {"classes": ["a", "b"]},
}


def test_roundtrip_is_typed_and_slim_drops_training_state(tmp_path):
    full = dict(PAYLOAD, optimizer={"state": {}}, rng={"torch": torch.zeros(3)}, epoch=4)
    save_checkpoint(tmp_path / "run.pt", full)
    ckpt = load_checkpoint(tmp_path / "run.pt")
    assert isinstance(ckpt, Checkpoint) and ckpt.format_version == FORMAT_VERSION == 2
    assert ckpt.kind == "neural" and ckpt.model.input_dim == 2 and ckpt.classes == ("a", "b")
    assert ckpt.tier0.sample_rate == 8000 and ckpt.features.name == "mfcc"
    assert ckpt.training["epoch"] == 4 and "optimizer" in ckpt.training
    assert ckpt.source == str(tmp_path / "run.pt")
    slim = slim_checkpoint(tmp_path / "run.pt", tmp_path / "ship.pt")
    loaded = load_checkpoint(tmp_path / "ship.pt")
    assert not set(TRAINING_KEYS) & set(loaded.training) and not set(TRAINING_KEYS) & set(
        slim.training
    )
    assert torch.equal(loaded.model_state["w"], torch.ones(2)) and loaded.training["epoch"] == 4
    assert (tmp_path / "ship.pt").stat().st_size < (tmp_path / "run.pt").stat().st_size
    # a Checkpoint saves as itself
    save_checkpoint(tmp_path / "again.pt", loaded)
    again = load_checkpoint(tmp_path / "again.pt")
    assert again.to_payload().keys() == loaded.to_payload().keys()


def test_an_ensemble_needs_no_feature_config(tmp_path):
    payload = dict(
        PAYLOAD,
        model={"kind": "ensemble", "name": "late_fusion", "config": {"members": 2}},
        pipeline={"tier0": {}, "features": None},
    )
    save_checkpoint(tmp_path / "ens.pt", payload)
    ckpt = load_checkpoint(tmp_path / "ens.pt")
    assert ckpt.kind == "ensemble" and ckpt.features is None and ckpt.model.input_dim is None


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=r"not a checkpoint \(16 bytes that are not a torch file"):
        load_checkpoint(tmp_path / "junk.pt")
    save_checkpoint(tmp_path / "whole.pt", PAYLOAD)
    data = (tmp_path / "whole.pt").read_bytes()
    for name, damaged in (
        ("cut.pt", data[: len(data) // 2]),  # an interrupted copy
        ("flipped.pt", data[:-200] + bytes(200)),  # its end overwritten
    ):
        (tmp_path / name).write_bytes(damaged)
        with pytest.raises(ModelError, match=rf"{name}: truncated or corrupt checkpoint"):
            load_checkpoint(tmp_path / name)
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
    with pytest.raises(ModelError, match="needs 'kind' and 'name'"):
        save_checkpoint(tmp_path / "x.pt", dict(PAYLOAD, model={"name": "m"}))


def test_an_old_format_names_its_version_and_the_fix(tmp_path):
    save_checkpoint(tmp_path / "v.pt", PAYLOAD)
    data = torch.load(tmp_path / "v.pt", weights_only=True)
    data["format_version"] = 1
    data["vocalis_version"] = "0.0.9"
    torch.save(data, tmp_path / "v1.pt")
    with pytest.raises(ModelError) as err:
        load_checkpoint(tmp_path / "v1.pt")
    message = str(err.value)
    assert "\n" not in message
    assert "format 1 (Vocalis 0.0.9)" in message and "convert_checkpoint_v1.py" in message


def test_members_are_stored_only_for_an_ensemble_and_checked(tmp_path):
    save_checkpoint(tmp_path / "one.pt", PAYLOAD)
    one = load_checkpoint(tmp_path / "one.pt")
    assert one.model.members == 1 and "members" not in one.model.to_dict()  # older readers
    three = dict(PAYLOAD, model={**PAYLOAD["model"], "members": 3})
    save_checkpoint(tmp_path / "three.pt", three)
    assert load_checkpoint(tmp_path / "three.pt").model.to_dict()["members"] == 3
    for bad in (0, "2", True):
        with pytest.raises(ModelError, match=r"'model\.members' is .*, expected an int >= 1"):
            save_checkpoint(
                tmp_path / "bad.pt", dict(PAYLOAD, model={**PAYLOAD["model"], "members": bad})
            )
