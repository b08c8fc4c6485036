"""Sliding-window prediction over long recordings, optionally gated by VAD.

A long recording is cut into windows of ``window_s`` seconds every ``hop_s``
seconds (the last window is aligned to the end, so the whole recording is
covered); each window is level-normalised like a training clip and classified.
Each window reports the share of it that Silero VAD marks as speech; a window
with less than ``min_speech`` of speech is answered "no speech detected"
(``label`` ``None``), or dropped with ``vad=True``. Results go to a CSV
(``start, end, label, confidence, p_<class>..., speech``) and a timeline plot.

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
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vocalis.errors import ConfigError
from vocalis.inference.speech import MIN_SPEECH, check_min_speech, speech_mask
from vocalis.io import PATH_TYPES


@dataclass
class Segment:
    """The prediction for one window.

    Attributes:
        start: window start in seconds.
        end: window end in seconds.
        label: most probable class; ``None`` when the window holds too little speech.
        confidence: its probability (``None`` with ``label``).
        probs: every class's probability.
        speech: share of the window that VAD marked as speech (``None``: not checked).
    """

    start: float
    end: float
    label: str | None
    confidence: float | None
    probs: dict[str, float]
    speech: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON): start, end, label (null without speech), confidence..."""
        return dataclasses.asdict(self)


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


def predict_segments(
    predictor,
    source: str | os.PathLike | Tensor | np.ndarray,
    sample_rate: int | None = None,
    *,
    window_s: float = 3.0,
    hop_s: float = 1.0,
    vad: bool = False,
    min_speech: float | None = MIN_SPEECH,
    batch_size: int = 16,
) -> list[Segment]:
    """Classify a long recording window by window.

    Args:
        predictor: a :class:`~vocalis.inference.Predictor`.
        source: audio file, or decoded samples (then give ``sample_rate``).
        sample_rate: rate of ``source`` samples in Hz.
        window_s: window length in seconds.
        hop_s: step between window starts in seconds.
        vad: drop the windows with less than ``min_speech`` of speech instead of
            answering them "no speech detected".
        min_speech: share of a window that must be speech (Silero VAD) for a label;
            ``None`` skips the speech check (every window labelled, ``vad`` ignored).
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
    threshold = check_min_speech(min_speech)
    # Tier 0 without VAD trimming (the timeline must keep its clock); each window is
    # level-normalised on its own, as the training clips were.
    tier0 = predictor.pipeline.tier0
    if dataclasses.is_dataclass(tier0) and getattr(tier0, "vad", False):
        tier0 = dataclasses.replace(tier0, vad=False)
    if isinstance(source, PATH_TYPES):
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
    if threshold is not None:
        mask = speech_mask(wav, sr, predictor.pipeline.tier0)
        speech = [float(mask[s : s + win].mean()) for s in starts]
    graph = predictor.pipeline.waveform_to_probs(level=True).to(predictor.device)
    classes = predictor.classes
    keep = [
        i
        for i in range(len(starts))
        if not vad or speech is None or threshold is None or speech[i] >= threshold
    ]
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
            p = p[: len(classes)]  # a multi-head model's timeline follows its first head
            best = int(np.argmax(p))
            s = starts[i]
            speaks = speech is None or threshold is None or speech[i] >= threshold
            out.append(
                Segment(
                    start=s / sr,
                    end=min(s + win, wav.shape[0]) / sr,
                    label=classes[best] if speaks else None,
                    confidence=float(p[best]) if speaks else None,
                    probs=dict(zip(classes, map(float, p), strict=False)),
                    speech=None if speech is None else speech[i],
                )
            )
    return out


def timeline(
    predictor,
    samples: Tensor | np.ndarray,
    sample_rate: int,
    *,
    window_s: float = 3.0,
    hop_s: float = 1.0,
) -> list[dict[str, Any]]:
    """The emotion timeline of a clip longer than one window, as plain data; ``[]`` otherwise.

    What the web service returns in ``segments`` for its page: the windows of
    :func:`predict_segments` (speech measured with the predictor's ``min_speech``)
    as dicts with ``start``, ``end``, ``label`` (``None`` without speech),
    ``confidence``, ``probs`` and ``speech``.

    Shape:
        samples: (T,) or (T, C) at ``sample_rate``.
    """
    if samples.shape[0] <= window_s * sample_rate:
        return []
    segments = predict_segments(
        predictor,
        samples,
        sample_rate,
        window_s=window_s,
        hop_s=hop_s,
        min_speech=getattr(predictor, "min_speech", MIN_SPEECH),
    )
    return [s.to_dict() for s in segments]


def segments_csv(segments: Sequence[Segment], classes: Sequence[str]) -> str:
    """CSV text: ``start, end, label, confidence, p_<class>..., speech``.

    ``label`` and ``confidence`` are empty for a window without speech, ``speech``
    when it was not measured.

    Example:
        >>> seg = Segment(0.0, 3.0, "sad", 0.75, {"angry": 0.25, "sad": 0.75}, 0.9)
        >>> quiet = Segment(1.0, 4.0, None, None, {"angry": 0.5, "sad": 0.5}, 0.0)
        >>> print(segments_csv([seg, quiet], ["angry", "sad"]).strip())
        start,end,label,confidence,p_angry,p_sad,speech
        0.000,3.000,sad,0.750000,0.250000,0.750000,0.900
        1.000,4.000,,,0.500000,0.500000,0.000
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["start", "end", "label", "confidence", *[f"p_{c}" for c in classes], "speech"])
    for s in segments:
        conf = "" if s.confidence is None else f"{s.confidence:.6f}"
        row = [f"{s.start:.3f}", f"{s.end:.3f}", s.label or "", conf]
        row += [f"{s.probs[c]:.6f}" for c in classes]
        writer.writerow([*row, "" if s.speech is None else f"{s.speech:.3f}"])
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
        if seg.label is None or seg.confidence is None:  # no speech: no label band
            continue
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
