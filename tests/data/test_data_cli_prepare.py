"""``vocalis prepare`` end to end."""

from __future__ import annotations

import pytest

from vocalis.cli.main import main
from vocalis.data import read_manifest
from vocalis.testing import make_audio_tree


def test_prepare_folder_writes_manifest_and_prints_counts(tmp_path, capsys):
    make_audio_tree(tmp_path / "c", ["happy/s1_a.wav", "happy/s2_b.wav", "sad/s1_c.wav"])
    out = tmp_path / "m.csv"
    rc = main(
        ["prepare", "folder", str(tmp_path / "c"), "--out", str(out), "-O", "speaker_regex=(s\\d)_"]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "3 rows" in text and "2 speakers: s1 (2), s2 (1)" in text
    assert "2 labels: happy (2), sad (1)" in text
    m = read_manifest(out)
    assert m.speakers == ["s1", "s2", "s1"]


def test_prepare_label_map_and_unmapped(tmp_path, capsys):
    make_audio_tree(tmp_path / "c", ["happy/a.wav", "calm/b.wav"])
    out = tmp_path / "m.csv"
    assert (
        main(["prepare", "folder", str(tmp_path / "c"), "--out", str(out), "--label-map", "4class"])
        == 1
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "label 'calm' is not in 4class" in err
    assert (
        main(
            [
                "prepare",
                "folder",
                str(tmp_path / "c"),
                "--out",
                str(out),
                "--label-map",
                "4class",
                "--unmapped",
                "drop",
            ]
        )
        == 0
    )
    assert read_manifest(out).labels() == ["happy"]


def test_prepare_unknown_corpus_lists_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["prepare", "nope", "x", "--out", "y.csv"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err and "'emodb'" in err and "'uid-folders'" in err


def test_prepare_bad_root_is_one_line(tmp_path, capsys):
    rc = main(["prepare", "emodb", str(tmp_path), "--out", str(tmp_path / "m.csv")])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith("vocalis prepare: error: EmoDB root") and err.count("\n") == 1


@pytest.mark.emodb
def test_prepare_emodb_cli(emodb_path, tmp_path, capsys):
    out = tmp_path / "emodb.csv"
    assert main(["prepare", "emodb", str(emodb_path), "--out", str(out)]) == 0
    assert "535 rows" in capsys.readouterr().out
    assert len(read_manifest(out)) == 535
