"""Atomic writes: temporary parts name their writer; a sweep removes dead writers' parts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from vocalis.io import _HOST, atomic_open, remove_stale_parts

KILLED_WRITER = """
import sys, time
from vocalis.io import atomic_open
with atomic_open(sys.argv[1], "wb") as fh:
    fh.write(b"half")
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def test_killed_writer_leaves_a_part_that_the_next_run_removes(tmp_path):
    target = tmp_path / "ckpt" / "last.pt"
    target.parent.mkdir()
    target.write_bytes(b"old")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    parts = list(target.parent.glob(".last.pt.*.part"))
    assert len(parts) == 1 and f"{_HOST}-{proc.pid}" in parts[0].name
    assert target.read_bytes() == b"old"  # the reader never saw the half-written file
    assert remove_stale_parts(tmp_path) == parts
    assert not list(target.parent.glob("*.part")) and target.read_bytes() == b"old"


def test_parts_of_live_writers_and_recent_foreign_parts_stay(tmp_path):
    mine = tmp_path / f".a.{_HOST}-{os.getpid()}.x.part"  # this process: alive
    parent = tmp_path / f".b.{_HOST}-{os.getppid()}.x.part"  # a live process
    foreign = tmp_path / ".c.otherhost-1.x.part"  # another host: judged by age
    old_style = tmp_path / ".d.abc123.part"  # untagged (older Vocalis)
    for p in (mine, parent, foreign, old_style):
        p.write_bytes(b"x")
    assert remove_stale_parts(tmp_path) == []
    past = time.time() - 2 * 86400
    for p in (foreign, old_style):
        os.utime(p, (past, past))
    assert sorted(remove_stale_parts(tmp_path)) == sorted([foreign, old_style])
    assert mine.exists() and parent.exists()


def test_missing_folder_and_urls_are_no_ops(tmp_path):
    assert remove_stale_parts(tmp_path / "absent") == []
    assert remove_stale_parts("memory://bucket/run") == []


def test_atomic_open_part_name_is_tagged_and_removed_on_error(tmp_path):
    target = tmp_path / "x.json"
    try:
        with atomic_open(target, "w") as fh:
            fh.write("{")
            (name,) = [p.name for p in tmp_path.iterdir()]
            assert name.startswith(f".x.json.{_HOST}-{os.getpid()}.") and name.endswith(".part")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []


def test_feature_cache_removes_dead_writers_parts_when_opened(tmp_path):
    from vocalis.features.cache import FeatureCache

    entry_dir = tmp_path / "ab"
    entry_dir.mkdir()
    dead = entry_dir / f".abcd.npy.{_HOST}-999999999.k3.part"
    dead.write_bytes(b"half an entry")
    FeatureCache(tmp_path)
    assert not dead.exists()


def test_every_atomic_write_and_run_folder_sweeps_dead_writers_parts(tmp_path):
    """A kill -9 mid-write of checkpoints/last.pt leaves a part: the next write (or opening
    the run folder) removes it; a live writer's part of another file stays."""
    from vocalis.training.runfolder import RunFolder

    ckpts = tmp_path / "run" / "checkpoints"
    ckpts.mkdir(parents=True)
    dead = ckpts / f".last.pt.{_HOST}-999999999.ab12.part"
    dead.write_bytes(b"half")
    live = ckpts / f".best.pt.{_HOST}-{os.getpid()}.cd34.part"
    live.write_bytes(b"in flight")
    with atomic_open(ckpts / "last.pt") as fh:
        fh.write(b"whole")
    assert not dead.exists() and live.exists() and (ckpts / "last.pt").read_bytes() == b"whole"
    dead.write_bytes(b"half again")
    run = RunFolder(tmp_path / "run")
    run.open({"python": "x"}, resumed=False)
    assert not dead.exists() and live.exists()
    assert dead.name in (tmp_path / "run" / "log.txt").read_text()
