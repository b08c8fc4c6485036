"""The documentation hooks: generated CLI reference, benchmark tables, checked cross-references.

``scripts/test.sh`` builds the whole site with ``mkdocs build --strict``; these tests pin the
pieces that make a stale page impossible (they need the ``docs`` extra and skip without it).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import logging
import os
import re
import shlex
import sys
from pathlib import Path

import pytest

from vocalis.cli.main import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ROOT / "docs" / "hooks"


def _hook(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", HOOKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_ci_docs_build_fails_on_a_broken_link(tmp_path):
    """``scripts/test.sh``'s mkdocs flags fail a site with one broken link (``--quiet``
    would hide the warning from ``--strict`` too, and the build would pass)."""
    pytest.importorskip("mkdocs")
    import subprocess

    script = (ROOT / "scripts" / "test.sh").read_text()
    flags = re.search(r"mkdocs build (.*?)--site-dir", script)
    assert flags, "scripts/test.sh builds no mkdocs site"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Site\n\n[gone](nowhere.md)\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\n")
    cmd = [sys.executable, "-m", "mkdocs", "build", *shlex.split(flags.group(1))]
    cmd += ["--site-dir", str(tmp_path / "site"), "-f", str(tmp_path / "mkdocs.yml")]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "nowhere.md" in done.stdout + done.stderr


def test_cli_reference_has_one_section_per_verb_with_its_help():
    pytest.importorskip("mkdocs")
    text = _hook("cli_reference").cli_reference()
    for verb in COMMANDS:
        assert f"## `vocalis {verb}`\n" in text, verb
    assert "usage: vocalis train" in text and "--overwrite" in text


def test_nested_sub_commands_get_their_own_sections():
    pytest.importorskip("mkdocs")
    parser = argparse.ArgumentParser(prog="tool")
    outer = parser.add_subparsers().add_parser("sv", help="speaker verification")
    outer.add_subparsers().add_parser("score", help="score trials").add_argument("--norm")
    text = "".join(_hook("cli_reference")._sections(parser, "tool", 2))
    assert "## `tool sv`" in text and "### `tool sv score`" in text and "--norm NORM" in text


def test_cli_page_table_is_the_readmes():
    pytest.importorskip("mkdocs")
    table = _hook("cli_reference").api_table(ROOT / "README.md")
    assert table.startswith("| CLI verb | Python function |")
    assert all(f"`vocalis {verb}" in table for verb in COMMANDS)


def test_benchmark_tables_show_the_committed_numbers():
    bench = _hook("benchmarks")
    results = ROOT / "bench" / "results"
    for name, build in bench.TABLES.items():
        assert build(results).count("\n") >= 2, name
    online = json.loads((results / "emodb_loso.json").read_text())["vocalis"]["online"]
    table = bench.emodb_loso(results)
    assert f"**{online['pooled_uar']:.3f}**" in table
    for path in results.glob("emodb_*loso*.json"):  # every committed vocalis loso summary
        summary = json.loads(path.read_text())
        if "recipe" in summary:
            partial = (
                f"; partial: {summary['n_finished']} of {summary['n_folds']} folds"
                if summary.get("partial")
                else ""
            )
            row = f"`{path.name}`{partial}) | `online` | {summary['pooled']['uar']:.3f} |"
            assert row in table


def test_unknown_table_name_fails_the_page():
    bench = _hook("benchmarks")
    config = {"config_file_path": str(ROOT / "mkdocs.yml")}
    with pytest.raises(KeyError, match="unknown table 'nope'"):
        bench.on_page_markdown("<!-- bench:nope -->", None, config, None)


@pytest.fixture(scope="module")
def vocalis_tree():
    griffe = pytest.importorskip("griffe")
    sys.path.insert(0, str(HOOKS))
    try:
        from griffe_vocalis import VocalisDocstrings
    finally:
        sys.path.remove(str(HOOKS))
    ext = VocalisDocstrings()
    pkg = griffe.load(
        "vocalis", search_paths=[str(ROOT / "src")], extensions=griffe.load_extensions(ext)
    )
    return pkg, ext


def test_roles_become_links_to_the_canonical_path(vocalis_tree):
    pkg, ext = vocalis_tree
    scope = pkg["evaluation.crossval"]
    # a lazy re-export, a re-export in __init__ and a name relative to the module
    assert ext.resolve("vocalis.train", scope) == "vocalis.training.trainer.train"
    assert ext.resolve("vocalis.data.read_manifest", scope) == "vocalis.data.manifest.read_manifest"
    assert ext.resolve("cross_validate", pkg["evaluation.crossval.loso"]) == (
        "vocalis.evaluation.crossval.cross_validate"
    )
    text = ext._rewrite("See :func:`~vocalis.train` and :class:`torch.Tensor`.", scope)
    assert text == "See [`train`][vocalis.training.trainer.train] and `torch.Tensor`."


def test_a_reference_to_a_missing_object_is_a_warning(vocalis_tree, caplog):
    pkg, ext = vocalis_tree
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.vocalis.refs"):
        text = ext._rewrite("Use :func:`vocalis.training.trian`.", pkg["training"])
    assert text == "Use `vocalis.training.trian`."
    assert "refers to 'vocalis.training.trian', which does not exist" in caplog.text


def test_example_and_shape_sections_become_code():
    sys.path.insert(0, str(HOOKS))
    try:
        pytest.importorskip("griffe")
        from griffe_vocalis import EXAMPLE, SHAPE, SIMPLE_TABLE, _shape_block, _simple_table
    finally:
        sys.path.remove(str(HOOKS))
    doc = 'Sum.\n\nShape:\n    x[i]["a"]: (B, T)\n\nExample:\n    >>> 1\n'
    out = SHAPE.sub(_shape_block, EXAMPLE.sub(r"\1Examples:", doc))
    table = "Columns:\n\n====  ======\n``a``   first\n      more\n``b``   second\n====  ======\n"
    assert SIMPLE_TABLE.sub(_simple_table, table) == (
        "Columns:\n\n- ``a``: first more\n- ``b``: second\n"
    )
    assert (
        out
        == 'Sum.\n\nShape:\n    ```text\n    x[i]["a"]: (B, T)\n    ```\n\nExamples:\n    >>> 1\n'
    )


def _documented_commands() -> list[tuple[str, str]]:
    """``(page, command)`` of every ``vocalis ...`` line in the bash blocks of ``docs/``."""
    found = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
            for line in block.splitlines():
                command = line.split(" #")[0].strip()
                if command.startswith("vocalis "):
                    found.append((str(page.relative_to(ROOT)), command))
    return found


@pytest.mark.parametrize(("page", "command"), _documented_commands())
def test_documented_commands_exist(page, command, monkeypatch):
    """Every command on a docs page parses, and its recipe and overrides are valid configs."""
    from vocalis.cli.main import build_parser

    monkeypatch.chdir(ROOT)
    try:
        args = build_parser().parse_args(shlex.split(command)[1:])
    except SystemExit as err:  # --help and --version exit 0
        assert err.code == 0, f"{page}: `{command}` does not parse (exit {err.code})"
        return
    if getattr(args, "config", None):
        from vocalis.config import find_recipe

        assert find_recipe(args.config).is_file(), f"{page}: no recipe {args.config}"
    if args.command in ("loso", "cv"):
        from vocalis.cli.cv import config_from_args

        config_from_args(args)
    elif args.command == "sweep":  # every combination is a valid config
        from vocalis.evaluation.sweep import expand_overrides
        from vocalis.training import load_recipe

        for combo in expand_overrides(args.overrides):
            load_recipe(args.config, list(combo.overrides))
    elif args.command == "train":
        from vocalis.cli.cv import recipe_from_args
        from vocalis.cli.train import overrides_from_args

        recipe_from_args(args, {}, overrides_from_args(args))


def _documented_python() -> list[tuple[str, str]]:
    """``(page, code)`` of every python block in ``docs/`` and the README."""
    pages = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
    return [
        (str(page.relative_to(ROOT)), code)
        for page in pages
        for code in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    ]


def _vocalis_names(tree: ast.AST) -> set[str]:
    """The dotted Vocalis names code uses: ``vocalis.x.y`` and ``from vocalis.x import y``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vocalis"):
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Attribute):
            parts = []
            while isinstance(node, ast.Attribute):
                parts.insert(0, node.attr)
                node = node.value
            if isinstance(node, ast.Name) and node.id == "vocalis":
                names.add(".".join(["vocalis", *parts]))
    return names


@pytest.mark.parametrize(("page", "code"), _documented_python())
def test_documented_python_uses_only_real_names(page, code):
    """Python examples compile, and every Vocalis name they use exists (import or attribute)."""
    tree = ast.parse(code)
    for dotted in sorted(_vocalis_names(tree)):
        parts = dotted.split(".")
        obj = importlib.import_module(parts[0])
        for i, part in enumerate(parts[1:], start=1):
            if not hasattr(obj, part):  # a submodule not imported yet
                obj = importlib.import_module(".".join(parts[: i + 1]))
            else:
                obj = getattr(obj, part)
        assert obj is not None, f"{page}: {dotted}"
