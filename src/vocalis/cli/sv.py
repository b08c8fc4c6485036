"""``vocalis sv``: speaker-verification trial lists, scoring and threshold calibration.

Examples::

    vocalis sv trials heldout.csv --out trials.tsv --per-speaker 50 --exclude-speakers-of runs/sv
    vocalis sv score --checkpoint runs/sv --trials trials.tsv --norm as --cohort cohort.csv \
        --out scores/test.tsv
    vocalis sv calibrate --checkpoint runs/sv --trials dev.tsv --at far=0.01
"""

from __future__ import annotations

import argparse
from typing import Any

from vocalis.cli.choices import (
    LazyChoices,
    add_progress_arg,
    positive_float,
    positive_int,
    progress_wanted,
    share,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sv`` subcommand and its verbs."""
    parser = subparsers.add_parser(
        "sv",
        help="speaker verification: build trial lists, score them, calibrate a threshold",
        description="Speaker verification: trial lists (trials), scoring with EER and minDCF "
        "(score) and threshold calibration (calibrate). See docs/howto/speaker-verification.md.",
    )
    verbs = parser.add_subparsers(dest="sv_command", metavar="VERB", required=True)
    _add_trials(verbs)
    _add_score(verbs)
    _add_calibrate(verbs)
    parser.set_defaults(func=run)
    return parser


def _add_trials(verbs: Any) -> None:
    p = verbs.add_parser(
        "trials",
        help="target / non-target pairs among a manifest's speakers, as a TSV",
        description="Write a trial list (label, enrol, test; 1 = same speaker) of pairs among "
        "the speakers of a manifest, reproducible with --seed. Speakers seen in training are "
        "refused unless --drop-seen or --allow-overlap is given.",
    )
    p.add_argument("manifest", help="manifest CSV with path and speaker columns")
    p.add_argument("--out", required=True, help="trial list to write (TSV, plus a .json record)")
    p.add_argument(
        "--per-speaker",
        type=positive_int,
        default=50,
        help="target trials (at most) and non-target trials per speaker",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the pair sampling")
    p.add_argument(
        "--exclude-speakers-of",
        metavar="TRAIN",
        action="append",
        default=[],
        help="a training manifest CSV or a checkpoint whose training speakers must not appear "
        "(repeatable)",
    )
    seen = p.add_mutually_exclusive_group()
    seen.add_argument(
        "--drop-seen", action="store_true", help="leave out the clips of training speakers"
    )
    seen.add_argument(
        "--allow-overlap",
        action="store_true",
        help="keep training speakers (the numbers are then speaker-dependent)",
    )
    p.set_defaults(sv_run=_run_trials)


def _norms() -> list[str]:
    from vocalis.verification.scoring import NORMS

    return list(NORMS)


def _scoring_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``score`` and ``calibrate``."""
    p.add_argument(
        "--checkpoint",
        required=True,
        help="the embedder: a run folder, RUN/model, a checkpoint file, ge2e (the pretrained "
        "GE2E d-vector, zero-shot) or a verifier folder written by calibrate --out",
    )
    p.add_argument("--trials", required=True, help="trial list TSV (label, enrol, test)")
    p.add_argument(
        "--norm",
        default="none",
        choices=LazyChoices(_norms),
        metavar="NORM",
        help="score normalisation: %(choices)s (s: symmetric, as: adaptive s-norm)",
    )
    p.add_argument(
        "--cohort", default=None, help="manifest CSV of cohort clips (other speakers) for --norm"
    )
    p.add_argument(
        "--top-k", type=positive_int, default=200, help="cohort clips per side for --norm as"
    )
    p.add_argument(
        "--embedding",
        default=None,
        help="embedding kind to ask the model for (default: sv when the model has it, else pt)",
    )
    p.add_argument("--audio-root", default=None, help="folder relative trial paths resolve against")
    p.add_argument(
        "--cache-dir",
        default=None,
        help="per-clip embedding cache, a folder or URL (default: embeddings/ beside --out, "
        "or beside the stored threshold for calibrate)",
    )
    p.add_argument("--batch-size", type=positive_int, default=16, help="clips per forward pass")
    p.add_argument("--device", default="cpu", help="torch device")
    add_progress_arg(p, "a progress bar")


def _add_score(verbs: Any) -> None:
    p = verbs.add_parser(
        "score",
        help="score a trial list: EER, minDCF, threshold, DET curve",
        description="Embed every clip of a trial list (cached per clip), score the pairs by "
        "cosine similarity, optionally normalise the scores with a cohort, and print EER, "
        "minDCF and their thresholds. --out also writes OUT.json (metrics) and OUT.det.png.",
    )
    _scoring_options(p)
    p.add_argument("--out", default=None, help="scores TSV to write (label, enrol, test, score)")
    p.add_argument(
        "--p-target",
        type=share,
        default=0.01,
        help="target prior of the detection cost (strictly between 0 and 1)",
    )
    p.add_argument("--c-miss", type=positive_float, default=1.0, help="cost of a miss")
    p.add_argument("--c-fa", type=positive_float, default=1.0, help="cost of a false alarm")
    p.set_defaults(sv_run=_run_score)


def _add_calibrate(verbs: Any) -> None:
    p = verbs.add_parser(
        "calibrate",
        help="pick a threshold on a development list and store it with the model",
        description="Score a development trial list and store the threshold at the EER (--at "
        "eer) or at a false-accept rate (--at far=0.01) in the checkpoint "
        "(extras['verification']), which vocalis verify reads. ge2e has no checkpoint: give "
        "--out DIR to write a verifier folder (DIR/verification.json), then verify "
        "--checkpoint DIR.",
    )
    _scoring_options(p)
    p.add_argument("--at", default="eer", help="operating point: eer, or far=RATE (e.g. far=0.01)")
    p.add_argument(
        "--out",
        default=None,
        help="verifier folder to write instead of the checkpoint (required for ge2e)",
    )
    p.set_defaults(sv_run=_run_calibrate)


def _progress(args: argparse.Namespace) -> bool:
    return progress_wanted(args)


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _check_options(args: argparse.Namespace) -> None:
    """Refuse option mistakes before any model is loaded or audio read."""
    from vocalis.errors import ConfigError
    from vocalis.verification.api import parse_operating_point

    if args.norm != "none" and not args.cohort:
        raise ConfigError(f"--norm {args.norm} needs a cohort: pass --cohort COHORT.csv")
    if args.norm == "none" and args.cohort:
        raise ConfigError("--cohort is used by a score normalisation: add --norm z|t|s|as")
    if getattr(args, "at", None) is not None:
        parse_operating_point(args.at)
    if getattr(args, "p_target", 0.5) in (0.0, 1.0):
        raise ConfigError(f"--p-target {args.p_target}: expected a prior strictly in (0, 1)")


def _run_score(args: argparse.Namespace) -> int:
    from vocalis.verification.api import score_trials
    from vocalis.verification.embedders import load_embedder

    _check_options(args)
    emb = load_embedder(args.checkpoint, kind=args.embedding, device=args.device)
    res = score_trials(
        emb,
        args.trials,
        norm=args.norm,
        cohort=args.cohort,
        top_k=args.top_k,
        p_target=args.p_target,
        c_miss=args.c_miss,
        c_fa=args.c_fa,
        out=args.out,
        cache_dir=args.cache_dir,
        audio_root=args.audio_root,
        batch_size=args.batch_size,
        device=args.device,
        progress=_progress(args),
    )
    m = res.metrics
    norm = m["norm"] + (f" (top {m['top_k']})" if m["top_k"] else "")
    print(
        f"{m['n_trials']} trials ({m['n_target']} target, {m['n_nontarget']} non-target), "
        f"norm {norm}: EER {_pct(m['eer'])} at threshold {m['eer_threshold']:.4f}; "
        f"minDCF {m['min_dcf']:.4f} (p_target {m['p_target']:g}, c_miss {m['c_miss']:g}, "
        f"c_fa {m['c_fa']:g}) at threshold {m['min_dcf_threshold']:.4f}"
    )
    st = m.get("stored_threshold")
    if st:
        print(
            f"at the stored threshold {st['threshold']:.4f} ({st['at']} on "
            f"{st['calibrated_on']}): false accepts {_pct(st['far'])}, false rejects "
            f"{_pct(st['frr'])}"
        )
    if m["skipped_trials"]:
        print(f"{m['skipped_trials']} trial(s) left out: unreadable clips (see above)")
    if res.written:
        print(f"written: {', '.join(res.written)}")
    return 0


def _run_calibrate(args: argparse.Namespace) -> int:
    from vocalis.verification.api import calibrate_threshold
    from vocalis.verification.embedders import load_embedder

    _check_options(args)
    emb = load_embedder(args.checkpoint, kind=args.embedding, device=args.device)
    record, where = calibrate_threshold(
        emb,
        args.trials,
        at=args.at,
        norm=args.norm,
        cohort=args.cohort,
        top_k=args.top_k,
        out=args.out,
        cache_dir=args.cache_dir,
        audio_root=args.audio_root,
        batch_size=args.batch_size,
        device=args.device,
        progress=_progress(args),
    )
    print(
        f"threshold {record['threshold']:.4f} at {record['at']} (norm {record['norm']}) on "
        f"{args.trials}: false accepts {_pct(record['far'])}, false rejects "
        f"{_pct(record['frr'])}, EER {_pct(record['eer'])}; stored in {where}"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis sv VERB``."""
    return int(args.sv_run(args) or 0)


def _run_trials(args: argparse.Namespace) -> int:
    from vocalis.verification.trials import build_trials, meta_path, training_speakers, write_trials

    exclude: set[str] = set()
    where = []
    for spec in args.exclude_speakers_of:
        speakers, origin = training_speakers(spec)
        exclude |= speakers
        where.append(origin)
    overlap = "drop" if args.drop_seen else "allow" if args.allow_overlap else "refuse"
    trials = build_trials(
        args.manifest,
        per_speaker=args.per_speaker,
        seed=args.seed,
        exclude=exclude,
        overlap=overlap,
        exclude_source="; ".join(where),
    )
    write_trials(args.out, trials)
    m = trials.meta
    dropped = (
        f", {len(m['overlapping_speakers'])} training speaker(s) dropped"
        if overlap == "drop" and m["overlapping_speakers"]
        else ""
    )
    warn = (
        f"; WARNING: {len(m['overlapping_speakers'])} speaker(s) seen in training kept"
        if overlap == "allow" and m["overlapping_speakers"]
        else ""
    )
    print(
        f"{len(trials)} trials ({trials.n_target} target, {trials.n_nontarget} non-target) "
        f"among {m['n_speakers']} speakers, {m['n_clips']} clips{dropped} -> {args.out} "
        f"(record: {meta_path(args.out)}){warn}"
    )
    return 0
