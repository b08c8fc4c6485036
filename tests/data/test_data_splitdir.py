"""Split folders: id lists of train / val / test parts, their format and their refusals."""

from __future__ import annotations

import pytest

from vocalis.data import Manifest
from vocalis.data.splitdir import read_ids, read_split_dir, split_manifest
from vocalis.errors import DataError


def _manifest():
    return Manifest(
        [
            {"path": f"/c/wav/{k}.wav", "label": "x", "speaker": k[0]}
            for k in ("a1", "a2", "b1", "c1")
        ],
        source="m.csv",
    )


def test_header_names_the_id_column_or_one_bare_column(tmp_path):
    (tmp_path / "a.csv").write_text("speaker,uid\nA,a1\nA,a2\n")
    (tmp_path / "b.csv").write_text("a1\na2\n\n")
    (tmp_path / "c.csv").write_text("x,y\n1,2\n")
    assert read_ids(tmp_path / "a.csv") == ["a1", "a2"]
    assert read_ids(tmp_path / "b.csv") == ["a1", "a2"]
    with pytest.raises(DataError, match=r"c\.csv: 2 columns \(x, y\) and none is an id column"):
        read_ids(tmp_path / "c.csv")


def test_parts_by_id_or_file_name_and_val_optional(tmp_path):
    (tmp_path / "train.csv").write_text("id\na1\na2.wav\n")  # a file name matches too
    (tmp_path / "test.csv").write_text("id\nc1\n")
    parts = read_split_dir(tmp_path).indices(_manifest())
    assert parts.train.tolist() == [0, 1] and parts.val is None and parts.test.tolist() == [3]
    (tmp_path / "val.csv").write_text("id\nb1\n")
    subsets = split_manifest(_manifest(), tmp_path)
    assert {k: v.column("id") for k, v in subsets.items()} == {
        "train": ["a1", "a2"], "val": ["b1"], "test": ["c1"]
    }  # fmt: skip
    assert subsets["test"].source == f"m.csv [test.csv of {tmp_path}]"


def test_refusals_are_one_line(tmp_path):
    with pytest.raises(DataError, match=r"split folder without train\.csv and test\.csv"):
        read_split_dir(tmp_path)
    (tmp_path / "train.csv").write_text("id\na1\nzz\nyy\n")
    (tmp_path / "test.csv").write_text("id\nc1\n")
    with pytest.raises(DataError, match=r"train\.csv: id 'zz' and 1 more not in m\.csv"):
        read_split_dir(tmp_path).indices(_manifest())
    (tmp_path / "train.csv").write_text("id\na1\nc1\n")
    with pytest.raises(DataError, match=r"test\.csv: id 'c1' is listed in train\.csv too"):
        read_split_dir(tmp_path).indices(_manifest())
    (tmp_path / "train.csv").write_text("id\na1\na1\n")
    with pytest.raises(DataError, match=r"id 'a1' is listed twice"):
        read_split_dir(tmp_path).indices(_manifest())


def test_a_split_folder_on_a_store():
    from vocalis.io import write_text

    write_text("memory://splits-test/s/train.csv", "id\na1\nb1\n")
    write_text("memory://splits-test/s/test.csv", "id\nc1\n")
    parts = read_split_dir("memory://splits-test/s/").indices(_manifest())
    assert parts.train.tolist() == [0, 2] and parts.test.tolist() == [3]


def test_relative_paths_fall_back_to_the_working_directory(tmp_path, monkeypatch, caplog):
    from vocalis.data import read_manifest

    (tmp_path / "wav").mkdir()
    (tmp_path / "wav" / "a.wav").write_bytes(b"")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "b.wav").write_bytes(b"")
    csv = tmp_path / "lists" / "m.csv"
    csv.write_text("path,label\nwav/a.wav,x\nb.wav,y\nnowhere.wav,z\n")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("INFO", logger="vocalis.data.manifest"):
        m = read_manifest(csv)
    assert m.paths == [
        str(tmp_path / "wav" / "a.wav"),  # only under the working directory
        str(tmp_path / "lists" / "b.wav"),  # beside the CSV: the CSV's folder wins
        str(tmp_path / "lists" / "nowhere.wav"),  # nowhere: the CSV's folder (named in errors)
    ]
    (line,) = [r.getMessage() for r in caplog.records]
    assert f"1 relative audio path(s) resolved against the working directory {tmp_path}" in line
    assert "2 against the CSV's folder" in line


def test_prediction_manifests_resolve_paths_like_training_manifests(tmp_path, monkeypatch):
    from vocalis.inference.inputs import collect_inputs

    (tmp_path / "wav").mkdir()
    (tmp_path / "wav" / "a.wav").write_bytes(b"")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "p.csv").write_text("path\nwav/a.wav\n")  # no label column
    monkeypatch.chdir(tmp_path)
    assert collect_inputs([str(tmp_path / "lists" / "p.csv")]) == [
        (str(tmp_path / "wav" / "a.wav"), "a")
    ]
