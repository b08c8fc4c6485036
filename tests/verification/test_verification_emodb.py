"""``vocalis verify`` on real EmoDB speakers with the GE2E anchor, calibrated on other speakers."""

from __future__ import annotations

import pytest

from vocalis.cli.main import main
from vocalis.data import Manifest

pytestmark = pytest.mark.emodb


@pytest.fixture(scope="module")
def ge2e_weights():
    from vocalis.encoders.ge2e import find_weights
    from vocalis.errors import ConfigError

    try:
        return find_weights(None, 3)
    except ConfigError as err:
        pytest.skip(f"GE2E speaker embedding needs the full weights: {err}")


def test_verify_accepts_one_speaker_and_rejects_two(emodb_path, ge2e_weights, tmp_path, capsys):
    wav = emodb_path / "wav"
    # development speakers: every EmoDB speaker but the two verified below (03, 08)
    rows = [
        {"path": str(p), "id": p.stem, "label": "x", "speaker": p.name[:2]}
        for p in sorted(wav.glob("*.wav"))
        if p.name[:2] not in ("03", "08") and p.name[2:5] in ("a01", "a02", "a04", "a05")
    ]
    Manifest(rows).write(tmp_path / "dev.csv")
    dev = tmp_path / "dev.tsv"
    argv = ["sv", "trials", str(tmp_path / "dev.csv"), "--out", str(dev), "--per-speaker", "8"]
    assert main(argv) == 0
    verifier = tmp_path / "ge2e_sv"
    argv = ["sv", "calibrate", "--checkpoint", "ge2e", "--trials", str(dev), "--no-progress"]
    assert main(argv) == 1  # ge2e has no checkpoint to hold the threshold
    assert "pass --out DIR" in capsys.readouterr().err
    assert main([*argv, "--out", str(verifier), "--at", "eer"]) == 0
    assert "stored in" in capsys.readouterr().out
    assert (verifier / "verification.json").is_file()

    same = [str(wav / "03a01Nc.wav"), str(wav / "03a02Nc.wav")]
    other = [str(wav / "03a01Nc.wav"), str(wav / "08a01Na.wav")]
    assert main(["verify", *same, "--checkpoint", str(verifier)]) == 0
    line = capsys.readouterr().out
    assert "  accept  (threshold " in line and f"calibrated at eer on {dev}" in line
    assert main(["verify", *other, "--checkpoint", str(verifier)]) == 0
    assert "  reject  (threshold " in capsys.readouterr().out
