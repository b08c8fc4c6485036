"""``vocalis features``: compute (and cache) features for every file of a manifest.

Example::

    vocalis features data/emodb.csv --features mfcc --cache cache/feats --workers 2
    vocalis features data/emodb.csv --features mfbe_pitch --cache s3://bucket/feats --vad \\
        --max-failures 0.05 --out feats.npz

Prints one line per skipped file, then a summary (files, cache hits, computed,
regenerated, failures, seconds, x real time). Exits non-zero when more files
fail than ``--max-failures`` allows.

A fully cached run is fast: it imports neither torch nor numpy (numpy only for
``--out``). The cache remembers which config hash these command-line settings
resolved to (an alias in ``<cache>/configs/aliases.json`` keyed on the settings,
the Vocalis version and the size and times of the source files that define the
configs), so the run looks every file up under that hash without building the
pipeline config. Anything short of all hits (a miss, a corrupt or stale entry, an
unreadable file, an unknown alias) falls back to the full pipeline, which
reports, repairs and recomputes as usual and refreshes the alias.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io as _io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from vocalis.cli.choices import denoiser_choices, feature_choices

_PATH_COLUMNS = ("path", "file_path", "filepath", "audio_path", "wav_path")
_LABEL_COLUMNS = ("label", "emotion_code", "emotion")


def _max_failures(text: str) -> float | int:
    """``0.1`` -> fraction, ``3`` -> count."""
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"got {text!r}, expected a fraction such as 0.1 or a count such as 3"
        ) from None


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``features`` subcommand."""
    p = subparsers.add_parser(
        "features",
        help="compute and cache features for a manifest",
        description="Compute (and cache) features for every file of a manifest.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("manifest", help="manifest CSV (a 'path' or 'file_path' column)")
    p.add_argument(
        "--features",
        default="fbank",
        choices=feature_choices(),
        metavar="NAME",
        help="extractor: %(choices)s",
    )
    p.add_argument("--cache", default=None, help="cache folder or fsspec URL (s3://, gs://)")
    p.add_argument("--sample-rate", type=int, default=16000, help="tier-0 and feature rate, Hz")
    p.add_argument(
        "--denoise",
        default="none",
        choices=denoiser_choices(),
        metavar="NAME",
        help="tier-0 denoiser: %(choices)s",
    )
    p.add_argument("--vad", action="store_true", help="keep only speech (Silero VAD)")
    p.add_argument("--workers", type=int, default=2, help="parallel workers")
    p.add_argument(
        "--executor", default="thread", choices=["thread", "process"], help="kind of workers"
    )
    p.add_argument(
        "--max-failures",
        type=_max_failures,
        default=0.0,
        help="failures tolerated: a fraction (0.1) or a count (3); more exits non-zero",
    )
    p.add_argument("--out", default=None, help="optional .npz with one array (F, N) per file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)
    return p


def _manifest_paths(manifest: str) -> list[str]:
    """Audio paths of the manifest, in row order."""
    try:
        from vocalis.data import read_manifest
    except ImportError:  # data package not available: read the path column ourselves
        return _fallback_paths(manifest)
    return list(read_manifest(manifest).paths)


def _fallback_paths(manifest: str) -> list[str]:
    from vocalis.errors import DataError
    from vocalis.io import read_bytes

    try:
        text = read_bytes(manifest).decode("utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{manifest}: manifest not found; check the path") from None
    rows = list(csv.DictReader(_io.StringIO(text)))
    column = next((c for c in ("path", "file_path") if rows and c in rows[0]), None)
    if column is None:
        raise DataError(
            f"{manifest}: no 'path' or 'file_path' column; add one with the audio paths"
        )
    base = os.path.dirname(os.path.abspath(manifest))
    return [os.path.normpath(os.path.join(base, r[column])) for r in rows]


def _quick_paths(manifest: str) -> list[str] | None:
    """The paths ``vocalis.data.read_manifest`` gives for a plain local CSV, read without
    importing numpy; ``None`` for anything unusual (the full reader then validates it).
    """
    if "://" in manifest:
        return None
    try:
        with open(manifest, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader)]
            rows = [cells for cells in reader if any(c.strip() for c in cells)]
    except (OSError, UnicodeDecodeError, StopIteration, csv.Error):
        return None
    where = [i for i, h in enumerate(header) if h in _PATH_COLUMNS]
    if len(where) != 1 or not any(h in _LABEL_COLUMNS for h in header) or not rows:
        return None
    col = where[0]
    base = Path(manifest).expanduser().resolve().parent
    paths = []
    for cells in rows:
        if len(cells) <= col or len(cells) > len(header):
            return None
        cell = cells[col].strip()
        if not cell or "://" in cell:
            return None
        p = Path(cell).expanduser()
        paths.append(str(p if p.is_absolute() else Path(os.path.normpath(base / p))))
    return paths


def _source_stamp() -> list[list[Any]]:
    """Size and times of the modules defining the pipeline config (their edits change it)."""
    import vocalis

    root = os.path.dirname(os.path.abspath(vocalis.__file__))
    stamp = []
    for sub in ("", "audio", "features"):
        folder = os.path.join(root, sub)
        with os.scandir(folder) as it:
            for e in sorted(it, key=lambda e: e.name):
                if e.name.endswith(".py") and e.is_file():
                    st = e.stat()
                    stamp.append([f"{sub}/{e.name}", st.st_size, st.st_mtime_ns, st.st_ctime_ns])
    return stamp


def _alias(args: argparse.Namespace) -> str:
    """The name this command line's pipeline config hash is remembered under."""
    from vocalis import __version__

    settings = {
        "features": args.features,
        "sample_rate": args.sample_rate,
        "denoise": args.denoise,
        "vad": bool(args.vad),
        "vocalis": __version__,
        "sources": _source_stamp(),
    }
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return "cli-features-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _feature_config(args: argparse.Namespace, cls: Any) -> Any:
    return cls(
        name=args.features, sample_rate=args.sample_rate, f_max=min(cls.f_max, args.sample_rate / 2)
    )


def _all_hits(args: argparse.Namespace) -> Any:
    """The result when every file is a valid cache hit under the remembered config, else
    ``None`` (nothing reported, nothing deleted: the full pipeline does that).
    """
    from vocalis.features.cache import CacheKey, FeatureCache
    from vocalis.features.result import ExtractionResult

    start = time.perf_counter()
    cache = FeatureCache(args.cache)
    known = cache.alias(_alias(args))
    if known is None:
        return None
    paths = _quick_paths(args.manifest)
    if paths is None:
        return None
    keys = cache.keys(paths, config_sha256=known["config_sha256"], workers=args.workers)
    if not all(isinstance(k, CacheKey) for k in keys):
        return None
    cache.save_index()
    frames = 0
    kept: list[Any] = []
    for key in keys:  # one at a time: without --out, each buffer is freed (and reused)
        entry, _ = cache.read(key, repair=False, writable=False)
        if entry is None:
            return None
        frames += entry.num_frames
        if args.out:
            kept.append(entry.numpy(writable=False))
    result = ExtractionResult(paths=paths, features=kept or [None] * len(paths), hits=len(keys))
    result.audio_seconds = frames * float(known.get("frame_shift", 0.0))
    result.seconds = time.perf_counter() - start
    return result


def _write_npz(out: str, paths: list[str], features: list[Any]) -> None:
    import numpy as np

    from vocalis.io import atomic_open

    arrays = {}
    for i, f in enumerate(features):
        if f is not None:
            arrays[f"{i:06d}"] = f if isinstance(f, np.ndarray) else f.numpy()
    arrays["paths"] = np.array(paths)
    with atomic_open(out, "wb") as fh:
        np.savez(fh, **arrays)


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis features``."""
    result = _all_hits(args) if args.cache else None
    if result is None:
        result = _extract(args)
    if args.out:
        _write_npz(args.out, result.paths, result.features)
    print(result.summary())
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _extract(args: argparse.Namespace) -> Any:
    """The full pipeline: hash, look up, repair, compute the misses, store them."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from vocalis.audio import Tier0Config
    from vocalis.features.cache import FeatureCache
    from vocalis.features.config import FeatureConfig
    from vocalis.features.pipeline import PipelineConfig, extract_many

    pipeline = PipelineConfig(
        tier0=Tier0Config(sample_rate=args.sample_rate, denoise=args.denoise, vad=args.vad),
        features=_feature_config(args, FeatureConfig),
    )
    paths = _manifest_paths(args.manifest)
    cache = FeatureCache(args.cache) if args.cache else None
    with logging_redirect_tqdm():
        result = extract_many(
            paths,
            pipeline,
            cache=cache,
            workers=args.workers,
            max_failures=args.max_failures,
            progress=not args.no_progress and sys.stderr.isatty(),
            executor=args.executor,
            as_numpy=True,
        )
    if cache is not None and not result.failures:
        shift = pipeline.features.frame_shift
        cache.set_alias(_alias(args), cache.config_key(pipeline)[1], frame_shift=shift)
    return result
