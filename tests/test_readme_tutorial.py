"""The README's Python tutorial runs as written, and its verb table covers every CLI verb."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import vocalis
from vocalis.cli.main import COMMANDS

README = Path(__file__).resolve().parents[1] / "README.md"
TABLE = re.compile(r"<!-- api-table:start -->(.*?)<!-- api-table:end -->", re.S)


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def _tutorial() -> str:
    blocks = re.findall(r"```python\n(.*?)```", _section("Python API"), re.S)
    assert len(blocks) == 1, "the Python API section has exactly one python block"
    return blocks[0]


def _table_rows() -> list[tuple[str, str]]:
    match = TABLE.search(README.read_text(encoding="utf-8"))
    assert match, "README has no api-table markers"
    rows = []
    for line in match.group(1).strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append((cells[0], cells[1]))
    return rows


def test_the_verb_table_covers_every_verb_once():
    verbs = [re.match(r"`vocalis ([\w-]+)", cli).group(1) for cli, _ in _table_rows()]
    assert sorted(verbs) == sorted(COMMANDS)


def test_the_verb_table_names_only_real_functions():
    for cli, python in _table_rows():
        names = re.findall(r"`?vocalis\.([A-Za-z_][\w.]*)", python)
        assert names, f"{cli}: no vocalis.NAME in {python!r}"
        for dotted in names:
            obj = vocalis
            for part in dotted.split("."):
                if not hasattr(obj, part) and inspect.ismodule(obj):  # a submodule
                    importlib.import_module(f"{obj.__name__}.{part}")
                assert hasattr(obj, part), f"{cli}: vocalis.{dotted} does not exist"
                obj = getattr(obj, part)


def test_the_tutorial_runs_on_the_bundled_clips(tmp_path):
    script = tmp_path / "tutorial.py"
    script.write_text(_tutorial(), encoding="utf-8")
    src = str(Path(vocalis.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "torch.Size([40, " in out.stdout
    assert re.search(r"^validation UAR [01]\.\d+", out.stdout, re.M)
    assert re.search(r"^(high|low) 0\.\d+", out.stdout, re.M), out.stdout
    assert (tmp_path / "runs/tiny/model.onnx").stat().st_size > 0
    cv = json.loads((tmp_path / "runs/loso/cv_results.json").read_text())
    assert cv["n_finished"] == 2 and cv["pooled"]["n"] == 14
    assert cv["pooled"]["classes"] == ["high", "low"]
    assert (tmp_path / "runs/loso/report.html").is_file()
