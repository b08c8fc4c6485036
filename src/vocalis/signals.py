"""Stopping on SIGINT / SIGTERM: one behaviour for every verb, and workers that die with us.

The ``vocalis`` console script runs every verb inside :func:`installed`:

- the first SIGINT or SIGTERM raises :class:`Stopped` (a ``KeyboardInterrupt``)
  in the main thread at once, unless a :func:`deferred` block is active (the
  training loop), which gets ``grace_s`` seconds to reach a clean point (a step
  boundary, where it saves ``last.pt``) before :class:`Stopped` is raised
  anyway; a second signal always stops at once;
- worker processes of a pool started by this process are terminated
  (:func:`stop_children`) when the verb unwinds;
- the CLI prints one line naming the signal and what is kept (the verb's
  :func:`set_resume_hint`), and exits ``128 + signal``: 130 for SIGINT,
  143 for SIGTERM.

Worker processes call :func:`worker_init` (as the pool's ``initializer``):
they ignore SIGINT (the parent decides), and they die with their parent, even
on ``kill -9``: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux, plus a watchdog
thread that exits when the parent process is gone (every platform).

Example:
    >>> err = Stopped(15, "finished folds are kept in runs/loso")
    >>> err.exit_code, str(err)
    (143, 'stopped by SIGTERM; finished folds are kept in runs/loso')
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future

#: Seconds a :func:`deferred` block has to reach its clean stop after a signal.
GRACE_S = 3.0

_STATE: dict[str, Any] = {"signum": None, "hint": "", "deferred": None, "installed": False}


class Stopped(KeyboardInterrupt):
    """The run was stopped by a signal; the CLI exits with :attr:`exit_code`.

    Args:
        signum: the signal (``signal.SIGINT`` or ``signal.SIGTERM``).
        hint: what was kept and how to resume (one line).
    """

    def __init__(self, signum: int, hint: str = "") -> None:
        super().__init__(signum, hint)
        self.signum, self.hint = int(signum), hint

    @property
    def exit_code(self) -> int:
        """``128 + signum``: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name
        return f"stopped by {name}" + (f"; {self.hint}" if self.hint else "")


def set_resume_hint(hint: str) -> None:
    """Say what a stop keeps and how to resume (``"rerun the same command ..."``)."""
    _STATE["hint"] = hint


def resume_hint() -> str:
    """The hint :func:`set_resume_hint` set (empty when none)."""
    return _STATE["hint"]


def stop_signal() -> int | None:
    """The signal that asked this process to stop, or None."""
    return _STATE["signum"]


def _handler(signum: int, frame: Any) -> None:
    first = _STATE["signum"] is None
    _STATE["signum"] = signum
    block = _STATE["deferred"]
    if first and block is not None:
        block.requested = True
        if hasattr(signal, "setitimer"):
            signal.signal(signal.SIGALRM, _deadline)
            signal.setitimer(signal.ITIMER_REAL, block.grace_s)
        return
    _rearm()
    raise Stopped(signum, _STATE["hint"])


def _rearm() -> None:
    """Raise :class:`Stopped` again every 0.2 s until the CLI has caught it.

    An exception raised while a C library runs a Python callback (soundfile's
    virtual-IO reader, for one) is printed and dropped by that library, so the
    handler's :class:`Stopped` can vanish and the verb would run on; the repeat
    makes the next one land in Python code. :func:`disarm` stops it.
    """
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGALRM, _reraise)
        signal.setitimer(signal.ITIMER_REAL, 0.2, 0.2)


def _reraise(signum: int, frame: Any) -> None:
    raise Stopped(_STATE["signum"] or signal.SIGTERM, _STATE["hint"])


def disarm() -> None:
    """Cancel the repeat of ``_rearm`` (and a pending grace deadline)."""
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        signal.setitimer(signal.ITIMER_REAL, 0)


def _deadline(signum: int, frame: Any) -> None:
    hint = _STATE["hint"] or "the last saved state is kept"
    raise Stopped(_STATE["signum"] or signal.SIGTERM, f"{hint} (no clean point within grace)")


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """Handle SIGINT and SIGTERM as described above inside the block (main thread only).

    The previous handlers are restored on exit, so calling the CLI in-process
    (tests, notebooks) leaves the caller's signal handling as it was.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old: dict[int, Any] = {}
    for name in ("SIGINT", "SIGTERM", "SIGALRM"):
        sig = getattr(signal, name, None)
        if sig is not None:
            old[sig] = signal.getsignal(sig) if name == "SIGALRM" else signal.signal(sig, _handler)
    before = dict(_STATE)
    _STATE.update(signum=None, installed=True)
    try:
        yield
    finally:
        disarm()
        for sig, handler in old.items():
            signal.signal(sig, handler)
        _STATE.update(installed=before["installed"], hint=before["hint"])


class _Deferred:
    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.requested = False


@contextlib.contextmanager
def deferred(grace_s: float = GRACE_S) -> Iterator[_Deferred]:
    """Defer the first signal inside the block: ``block.requested`` turns True.

    The block is expected to poll ``requested`` at its clean points and stop
    there; when it has not within ``grace_s`` seconds, :class:`Stopped` is
    raised wherever it is. Outside :func:`installed` (a library caller), the
    signals are handled only for the duration of the block.

    Yields:
        An object with a ``requested`` flag.
    """
    block = _Deferred(grace_s)
    main = threading.current_thread() is threading.main_thread()
    old: dict[int, Any] = {}
    if main and not _STATE["installed"]:
        _STATE["signum"] = None
        for name in ("SIGINT", "SIGTERM"):
            sig = getattr(signal, name, None)
            if sig is not None:
                old[sig] = signal.signal(sig, _handler)
    previous, _STATE["deferred"] = _STATE["deferred"], block
    try:
        yield block
    finally:
        _STATE["deferred"] = previous
        disarm()
        for sig, handler in old.items():
            signal.signal(sig, handler)


def wait_first(futures: Collection[Future], poll_s: float = 0.1) -> tuple[set[Future], set[Future]]:
    """``concurrent.futures.wait(futures, return_when=FIRST_COMPLETED)`` that a stop cannot tear.

    ``wait`` takes and releases every future's lock one by one. A :class:`Stopped`
    raised by the handler in the middle of that loop leaves some of them held, and a
    process pool's manager thread then blocks on them for ever: the verb prints its
    stop line and hangs at exit (about 1 run in 40 with 360 pending futures). Here
    the signal is :func:`deferred` while waiting, and :class:`Stopped` is raised
    between two waits of at most ``poll_s`` seconds, in this function's own code.

    Returns:
        The finished futures (at least one) and the pending ones.

    Raises:
        Stopped: a SIGINT or SIGTERM arrived while waiting.
    """
    from concurrent.futures import FIRST_COMPLETED, wait

    with deferred() as block:
        while True:
            finished, pending = wait(futures, timeout=poll_s, return_when=FIRST_COMPLETED)
            if block.requested:
                raise Stopped(_STATE["signum"] or signal.SIGTERM, _STATE["hint"])
            if finished or not pending:
                return finished, pending


def stop_children(timeout_s: float = 2.0) -> int:
    """Terminate this process's live multiprocessing children; kill those that linger.

    Returns:
        The number of children that were still running.
    """
    import multiprocessing as mp

    children = mp.active_children()
    for child in children:
        child.terminate()
    deadline = time.monotonic() + timeout_s
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()
            child.join(1.0)
    return len(children)


def _set_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, period_s: float) -> None:
    while True:
        time.sleep(period_s)
        if os.getppid() != parent:
            os._exit(143)


def _parent_pid() -> int:
    """The pid of the process that started this one, even if it is already gone.

    ``os.getppid()`` in the initializer is not enough: a spawned worker imports
    for seconds before its initializer runs, and a parent killed meanwhile
    leaves it reparented (ppid 1 or a subreaper), which would then look like
    the parent to watch. :mod:`multiprocessing` records the real one.
    """
    import multiprocessing as mp

    started_by = mp.parent_process()
    return started_by.pid if started_by is not None and started_by.pid else os.getppid()


def worker_init(period_s: float = 0.5) -> None:
    """Make a pool worker ignore SIGINT and die with its parent (pool ``initializer``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # tqdm's default lock is a named semaphore, which a killed worker would leak
        from tqdm import tqdm

        tqdm.set_lock(threading.RLock())
    except ImportError:  # pragma: no cover - tqdm is a dependency
        pass
    parent = _parent_pid()
    _set_pdeathsig()
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(143)
    threading.Thread(
        target=_watch_parent, args=(parent, period_s), name="parent-watch", daemon=True
    ).start()


__all__ = [
    "GRACE_S",
    "Stopped",
    "deferred",
    "installed",
    "resume_hint",
    "set_resume_hint",
    "stop_children",
    "stop_signal",
    "wait_first",
    "worker_init",
]
