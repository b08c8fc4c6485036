"""Griffe extension: Vocalis docstrings, written for the terminal and doctests, read as Markdown.

Vocalis docstrings are Google style with two habits of Sphinx: ``Example:`` sections and
roles such as ``:func:`~vocalis.training.train```. Once the package is loaded, this
extension

* renames ``Example:`` to ``Examples:`` so griffe parses the doctest as code;
* ends a paragraph that introduces a literal block with one colon, not reST's ``::``
  (the indented block after it is a code block in Markdown already);
* shows a two-column reST simple table (``====  ====`` rules, no header) as a list;
* shows a ``Shape:`` section (tensor shapes with a legend) as a code block;
* gives a module attribute documented by a ``#:`` comment above it that comment as its
  docstring (the Sphinx convention the code uses for registries and constants);
* turns each role into a Markdown cross-reference to the object's canonical path (following
  re-exports and the lazy-export tables of ``vocalis.lazy``), so that the rendered page links
  to it; a role whose target does not exist is reported as a warning, which fails
  ``mkdocs build --strict``: a renamed or moved object cannot leave a broken reference behind.
  A role that names something outside Vocalis (``:class:`torch.Tensor```) stays code.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path
from typing import Any

import griffe

log = logging.getLogger("mkdocs.plugins.vocalis.refs")

ROLE = re.compile(r":(?:py:)?(func|class|mod|meth|data|attr|exc|obj|const):`(~?)([\w.]+)(?:\(\))?`")
EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.M)
SIMPLE_TABLE = re.compile(r"^([ \t]*)(=+)( +)(=+)[ \t]*\n(.*?)^\1\2\3\4[ \t]*$", re.M | re.S)
LITERAL = re.compile(r"(?<=\S)::[ \t]*$|^[ \t]*::[ \t]*\n", re.M)
SHAPE = re.compile(
    r"^(?P<indent>[ \t]*)Shape:[ \t]*\n(?P<body>(?:(?P=indent)[ \t]+\S.*\n?|[ \t]*\n)+)", re.M
)
#: Names of the lazy-export tables in package ``__init__`` files (see ``vocalis.lazy``).
LAZY_TABLES = ("_LAZY", "_EXPORTS")


def _lazy_table(module: griffe.Module) -> dict[str, str]:
    """``name -> defining module`` of a package that exports names lazily."""
    path = module.filepath
    if not isinstance(path, Path) or path.name != "__init__.py":
        return {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id in LAZY_TABLES and node.value is not None:
            try:
                return dict(ast.literal_eval(node.value))
            except ValueError:
                return {}
    return {}


def _shape_block(match: re.Match[str]) -> str:
    """A ``Shape:`` section whose body is one ``text`` code block (brackets stay literal)."""
    indent, raw = match.group("indent"), match.group("body")
    body = raw.rstrip("\n")
    tail = "\n" * (len(raw) - len(body))
    inner = indent + "    "
    lines = [
        line[len(inner) :] if line.startswith(inner) else line.strip() for line in body.splitlines()
    ]
    block = "\n".join(f"{inner}{line}" if line else "" for line in ["```text", *lines, "```"])
    return f"{indent}Shape:\n{block}{tail}"


def _simple_table(match: re.Match[str]) -> str:
    """A two-column reST simple table as a Markdown list: ``- first: second``."""
    indent, first = match.group(1), len(match.group(2)) + len(match.group(3))
    items: list[str] = []
    for line in match.group(5).splitlines():
        row = line[len(indent) :]
        key, value = row[:first].strip(), row[first:].strip()
        if key:
            items.append(f"{indent}- {key}: {value}")
        elif items and value:
            items[-1] += f" {value}"
    return "\n".join(items)


def _literal_lines(text: str) -> list[tuple[bool, str]]:
    """Each line of ``text`` with whether it lies in a reST literal block (after ``::``)."""
    out: list[tuple[bool, str]] = []
    block_indent: int | None = None
    for line in text.split("\n"):
        indent = len(line) - len(line.lstrip())
        if block_indent is not None and (not line.strip() or indent > block_indent):
            out.append((True, line))
            continue
        block_indent = indent if line.rstrip().endswith("::") else None
        out.append((False, line))
    return out


def _comment_above(obj: griffe.Object) -> str:
    """The ``#:`` comment lines right above an attribute's definition, joined."""
    path = obj.filepath
    lines = (
        obj.lines_collection[path]
        if isinstance(path, Path) and path in obj.lines_collection
        else None
    )
    if not lines or not obj.lineno:
        return ""
    found: list[str] = []
    i = obj.lineno - 2
    while i >= 0 and lines[i].strip().startswith("#:"):
        found.insert(0, lines[i].strip()[2:].strip())
        i -= 1
    return " ".join(found)


class VocalisDocstrings(griffe.Extension):
    """Rewrite every docstring of the ``vocalis`` package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        """Rewrite the docstrings of ``pkg`` and everything in it."""
        if pkg.name != "vocalis":
            return
        self.root = pkg
        self.lazy: dict[str, dict[str, str]] = {}
        self._walk(pkg)

    def _walk(self, obj: griffe.Object) -> None:
        if obj.docstring is None and obj.is_attribute:
            comment = _comment_above(obj)
            if comment:
                obj.docstring = griffe.Docstring(comment, parent=obj, lineno=obj.lineno)
        if obj.docstring is not None:
            obj.docstring.value = self._rewrite(obj.docstring.value, obj)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member)

    def _rewrite(self, text: str, scope: griffe.Object) -> str:
        text = EXAMPLE.sub(r"\1Examples:", text)
        text = SHAPE.sub(_shape_block, text)
        text = SIMPLE_TABLE.sub(_simple_table, text)

        def ref(match: re.Match[str]) -> str:
            _role, tilde, target = match.groups()
            shown = target.rsplit(".", 1)[-1] if tilde else target
            path = self.resolve(target, scope)
            if path is None:
                if target.startswith("vocalis.") or self._partly_known(target, scope):
                    where = f"{scope.relative_filepath}:{scope.lineno}"
                    log.warning(f"{where}: {scope.path} refers to '{target}', which does not exist")
                return f"`{shown}`"
            return f"[`{shown}`][{path}]"

        def plain(match: re.Match[str]) -> str:  # inside a literal block: the name only
            _role, tilde, target = match.groups()
            return target.rsplit(".", 1)[-1] if tilde else target

        lines = [
            ROLE.sub(plain if literal else ref, line) for literal, line in _literal_lines(text)
        ]
        return LITERAL.sub(lambda m: "" if m.group(0).endswith("\n") else ":", "\n".join(lines))

    def _partly_known(self, target: str, scope: griffe.Object) -> bool:
        """``A.b`` where ``A`` is a Vocalis object but ``b`` is not one of its members."""
        head, _, rest = target.partition(".")
        return bool(rest) and self.resolve(head, scope) is not None

    def _get(self, path: str) -> griffe.Object | None:
        """The object at the dotted ``path`` (re-exports and lazy exports followed), or None."""
        if path != "vocalis" and not path.startswith("vocalis."):
            return None
        obj: Any = self.root
        for part in path.split(".")[1:]:
            nxt = obj.members.get(part) if hasattr(obj, "members") else None
            if nxt is None and isinstance(obj, griffe.Module):
                table = self.lazy.setdefault(obj.path, _lazy_table(obj))
                if part in table:
                    nxt = self._get(f"{table[part]}.{part}")
            if nxt is None:
                return None
            try:
                obj = nxt.final_target if nxt.is_alias else nxt
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                return None
        return obj

    def resolve(self, target: str, scope: griffe.Object) -> str | None:
        """Canonical path of ``target`` seen from ``scope`` (its class, module, packages)."""
        candidates = [target] if target.startswith("vocalis.") else []
        node: griffe.Object | None = scope
        while node is not None:
            candidates.append(f"{node.path}.{target}")
            node = node.parent
        for path in candidates:
            obj = self._get(path)
            if obj is not None:
                return obj.path
        return None
