r"""``vocalis features``: compute (and cache) features for every file of a manifest.

Example::

    vocalis features data/emodb.csv --features mfcc --cache cache/feats --workers 2
    vocalis features data/emodb.csv --features mfbe_pitch --cache s3://bucket/feats --vad \
        --max-failures 0.05 --out feats.npz
    vocalis features data/emodb.csv --features encoder --encoder /models/wav2vec2-base \\
        --layers 6 9 --hop-length 320 --cache cache/feats      # mean of two wav2vec 2.0 layers
    vocalis features data/emodb.csv --functionals encoder_stats --encoder ge2e --layers 2 \\
        --out stats.npz                     # one vector per file (mean and std of GE2E layer 2)

``--backend ray --ray-address auto`` (or ``--backend slurm``) computes the
cache misses as chunks of files on a cluster (:mod:`vocalis.backends`); the
features come back to this process, which caches them: the same features and
cache as a local run.

Prints one line per skipped file, then a summary (files, cache hits, computed,
regenerated, failures, seconds, x real time). Exits non-zero when more files
fail than ``--max-failures`` allows.

A fully cached run is fast: it imports neither torch nor numpy (numpy only for
``--out``). The pipeline config, the manifest reader and the cache are
torch-free, so the run builds the real :class:`~vocalis.features.config.PipelineConfig`
from the flags, keys every file on its content and that config, and reads the
entries. Anything short of all hits (a miss, a corrupt or stale entry, an
unreadable file) falls back to the full pipeline, which reports, repairs and
recomputes as usual. (Encoder features import torch to name their weights in the key.)

With ``--functionals NAME`` the verb computes utterance functionals instead
(:mod:`vocalis.features.functionals`: one ``(D,)`` vector per file, decoded as
the functionals ensembles decode, cached on content + config with ``--cache``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vocalis.cli.backend import add_backend_args, backend_from_args
from vocalis.cli.choices import (
    add_progress_arg,
    denoiser_choices,
    feature_choices,
    max_failures_arg,
    non_negative_int,
    positive_int,
    progress_wanted,
)

if TYPE_CHECKING:
    from vocalis.features.config import PipelineConfig
    from vocalis.features.result import ExtractionResult


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
    p.add_argument(
        "--functionals",
        default=None,
        metavar="NAME",
        help="compute these utterance functionals (one vector per file) instead of frames: "
        "encoder_stats, ge2e_stats, lld_stats, compare_2016, egemaps_v02",
    )
    p.add_argument(
        "--encoder",
        default=None,
        metavar="SOURCE",
        help="encoder of '--features encoder' and '--functionals encoder_stats': ge2e, a "
        "save_pretrained folder or a model id in the Hugging Face cache (default: ge2e)",
    )
    p.add_argument(
        "--layers",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="encoder layers, numbered as the encoder numbers them (-1: the last); frames "
        "average them (default: -1 for frames, 2 for functionals)",
    )
    p.add_argument(
        "--hop-length",
        type=positive_int,
        default=160,
        help="frame hop in samples; encoder frames need the encoder's (320 for wav2vec 2.0)",
    )
    p.add_argument(
        "--cache",
        default="auto",
        help="cache folder or fsspec URL (s3://, gs://); auto: $VOCALIS_CACHE/features, else "
        "the user cache folder (~/.cache/vocalis/features); none: no cache",
    )
    p.add_argument(
        "--sample-rate", type=positive_int, default=16000, help="tier-0 and feature rate, Hz"
    )
    p.add_argument(
        "--denoise",
        default="none",
        choices=denoiser_choices(),
        metavar="NAME",
        help="tier-0 denoiser: %(choices)s",
    )
    p.add_argument("--vad", action="store_true", help="keep only speech (Silero VAD)")
    p.add_argument(
        "--workers", type=non_negative_int, default=2, help="parallel workers (0: in this process)"
    )
    p.add_argument(
        "--executor", default="thread", choices=["thread", "process"], help="kind of workers"
    )
    p.add_argument(
        "--max-failures",
        type=max_failures_arg,
        default=0.1,
        help="failures tolerated: a fraction (0.1) or a count (3); more exits non-zero "
        "(the same default as training's features.max_failures)",
    )
    p.add_argument("--out", default=None, help="optional .npz with one array (F, N) per file")
    add_progress_arg(p)
    add_backend_args(p, "chunks of files (--workers at once)")
    p.set_defaults(func=run)
    return p


def pipeline_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The :class:`~vocalis.features.config.PipelineConfig` the flags describe (no torch).

    Public so that tools measuring the command (``bench/cache.py``) build the very
    config, and cache key, that ``vocalis features`` looks up.
    """
    from vocalis.audio.config import Tier0Config
    from vocalis.features.config import FeatureConfig, PipelineConfig

    encoder = {"encoder_source": args.encoder} if args.encoder else {}
    if args.layers:
        encoder["encoder_layers"] = tuple(args.layers)
    features = FeatureConfig(
        name=args.features,
        sample_rate=args.sample_rate,
        f_max=min(FeatureConfig.f_max, args.sample_rate / 2),
        hop_length=args.hop_length,
        **encoder,
    )
    tier0 = Tier0Config(sample_rate=args.sample_rate, denoise=args.denoise, vad=args.vad)
    return PipelineConfig(tier0=tier0, features=features)


def _manifest_paths(manifest: str) -> list[str]:
    """Audio paths of the manifest, in row order (no numpy)."""
    from vocalis.data import read_manifest

    return read_manifest(manifest).paths


def _all_hits(
    args: argparse.Namespace, pipeline: PipelineConfig, paths: list[str]
) -> ExtractionResult | None:
    """The result when every file is a valid cache hit, else ``None``.

    Nothing is reported and nothing deleted (the full pipeline does that).
    Imports neither torch nor numpy.
    """
    from vocalis.features.cache import CacheKey, FeatureCache
    from vocalis.features.config import cache_identity
    from vocalis.features.result import ExtractionResult

    start = time.perf_counter()
    cache = FeatureCache(args.cache)
    keys = cache.keys(paths, cache_identity(pipeline), workers=args.workers)
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
    result.audio_seconds = frames * pipeline.features.frame_shift
    result.seconds = time.perf_counter() - start
    return result


def _write_npz(out: str, paths: list[str], features: list[Any]) -> None:
    import numpy as np

    from vocalis.io import write_npz

    arrays = {}
    for i, f in enumerate(features):
        if f is not None:
            arrays[f"{i:06d}"] = f if isinstance(f, np.ndarray) else f.numpy()
    arrays["paths"] = np.array(paths)
    write_npz(out, arrays)


def _functionals(args: argparse.Namespace, paths: list[str]) -> int:
    """``--functionals``: one vector per file (:func:`vocalis.ensemble.recipe.functional_table`)."""
    from vocalis.errors import ConfigError
    from vocalis.features.functionals import FunctionalsConfig

    if args.vad or args.denoise != "none":
        raise ConfigError(
            "features --functionals: functionals read the audio as the ensembles do "
            "(no denoising, no VAD); drop --vad / --denoise"
        )
    options: dict[str, Any] = {"name": args.functionals, "sample_rate": args.sample_rate}
    if args.encoder:
        options["encoder"] = args.encoder
    if args.layers:
        options["layers"] = tuple(args.layers)
    config = FunctionalsConfig(**options)
    from vocalis.ensemble.recipe import functional_table

    start = time.perf_counter()
    table = functional_table(paths, config, cache_dir=args.cache)
    if args.out:
        _write_npz(args.out, paths, [row.astype("float32") for row in table])
    print(
        f"{len(paths)} files: {table.shape[1]} {config.name} functionals each, "
        f"{time.perf_counter() - start:.1f} s"
    )
    if args.out:
        print(f"wrote {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis features``."""
    from vocalis.cachedir import resolve_cache_dir

    args.cache = resolve_cache_dir(args.cache, "functionals" if args.functionals else "features")
    paths = _manifest_paths(args.manifest)
    if args.functionals:
        return _functionals(args, paths)
    pipeline = pipeline_from_args(args)
    result = _all_hits(args, pipeline, paths) if args.cache else None
    if result is None:
        result = _extract(args, pipeline, paths)
    if args.out:
        _write_npz(args.out, result.paths, result.features)
    print(result.summary())
    if args.out:
        print(f"wrote {args.out}")
        _write_errors(args.out, paths, result.failures)
    return 0


def _write_errors(out: str, paths: list[str], failures: list[tuple[str, str]]) -> None:
    """``<out>.errors.csv``: the skipped files (row id = file stem), named in one line."""
    from vocalis.data.failures import Skipped, classify, errors_path, write_errors

    skipped = [Skipped(Path(p).stem, p, "features", classify(m), m) for p, m in failures]
    written = write_errors(errors_path(out), skipped)
    if skipped:
        print(f"{len(skipped)} of {len(paths)} file(s) skipped; listed in {written}")


def _extract(
    args: argparse.Namespace, pipeline: PipelineConfig, paths: list[str]
) -> ExtractionResult:
    """The full pipeline: hash, look up, repair, compute the misses, store them."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from vocalis.features.cache import FeatureCache
    from vocalis.features.pipeline import extract_many

    cache = FeatureCache(args.cache) if args.cache else None
    executor: Any = args.executor
    if args.backend != "local":  # the misses fan out to a cluster; this process caches them
        from vocalis.backends import make_backend

        executor = make_backend(backend_from_args(args, workers=args.workers))
    with logging_redirect_tqdm():
        return extract_many(
            paths,
            pipeline,
            cache=cache,
            workers=args.workers,
            max_failures=args.max_failures,
            progress=progress_wanted(args),
            executor=executor,
            as_numpy=True,
        )
