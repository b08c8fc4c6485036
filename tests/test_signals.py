"""Pool workers die with their parent even when it dies before their initializer runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil", reason="the orphan check lists processes (psutil)")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")

SRC = str(Path(__file__).resolve().parents[1] / "src")

PARENT = textwrap.dedent(
    """
    import multiprocessing as mp, os, time
    from concurrent.futures import ProcessPoolExecutor

    def slow_init():
        time.sleep(1.5)  # a real worker imports torch for seconds before its initializer
        from vocalis.signals import worker_init
        worker_init()

    def pid():
        return os.getpid()

    if __name__ == "__main__":
        pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=slow_init)
        pool.submit(pid)
        time.sleep(0.3)
        print(" ".join(str(c.pid) for c in mp.active_children()), flush=True)
        os._exit(9)  # killed before the worker armed its death watch
    """
)


def test_a_worker_whose_parent_died_during_its_start_exits(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env
    )
    workers = [psutil.Process(int(p)) for p in out.stdout.split()]
    assert workers, out.stderr
    deadline = time.monotonic() + 8
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [w for w in alive if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    for w in alive:
        w.kill()
    assert not alive, "a pool worker outlived its parent (reparented before its initializer)"


def test_a_stop_that_a_c_callback_swallows_is_raised_again():
    """soundfile's virtual-IO reader prints and drops an exception raised in its callback;
    the stop must still reach the verb (the repeat of ``signals._rearm``)."""
    import signal

    from vocalis import signals

    swallowed = []
    with signals.installed():
        try:
            t0 = time.monotonic()
            try:  # what a C callback does with the handler's exception
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1.0)
            except signals.Stopped as err:
                swallowed.append(err)
            with pytest.raises(signals.Stopped) as again:
                while time.monotonic() - t0 < 5.0:  # the verb runs on
                    time.sleep(0.01)
            assert time.monotonic() - t0 < 1.0 and again.value.exit_code == 143
        finally:
            signals.disarm()
    assert swallowed and signal.getsignal(signal.SIGTERM) is not signals._handler
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_stop_while_waiting_on_futures_leaves_their_locks_free():
    """``wait_first`` returns finished futures, and a SIGTERM while it waits surfaces as
    ``Stopped`` from it, with no future's lock left held (a held one hangs the pool's
    manager thread at exit) and no timer left running."""
    import signal
    import threading
    from concurrent.futures import Future

    from vocalis import signals

    done, never = Future(), Future()
    done.set_result(1)
    assert signals.wait_first([done, never]) == ({done}, {never})
    futures = [Future() for _ in range(2000)]  # wait() takes and releases 2000 locks each time
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
    with signals.installed():
        t0 = time.monotonic()
        with pytest.raises(signals.Stopped) as stop:
            signals.wait_first(futures)
        took = time.monotonic() - t0
    assert stop.value.exit_code == 143 and took < 2.0, took
    # raised in wait_first's own code, not inside concurrent.futures' lock loops
    assert stop.traceback[-1].name == "wait_first", stop.traceback[-1]
    held = [f for f in futures if not f._condition.acquire(blocking=False)]
    assert not held, f"{len(held)} futures' locks left held"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
