"""``vocalis sv`` and ``vocalis verify`` end to end on tiny synthetic data."""

from __future__ import annotations

import json

from vocalis.cli.main import main
from vocalis.data import Manifest


def _manifest(path, speakers="abcd", n=4):
    rows = [
        {"path": f"/audio/{s}{i}.wav", "id": f"{s}{i}", "label": "x", "speaker": s}
        for s in speakers
        for i in range(n)
    ]
    Manifest(rows).write(path)
    return path


def test_sv_trials_writes_the_list_and_refuses_training_speakers(tmp_path, capsys):
    m = _manifest(tmp_path / "m.csv")
    train = _manifest(tmp_path / "train.csv", speakers="bx")
    out = tmp_path / "trials.tsv"
    assert main(["sv", "trials", str(m), "--out", str(out), "--per-speaker", "3"]) == 0
    assert "24 trials (12 target, 12 non-target) among 4 speakers" in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 24
    assert json.loads(out.with_suffix(".json").read_text())["n_target"] == 12
    argv = ["sv", "trials", str(m), "--out", str(out), "--exclude-speakers-of", str(train)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "1 of its 4 speakers were seen in training" in err and len(err.splitlines()) == 1
    assert main([*argv, "--drop-seen"]) == 0
    assert "among 3 speakers" in capsys.readouterr().out
