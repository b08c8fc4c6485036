"""``vocalis features``: compute (and cache) features for every file of a manifest.

Example::

    vocalis features data/emodb.csv --features mfcc --cache cache/feats --workers 2
    vocalis features data/emodb.csv --features mfbe_pitch --cache s3://bucket/feats --vad \\
        --max-failures 0.05 --out feats.npz

Prints one line per skipped file, then a summary (files, cache hits, computed,
regenerated, failures, seconds, x real time). Exits non-zero when more files
fail than ``--max-failures`` allows.
"""

from __future__ import annotations

import argparse
import csv
import io as _io
import os
import sys


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
    from vocalis.audio.denoise import DENOISERS
    from vocalis.features import FEATURES

    p = subparsers.add_parser(
        "features",
        help="compute and cache features for a manifest",
        description="Compute (and cache) features for every file of a manifest.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("manifest", help="manifest CSV (a 'path' or 'file_path' column)")
    p.add_argument("--features", default="fbank", choices=FEATURES.names(), help="extractor")
    p.add_argument("--cache", default=None, help="cache folder or fsspec URL (s3://, gs://)")
    p.add_argument("--sample-rate", type=int, default=16000, help="tier-0 and feature rate, Hz")
    p.add_argument("--denoise", default="none", choices=DENOISERS.names(), help="tier-0 denoiser")
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


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis features``."""
    import numpy as np
    from tqdm.contrib.logging import logging_redirect_tqdm

    from vocalis.audio import Tier0Config
    from vocalis.features import FeatureConfig
    from vocalis.features.cache import FeatureCache
    from vocalis.features.pipeline import PipelineConfig, extract_many
    from vocalis.io import atomic_open

    pipeline = PipelineConfig(
        tier0=Tier0Config(sample_rate=args.sample_rate, denoise=args.denoise, vad=args.vad),
        features=FeatureConfig(
            name=args.features,
            sample_rate=args.sample_rate,
            f_max=min(FeatureConfig.f_max, args.sample_rate / 2),
        ),
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
        )
    if args.out:
        arrays = {f"{i:06d}": f.numpy() for i, f in enumerate(result.features) if f is not None}
        arrays["paths"] = np.array(result.paths)
        with atomic_open(args.out, "wb") as fh:
            np.savez(fh, **arrays)
    print(result.summary())
    if args.out:
        print(f"wrote {args.out}")
    return 0
