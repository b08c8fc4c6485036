"""Sliding-window prediction over long recordings, optionally gated by VAD.

A long recording is cut into windows of ``window_s`` seconds every ``hop_s``
seconds (the last window is aligned to the end, so the whole recording is
covered); each window is level-normalised like a training clip and classified.
With ``vad=True`` only windows in which Silero VAD finds at least
``min_speech`` of speech are kept. Results go to a CSV (``start, end, label,
confidence, p_<class>...``) and a timeline plot.

Example:
    >>> from vocalis.inference import Predictor
    >>> segs = predict_segments(Predictor.from_checkpoint("runs/x"), "talk.wav")  # doctest: +SKIP
    >>> segs[0].start, segs[0].end  # doctest: +SKIP
    (0.0, 3.0)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vocalis.errors import ConfigError


@dataclass
class Segment:
    """The prediction for one window.

    Attributes:
        start: window start in seconds.
        end: window end in seconds.
        label: most probable class.
        confidence: its probability.
        probs: every class's probability.
        speech: fraction of the window that VAD marked as speech (1.0 without VAD).
    """

    start: float
    end: float
    label: str
    confidence: float
    probs: dict[str, float]
    speech: float = 1.0


def window_starts(num_samples: int, window: int, hop: int) -> list[int]:
    """Window start samples covering ``num_samples``; the last window ends at the end.

    A recording shorter than one window gives one window at 0 (the whole recording).

    Example:
        >>> window_starts(10, 4, 3)
        [0, 3, 6]
        >>> window_starts(11, 4, 3)
        [0, 3, 6, 7]
        >>> window_starts(3, 4, 3)
        [0]
    """
    if window <= 0 or hop <= 0:
        raise ConfigError(f"window={window} and hop={hop} samples must be positive")
    if num_samples <= window:
        return [0]
    starts = list(range(0, num_samples - window + 1, hop))
    if starts[-1] + window < num_samples:
        starts.append(num_samples - window)
    return starts


def speech_mask(wav: Tensor, sample_rate: int, tier0) -> np.ndarray:
    """Boolean (T,) mask of the samples Silero VAD marks as speech."""
    from vocalis.audio.vad import VADConfig, speech_segments

    cfg = tier0.vad_config() if hasattr(tier0, "vad_config") else VADConfig()
    mask = np.zeros(wav.shape[0], dtype=bool)
    for start, end in speech_segments(wav, sample_rate, cfg):
        mask[int(start) : int(end)] = True
    return mask


def predict_segments(
    predictor,
    source: str | os.PathLike | Tensor | np.ndarray,
    sample_rate: int | None = None,
    *,
    window_s: float = 3.0,
    hop_s: float = 1.0,
    vad: bool = False,
    min_speech: float = 0.5,
    batch_size: int = 16,
) -> list[Segment]:
    """Classify a long recording window by window.

    Args:
        predictor: a :class:`~vocalis.inference.Predictor`.
        source: audio file, or decoded samples (then give ``sample_rate``).
        sample_rate: rate of ``source`` samples in Hz.
        window_s: window length in seconds.
        hop_s: step between window starts in seconds.
        vad: drop windows with less than ``min_speech`` speech (Silero VAD).
        min_speech: fraction of a window that must be speech when ``vad``.
        batch_size: windows per forward pass.

    Returns:
        One :class:`Segment` per kept window, in time order.

    Shape:
        source samples: (T,) or (T, C).

    Raises:
        AudioError: unreadable or too short audio.
        ConfigError: non-positive window or hop, ``min_speech`` outside [0, 1].
    """
    from vocalis.audio.io import decode
    from vocalis.audio.tier0 import tier0_waveform

    if not (window_s > 0 and hop_s > 0):
        raise ConfigError(f"--window {window_s} and --hop {hop_s} must be positive seconds")
    if not 0.0 <= min_speech <= 1.0:
        raise ConfigError(f"--min-speech {min_speech}: expected a fraction in [0, 1]")
    # Tier 0 without VAD trimming (the timeline must keep its clock); each window is
    # level-normalised on its own, as the training clips were.
    tier0 = predictor.pipeline.tier0
    if dataclasses.is_dataclass(tier0) and getattr(tier0, "vad", False):
        tier0 = dataclasses.replace(tier0, vad=False)
    if isinstance(source, (str, os.PathLike)):
        samples, sr = decode(source)
        name = str(source)
    else:
        if sample_rate is None:
            raise ConfigError("predict_segments: give sample_rate with raw samples")
        samples, sr, name = source, sample_rate, "<waveform>"
    wav = tier0_waveform(samples, sr, tier0, source=name)
    sr = predictor.sample_rate
    win = max(1, round(window_s * sr))
    hop = max(1, round(hop_s * sr))
    starts = window_starts(wav.shape[0], win, hop)
    speech = None
    if vad:
        mask = speech_mask(wav, sr, predictor.pipeline.tier0)
        speech = [float(mask[s : s + win].mean()) for s in starts]
    graph = predictor.pipeline.waveform_to_probs(level=True).to(predictor.device)
    classes = predictor.classes
    keep = [i for i in range(len(starts)) if speech is None or speech[i] >= min_speech]
    out: list[Segment] = []
    for b in range(0, len(keep), batch_size):
        idx = keep[b : b + batch_size]
        chunks = [wav[starts[i] : starts[i] + win] for i in idx]
        lengths = torch.tensor([c.shape[0] for c in chunks], dtype=torch.long)
        batch = torch.zeros(len(chunks), int(lengths.max()))
        for j, c in enumerate(chunks):
            batch[j, : c.shape[0]] = c
        with torch.inference_mode():
            probs = graph(batch.to(predictor.device), lengths.to(predictor.device)).float().cpu()
        for i, p in zip(idx, probs.tolist(), strict=False):
            best = int(np.argmax(p))
            s = starts[i]
            out.append(
                Segment(
                    start=s / sr,
                    end=min(s + win, wav.shape[0]) / sr,
                    label=classes[best],
                    confidence=float(p[best]),
                    probs=dict(zip(classes, map(float, p), strict=False)),
                    speech=1.0 if speech is None else speech[i],
                )
            )
    return out


def segments_csv(segments: Sequence[Segment], classes: Sequence[str], vad: bool = False) -> str:
    """CSV text: ``start, end, label, confidence, p_<class>...`` (+ ``speech`` with VAD).

    Example:
        >>> seg = Segment(0.0, 3.0, "sad", 0.75, {"angry": 0.25, "sad": 0.75})
        >>> print(segments_csv([seg], ["angry", "sad"]).strip())
        start,end,label,confidence,p_angry,p_sad
        0.000,3.000,sad,0.750000,0.250000,0.750000
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["start", "end", "label", "confidence", *[f"p_{c}" for c in classes]]
    writer.writerow([*header, "speech"] if vad else header)
    for s in segments:
        row = [f"{s.start:.3f}", f"{s.end:.3f}", s.label, f"{s.confidence:.6f}"]
        row += [f"{s.probs[c]:.6f}" for c in classes]
        writer.writerow([*row, f"{s.speech:.3f}"] if vad else row)
    return buf.getvalue()


def plot_timeline(
    segments: Sequence[Segment],
    classes: Sequence[str],
    path: str | os.PathLike,
    duration_s: float | None = None,
    title: str = "",
) -> None:
    """Save a timeline PNG: each class's probability at window centres, top label as a band.

    Uses matplotlib's Agg backend (no display needed).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from vocalis.io import atomic_open

    fig, (ax, band) = plt.subplots(
        2, 1, figsize=(10, 3.6), sharex=True, gridspec_kw={"height_ratios": [4, 1]}
    )
    colours = plt.get_cmap("tab10")
    centres = [(s.start + s.end) / 2 for s in segments]
    steps = [b.start - a.start for a, b in itertools.pairwise(segments)]
    hop = min((d for d in steps if d > 0), default=None)
    # break the lines where VAD dropped windows, instead of drawing across the gap
    xs: list[float] = []
    rows: list[list[float]] = [[] for _ in classes]
    for i, (seg, centre) in enumerate(zip(segments, centres, strict=True)):
        if i and hop and seg.start - segments[i - 1].start > hop * 1.5:
            xs.append(float("nan"))
            for row in rows:
                row.append(float("nan"))
        xs.append(centre)
        for row, c in zip(rows, classes, strict=True):
            row.append(seg.probs[c])
    for k, (c, row) in enumerate(zip(classes, rows, strict=True)):
        ax.plot(xs, row, "-o", ms=3, color=colours(k % 10), label=c)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.legend(loc="upper right", ncol=min(len(classes), 6), fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    for seg, centre in zip(segments, centres, strict=True):
        half = (hop or (seg.end - seg.start)) / 2
        colour = colours(list(classes).index(seg.label) % 10)
        alpha = 0.3 + 0.7 * seg.confidence
        band.axvspan(centre - half, centre + half, color=colour, alpha=alpha, lw=0)
    band.set_yticks([])
    band.set_ylabel("label", rotation=0, ha="right", va="center")
    band.set_xlabel("time (s)")
    end = duration_s or (max(s.end for s in segments) if segments else 1.0)
    band.set_xlim(0, end)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    with atomic_open(path, "wb") as fh:
        fh.write(buf.getvalue())
