"""predict --out keeps every manifest row, also rows that share a file (issue 14 item 7)."""

from __future__ import annotations

import csv

from vocalis.inference.predictor import predict
from vocalis.testing import sample_manifest_path, tiny_run


def test_rows_sharing_a_path_are_all_written_and_resume_skips_them(tmp_path):
    with open(sample_manifest_path(), newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:  # the sample manifest's paths are relative to its folder
        r["path"] = str((sample_manifest_path().parent / r["path"]).resolve())
    shared = [{"id": f"take{k}", "path": rows[0]["path"], "label": "x"} for k in range(3)]
    other = [{"id": "solo", "path": rows[1]["path"], "label": "x"}]
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "path", "label"])
        writer.writeheader()
        writer.writerows(shared + other)
    out = tmp_path / "p.csv"
    first = predict([str(manifest)], checkpoint=tiny_run(), out=out, progress=False)
    assert len(first.predictions) == 4
    with open(out, newline="") as fh:
        written = list(csv.DictReader(fh))
    assert sorted(r["id"] for r in written) == ["solo", "take0", "take1", "take2"]
    again = predict([str(manifest)], checkpoint=tiny_run(), out=out, progress=False)
    assert len(again.predictions) == 0  # all four rows were done
