"""The top-level API: ``import vocalis`` stays light and every exported name is its module's."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import vocalis

HEAVY = ("torch", "numpy", "scipy", "sklearn", "pandas", "matplotlib", "yaml", "omegaconf")


def test_import_vocalis_imports_no_heavy_package():
    probe = (
        "import sys, vocalis\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "print(len(dir(vocalis)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    loaded, n_names = out.stdout.split("\n")[:2]
    assert loaded == "[]", f"import vocalis loaded {loaded}"
    assert int(n_names) >= len(vocalis.__all__)  # dir() lists the lazy names too


@pytest.mark.parametrize("name", [n for n in vocalis.__all__ if n != "__version__"])
def test_every_export_is_the_object_of_its_module(name):
    source = vocalis._EXPORTS[name]
    expected = getattr(importlib.import_module(source), name)
    assert getattr(vocalis, name) is expected
    assert name in dir(vocalis)
    assert expected.__doc__, f"vocalis.{name} has no docstring"


def test_the_main_entry_points_are_the_cli_functions():
    from vocalis.evaluation import crossval
    from vocalis.inference import predictor
    from vocalis.training import trainer

    assert vocalis.train is trainer.train and vocalis.predict is predictor.predict
    assert vocalis.loso is crossval.loso and vocalis.cross_validate is crossval.cross_validate


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        vocalis.trian  # noqa: B018
