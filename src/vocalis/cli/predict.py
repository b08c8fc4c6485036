"""``vocalis predict``: classify audio files, folders or manifests with a trained model.

Examples::

    vocalis predict clip.wav                                  # bundled model, table
    vocalis predict clip.wav --checkpoint runs/x --json
    vocalis predict folder/ --out preds.csv                   # resumable
    vocalis predict long.wav --segments --window 3 --hop 1 --vad --out segs.csv
    vocalis predict noise.wav --no-speech-check              # classify even without speech

Speech presence: the share of each clip (or window) that Silero VAD marks as
speech is reported; below --min-speech the answer is "no speech detected"
instead of a class (label and confidence empty in the CSV, null in the JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vocalis.cli.choices import (
    add_progress_arg,
    max_failures_arg,
    non_negative_int,
    positive_float,
    positive_int,
    progress_wanted,
    share,
)
from vocalis.inference.speech import MIN_SPEECH
from vocalis.io import as_path


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        help="classify audio with a trained model (files, folders, manifests, long audio)",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="audio files, folders or manifest CSVs"
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="a run folder, RUN/model or a checkpoint file (default: the bundled model)",
    )
    parser.add_argument("--out", default=None, help="write a CSV (resumable: done rows skipped)")
    parser.add_argument(
        "--max-failures",
        type=max_failures_arg,
        default=1.0,
        help="unreadable files tolerated: a fraction (0.1) or a count (3); above it, exit 1 "
        "(default 1.0: any number; with --out they are listed in <out>.errors.csv)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--batch-size", type=positive_int, default=16, metavar="N", help="files per forward pass"
    )
    parser.add_argument(
        "--threads",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="CPU threads for torch (0: torch's own choice)",
    )
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N")
    add_progress_arg(parser)
    speech = parser.add_argument_group("speech presence")
    speech.add_argument(
        "--min-speech",
        type=share,
        default=MIN_SPEECH,
        metavar="SHARE",
        help="share of a clip (or window) that must be speech (Silero VAD); below it the "
        "answer is 'no speech detected'",
    )
    speech.add_argument(
        "--no-speech-check",
        action="store_true",
        help="classify every clip, speech or not (no VAD pass)",
    )
    seg = parser.add_argument_group("long audio (--segments)")
    seg.add_argument("--segments", action="store_true", help="sliding-window prediction")
    seg.add_argument(
        "--window", type=positive_float, default=3.0, metavar="S", help="window in seconds"
    )
    seg.add_argument("--hop", type=positive_float, default=1.0, metavar="S", help="hop in seconds")
    seg.add_argument(
        "--vad",
        action="store_true",
        help="drop the windows under --min-speech instead of answering 'no speech detected'",
    )
    seg.add_argument(
        "--plot", default=None, help="timeline PNG (default with --out: next to the CSV)"
    )
    parser.set_defaults(func=run)
    return parser


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
    return "\n".join(lines)


def _speech_text(pred: Any) -> str:
    return (
        ""
        if pred.speech is None
        else f"; speech {100 * pred.speech:.0f}% of {pred.duration_s:.2f} s"
    )


def _print_single(pred: Any, min_speech: float) -> None:
    if pred.label is None:
        print(
            f"{pred.path}: no speech detected (speech {100 * pred.speech:.0f}% of "
            f"{pred.duration_s:.2f} s, below --min-speech {min_speech:g}); no emotion "
            "predicted (--no-speech-check classifies it anyway)"
        )
        return
    if pred.heads is not None:
        _print_heads(pred)
        return
    print(f"{pred.path}: {pred.label} ({100 * pred.confidence:.1f}%{_speech_text(pred)})")
    _print_probs(pred.probs)


def _print_probs(probs: dict[str, float], indent: str = "  ") -> None:
    ranked = sorted(probs.items(), key=lambda kv: -kv[1])
    width = max(len(c) for c in probs)
    for cls, p in ranked:
        bar = "#" * round(30 * p)
        print(f"{indent}{cls.ljust(width)}  {p:6.3f}  {bar}")


def _print_heads(pred: Any) -> None:
    """Every head of a multi-head model: class and probabilities, labels on, values."""
    print(f"{pred.path}:{_speech_text(pred).lstrip(';')}")
    for name, answer in pred.heads.items():
        if answer["kind"] == "multiclass":
            print(f"  {name}: {answer['label']} ({100 * answer['confidence']:.1f}%)")
            _print_probs(answer["probs"], indent="    ")
        elif answer["kind"] == "multilabel":
            print(f"  {name}: {', '.join(answer['labels']) or 'none'} (multi-label)")
            for label, p in answer["probs"].items():
                mark = "on " if p >= answer["thresholds"][label] else "off"
                print(
                    f"    {label}  {p:6.3f}  {mark} (threshold {answer['thresholds'][label]:.3f})"
                )
        else:
            values = ", ".join(f"{c} = {v:.4g}" for c, v in answer["values"].items())
            print(f"  {name}: {values} (regression)")


def _check(args: argparse.Namespace) -> None:
    """Refuse bad inputs in one line before the model is loaded."""
    from vocalis.errors import ConfigError, DataError

    for item in args.inputs:
        if "://" not in item and not Path(item).exists():
            raise DataError(f"{item}: no such file or folder; pass audio files, folders or CSVs")
    if args.checkpoint:
        path = as_path(args.checkpoint)
        if not (path.exists() or path.with_suffix(".pt").is_file()):
            raise ConfigError(
                f"--checkpoint {args.checkpoint}: no such file or folder; pass a run folder, "
                "RUN/model or a checkpoint file (or leave it out for the bundled model)"
            )
    if args.segments and len(args.inputs) != 1:
        raise ConfigError(f"--segments takes one audio file; got {len(args.inputs)} inputs")


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis predict``."""
    _check(args)
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    from vocalis.inference.predictor import Predictor, predict

    min_speech = None if args.no_speech_check else args.min_speech
    predictor = Predictor.from_checkpoint(
        args.checkpoint, device=args.device, min_speech=min_speech
    )
    if args.segments:
        return _run_segments(args, predictor)
    progress = progress_wanted(args)
    result = predict(
        args.inputs,
        out=args.out,
        batch_size=args.batch_size,
        progress=progress,
        predictor=predictor,
    )
    preds = result.predictions
    if args.json:
        data = [p.to_dict() for p in preds]
        print(json.dumps(data[0] if len(data) == 1 and not args.out else data, indent=2))
    elif args.out:
        print(f"{len(preds)} new predictions written to {args.out}", file=sys.stderr)
    elif len(preds) == 1:
        _print_single(preds[0], args.min_speech)
    elif preds:
        from vocalis.inference.predictor import head_answer

        names = list(preds[0].heads or {})
        rows = [
            [
                p.path,
                p.answer,
                "" if p.confidence is None else f"{p.confidence:.3f}",
                "" if p.speech is None else f"{p.speech:.2f}",
                *[head_answer(p.heads[n]) for n in names],
            ]
            for p in preds
        ]
        print(_table(rows, ["path", "label", "confidence", "speech", *names]))
    if args.out or result.failures:
        _report_failures(args, result, len(preds))
    nothing = not preds and not (args.out and as_path(args.out).exists())
    return 1 if result.failures and nothing else 0  # every input failed


def _report_failures(args: argparse.Namespace, result: Any, n_new: int) -> None:
    """Write ``<out>.errors.csv``, print the summary line, honour ``--max-failures``."""
    from vocalis.data.failures import (
        Skipped,
        check_failures,
        classify,
        errors_path,
        write_errors,
    )

    skipped = [
        Skipped(Path(f.path).stem, f.path, "predict", classify(f.error), f.error)
        for f in result.failures
    ]
    where = ""
    if args.out:
        where = "; listed in " + write_errors(errors_path(args.out), skipped)
    if skipped:
        print(f"{len(skipped)} file(s) skipped{where}", file=sys.stderr)
    check_failures(skipped, n_new + len(skipped), args.max_failures, "vocalis predict")


def _run_segments(args: argparse.Namespace, predictor: Any) -> int:
    from vocalis.inference.segments import plot_timeline, predict_segments, segments_csv
    from vocalis.io import write_text

    source = args.inputs[0]
    segments = predict_segments(
        predictor,
        source,
        window_s=args.window,
        hop_s=args.hop,
        vad=args.vad,
        min_speech=None if args.no_speech_check else args.min_speech,
        batch_size=args.batch_size,
    )
    text = segments_csv(segments, predictor.classes)
    plot = args.plot or (str(as_path(args.out).with_suffix(".png")) if args.out else None)
    if args.out:
        write_text(args.out, text)
        print(f"{len(segments)} segments written to {args.out}", file=sys.stderr)
    elif args.json:
        print(json.dumps([s.to_dict() for s in segments], indent=2))
    else:
        print(text, end="")
    if plot:
        if segments:
            plot_timeline(
                segments, predictor.classes, plot, _duration(source), title=Path(source).name
            )
            print(f"timeline written to {plot}", file=sys.stderr)
        else:
            print("no speech windows: no timeline drawn", file=sys.stderr)
    return 0


def _duration(source: str) -> float | None:
    """Length of an audio file in seconds (None when it cannot be read cheaply)."""
    try:
        import soundfile as sf

        return float(sf.info(source).duration)
    except Exception:
        return None
