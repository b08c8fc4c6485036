"""``vocalis sv``: speaker-verification trial lists, scoring and threshold calibration.

Examples::

    vocalis sv trials heldout.csv --out trials.tsv --per-speaker 50 --exclude-speakers-of runs/sv
"""

from __future__ import annotations

import argparse
from typing import Any

from vocalis.cli.choices import positive_int


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
