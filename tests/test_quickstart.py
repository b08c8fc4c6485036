"""scripts/quickstart.sh on the bundled sample: every step runs and the closing table is right."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("vocalis") is None, reason="the vocalis console script")
def test_quickstart_smoke_run_prints_its_table(tmp_path):
    out = tmp_path / "qs"
    env = dict(os.environ, VOCALIS_EMODB=str(tmp_path / "no"), OUT=str(out), WORK=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    done = subprocess.run(
        ["bash", "scripts/quickstart.sh", "--skip-setup"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout
    assert text.index("quickstart: prepare") < text.index("quickstart: train")
    table = text.split("quickstart: done", 1)[1]
    for key in ("trained", "validation", "test", "report", "prediction", "time"):
        assert f"\n  {key}" in table
    assert "UAR" in table and f"{out}/report.html" in table
    assert "true label" in table and "(a training clip: smoke run)" in table
    assert (out / "report.html").is_file() and (out / "model.pt").is_file()
    assert "UAR (validation)" in (out / "report.html").read_text()
