"""Manifest: reading, writing, selection and the errors users hit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vocalis.data.manifest import Manifest, read_manifest
from vocalis.errors import DataError


def _csv(tmp_path: Path, text: str, name: str = "m.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_read_resolves_relative_paths_and_defaults_ids(tmp_path):
    p = _csv(tmp_path, "path,label,speaker,extra\nwav/a.wav,sad,s1,x\n/abs/b.flac,happy,s2,\n")
    m = read_manifest(p)
    assert m.paths == [str(tmp_path / "wav" / "a.wav"), "/abs/b.flac"]
    assert m.ids == ["a", "b"]
    assert m.columns == ("path", "label", "id", "speaker", "extra")
    assert m.column("extra") == ["x", ""]
    assert m.speakers == ["s1", "s2"]
    assert m.source == str(p)


def test_read_accepts_legacy_columns(tmp_path):
    m = read_manifest(_csv(tmp_path, "file_path,emotion_code\nx/03a01Wa.wav,W\n"))
    assert m.columns == ("path", "label", "id")
    assert m.labels() == ["W"]
    assert m.renamed == {"file_path": "path", "emotion_code": "label"}
    assert m.paths == [str(tmp_path / "x" / "03a01Wa.wav")]


def test_read_without_label_when_not_required(tmp_path):
    p = _csv(tmp_path, "file_path,speaker\na.wav,s1\n")
    with pytest.raises(DataError, match="missing column"):
        read_manifest(p)
    m = read_manifest(p, required=("path",))
    assert m.columns == ("path", "id", "speaker") and m.ids == ["a"]


def test_read_strips_bom_and_skips_blank_lines(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufeffpath,label\na.wav,n\n\n,\n".encode())
    assert read_manifest(p).labels() == ["n"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("path,label\n", "no rows"),
        ("wav,emotion_x\na.wav,b\n", r"missing column\(s\) path, label; found: wav, emotion_x"),
        ("path,label\na.wav,x\n,y\n", r"row 2 \(line 3\) has an empty path"),
        ("path,label\na.wav,x\nsub/a.wav,y\n", "share the id 'a'.*add an 'id' column"),
        ("id,path,label\nu1,a.wav,x\nu1,b.wav,y\n", "rows 1 and 2 share the id 'u1'.*own value in"),
    ],
)
def test_read_errors_name_the_problem(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        read_manifest(_csv(tmp_path, text))


def test_exact_duplicate_rows_are_dropped_with_a_warning(tmp_path, caplog):
    text = "id,path,label\nu1,a.wav,x\nu2,b.wav,y\nu1,a.wav,x\nu2,b.wav,y\n"
    with caplog.at_level("WARNING", logger="vocalis.data.manifest"):
        m = read_manifest(_csv(tmp_path, text))
    assert m.ids == ["u1", "u2"] and m.duplicates == [(3, 1), (4, 2)]
    assert "dropped 2 exact duplicate row(s): 3 (= 1), 4 (= 2)" in caplog.text
    # the same path under two ids is two rows (e.g. two labels of one clip): both kept
    two = read_manifest(_csv(tmp_path, "id,path,label\nu1,a.wav,x\nu2,a.wav,x\n"))
    assert two.ids == ["u1", "u2"] and two.duplicates == []


def test_select_refuses_a_repeated_index(tmp_path):
    m = read_manifest(_csv(tmp_path, "path,label\na.wav,x\nb.wav,y\n"))
    assert m.select([1, 0]).ids == ["b", "a"]
    with pytest.raises(DataError, match="row index 1 more than once"):
        m.select([1, 0, 1])


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_manifest(tmp_path / "nope.csv")


def test_speakers_refuses_without_column(tmp_path):
    m = read_manifest(_csv(tmp_path, "path,label\na.wav,x\n"))
    with pytest.raises(DataError, match=r"m\.csv has no 'speaker' column; LOSO needs one"):
        _ = m.speakers
    with pytest.raises(DataError, match="lacks column"):
        m.require("label", "speaker")
    m.require("path", "label")


def test_empty_speaker_cell_is_refused():
    m = Manifest([{"path": "/a.wav", "speaker": "s"}, {"path": "/b.wav", "speaker": ""}])
    with pytest.raises(DataError, match=r"1 row.*empty 'speaker'.*row 2"):
        _ = m.speakers


def test_write_round_trips_relative_and_absolute(tmp_path):
    rows = [
        {"path": str(tmp_path / "out" / "wav" / "a.wav"), "label": "x", "note": 'a,b "q"'},
        {"path": "/elsewhere/b.wav", "label": "y", "id": "custom"},
        {"path": "memory://bucket/c.wav", "label": "z"},
    ]
    m = Manifest(rows, source="test")
    out = tmp_path / "out" / "m.csv"
    m.write(out)
    lines = out.read_text().splitlines()
    assert lines[1].startswith("wav/a.wav,")  # inside the CSV's folder -> relative
    assert "/elsewhere/b.wav" in lines[2]
    back = read_manifest(out)
    assert back == m
    assert not list(out.parent.glob(".*.part"))


def test_write_and_read_through_fsspec_memory():
    m = Manifest([{"path": "memory://vocalis-data-test/wav/a.wav", "label": "x"}])
    m.write("memory://vocalis-data-test/m.csv")
    back = read_manifest("memory://vocalis-data-test/m.csv")
    assert back.paths == ["memory://vocalis-data-test/wav/a.wav"]


def test_relative_paths_against_url_parent():
    import fsspec

    with fsspec.open("memory://vocalis-data-test2/lists/m.csv", "w") as fh:
        fh.write("path,label\n../wav/a.wav,x\n")
    assert read_manifest("memory://vocalis-data-test2/lists/m.csv").paths == [
        "memory://vocalis-data-test2/wav/a.wav"
    ]


def test_select_filter_with_column_do_not_alias():
    m = Manifest([{"path": f"/w/{i}.wav", "label": "ab"[i % 2]} for i in range(5)])
    assert m[1:3].ids == ["1", "2"] and m[-1]["id"] == "4"
    sub = m.select(np.array([4, 0]))
    assert sub.ids == ["4", "0"]
    assert m.filter(lambda r: r["label"] == "b").ids == ["1", "3"]
    row = next(iter(m))
    row["label"] = "changed"
    assert m.labels()[0] == "a"
    m2 = m.with_column("speaker", ["s"] * 5)
    assert "speaker" not in m.columns and m2.speakers == ["s"] * 5
    assert m.counts() == {"a": 3, "b": 2}
    with pytest.raises(DataError, match="3 values for 5 rows"):
        m.with_column("x", [1, 2, 3])


def test_labels_reject_empty_cells():
    m = Manifest([{"path": "/a.wav", "label": ""}])
    with pytest.raises(DataError, match="empty 'label'"):
        m.labels()


def test_concat_and_summary():
    a = Manifest([{"path": "/a.wav", "label": "x", "speaker": "1"}])
    b = Manifest([{"path": "/b.wav", "label": "y", "gender": "female"}])
    c = Manifest.concat([a, b])
    assert len(c) == 2 and c.columns == ("path", "label", "id", "speaker", "gender")
    s = a.summary()
    assert "1 rows" in s and "1 speakers: 1 (1)" in s and "x (1)" in s
