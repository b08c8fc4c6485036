"""Imports point down the data flow: no cycle between subpackages, no forbidden edge.

Every module of ``src/vocalis`` is parsed with :mod:`ast` (nothing is imported),
and every ``import`` counts, also those inside functions and ``TYPE_CHECKING``
blocks: a function-local import is still a dependency. A unit is a subpackage
(``vocalis.features``) or a top-level module (``vocalis.dsp``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "vocalis"

#: (importer, imported) pairs that must not exist, and why.
FORBIDDEN = {
    ("features", "models"): "features are computed by the same code for training and serving",
    ("models", "features"): "a model is a plain nn.Module on features it is given",
    ("encoders", "features"): "encoders are below features (features use encoders)",
    ("encoders", "models"): "encoders are below models (models fine-tune encoders)",
    ("inference", "training"): "serving must not need the training loop",
    ("audio", "features"): "tier 0 knows no features",
    ("audio", "models"): "tier 0 knows no model",
    ("data", "models"): "data knows no model",
    ("training", "evaluation"): "evaluation runs the training engine, never the other way",
    ("metrics", "training"): "metrics are below training (validation scores with them)",
    ("metrics", "evaluation"): "metrics are below evaluation",
    ("metrics", "models"): "metrics are pure numpy on predictions",
}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "vocalis"


def _is_module(dotted: str) -> bool:
    path = SRC.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """Every ``vocalis...`` module ``path`` imports, relative imports resolved."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    module = ".".join(rel.parts)
    package = module.removesuffix(".__init__") if path.name == "__init__.py" else module
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            out.add(target)
            for alias in node.names:  # from vocalis import dsp / from vocalis.x import y
                if _is_module(f"{target}.{alias.name}"):
                    out.add(f"{target}.{alias.name}")
    return {m for m in out if m == "vocalis" or m.startswith("vocalis.")}


def _graph() -> dict[tuple[str, str], list[str]]:
    """``(importer unit, imported unit) -> importing modules``, self-edges dropped."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        for target in _imports(path):
            a, b = _unit(module), _unit(target)
            if a != b and not (b == "vocalis" and target == "vocalis"):
                edges[(a, b)].append(module)
    return edges


def _cycles(edges: dict[tuple[str, str], list[str]]) -> set[frozenset[str]]:
    """Strongly connected groups of more than one unit."""
    succ: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)

    def reach(start: str) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            for nxt in succ[stack.pop()] - seen:
                seen.add(nxt)
                stack.append(nxt)
        return seen

    reachable = {u: reach(u) for u in list(succ)}
    groups = set()
    for u in reachable:
        group = frozenset({u} | {v for v in reachable[u] if u in reachable.get(v, set())})
        if len(group) > 1:
            groups.add(group)
    return groups


EDGES = _graph()


def test_the_parser_sees_local_and_relative_imports():
    assert ("features", "encoders") in EDGES  # function-local import in features.pretrained
    assert ("features", "dsp") in EDGES  # ``from vocalis import dsp``
    assert ("cli", "training") in EDGES


@pytest.mark.parametrize(("importer", "imported"), sorted(FORBIDDEN))
def test_no_forbidden_import(importer: str, imported: str):
    where = EDGES.get((importer, imported), [])
    assert not where, (
        f"vocalis.{importer} must not import vocalis.{imported} "
        f"({FORBIDDEN[(importer, imported)]}); found in {sorted(set(where))}"
    )


def test_no_import_cycle_between_subpackages():
    cycles = _cycles(EDGES)
    detail = {
        " <-> ".join(sorted(c)): sorted(
            {m for (a, b), modules in EDGES.items() if {a, b} <= c for m in modules}
        )
        for c in cycles
    }
    assert not cycles, f"import cycles between subpackages: {detail}"


def test_dsp_is_a_leaf():
    assert _imports(SRC / "dsp.py") == set()
