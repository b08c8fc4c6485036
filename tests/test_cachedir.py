"""Caches live in the user cache folder ($VOCALIS_CACHE, platformdirs, XDG), never in the cwd."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vocalis.cachedir import resolve_cache_dir, user_cache_dir


def test_vocalis_cache_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("VOCALIS_CACHE", str(tmp_path / "c"))
    assert user_cache_dir() == str(tmp_path / "c")
    assert resolve_cache_dir("auto", "features") == str(tmp_path / "c" / "features")
    monkeypatch.setenv("VOCALIS_CACHE", "s3://bucket/cache")
    assert resolve_cache_dir("auto", "functionals") == "s3://bucket/cache/functionals"


def test_platformdirs_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.delenv("VOCALIS_CACHE", raising=False)
    platformdirs = pytest.importorskip("platformdirs")
    assert user_cache_dir() == str(Path(platformdirs.user_cache_dir("vocalis", appauthor=False)))
    monkeypatch.setitem(sys.modules, "platformdirs", None)  # not installed
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == str(tmp_path / "xdg" / "vocalis")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == str(tmp_path / "home" / ".cache" / "vocalis")


def test_the_cache_never_follows_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("VOCALIS_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)
    where = resolve_cache_dir("auto", "features")
    assert Path(where).is_absolute() and not Path(where).is_relative_to(tmp_path)
    monkeypatch.setenv("VOCALIS_CACHE", "rel/cache")  # a relative value is made absolute once
    assert resolve_cache_dir("auto", "features") == str(tmp_path / "rel" / "cache" / "features")


@pytest.mark.parametrize("off", [None, "", "null", "none"])
def test_no_cache(off):
    assert resolve_cache_dir(off, "features") is None


def test_shipped_configs_use_the_user_cache():
    from vocalis.config import config_dir, read_yaml

    root = config_dir()
    for path in sorted((root / "features").glob("*.yaml")) + sorted(
        (root / "recipes").glob("*.yaml")
    ):
        value = read_yaml(path).get("cache_dir")
        assert value in (None, "auto"), f"{path.name}: cache_dir {value!r} (relative to the cwd)"


def test_training_features_go_to_the_user_cache(monkeypatch, tmp_path, sample_manifest_csv):
    from vocalis.data import read_manifest
    from vocalis.training import load_config
    from vocalis.training.pipeline import featurize_rows

    monkeypatch.setenv("VOCALIS_CACHE", str(tmp_path / "user"))
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, ["features=mfcc", "features.workers=0"])
    assert cfg.features.cache_dir == "auto"
    paths = read_manifest(sample_manifest_csv).paths[:2]
    feats, failures = featurize_rows(paths, cfg.features, progress=False)
    assert not failures and all(f is not None for f in feats)
    assert any((tmp_path / "user" / "features").rglob("*")), "nothing cached in $VOCALIS_CACHE"
    assert not (tmp_path / "work").exists()
