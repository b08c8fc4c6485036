"""One meaning per public name: no two top-level public functions or classes share a name.

The CLI verbs are exempt (each ``vocalis.cli.<verb>`` module has ``add_parser`` and
``run`` by design); everything else that users import is looked up by name.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "vocalis"


def _public_defs() -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "cli":
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                found[node.name].append(str(rel))
    return found


def test_the_scan_sees_the_package():
    defs = _public_defs()
    assert defs["load_checkpoint"] == ["checkpoint.py"]
    assert "train" in defs and "Manifest" in defs


def test_no_public_name_is_defined_twice():
    twice = {name: where for name, where in _public_defs().items() if len(where) > 1}
    assert not twice, f"public names defined in several modules: {twice}"
