"""SIGTERM / SIGINT / kill -9 on real `vocalis` processes: every long verb stops within 5 s
with one line and 143 / 130, leaves state a rerun resumes, and no pool worker outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _training_helpers import tiny_overrides, write_corpus

from vocalis.features.cache import SUFFIX

psutil = pytest.importorskip("psutil", reason="the orphan checks list processes (psutil)")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SRC = str(Path(__file__).resolve().parents[2] / "src")
TINY = [o for o in tiny_overrides(Path("x")) if not o.startswith("dataset.manifest")]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vocalis.cli.main", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,  # our signals reach only this process (not its group)
    )


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"exited {proc.returncode} too early:\n{out}\n{err}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the condition was not reached in time")


def _stop(proc: subprocess.Popen, sig: int) -> tuple[float, str]:
    start = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return time.monotonic() - start, err


def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    return lines[-1]


def _workers(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _busy(procs: list[psutil.Process], min_percent: float = 5.0) -> list[psutil.Process]:
    """The processes using more than ``min_percent`` CPU over 0.2 s (one that exits is not)."""
    busy = []
    for p in procs:
        try:
            if p.cpu_percent(0.2) > min_percent:
                busy.append(p)
        except psutil.NoSuchProcess:  # a short-lived child (spawn's helper) exited meanwhile
            continue
    return busy


def _all_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """The processes still running (not zombies) after ``timeout`` seconds."""
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    running = []
    for p in alive:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                running.append(p)
        except psutil.NoSuchProcess:  # exited between the wait and the status read
            continue
    return running


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory) -> Path:
    """3 speakers x 2 labels x 60 takes of 3-4.5 s: enough work to be stopped midway."""
    return write_corpus(tmp_path_factory.mktemp("big"), per_cell=60, seconds=3.0)


def test_train_sigterm_stops_saves_and_resumes(tmp_path, corpus):
    run = tmp_path / "run"
    args = ["train", f"dataset.manifest={corpus}", *TINY, "train.epochs=500"]
    args += ["--out", str(run), "--no-progress"]
    proc = _start(args, tmp_path)
    _wait_for(lambda: (run / "history.csv").is_file(), proc)
    took, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, err
    assert took < 5, f"took {took:.1f} s"
    line = _one_line(err)
    assert line.startswith("vocalis train: stopped by SIGTERM; interrupted ")
    assert "rerun the same command to resume" in line
    assert (run / "checkpoints" / "last.pt").is_file()
    # the same command resumes (and SIGINT gives 130)
    proc = _start(args, tmp_path)
    _wait_for(lambda: "Resumed from" in (run / "log.txt").read_text(), proc)
    took, err = _stop(proc, signal.SIGINT)
    assert proc.returncode == 130 and took < 5, err
    assert _one_line(err).startswith("vocalis train: stopped by SIGINT")


def test_features_process_pool_sigterm_and_kill9(tmp_path, big_corpus):
    cache = tmp_path / "cache"
    args = ["features", str(big_corpus), "--cache", str(cache), "--workers", "2"]
    args += ["--executor", "process", "--no-progress", "--denoise", "spectral"]
    proc = _start(args, tmp_path)
    _wait_for(lambda: len(_workers(proc.pid)) >= 2 and any(cache.rglob("*" + SUFFIX)), proc)
    workers = _workers(proc.pid)
    took, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, err
    assert took < 5, f"took {took:.1f} s"
    assert _one_line(err) == (
        "vocalis features: stopped by SIGTERM; the features computed so far are cached; "
        "rerun the same command to continue"
    )
    assert not _all_gone(workers, 5)
    kept = len(list(cache.rglob("*" + SUFFIX)))
    assert kept > 0
    # kill -9: the workers die with their parent
    proc = _start(args, tmp_path)
    _wait_for(
        lambda: len(list(cache.rglob("*" + SUFFIX))) > kept and len(_workers(proc.pid)) >= 2, proc
    )
    workers = [w for w in _workers(proc.pid) if "python" in w.name().lower()]
    assert len(workers) >= 2
    proc.kill()
    proc.wait()
    assert not _all_gone(workers, 5), "orphaned feature workers"


def test_features_worker_killed_is_one_line_and_the_rerun_computes_the_rest(tmp_path, big_corpus):
    """kill -9 of one pool worker (what the OOM killer does): no traceback; the files not
    finished fail with one line each, the finished ones stay cached for the rerun."""
    cache = tmp_path / "cache"
    args = ["features", str(big_corpus), "--cache", str(cache), "--workers", "2"]
    args += ["--executor", "process", "--no-progress", "--denoise", "spectral"]
    proc = _start(args, tmp_path)
    busy: list[psutil.Process] = []

    def extracting() -> bool:
        busy[:] = _busy(_workers(proc.pid))
        return len(busy) >= 2 and any(cache.rglob("*" + SUFFIX))

    _wait_for(extracting, proc)
    busy[0].kill()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "Traceback" not in err, err
    line = _one_line(err)
    assert line.startswith("vocalis features: error: ") and "worker lost" in line, line
    lost = [ln for ln in err.splitlines() if "worker lost" in ln and "skipped" in ln]
    assert lost and all(ln.count(".wav") == 1 for ln in lost)
    kept = len(list(cache.rglob("*" + SUFFIX)))
    assert kept > 0
    proc = _start(args, tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f": {kept} cache hits, " in out, out


def test_loso_parallel_sigterm_and_kill9(tmp_path, corpus):
    out = tmp_path / "loso"
    args = ["loso", "--manifest", str(corpus), "--out", str(out), "--parallel", "2"]
    args += [*TINY, "train.epochs=400", "dataset.val_fraction=0.5"]
    proc = _start(args, tmp_path)
    fold_logs = lambda: list(out.glob("speaker_*/history.csv"))  # noqa: E731
    _wait_for(lambda: len(fold_logs()) >= 2, proc, timeout=180)
    workers = _workers(proc.pid)
    assert len(workers) >= 2
    took, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, err
    assert took < 5, f"took {took:.1f} s"
    assert "vocalis loso: stopped by SIGTERM; finished folds are kept" in _one_line(err)
    assert not _all_gone(workers, 5), "fold workers outlived SIGTERM"
    # kill -9 of the parent: the fold workers die too, and nothing keeps writing
    proc = _start(args, tmp_path)
    _wait_for(lambda: len(_busy(_workers(proc.pid))) >= 2, proc)
    workers = _workers(proc.pid)
    proc.kill()
    proc.wait()
    assert not _all_gone(workers, 5), "orphaned fold workers"
    sizes = {p: p.stat().st_size for p in out.rglob("*") if p.is_file()}
    time.sleep(2)
    assert sizes == {p: p.stat().st_size for p in out.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def repeated(big_corpus, tmp_path_factory) -> Path:
    """The big corpus listed 20 times under distinct ids, labelled as the tiny run's classes."""
    import csv

    with open(big_corpus, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = tmp_path_factory.mktemp("rep") / "manifest.csv"
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", *rows[0]])
        writer.writeheader()
        for k in range(20):
            for i, row in enumerate(rows):
                label = {"low": "anger", "high": "sadness"}[row["label"]]
                writer.writerow({"id": f"r{k}_{i}", **row, "label": label})
    return out


@pytest.mark.parametrize("verb", ["predict", "eval", "cv"])
def test_other_long_verbs_stop_within_5s(tmp_path, repeated, big_corpus, verb):
    from vocalis.testing import tiny_run

    checkpoint = tiny_run()
    if verb == "predict":
        args = ["predict", str(repeated), "--checkpoint", str(checkpoint), "--out", "p.csv"]
    elif verb == "eval":
        args = ["eval", str(checkpoint), "--manifest", str(repeated)]
    else:
        args = ["cv", "--manifest", str(big_corpus), "--out", "cv", "--folds", "3"]
        args += [*TINY, "train.epochs=400"]
    proc = _start(args, tmp_path)
    if verb == "predict":
        _wait_for(lambda: (tmp_path / "p.csv").is_file(), proc)
    else:
        time.sleep(10)  # imports, model, first files
    assert proc.poll() is None, proc.communicate()
    took, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, err
    assert took < 5, f"took {took:.1f} s"
    assert _one_line(err).startswith(f"vocalis {verb}: stopped by SIGTERM")
