"""MkDocs hook: the command-line reference, generated from the argparse parsers at build time.

``docs/reference/cli.md`` holds the marker ``<!-- cli-reference -->``; this hook replaces it
with one section per verb of ``vocalis.cli.main.build_parser()`` (and per sub-verb, such as
``vocalis config show``), each with the verb's ``--help`` text as argparse prints it. It also
fills ``<!-- api-table -->`` with the README's table of CLI verbs and Python functions, so
that table has one source. Building the parser imports no torch, so this stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

CLI_MARKER = "<!-- cli-reference -->"
TABLE_MARKER = "<!-- api-table -->"
#: The README's table of verbs and functions sits between these two lines.
TABLE_START, TABLE_END = "<!-- api-table:start -->", "<!-- api-table:end -->"
WIDTH = "100"


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(name, parser)`` of every direct sub-command of ``parser``, in the order it lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _sections(parser: argparse.ArgumentParser, prog: str, level: int) -> Iterator[str]:
    for name, sub in _subcommands(parser):
        title = f"{prog} {name}"
        help_text = sub.format_help().rstrip()
        yield f"{'#' * level} `{title}`\n\n```text\n{help_text}\n```\n"
        yield from _sections(sub, title, level + 1)


@contextlib.contextmanager
def _columns(width: str) -> Iterator[None]:
    """argparse wraps help at ``$COLUMNS``: pin it so the page does not depend on a terminal."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def cli_reference() -> str:
    """Markdown of the whole command line: the top-level help, then one section per verb."""
    from vocalis.cli.main import build_parser

    with _columns(WIDTH):
        parser = build_parser()
        parts = [f"```text\n{parser.format_help().rstrip()}\n```\n"]
        parts.extend(_sections(parser, "vocalis", 3))
    return "\n".join(parts)


def api_table(readme: Path) -> str:
    """The README's table that maps every CLI verb to its Python function."""
    text = readme.read_text(encoding="utf-8")
    match = re.search(re.escape(TABLE_START) + r"(.*?)" + re.escape(TABLE_END), text, re.S)
    if match is None:
        raise ValueError(f"{readme}: no table between {TABLE_START} and {TABLE_END}")
    return match.group(1).strip()


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Fill the markers of the page being built."""
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if TABLE_MARKER in markdown:
        readme = Path(config["config_file_path"]).parent / "README.md"
        markdown = markdown.replace(TABLE_MARKER, api_table(readme))
    return markdown
