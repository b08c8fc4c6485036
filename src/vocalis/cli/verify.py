"""``vocalis verify``: are two clips the same speaker? Score, decision and its threshold.

Example::

    vocalis verify enrol.wav test.wav --checkpoint runs/sv
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``verify`` subcommand."""
    parser = subparsers.add_parser(
        "verify",
        help="score two clips and accept or reject them as one speaker",
        description="Score two clips with a speaker embedder and compare the score with the "
        "threshold stored by vocalis sv calibrate (prints score, accept/reject, the threshold "
        "and the trial list and operating point it was calibrated at).",
    )
    parser.add_argument("enrol", help="enrolment clip")
    parser.add_argument("test", help="test clip")
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="a calibrated run folder, RUN/model, checkpoint file or verifier folder",
    )
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis verify``."""
    from vocalis.errors import ModelError
    from vocalis.verification.api import verify_pair

    d = verify_pair(args.checkpoint, args.enrol, args.test, device=args.device)
    if d.threshold is None:
        out = " --out DIR` first, then verify --checkpoint DIR" if d.source == "ge2e" else "` first"
        raise ModelError(
            f"score {d.score:.4f}, but {d.source} holds no calibrated threshold, so no decision; "
            f"run `vocalis sv calibrate --checkpoint {args.checkpoint} --trials dev.tsv --at eer"
            f"{out}"
        )
    r = d.record or {}
    verdict = "accept" if d.accept else "reject"
    print(
        f"score {d.score:.4f}  {verdict}  (threshold {d.threshold:.4f}, norm {r.get('norm')}, "
        f"calibrated at {r.get('at')} on {r.get('trials')}: EER {100 * r.get('eer', 0):.2f} %, "
        f"{r.get('n_target')} target / {r.get('n_nontarget')} non-target trials; "
        f"stored in {d.source})"
    )
    return 0
