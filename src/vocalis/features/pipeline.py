"""From audio files to features: tier 0 + extractor, cached, in parallel.

:class:`PipelineConfig` is the whole recipe (tier-0 config + feature config);
it is what checkpoints carry and what the feature cache is keyed on, so
training, evaluation and serving compute identical features. It is defined in
the torch-free :mod:`vocalis.features.config` and re-exported here.

:func:`extract_many` hashes each file and looks it up in the cache in the
calling process (cheap), computes the misses in a pool of workers (threads by default,
each torch op limited to one thread), writes them back to the cache, and skips
bad files (missing, empty, undecodable) with a one-line message each. When the
failures exceed ``max_failures`` it raises :class:`~vocalis.errors.DataError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Literal

import torch

from vocalis.audio.tier0 import run_tier0
from vocalis.backends import Backend, BackendConfig, LocalBackend, run_tasks
from vocalis.errors import ConfigError, DataError, VocalisError
from vocalis.features import combos as _combos  # noqa: F401  (registers the built-ins)
from vocalis.features.base import extract
from vocalis.features.cache import CacheKey, FeatureCache
from vocalis.features.config import PipelineConfig, cache_identity
from vocalis.features.result import ExtractionResult
from vocalis.io import PATH_TYPES

__all__ = [
    "ExtractionResult",
    "PipelineConfig",
    "compute_features",
    "extract_many",
    "torch_threads",
]

logger = logging.getLogger(__name__)


def compute_features(path: str | os.PathLike, pipeline: PipelineConfig) -> torch.Tensor:
    """Features of one audio file (no cache).

    Args:
        path: audio file (local path or fsspec URL).
        pipeline: tier-0 and feature configs.

    Returns:
        ``(F, N)`` float32 features, ``N = extractor.frame_lengths(len(tier-0 waveform))``.

    Raises:
        AudioError: the file is missing, empty or cannot be decoded.
    """
    wav = run_tier0(path, pipeline.tier0)
    return extract(wav, pipeline.features)


#: Past this many failures (and past ``max_failures``) extraction stops at once
#: instead of trying every remaining file: the manifest or the storage is broken.
ABORT_AFTER_FAILURES = 50


def _allowed_failures(max_failures: float | int, total: int) -> int:
    """A fraction in [0, 1] (float) or a count (int) -> the number of failures tolerated."""
    if isinstance(max_failures, bool) or max_failures < 0:
        raise ConfigError(
            f"max_failures={max_failures!r}, expected a fraction 0.0..1.0 or a count >= 0"
        )
    if isinstance(max_failures, int):
        return max_failures
    if max_failures > 1.0:
        raise ConfigError(
            f"max_failures={max_failures}, expected a fraction 0.0..1.0 "
            f"(or an integer count such as {int(max_failures)})"
        )
    return int(max_failures * total + 1e-9)


def _compute_one(path: str, pipeline: PipelineConfig) -> tuple[torch.Tensor | None, str | None]:
    """Run in a worker: features or a one-line error message."""
    try:
        return compute_features(path, pipeline), None
    except VocalisError as err:
        return None, str(err)
    except Exception as err:  # a broken file must not take the whole run down
        return None, f"{path}: {type(err).__name__}: {err}"


def _compute_chunk(
    paths: list[str], pipeline: PipelineConfig
) -> list[tuple[torch.Tensor | None, str | None]]:
    """Run in a backend's task: :func:`_compute_one` for each of ``paths``."""
    return [_compute_one(path, pipeline) for path in paths]


def _fan_out(backend: Backend, todo: list[int], names: list[str], pipeline, done) -> None:
    """The misses as tasks on a :mod:`vocalis.backends` backend.

    On this machine (:class:`~vocalis.backends.LocalBackend`) each file is a
    task, all submitted at once: the workers stay busy while this process
    caches the results, and a stopped run has cached every file that finished.
    On Ray or SLURM, about four chunks of files per worker: few enough that a
    task's overhead does not count, enough that the workers stay busy. A task
    whose worker is lost for good (after the backend's retries) fails its files
    with one line each.
    """
    local = isinstance(backend, LocalBackend)
    size = 1 if local else max(1, -(-len(todo) // (4 * backend.config.workers)))
    chunks = [todo[k : k + size] for k in range(0, len(todo), size)]

    def finished(c: int, results: list | None, error: BaseException | None) -> None:
        for k, i in enumerate(chunks[c]):
            if error is not None:
                done(i, None, f"{names[i]}: worker lost ({type(error).__name__}: {error})")
            else:
                done(i, *results[k])

    tasks = [([names[i] for i in c], pipeline) for c in chunks]
    run_tasks(backend, _compute_chunk, tasks, finished, in_flight=len(tasks) if local else None)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Temporarily limit torch's intra-op threads (per-file work is too small to split).

    On a loaded machine, small tensor operations split across threads spend most
    of their time waiting for each other (MFCC of one utterance: 100x slower with
    2 threads than with 1 when the cores are busy).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _unreadable(name: str, err: OSError) -> str:
    if isinstance(err, FileNotFoundError):
        return f"{name}: file not found; check the path in the manifest"
    return f"{name}: cannot read ({err.strerror or err})"


def _too_many(failures: list[tuple[str, str]], allowed: int, total: int, max_failures) -> DataError:
    first_path, first_msg = failures[0]
    first = first_msg if first_path in first_msg else f"{first_path}: {first_msg}"
    return DataError(
        f"{len(failures)} of {total} files failed, more than max_failures={max_failures} "
        f"allows ({allowed}); first: {first}; "
        "fix or remove these files from the manifest, or raise max_failures"
    )


def extract_many(
    paths: Sequence[str | os.PathLike],
    pipeline: PipelineConfig,
    cache: FeatureCache | str | os.PathLike | None = None,
    workers: int = 2,
    max_failures: float | int = 0.0,
    progress: bool = True,
    executor: Literal["thread", "process"] | Backend = "thread",
    as_numpy: bool = False,
) -> ExtractionResult:
    """Features for many files, cached and in parallel.

    Args:
        paths: audio files (local paths or fsspec URLs).
        pipeline: tier-0 and feature configs (also the cache key).
        cache: a :class:`FeatureCache`, a cache root, or ``None`` for no cache.
        workers: parallel workers for the cache misses (1 = in this process).
        max_failures: failures tolerated before raising: a fraction of the files
            (float, 0.0..1.0) or a count (int). ``0.0`` means any failure raises.
        progress: show a tqdm progress bar.
        executor: ``"thread"`` (default) or ``"process"``. torch, soundfile, soxr
            and numpy release the GIL, so threads scale on the heavy steps with no
            start-up cost; processes (spawned, one torch thread each) pay about
            5 s of imports per worker and only win for long, Python-bound tier-0
            work. Either way torch runs one intra-op thread per worker during the
            call (restored afterwards): per-file tensors are too small to split,
            and oversubscribed cores made them ~100x slower in our measurement.
            A :mod:`vocalis.backends` backend (``make_backend("ray", workers=8,
            address="auto")``) fans the misses out as chunks of files to a Ray
            cluster or SLURM jobs; the features come back to this process, which
            caches them, so the results (and the cache) are those of a local run.
        as_numpy: return numpy arrays instead of torch tensors (cache hits are
            zero-copy views of the entries either way).

    Returns:
        An :class:`ExtractionResult`, features in input order.

    Raises:
        DataError: more files failed than ``max_failures`` allows; the message
            counts them and names the first. Every file is tried first (each
            failure logged as one line, the good ones cached), unless more than
            :data:`ABORT_AFTER_FAILURES` fail. A worker process lost mid-run (a
            crash, the OOM killer) fails the files not finished yet, each with one
            line: a local pool breaks as a whole, Ray and SLURM retry the task first.
        ConfigError: an unknown ``executor`` or a bad ``max_failures``.
    """
    if isinstance(executor, str) and executor not in ("thread", "process"):
        raise ConfigError(
            f"executor={executor!r}; expected 'thread', 'process' or a vocalis.backends backend"
        )
    start = time.perf_counter()
    names = [str(p) for p in paths]
    total = len(names)
    allowed = _allowed_failures(max_failures, total)
    if isinstance(cache, PATH_TYPES):
        cache = FeatureCache(cache)
    result = ExtractionResult(paths=names, features=[None] * total)
    keys: dict[int, CacheKey] = {}
    todo: list[int] = []
    regen: set[int] = set()

    from tqdm.auto import tqdm

    bar = tqdm(total=total, disable=not progress, unit="file", desc="features", leave=False)

    failed: list[tuple[int, str, str]] = []

    def fail(i: int, message: str) -> None:
        failed.append((i, names[i], message))
        result.failures = [(p, m) for _, p, m in sorted(failed)]  # input order
        logger.warning("skipped %s", message if names[i] in message else f"{names[i]}: {message}")
        if len(result.failures) > max(allowed, ABORT_AFTER_FAILURES):  # a broken manifest
            bar.close()
            raise _too_many(result.failures, allowed, total, max_failures)

    if cache is None:
        todo = list(range(total))
    else:
        # local files known to the hash index cost one stat; the others are hashed in
        # threads (hashing releases the GIL); remote roots are read in threads
        found_keys = cache.keys(names, cache_identity(pipeline), workers=workers)
        cache.save_index()
        ok = [i for i, k in enumerate(found_keys) if isinstance(k, CacheKey)]
        entries = cache.read_many([found_keys[i] for i in ok], workers=workers)
        for i, key in enumerate(found_keys):
            if not isinstance(key, CacheKey):
                bar.update()
                fail(i, _unreadable(names[i], key))
        for i, (entry, status) in zip(ok, entries, strict=True):
            keys[i] = found_keys[i]
            if entry is not None:
                result.features[i] = entry.numpy() if as_numpy else entry.torch()
                result.hits += 1
                bar.update()
            else:
                if status in ("corrupt", "stale"):
                    regen.add(i)
                todo.append(i)

    def done(i: int, feats: torch.Tensor | None, error: str | None) -> None:
        bar.update()
        if error is not None:
            fail(i, error)
            return
        result.features[i] = feats.numpy() if as_numpy else feats
        if i in regen:
            result.regenerated += 1
        else:
            result.computed += 1
        if cache is not None:
            cache.put(keys[i], feats)

    if todo:
        if isinstance(executor, str):  # worker processes: 1 torch thread each; threads: see below
            executor = LocalBackend(BackendConfig(workers=max(1, workers), threads=1), executor)
        with torch_threads(1):
            _fan_out(executor, todo, names, pipeline, done)
    bar.close()
    if len(result.failures) > allowed:  # every file was tried (and cached) first
        raise _too_many(result.failures, allowed, total, max_failures)
    shift = pipeline.features.frame_shift
    result.audio_seconds = sum(f.shape[-1] for f in result.features if f is not None) * shift
    result.seconds = time.perf_counter() - start
    return result
