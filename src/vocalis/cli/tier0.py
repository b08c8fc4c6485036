"""``vocalis tier0``: run tier 0 (and optionally features) on files and report each step.

Example::

    vocalis tier0 a.wav --denoise spectral --vad --features mfcc --save a.clean.wav

prints, per file and step, the duration, sample rate, channels, RMS level,
speech kept by VAD, the feature matrix statistics and the time each step took.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from vocalis.cli.choices import (
    ConfigDefault,
    add_progress_arg,
    check_inputs,
    denoiser_choices,
    feature_choices,
    non_negative_int,
    positive_int,
    resolve_defaults,
    share,
)

if TYPE_CHECKING:
    from vocalis.audio.tier0 import Tier0Config


def _tier0_defaults() -> Tier0Config:
    from vocalis.audio.tier0 import Tier0Config

    return Tier0Config()


class _Defaults:
    """``defaults.<field>``: a :class:`ConfigDefault` of that Tier0Config field."""

    def __getattr__(self, name: str) -> ConfigDefault:
        return ConfigDefault(_tier0_defaults, name)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``tier0`` subcommand."""
    defaults = _Defaults()  # read from Tier0Config when --help or run() needs them
    parser = subparsers.add_parser(
        "tier0",
        help="decode, denoise, VAD and (optionally) featurise audio files; print per-step stats",
        description=(
            "Run the tier-0 pipeline (decode -> mono -> resample -> denoise -> VAD -> "
            "normalise) on audio files and print statistics for each step."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="AUDIO", help="audio files or fsspec URLs")
    parser.add_argument(
        "--sample-rate",
        type=positive_int,
        default=defaults.sample_rate,
        metavar="HZ",
        help="resample to this rate in Hz",
    )
    parser.add_argument(
        "--normalize",
        choices=["peak", "rms", "none"],
        default=defaults.normalize,
        help="level normalisation: peak to 1, RMS to a target level, or none",
    )
    parser.add_argument(
        "--denoise",
        choices=denoiser_choices(),
        metavar="NAME",
        default=defaults.denoise,
        help="denoiser: %(choices)s",
    )
    parser.add_argument(
        "--vad",
        action=argparse.BooleanOptionalAction,
        default=defaults.vad,
        help="keep only speech (Silero VAD)",
    )
    parser.add_argument(
        "--vad-threshold",
        type=share,
        default=defaults.vad_threshold,
        metavar="P",
        help="speech probability above which a frame is speech, in (0, 1)",
    )
    parser.add_argument(
        "--vad-min-speech-ms",
        type=non_negative_int,
        default=defaults.vad_min_speech_ms,
        metavar="MS",
        help="drop speech segments shorter than this",
    )
    parser.add_argument(
        "--vad-min-silence-ms",
        type=non_negative_int,
        default=defaults.vad_min_silence_ms,
        metavar="MS",
        help="silences shorter than this do not split speech",
    )
    parser.add_argument(
        "--vad-pad-ms",
        type=non_negative_int,
        default=defaults.vad_pad_ms,
        metavar="MS",
        help="padding kept around each speech segment",
    )
    parser.add_argument(
        "--features",
        default=None,
        choices=feature_choices(),
        metavar="NAME",
        help="also extract these features: %(choices)s",
    )
    parser.add_argument(
        "--save", default=None, metavar="WAV", help="write the tier-0 output (one input only)"
    )
    parser.add_argument("--json", action="store_true", help="print the stats as JSON lines")
    add_progress_arg(
        parser, "no bars are drawn (one line per file): accepted like every long verb's"
    )
    parser.set_defaults(func=run)
    return parser


def _signal_stats(wav: Any, sample_rate: int, channels: int) -> dict[str, Any]:
    from vocalis.audio.level import rms_db

    return {
        "duration_s": round(wav.shape[0] / sample_rate, 4),
        "sample_rate": sample_rate,
        "channels": channels,
        "rms_db": round(rms_db(wav), 2),
    }


def tier0_report(
    source: str, config: Tier0Config, features: str | None = None
) -> tuple[list[dict[str, Any]], Any]:
    """Run tier 0 (and features) on ``source``; return per-step stats and the output.

    Returns:
        ``(steps, wav)``: one dict per step (``step``, ``duration_s``, ``sample_rate``,
        ``channels``, ``rms_db``, ``time_ms`` and step details) and the tier-0 waveform.
    """
    import torch

    from vocalis.audio.io import decode
    from vocalis.audio.tier0 import iter_tier0

    steps: list[dict[str, Any]] = []
    t = time.perf_counter()
    samples, sr = decode(source)
    wav0 = torch.from_numpy(samples)
    steps.append(
        {
            "step": "decode",
            **_signal_stats(wav0.mean(dim=1), sr, samples.shape[1]),
            "time_ms": round(1e3 * (time.perf_counter() - t), 2),
        }
    )
    wav = None
    for step in iter_tier0(samples, sr, config, source=source):
        row = {
            "step": step.name,
            **_signal_stats(step.wav, step.sample_rate, 1),
            "time_ms": round(1e3 * step.seconds, 2),
        }
        if step.name == "vad":
            row["speech_kept_pct"] = round(100 * step.info["kept"], 1)
            row["segments"] = len(step.info["segments"])
            if step.info["fallback"]:
                row["fallback"] = step.info["fallback"]
        elif "method" in step.info:
            row["method"] = step.info["method"]
        steps.append(row)
        wav = step.wav
    if features:
        from vocalis.features import FeatureConfig, extract

        rate = config.sample_rate
        fcfg = (
            FeatureConfig(name=features)
            if rate == 16000
            else FeatureConfig(name=features, sample_rate=rate, f_max=min(8000.0, rate / 2))
        )
        t = time.perf_counter()
        feats = extract(wav, fcfg)
        steps.append(
            {
                "step": f"features:{features}",
                "shape": list(feats.shape),
                "mean": round(float(feats.mean()), 4),
                "std": round(float(feats.std()), 4),
                "finite": bool(torch.isfinite(feats).all()),
                "time_ms": round(1e3 * (time.perf_counter() - t), 2),
            }
        )
    return steps, wav


def _format(row: dict[str, Any]) -> str:
    if "shape" in row:
        shape = "x".join(map(str, row["shape"]))
        return (
            f"  {row['step']:<16} shape {shape:<12} mean {row['mean']:9.4f}  "
            f"std {row['std']:8.4f}  {row['time_ms']:9.1f} ms"
        )
    text = (
        f"  {row['step']:<16} {row['duration_s']:8.3f} s  {row['sample_rate']:6d} Hz  "
        f"{row['channels']} ch  {row['rms_db']:7.2f} dB  {row['time_ms']:9.1f} ms"
    )
    if "speech_kept_pct" in row:
        text += f"  speech kept {row['speech_kept_pct']:.1f} % ({row['segments']} segments)"
        if "fallback" in row:
            text += f" [{row['fallback']}: kept all]"
    elif "method" in row:
        text += f"  {row['method']}"
    return text


def _warm_up(config: Tier0Config) -> None:
    """Import and load what the steps need, so the reported times are processing times."""
    import torch

    from vocalis.audio.tier0 import Tier0Config, tier0_waveform

    g = torch.Generator().manual_seed(0)
    if config.vad:  # TorchScript optimises during the first calls
        from vocalis.audio.vad import speech_segments

        speech_segments(0.01 * torch.randn(16000, generator=g), 16000)
    if config.denoise != "demucs":  # demucs loads its weights on first use, errors included
        from vocalis.config import to_dict

        warm = Tier0Config(**{**to_dict(config), "vad": False, "min_duration_s": 0.0})
        tier0_waveform(0.01 * torch.randn(8192, generator=g), config.sample_rate, warm)


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis tier0``."""
    check_inputs(paths=[("AUDIO", args.paths)])
    from vocalis.audio.tier0 import Tier0Config
    from vocalis.config import from_dict
    from vocalis.errors import ConfigError

    resolve_defaults(args)

    config = from_dict(
        Tier0Config,
        {
            "sample_rate": args.sample_rate,
            "normalize": args.normalize,
            "denoise": args.denoise,
            "vad": args.vad,
            "vad_threshold": args.vad_threshold,
            "vad_min_speech_ms": args.vad_min_speech_ms,
            "vad_min_silence_ms": args.vad_min_silence_ms,
            "vad_pad_ms": args.vad_pad_ms,
        },
        where="tier0",
    )
    if args.save and len(args.paths) != 1:
        raise ConfigError(f"--save takes one input file, got {len(args.paths)}; pass one path")
    _warm_up(config)
    for path in args.paths:
        steps, wav = tier0_report(path, config, args.features)
        if args.json:
            print(json.dumps({"path": path, "steps": steps}))
        else:
            print(path)
            for row in steps:
                print(_format(row))
        if args.save:
            import soundfile as sf

            from vocalis.io import atomic_open

            with atomic_open(args.save, "wb") as fh:
                sf.write(fh, wav.numpy(), config.sample_rate, format="WAV", subtype="FLOAT")
    return 0
