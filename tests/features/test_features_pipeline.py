"""File-level extraction: order, cache use, failure thresholds, CLI."""

from __future__ import annotations

import logging
import math
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vocalis.audio import Tier0Config
from vocalis.backends import BackendConfig, LocalBackend
from vocalis.errors import ConfigError, DataError
from vocalis.features import FeatureConfig
from vocalis.features.cache import FeatureCache
from vocalis.features.pipeline import PipelineConfig, compute_features, extract_many

SR = 16000
PIPE = PipelineConfig(features=FeatureConfig(name="mfcc"))


def _write_tones(folder: Path, n: int = 4) -> list[str]:
    paths = []
    for i in range(n):
        t = np.arange(SR // 2 + 1000 * i) / SR
        path = folder / f"tone{i}.wav"
        sf.write(path, (0.3 * np.sin(2 * math.pi * (150 + 50 * i) * t)).astype("float32"), SR)
        paths.append(str(path))
    return paths


def _bad_files(folder: Path) -> list[str]:
    empty = folder / "empty.wav"
    empty.write_bytes(b"")
    text = folder / "notes.wav"
    text.write_text("this is a text file, not audio\n")
    return [str(folder / "missing.wav"), str(empty), str(text)]


def test_compute_features_shape_matches_the_frame_rule(tmp_path):
    (path,) = _write_tones(tmp_path, 1)
    feats = compute_features(path, PIPE)
    assert feats.shape == (40, 1 + (SR // 2) // 160)


def test_pipeline_config_round_trips_and_rejects_unknown_keys_and_names():
    from vocalis.config import from_dict, to_dict

    cfg = from_dict(PipelineConfig, {"tier0": {"vad": True}, "features": {"name": "mfbe_pitch"}})
    assert from_dict(PipelineConfig, to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="did you mean 'n_mfcc'"):
        from_dict(PipelineConfig, {"features": {"n_mfc": 20}})
    with pytest.raises(ConfigError, match="did you mean 'fbank'"):
        PipelineConfig(features=FeatureConfig(name="fbnak"))


def test_pipeline_config_rejects_mismatched_rates():
    with pytest.raises(ConfigError, match=r"tier0\.sample_rate=8000"):
        PipelineConfig(tier0=Tier0Config(sample_rate=8000), features=FeatureConfig())


def test_extract_many_keeps_order_and_serves_the_second_run_from_cache(tmp_path):
    paths = _write_tones(tmp_path)
    cache = FeatureCache(tmp_path / "cache")
    first = extract_many(paths, PIPE, cache=cache, workers=2, progress=False)
    assert (first.computed, first.hits, first.failures) == (4, 0, [])
    for path, feats in zip(paths, first.features, strict=True):
        torch.testing.assert_close(feats, compute_features(path, PIPE))
    second = extract_many(paths, PIPE, cache=cache, workers=2, progress=False)
    assert (second.computed, second.hits, second.regenerated) == (0, 4, 0)
    for a, b in zip(first.features, second.features, strict=True):
        assert torch.equal(a, b)
    assert "4 cache hits" in second.summary() and second.audio_seconds > 0
    single = extract_many(paths, PIPE, workers=1, progress=False)
    for a, b in zip(first.features, single.features, strict=True):
        assert torch.equal(a, b)


def test_memory_url_cache_serves_the_second_run(tmp_path):
    paths = _write_tones(tmp_path, 3)
    root = "memory://vocalis-test-pipeline-cache"
    first = extract_many(paths, PIPE, cache=root, workers=2, progress=False)
    second = extract_many(paths, PIPE, cache=root, workers=2, progress=False)
    assert (first.computed, second.hits, second.computed) == (3, 3, 0)
    for a, b in zip(first.features, second.features, strict=True):
        assert torch.equal(a, b)


def test_corrupt_entry_is_regenerated(tmp_path, caplog):
    paths = _write_tones(tmp_path, 2)
    root = tmp_path / "cache"
    extract_many(paths, PIPE, cache=str(root), workers=1, progress=False)
    entry = sorted(root.rglob("*.vfeat"))[0]
    entry.write_bytes(entry.read_bytes()[:-4])
    with caplog.at_level(logging.WARNING):
        res = extract_many(paths, PIPE, cache=str(root), workers=1, progress=False)
    assert (res.hits, res.computed, res.regenerated) == (1, 0, 1)
    assert any(entry.name in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("use_cache", [False, True])
def test_bad_files_are_skipped_within_the_threshold(tmp_path, caplog, use_cache):
    good = _write_tones(tmp_path, 3)
    bad = _bad_files(tmp_path)
    paths = [good[0], bad[0], good[1], bad[1], bad[2], good[2]]
    cache = FeatureCache(tmp_path / "cache") if use_cache else None
    with caplog.at_level(logging.WARNING):
        res = extract_many(paths, PIPE, cache=cache, workers=2, max_failures=3, progress=False)
    assert [p for p, _ in res.failures] == bad
    for path, message in res.failures:
        assert Path(path).name in message and "\n" not in message
    assert [f is None for f in res.features] == [False, True, False, True, True, False]
    assert res.computed == 3 and "3 failed" in res.summary()
    assert sum("skipped" in r.getMessage() for r in caplog.records) == 3
    ok = extract_many(paths, PIPE, cache=cache, workers=1, max_failures=0.5, progress=False)
    assert len(ok.failures) == 3


@pytest.mark.parametrize("limit", [0.0, 2, 0.4])
def test_too_many_failures_raise_a_data_error(tmp_path, caplog, limit):
    bad = _bad_files(tmp_path)
    paths = [*bad, *_write_tones(tmp_path, 3)]
    cache = FeatureCache(tmp_path / "cache")
    with caplog.at_level(logging.WARNING), pytest.raises(DataError, match=r"3 of 6 files failed"):
        extract_many(paths, PIPE, cache=cache, workers=1, max_failures=limit, progress=False)
    # every bad file got its own one-line message, and the good ones were still cached
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 3 and all(any(Path(b).name in m for m in skipped) for b in bad)
    again = extract_many(paths[3:], PIPE, cache=cache, workers=1, progress=False)
    assert again.hits == 3 and again.computed == 0


def test_max_failures_must_be_a_fraction_or_a_count(tmp_path):
    with pytest.raises(ConfigError, match="fraction"):
        extract_many([], PIPE, max_failures=1.5)
    with pytest.raises(ConfigError, match="fraction"):
        extract_many([], PIPE, max_failures=-1)


def test_an_unknown_executor_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="executor='procss'; expected 'thread', 'process'"):
        extract_many(_write_tones(tmp_path, 2), PIPE, workers=2, executor="procss")


class _LosesOneWorker(LocalBackend):
    """Threads, except that the task of ``lost`` ends as if its worker process had died."""

    lost = ""

    def executor(self, n_tasks: int):
        pool = super().executor(n_tasks)
        submit = pool.submit

        def losing(fn, /, paths, *args):
            if self.lost in paths:
                future = Future()
                future.set_exception(BrokenProcessPool("a worker died"))
                return future
            return submit(fn, paths, *args)

        pool.submit = losing
        return pool


def test_a_lost_worker_fails_its_file_with_one_line_and_keeps_the_others(tmp_path, caplog):
    paths = _write_tones(tmp_path, 3)
    backend = _LosesOneWorker(BackendConfig(workers=2), "thread")
    backend.lost = paths[1]
    cache = FeatureCache(tmp_path / "cache")
    with caplog.at_level(logging.WARNING):
        res = extract_many(
            paths, PIPE, cache=cache, max_failures=1, progress=False, executor=backend
        )
    assert [f is None for f in res.features] == [False, True, False]
    ((path, message),) = res.failures
    assert path == paths[1] and "worker lost (BrokenProcessPool: a worker died)" in message
    assert "\n" not in message
    again = extract_many(paths, PIPE, cache=cache, workers=1, progress=False)
    assert (again.hits, again.computed) == (2, 1)


@pytest.mark.slow
def test_process_workers_give_the_same_features(tmp_path):
    paths = _write_tones(tmp_path, 3)
    proc = extract_many(paths, PIPE, workers=2, executor="process", progress=False)
    thread = extract_many(paths, PIPE, workers=2, executor="thread", progress=False)
    for a, b in zip(proc.features, thread.features, strict=True):
        assert torch.equal(a, b)


def test_cli_twice_then_corrupted(tmp_path, capsys, caplog):
    from vocalis.cli.main import main

    (tmp_path / "wav").mkdir()
    paths = _write_tones(tmp_path / "wav", 3)
    manifest = tmp_path / "m.csv"
    rows = ["path,label"] + [f"wav/{Path(p).name},neutral" for p in paths]
    manifest.write_text("\n".join(rows) + "\n")
    cache = tmp_path / "cache"
    out = tmp_path / "feats.npz"
    argv = ["features", str(manifest), "--features", "mfcc", "--cache", str(cache)]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    assert "3 files: 0 cache hits, 3 computed" in capsys.readouterr().out
    saved = np.load(out)
    assert saved["000000"].shape == (40, 1 + (SR // 2) // 160)
    assert list(saved["paths"]) == paths
    assert main([*argv, "--no-progress"]) == 0
    assert "3 cache hits, 0 computed, 0 regenerated, 0 failed" in capsys.readouterr().out
    entry = sorted(cache.rglob("*.vfeat"))[1]
    entry.write_bytes(b"\0" + entry.read_bytes()[1:])
    with caplog.at_level(logging.WARNING):
        assert main([*argv, "--no-progress"]) == 0
    assert "1 regenerated" in capsys.readouterr().out
    messages = [r.getMessage() for r in caplog.records]
    assert any("corrupt entry" in m and entry.name in m for m in messages)
    bad = _bad_files(tmp_path / "wav")
    manifest.write_text("\n".join(rows + [f"wav/{Path(b).name},x" for b in bad]) + "\n")
    assert main([*argv, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "of 6 files failed" in err and "missing.wav" in err and "Traceback" not in err
    assert main([*argv, "--no-progress", "--max-failures", "0.5"]) == 0
    assert "3 failed" in capsys.readouterr().out
