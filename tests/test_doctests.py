"""Every docstring example in ``src/vocalis`` runs and gives the output it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import vocalis

#: Modules whose import needs an optional extra that may be absent.
OPTIONAL = {"vocalis.inference.service": "fastapi"}


def _modules() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.walk_packages(vocalis.__path__, "vocalis.")
        if m.name != "vocalis.__main__"
    )


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
