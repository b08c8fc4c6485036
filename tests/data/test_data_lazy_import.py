"""``vocalis.data`` loads its modules on first use; the manifest reader needs no numpy."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys\n"
        "print(sorted(m for m in ('torch', 'numpy', 'pandas', 'yaml', 'sklearn') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return eval(out.stdout.strip().splitlines()[-1])  # a list literal we printed


def test_reading_a_manifest_imports_no_heavy_package(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text('file_path,emotion_code,note\nwav/a.wav,W,"x, y"\n/abs/b.wav,N,\n')
    code = (
        "import vocalis.data\n"
        "from vocalis.data import COLUMN_ALIASES, Manifest, read_manifest\n"
        f"m = read_manifest({str(csv)!r})\n"
        f"assert m.paths == [{str(tmp_path / 'wav' / 'a.wav')!r}, '/abs/b.wav'], m.paths\n"
        "assert m.labels() == ['W', 'N'] and m.column('note') == ['x, y', '']"
    )
    assert _loaded_after(code) == []


def test_names_are_the_objects_of_their_modules():
    import vocalis.data as data
    from vocalis.data import corpora, labels, manifest, splits

    assert data.read_manifest is manifest.read_manifest and data.Manifest is manifest.Manifest
    assert data.LabelEncoder is labels.LabelEncoder and data.CORPORA is corpora.CORPORA
    assert data.LeaveOneSpeakerOut is splits.LeaveOneSpeakerOut
    assert "emodb" in data.CORPORA.names() and "min_recognition" in data.corpus_options("emodb")
    assert set(data.__all__) <= set(dir(data))
    for name in data.__all__:
        assert getattr(data, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        data.nope  # noqa: B018
