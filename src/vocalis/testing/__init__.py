"""Test helpers: where the real data is, the bundled samples, synthetic signals.

Shipped with the package (like ``lhotse.testing``) so that plug-ins can test
against the same fixtures, including a tiny real checkpoint trained by
:func:`vocalis.training.train` (:func:`tiny_run`). Signals are float32 numpy
arrays of shape ``(T,)`` with ``T = round(seconds * sample_rate)``; everything
random takes a ``seed``.

Example:
    >>> x = synth_tone(440.0, 0.5, 16000)
    >>> x.shape, x.dtype, round(float(abs(x).max()), 2)
    ((8000,), dtype('float32'), 0.5)
    >>> sample_manifest_path().name
    'manifest.csv'
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

import numpy as np

from vocalis.testing.checkpoints import tiny_run, train_tiny
from vocalis.testing.encoders import save_tiny_hf_encoder
from vocalis.testing.estimators import ScriptedFitted

#: Skip reason for tests marked ``emodb`` when the corpus is absent.
EMODB_SKIP_REASON = "EmoDB not found at ../shared/data/emodb (set VOCALIS_EMODB)"

__all__ = [
    "EMODB_SKIP_REASON",
    "ScriptedFitted",
    "emodb_root",
    "make_audio_tree",
    "repo_root",
    "sample_manifest",
    "sample_manifest_path",
    "samples_dir",
    "save_tiny_hf_encoder",
    "synth_chirp",
    "synth_noise",
    "synth_speechlike",
    "synth_tone",
    "tiny_run",
    "train_tiny",
    "write_wav",
]


def repo_root() -> Path | None:
    """The source checkout holding ``src/vocalis`` (None for a non-editable install)."""
    here = Path(__file__).resolve().parents[3]
    return here if (here / "pyproject.toml").is_file() else None


def _has_emodb(folder: Path) -> bool:
    wav = folder / "wav"
    return wav.is_dir() and any(wav.glob("*.wav"))


def emodb_root() -> Path | None:
    """The EmoDB corpus folder (holding ``wav/``), or None when it is not there.

    Looks at ``$VOCALIS_EMODB`` first (the corpus folder or its ``wav/``), then at
    ``<repo>/../shared/data/emodb``.
    """
    env = os.environ.get("VOCALIS_EMODB")
    if env:
        p = Path(env).expanduser().resolve()
        if p.name == "wav" and not _has_emodb(p):
            p = p.parent
        return p if _has_emodb(p) else None
    repo = repo_root()
    if repo is not None:
        p = (repo.parent / "shared" / "data" / "emodb").resolve()
        if _has_emodb(p):
            return p
    return None


def samples_dir() -> Path:
    """Folder of the bundled EmoDB excerpt (14 clips, 2 speakers, 7 emotions)."""
    return Path(str(resources.files("vocalis.resources") / "samples" / "emodb_mini"))


def sample_manifest_path() -> Path:
    """``manifest.csv`` of the bundled excerpt (columns path,label,speaker,gender)."""
    return samples_dir() / "manifest.csv"


def sample_manifest():
    """The bundled excerpt as a :class:`~vocalis.data.manifest.Manifest`."""
    from vocalis.data.manifest import read_manifest

    return read_manifest(sample_manifest_path())


def _n(seconds: float, sample_rate: int) -> int:
    if sample_rate <= 0 or seconds < 0:
        raise ValueError(f"need sample_rate > 0 and seconds >= 0, got {sample_rate}, {seconds}")
    return round(seconds * sample_rate)


def synth_tone(
    freq: float,
    seconds: float = 1.0,
    sr: int = 16000,
    amplitude: float = 0.5,
    phase: float = 0.0,
) -> np.ndarray:
    """A sine ``amplitude * sin(2 pi freq t + phase)``.

    Shape:
        ``(T,)`` float32, ``T = round(seconds * sr)``.
    """
    t = np.arange(_n(seconds, sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def synth_chirp(
    f0: float,
    f1: float,
    seconds: float = 1.0,
    sr: int = 16000,
    amplitude: float = 0.5,
    method: str = "linear",
) -> np.ndarray:
    """A sweep from ``f0`` to ``f1`` Hz (``method``: linear or logarithmic).

    Shape:
        ``(T,)`` float32.

    Example:
        >>> synth_chirp(100, 4000, 0.25, 16000).shape
        (4000,)
    """
    n = _n(seconds, sr)
    t = np.arange(n) / sr
    if method == "linear":
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * max(seconds, 1e-12)))
    elif method == "logarithmic":
        k = (f1 / f0) ** (1 / max(seconds, 1e-12))
        phase = 2 * np.pi * f0 * (k**t - 1) / np.log(k) if k != 1 else 2 * np.pi * f0 * t
    else:
        raise ValueError(f"method={method!r}; expected 'linear' or 'logarithmic'")
    return (amplitude * np.sin(phase)).astype(np.float32)


def synth_noise(
    seconds: float = 1.0,
    sr: int = 16000,
    seed: int | np.random.Generator = 0,
    rms: float = 0.1,
    color: str = "white",
) -> np.ndarray:
    """Gaussian noise with the given RMS; ``color`` white, pink (1/f) or brown (1/f^2).

    Shape:
        ``(T,)`` float32.

    Example:
        >>> x = synth_noise(1.0, 8000, seed=1, rms=0.2, color="pink")
        >>> round(float((x ** 2).mean() ** 0.5), 3)
        0.2
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = _n(seconds, sr)
    x = rng.standard_normal(n)
    if color != "white":
        power = {"pink": 0.5, "brown": 1.0}.get(color)
        if power is None:
            raise ValueError(f"color={color!r}; expected white, pink or brown")
        spec = np.fft.rfft(x)
        f = np.fft.rfftfreq(n, 1 / sr)
        f[0] = f[1] if n > 1 else 1.0
        x = np.fft.irfft(spec / f**power, n)
    x = x - x.mean() if n > 1 else x
    cur = float(np.sqrt(np.mean(x**2))) if n else 0.0
    return (x * (rms / cur) if cur > 0 else x).astype(np.float32)


def synth_speechlike(
    seconds: float = 1.0,
    sr: int = 16000,
    f0: float = 120.0,
    seed: int | np.random.Generator = 0,
    syllable_rate_hz: float = 4.0,
    amplitude: float = 0.5,
) -> np.ndarray:
    """A voiced, syllable-modulated harmonic signal (a crude stand-in for speech).

    Harmonics of a slightly wandering ``f0`` up to 4 kHz with a 1/k roll-off,
    amplitude-modulated at ``syllable_rate_hz`` with short pauses, plus faint
    noise. Good enough for VAD, pitch and pipeline tests; not for models.

    Shape:
        ``(T,)`` float32, peak ``amplitude``.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = _n(seconds, sr)
    t = np.arange(n) / sr
    wobble = 1 + 0.05 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(f0 * wobble) / sr
    x = np.zeros(n)
    for k in range(1, int(min(4000, sr / 2) // f0) + 1):
        x += np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k
    env = np.clip(np.sin(2 * np.pi * syllable_rate_hz * t / 2) ** 2 * 1.4 - 0.2, 0, 1)
    x = x * env + 0.003 * rng.standard_normal(n)
    peak = float(np.abs(x).max()) if n else 0.0
    return (x * (amplitude / peak) if peak > 0 else x).astype(np.float32)


def write_wav(
    path: str | os.PathLike, samples: np.ndarray, sr: int = 16000, subtype: str = "PCM_16"
) -> Path:
    """Write ``samples`` (``(T,)`` or ``(T, C)``) as a WAV file; returns the path."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(samples), sr, subtype=subtype)
    return path


def make_audio_tree(
    root: str | os.PathLike,
    files: Iterable[str] | Mapping[str, np.ndarray | None],
    seconds: float = 0.05,
    sr: int = 16000,
) -> list[Path]:
    """Create files under ``root`` for recipe tests.

    Args:
        root: where to build the tree.
        files: relative paths; for a ``.wav`` a short tone is written (or the
            given samples, from a mapping); other suffixes and ``None`` values
            give empty files.
        seconds: tone length.
        sr: sample rate.

    Returns:
        The created paths, in order.
    """
    root = Path(root)
    items = files.items() if isinstance(files, Mapping) else ((f, ...) for f in files)
    out = []
    for i, (rel, data) in enumerate(items):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if data is None or not rel.lower().endswith(".wav"):
            p.touch()
        else:
            sig = synth_tone(200.0 + 10 * i, seconds, sr) if data is ... else data
            write_wav(p, sig, sr)
        out.append(p)
    return out
