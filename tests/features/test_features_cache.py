"""Feature cache: content keys, config keys, corruption recovery, fsspec roots, atomicity."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch

from vocalis.features import FeatureConfig
from vocalis.features import cache as cache_mod
from vocalis.features.cache import FeatureCache, decode_entry, read_header

CFG = {"tier0": {"sample_rate": 16000}, "features": {"name": "mfcc"}}


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "a.wav"
    path.write_bytes(b"RIFF" + os.urandom(64))
    return path


def _entries(root: Path) -> list[Path]:
    return sorted(root.rglob("*.vfeat"))


def test_put_then_get_is_a_hit_with_identical_values(tmp_path, audio):
    cache = FeatureCache(tmp_path / "c")
    assert cache.get(audio, CFG) is None
    feats = torch.randn(40, 13)
    cache.put(audio, feats, CFG)
    got = cache.get(audio, CFG)
    assert torch.equal(got, feats) and got.dtype == torch.float32
    assert (cache.stats.hits, cache.stats.misses, cache.stats.writes) == (1, 1, 1)
    sha = cache.key(audio, CFG).config_sha256
    assert (tmp_path / "c" / "configs" / f"{sha}.json").exists()


def test_key_is_content_not_path_or_mtime(tmp_path, audio):
    cache = FeatureCache(tmp_path / "c")
    cache.put(audio, torch.ones(2, 2), CFG)
    copy = tmp_path / "renamed.wav"
    copy.write_bytes(audio.read_bytes())
    os.utime(copy, (1, 1))
    assert cache.get(copy, CFG) is not None  # same bytes elsewhere: hit
    audio.write_bytes(audio.read_bytes() + b"\0")  # content changed: miss
    assert cache.get(audio, CFG) is None


def test_config_change_is_a_miss():
    cache = FeatureCache("memory://vocalis-test-config")
    cfg_a = FeatureConfig(name="mfcc")
    cache.put(b"audio", torch.ones(1, 1), cfg_a)
    assert cache.get(b"audio", FeatureConfig(name="mfcc")) is not None
    assert cache.get(b"audio", FeatureConfig(name="mfcc", n_mfcc=20)) is None
    assert cache.get(b"audio", {"name": "mfcc"}) is None


def test_entry_is_self_describing(tmp_path, audio):
    cache = FeatureCache(tmp_path / "c")
    cache.put(audio, torch.zeros(3, 5, dtype=torch.float64), CFG)
    (entry,) = _entries(tmp_path / "c")
    header = read_header(entry.read_bytes())
    key = cache.key(audio, CFG)
    assert header["shape"] == [3, 5] and header["dtype"] == "<f8"
    assert header["audio_sha256"] == key.audio_sha256
    assert header["config_sha256"] == key.config_sha256 and "payload_crc32" in header
    sidecar = json.loads((tmp_path / "c" / "configs" / f"{key.config_sha256}.json").read_text())
    assert sidecar["config"] == CFG and "vocalis" in sidecar
    assert b"pickle" not in entry.read_bytes()[:8]


@pytest.mark.parametrize("damage", ["truncate", "flip_payload", "flip_header", "garbage"])
def test_corrupt_entry_is_warned_deleted_and_recomputed(tmp_path, audio, caplog, damage):
    cache = FeatureCache(tmp_path / "c")
    feats = torch.arange(60.0).reshape(6, 10)
    cache.put(audio, feats, CFG)
    (entry,) = _entries(tmp_path / "c")
    data = bytearray(entry.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 7]
    elif damage == "flip_payload":
        data[-3] ^= 0x40
    elif damage == "flip_header":
        data[20] ^= 0x01
    else:
        data = bytearray(b"not an entry")
    entry.write_bytes(bytes(data))
    calls = []
    with caplog.at_level(logging.WARNING, logger="vocalis.features.cache"):
        out = cache.get_or_compute(audio, CFG, lambda: calls.append(1) or feats.clone())
    assert calls == [1] and torch.equal(out, feats)
    assert cache.stats.regenerated == 1 and cache.stats.hits == 0
    assert any(entry.name in r.getMessage() and "corrupt" in r.getMessage() for r in caplog.records)
    assert torch.equal(cache.get(audio, CFG), feats)  # rewritten, valid again


def test_entry_from_another_config_is_not_served(tmp_path, audio):
    cache = FeatureCache(tmp_path / "c")
    cache.put(audio, torch.ones(2, 2), CFG)
    other = {"features": {"name": "fbank"}}
    cache.put(b"other audio", torch.ones(1), other)  # the sidecar of `other` exists
    src = cache.entry_path(cache.key(audio, CFG))
    dst = Path(cache.entry_path(cache.key(audio, other)))
    dst.parent.mkdir(parents=True, exist_ok=True)  # may share a fan-out folder
    dst.write_bytes(Path(src).read_bytes())
    assert cache.get(audio, other) is None and not dst.exists()
    assert cache.stats.regenerated == 1


def test_memory_url_root_works_end_to_end():
    cache = FeatureCache("memory://vocalis-test-cache/feats")
    key = cache.key(b"some wav bytes", CFG)
    assert cache.get(key) is None
    cache.put(key, torch.full((4, 4), 2.0))
    assert torch.equal(cache.get(key), torch.full((4, 4), 2.0))
    import fsspec

    fs = fsspec.filesystem("memory")
    path = cache.entry_path(key).split("://", 1)[1]
    fs.pipe_file(path, fs.cat_file(path)[:-5])  # truncate in place
    assert cache.get(key) is None and not fs.exists(path)
    assert cache.stats.regenerated == 1


def test_failed_write_leaves_no_partial_file(tmp_path, audio, monkeypatch):
    cache = FeatureCache(tmp_path / "c")

    def broken(features, key):
        yield cache_mod.MAGIC + b"\x10\x00\x00\x00"
        raise RuntimeError("disk full")

    monkeypatch.setattr(cache_mod, "_encode", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        cache.put(audio, torch.ones(2, 2), CFG)
    assert _entries(tmp_path / "c") == []  # neither the entry nor a .part file
    assert cache.get(audio, CFG) is None


def test_decode_rejects_wrong_audio_hash(tmp_path, audio):
    cache = FeatureCache(tmp_path / "c")
    cache.put(audio, torch.ones(2), CFG)
    (entry,) = _entries(tmp_path / "c")
    wrong = cache.key(b"other", CFG)
    with pytest.raises(cache_mod.CacheError, match="different audio"):
        decode_entry(entry.read_bytes(), wrong)


def test_hash_index_remembers_unchanged_files_and_rehashes_edited_ones(tmp_path, audio):
    cache = FeatureCache(tmp_path / "c")
    cache.put(audio, torch.ones(2, 2), CFG)
    cache.save_index()
    again = FeatureCache(tmp_path / "c")  # a new run: index read from disk
    assert again.get(audio, CFG) is not None
    assert again.hash_index.stats == {"hashed": 0, "remembered": 1}
    st = audio.stat()
    data = bytearray(audio.read_bytes())
    data[-1] ^= 0xFF  # same size, then the old mtime restored: ctime still moves
    audio.write_bytes(bytes(data))
    os.utime(audio, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert again.get(audio, CFG) is None
    assert again.hash_index.stats["hashed"] == 1
    plain = FeatureCache(tmp_path / "c", hash_index=False)
    assert plain.hash_index is None and plain.get(audio, CFG) is None
