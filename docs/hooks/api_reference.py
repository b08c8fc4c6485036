"""MkDocs hook: one API-reference page per subpackage of ``src/vocalis``, generated at build time.

Every public module (no leading underscore; not ``vocalis.cli``, whose reference is the
command-line page, nor ``vocalis.resources``) gets a ``::: module`` block for mkdocstrings,
on the page of its top-level package. Because the pages are generated from the source tree,
a module that moves moves in the reference too; the hand-written pages link to objects by
their dotted path, and a path that no longer exists fails the strict build.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from mkdocs.structure.files import File

API_DIR = "reference/api"
SKIP = {"vocalis.cli", "vocalis.resources"}
#: Top-level modules of ``vocalis`` shown on the "core" page.
CORE_PAGE = "core"


def _src(config) -> Path:
    return Path(config["config_file_path"]).parent / "src"


def _public(path: Path) -> bool:
    return not any(part.startswith("_") and part != "__init__.py" for part in path.parts)


def _modules(src: Path) -> dict[str, list[str]]:
    """``page -> [module, ...]``: each subpackage's modules, and the core modules."""
    pages: dict[str, list[str]] = {CORE_PAGE: []}
    root = src / "vocalis"
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(src)
        if not _public(rel.relative_to("vocalis")):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if name == "vocalis" or any(name == s or name.startswith(s + ".") for s in SKIP):
            continue
        if len(parts) == 2 and path.name != "__init__.py":
            pages[CORE_PAGE].append(name)
        else:
            pages.setdefault(parts[1], []).append(name)
    return pages


def _own_members(path: Path) -> list[str]:
    """Public names a package's ``__init__`` defines itself (not its re-exports)."""
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return [name for name in names if not name.startswith("_")]


def _page(title: str, modules: list[str], src: Path) -> str:
    """A page with one mkdocstrings block per module; a package shows only what it defines."""
    blocks = [f"# {title}\n"]
    for module in modules:
        init = src.joinpath(*module.split(".")) / "__init__.py"
        if init.is_file():
            own = _own_members(init)
            members = "[" + ", ".join(own) + "]" if own else "false"
            blocks.append(f"::: {module}\n    options:\n      members: {members}\n")
        else:
            blocks.append(f"::: {module}\n")
    return "\n".join(blocks)


_PAGES: dict[str, list[str]] = {}


def on_config(config):
    """Add one nav entry per generated page under "Reference / Python API"."""
    src = _src(config)
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))  # document (and run the CLI hook on) this checkout
    _PAGES.clear()
    _PAGES.update(_modules(src))
    entries = [{"vocalis (the top-level API)": f"{API_DIR}/index.md"}]
    for page in sorted(_PAGES, key=lambda p: (p == CORE_PAGE, p)):
        title = "core modules" if page == CORE_PAGE else f"vocalis.{page}"
        entries.append({title: f"{API_DIR}/{page}.md"})
    for section in config["nav"]:
        if isinstance(section, dict) and "Reference" in section:
            section["Reference"].append({"Python API": entries})
    return config


def on_files(files, config):
    """Generate the pages listed by :func:`on_config`."""
    for page, modules in _PAGES.items():
        title = "Core modules" if page == CORE_PAGE else f"`vocalis.{page}`"
        content = _page(title, modules, _src(config))
        files.append(File.generated(config, f"{API_DIR}/{page}.md", content=content))
    return files
