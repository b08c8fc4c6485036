"""The fast cached path: no torch on an all-hit run, the real cache key, layout, sidecars."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vocalis.features.cache import FeatureCache, read_header
from vocalis.features.hashindex import HashIndex

SR = 16000
CFG = {"tier0": {"sample_rate": SR}, "features": {"name": "mfcc"}}


def _corpus(folder: Path, n: int = 3) -> Path:
    """``n`` short tones and a manifest (relative paths) listing them."""
    (folder / "wav").mkdir()
    rows = ["path,label"]
    for i in range(n):
        t = np.arange(SR // 4 + 800 * i) / SR
        wav = (0.3 * np.sin(2 * math.pi * (200 + 60 * i) * t)).astype("float32")
        sf.write(folder / "wav" / f"t{i}.wav", wav, SR)
        rows.append(f"wav/t{i}.wav,neutral")
    manifest = folder / "m.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def _vocalis(*argv: str, probe: bool = False) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter; with ``probe``, also print heavy modules loaded."""
    code = (
        "import sys\n"
        "from vocalis.cli.main import main\n"
        f"rc = main({list(argv)!r})\n"
        + (
            "print('LOADED', sorted(m for m in ('torch', 'numpy') if m in sys.modules))\n"
            if probe
            else ""
        )
        + "sys.exit(rc)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def _entries(root: Path) -> list[Path]:
    return sorted(root.rglob("*.vfeat"))


@pytest.fixture
def cached(tmp_path: Path) -> tuple[Path, list[str]]:
    """A corpus whose mfcc features are cached by one (cold) CLI run."""
    manifest = _corpus(tmp_path)
    argv = ["features", str(manifest), "--features", "mfcc", "--cache", str(tmp_path / "c")]
    argv += ["--no-progress", "--workers", "1"]
    first = _vocalis(*argv)
    assert first.returncode == 0, first.stderr
    assert "3 files: 0 cache hits, 3 computed" in first.stdout
    return tmp_path, argv


def test_all_hit_cli_run_imports_neither_torch_nor_numpy(cached):
    _, argv = cached
    second = _vocalis(*argv, probe=True)
    assert second.returncode == 0, second.stderr
    assert "3 cache hits, 0 computed, 0 regenerated, 0 failed" in second.stdout
    assert "LOADED []" in second.stdout
    assert "of audio" in second.stdout and " 0.0 s of audio" not in second.stdout


def test_fast_path_reports_the_same_audio_seconds_and_out_file(cached, tmp_path):
    _, argv = cached
    slow = _vocalis(*argv, "--out", str(tmp_path / "slow.npz"), "--features", "mfcc")
    # --out after a run: still all hits, numpy loaded only to write the file
    fast = _vocalis(*argv, "--out", str(tmp_path / "fast.npz"), probe=True)
    assert "LOADED ['numpy']" in fast.stdout
    seconds = [line.split("; ")[1].split(", ")[1] for line in (slow.stdout, fast.stdout)]
    assert seconds[0] == seconds[1]
    a, b = np.load(tmp_path / "slow.npz"), np.load(tmp_path / "fast.npz")
    assert sorted(a.files) == sorted(b.files) and list(a["paths"]) == list(b["paths"])
    for name in a.files:
        assert np.array_equal(a[name], b[name])


def test_corrupt_entry_makes_the_cli_regenerate_it_and_say_so(cached):
    root, argv = cached
    entry = _entries(root / "c")[1]
    entry.write_bytes(entry.read_bytes()[:-9])  # truncated
    third = _vocalis(*argv)
    assert third.returncode == 0, third.stderr
    assert "2 cache hits, 0 computed, 1 regenerated" in third.stdout
    warned = [line for line in third.stderr.splitlines() if "corrupt entry" in line]
    assert len(warned) == 1 and entry.name in warned[0]  # once: the fast path only looks
    again = _vocalis(*argv, probe=True)
    assert "3 cache hits" in again.stdout and "LOADED []" in again.stdout


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_bad_config_sidecar_makes_entries_misses_with_a_warning(cached, damage):
    root, argv = cached
    (sidecar,) = [p for p in (root / "c" / "configs").glob("*.json") if len(p.stem) == 64]
    if damage == "missing":
        sidecar.unlink()
    else:
        sidecar.write_text(sidecar.read_text().replace("mfcc", "fbank"))
    run = _vocalis(*argv)
    assert run.returncode == 0, run.stderr
    assert "0 cache hits, 0 computed, 3 regenerated" in run.stdout
    assert sidecar.name in run.stderr and "recomputed" in run.stderr
    assert json.loads(sidecar.read_text())["config"]["features"]["name"] == "mfcc"  # rewritten
    again = _vocalis(*argv, probe=True)
    assert "3 cache hits" in again.stdout and "LOADED []" in again.stdout


def test_sidecar_check_in_the_python_api(tmp_path, caplog):
    cache = FeatureCache(tmp_path / "c")
    cache.put(b"wav", torch.ones(2, 3), CFG)
    sha = cache.key(b"wav", CFG).config_sha256
    Path(cache.config_path(sha)).unlink()
    fresh = FeatureCache(tmp_path / "c")
    with caplog.at_level(logging.WARNING, logger="vocalis.features.cache"):
        entry, status = fresh.read(b"wav", CFG)
    assert (entry, status) == (None, "stale") and fresh.stats.regenerated == 1
    assert any(f"{sha}.json is missing" in r.getMessage() for r in caplog.records)
    fresh.put(b"wav", torch.ones(2, 3), CFG)  # recomputed: the sidecar is back
    assert FeatureCache(tmp_path / "c").read(b"wav", CFG)[1] == "hit"
    # a config never written is a plain miss, without a warning
    caplog.clear()
    assert fresh.read(b"wav", {"other": 1})[1] == "miss" and not caplog.records


def test_entry_header_is_small_and_names_its_config_sidecar(tmp_path):
    cache = FeatureCache(tmp_path / "c")
    big = {**CFG, "padding": ["x" * 50] * 200}  # a large config stays out of the entries
    cache.put(b"wav", torch.zeros(4, 7, dtype=torch.float64), big)
    (entry,) = _entries(tmp_path / "c")
    data = entry.read_bytes()
    header = read_header(data)
    assert header["_payload_offset"] <= 256 and header["_payload_offset"] % 64 == 0
    assert set(header) >= {"config_sha256", "audio_sha256", "dtype", "shape", "payload_crc32"}
    sidecar = Path(cache.config_path(header["config_sha256"]))
    assert json.loads(sidecar.read_text())["config"] == big


def test_read_is_zero_copy_and_read_only_reads_copy_only_on_request(tmp_path):
    cache = FeatureCache(tmp_path / "c")
    feats = torch.arange(12.0).reshape(3, 4)
    cache.put(b"wav", feats, CFG)
    entry, _ = cache.read(b"wav", CFG)
    a, b = entry.numpy(), entry.numpy()
    assert np.shares_memory(a, b) and a.flags.writeable  # views of one writable buffer
    assert torch.equal(entry.torch(), feats) and entry.shape == (3, 4)
    frozen, _ = cache.read(b"wav", CFG, writable=False)
    assert not frozen.numpy(writable=False).flags.writeable
    assert frozen.numpy().flags.writeable  # copied on request
    assert "UserWarning" not in repr(frozen.torch())


def test_extract_many_as_numpy_and_torch_agree(tmp_path):
    from vocalis.features.config import FeatureConfig
    from vocalis.features.pipeline import PipelineConfig, extract_many

    manifest = _corpus(tmp_path, 2)
    paths = [str(p) for p in sorted((manifest.parent / "wav").glob("*.wav"))]
    pipe = PipelineConfig(features=FeatureConfig(name="mfcc"))
    cold = extract_many(paths, pipe, cache=tmp_path / "c", workers=1, progress=False)
    warm = extract_many(paths, pipe, cache=tmp_path / "c", workers=1, progress=False, as_numpy=True)
    assert (cold.computed, warm.hits) == (2, 2)
    for t, a in zip(cold.features, warm.features, strict=True):
        assert isinstance(t, torch.Tensor) and isinstance(a, np.ndarray)
        assert np.array_equal(t.numpy(), a)


def test_changed_settings_are_not_served_from_other_entries(cached):
    _, argv = cached
    other = _vocalis(*[a if a != "mfcc" else "fbank" for a in argv])
    assert "0 cache hits, 3 computed" in other.stdout
    rate = _vocalis(*argv, "--sample-rate", "8000")
    assert "0 cache hits, 3 computed" in rate.stdout


def test_fast_path_serves_a_cache_filled_from_python_with_the_real_key(tmp_path):
    """No record of earlier CLI runs: the all-hit run builds the real PipelineConfig."""
    from vocalis.audio import Tier0Config
    from vocalis.features.config import FeatureConfig
    from vocalis.features.pipeline import PipelineConfig, extract_many

    manifest = _corpus(tmp_path)
    paths = [str(p) for p in sorted((manifest.parent / "wav").glob("*.wav"))]
    pipe = PipelineConfig(tier0=Tier0Config(sample_rate=SR), features=FeatureConfig(name="mfcc"))
    cold = extract_many(paths, pipe, cache=tmp_path / "c", workers=1, progress=False)
    assert cold.computed == 3
    assert not (tmp_path / "c" / "configs" / "aliases.json").exists()
    argv = ["features", str(manifest), "--features", "mfcc", "--cache", str(tmp_path / "c")]
    run = _vocalis(*argv, "--no-progress", "--workers", "1", probe=True)
    assert run.returncode == 0, run.stderr
    assert "3 cache hits, 0 computed" in run.stdout and "LOADED []" in run.stdout


def test_cli_config_and_key_match_the_python_api_without_torch():
    code = (
        "import argparse, sys\n"
        "from vocalis.cli.features import pipeline_from_args\n"
        "from vocalis.features.cache import FeatureCache\n"
        "args = argparse.Namespace(features='mfcc', sample_rate=16000, denoise='spectral', "
        "vad=True, encoder=None, layers=None, hop_length=160)\n"
        "print(FeatureCache('memory://k').config_key(pipeline_from_args(args))[1])\n"
        "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    from vocalis.audio.tier0 import Tier0Config
    from vocalis.features import FeatureCache, FeatureConfig, PipelineConfig

    pipe = PipelineConfig(
        tier0=Tier0Config(denoise="spectral", vad=True), features=FeatureConfig(name="mfcc")
    )
    assert out == [FeatureCache("memory://k").config_key(pipe)[1], "[]"]


def test_manifest_with_aliases_and_quoting_is_read_by_read_manifest(tmp_path):
    """The fast path reads the manifest with read_manifest itself (aliases, quotes)."""
    manifest = _corpus(tmp_path)
    argv = ["features", str(manifest), "--features", "mfcc", "--cache", str(tmp_path / "c")]
    argv += ["--no-progress", "--workers", "1"]
    assert _vocalis(*argv).returncode == 0
    legacy = tmp_path / "legacy.csv"
    rows = manifest.read_text().splitlines()[1:]
    legacy.write_text(
        "file_path,emotion_code,note\n" + "".join(f'{r.split(",")[0]},N,"a, b"\n' for r in rows)
    )
    argv[1] = str(legacy)
    run = _vocalis(*argv, probe=True)
    assert "3 cache hits" in run.stdout and "LOADED []" in run.stdout
    missing = _vocalis(*[str(tmp_path / "nope.csv") if a == str(legacy) else a for a in argv])
    assert missing.returncode != 0 and "nope.csv" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_hash_index_batch_stats_only_known_files(tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"{i}.wav"
        p.write_bytes(bytes([i]) * 100)
        paths.append(p)
    index = HashIndex(tmp_path / "h.json")
    missing = tmp_path / "nope.wav"
    first = index.sha256_many([*paths, missing], workers=2)
    assert isinstance(first[-1], FileNotFoundError) and index.stats["hashed"] == 3
    index.save()
    again = HashIndex(tmp_path / "h.json")
    assert again.sha256_many(paths) == first[:3]
    assert again.stats == {"hashed": 0, "remembered": 3}
