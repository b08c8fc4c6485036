"""Features benchmark: tier-0 stages and our extractors vs librosa, on EmoDB, one core.

Every stage runs file by file (one utterance at a time, as in ``extract_many``)
with ``torch.set_num_threads(1)`` over the same corpus in the same process, and
is reported as x real time = seconds of audio / seconds of compute:

* ``decode``: ``vocalis.audio.io.decode`` (soundfile) of the 16 kHz WAV;
* ``resample_44k1_to_16k``: ``vocalis.audio.io.resample`` (soxr HQ) of each clip
  first upsampled to 44.1 kHz outside the timer (the usual tier-0 case of a
  44.1 kHz recording; x real time counts the clip's duration);
* ``denoise_spectral``: ``vocalis.audio.denoise.denoise(..., "spectral")``;
* ``vad``: ``vocalis.audio.vad.apply_vad`` (Silero);
* ``mfcc``, ``fbank``, ``pitch``: ``vocalis.features.extract``;
* ``librosa_mfcc``: ``librosa.feature.mfcc`` with the same parameters (40 from
  40 HTK bands, hamming 400 / 512, hop 160, constant padding, ``mel_norm=None``);
* ``librosa_fbank``: ``librosa.feature.melspectrogram`` (80 HTK bands) + ``np.log``;
* ``librosa_yin``: ``librosa.yin`` on the same 1024-sample frames (reference
  point for ``pitch``; pyin is far slower).

Each stage is warmed up on one file first; our extractor and its librosa
counterpart run interleaved file by file, and cheap stages keep each file's
best of ``--repeats`` runs, so a shared, loaded CPU biases neither side. Usage::

    python bench/features.py            # whole corpus (535 files)
    python bench/features.py --limit 40 # quick run

Writes ``bench/results/features.json``.
"""

from __future__ import annotations

import os

from benchenv import cpu_name, emodb_dir

# one core for numpy/BLAS too (librosa's mel matmul), set before numpy is imported
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent
DEFAULT_CORPUS = emodb_dir() / "wav"


def _machine() -> dict:
    cpu = cpu_name()
    import librosa

    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "librosa": librosa.__version__,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus", default=None, help="folder of WAV files (default: EmoDB's wav/)"
    )
    parser.add_argument("--limit", type=int, default=None, help="first N files only")
    parser.add_argument("--out", default=str(ROOT / "results" / "features.json"))
    parser.add_argument("--skip", nargs="*", default=[], help="stages to skip (e.g. vad)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of the cheap stages (best per file)"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    import librosa

    from vocalis.audio.denoise import denoise
    from vocalis.audio.io import decode, resample
    from vocalis.audio.vad import apply_vad
    from vocalis.features import FeatureConfig, extract
    from vocalis.io import write_json

    if args.corpus is None:
        from vocalis.testing import emodb_root

        root = emodb_root()
        args.corpus = str(root / "wav") if root is not None else str(DEFAULT_CORPUS)
    files = sorted(Path(args.corpus).glob("*.wav"))[: args.limit]
    if not files:
        print(f"no WAV files in {args.corpus}", file=sys.stderr)
        return 1
    decoded = [decode(f) for f in files]
    waves = [
        torch.from_numpy(np.ascontiguousarray(d.mean(axis=1), dtype=np.float32)) for d, _ in decoded
    ]
    rates = {sr for _, sr in decoded}
    if rates != {16000}:
        print(f"expected 16 kHz audio, found {sorted(rates)}", file=sys.stderr)
        return 1
    sr = 16000
    numpy_waves = [w.numpy() for w in waves]
    audio_seconds = sum(len(w) for w in waves) / sr
    up44 = [resample(w, sr, 44100) for w in waves]

    mfcc_cfg = FeatureConfig(name="mfcc")
    fbank_cfg = FeatureConfig(name="fbank")
    pitch_cfg = FeatureConfig(name="pitch")
    common = {
        "sr": sr,
        "n_fft": 512,
        "hop_length": 160,
        "win_length": 400,
        "window": "hamming",
        "center": True,
        "pad_mode": "constant",
        "fmin": 20.0,
        "fmax": 8000.0,
        "htk": True,
    }

    def lib_mfcc(y):
        return librosa.feature.mfcc(y=y, n_mfcc=40, n_mels=40, mel_norm=None, **common)

    def lib_fbank(y):
        mel = librosa.feature.melspectrogram(y=y, n_mels=80, norm=None, power=2.0, **common)
        return np.log(np.maximum(mel, 1e-10))

    def lib_yin(y):
        return librosa.yin(y, fmin=50, fmax=550, sr=sr, frame_length=1024, hop_length=160)

    stages = {
        "decode": (lambda i: decode(files[i])),
        "resample_44k1_to_16k": (lambda i: resample(up44[i], 44100, sr)),
        "denoise_spectral": (lambda i: denoise(waves[i], sr, "spectral")),
        "vad": (lambda i: apply_vad(waves[i], sr)),
        "mfcc": (lambda i: extract(waves[i], mfcc_cfg)),
        "fbank": (lambda i: extract(waves[i], fbank_cfg)),
        "pitch": (lambda i: extract(waves[i], pitch_cfg)),
        "librosa_mfcc": (lambda i: lib_mfcc(numpy_waves[i])),
        "librosa_fbank": (lambda i: lib_fbank(numpy_waves[i])),
        "librosa_yin": (lambda i: lib_yin(numpy_waves[i])),
    }
    groups = [
        ["decode"],
        ["resample_44k1_to_16k"],
        ["denoise_spectral"],
        ["vad"],
        ["mfcc", "librosa_mfcc"],
        ["fbank", "librosa_fbank"],
        ["pitch", "librosa_yin"],
    ]
    results: dict[str, dict] = {}
    print(f"{len(files)} files, {audio_seconds:.1f} s of audio, 1 thread")
    print(f"{'stage':<22}{'seconds':>10}{'x real time':>14}")
    for group in groups:
        group = [name for name in group if name not in args.skip]
        if not group:
            continue
        # paired stages run interleaved file by file (so load changes hit both
        # alike); cheap stages are repeated and each file's best time is kept
        repeats = 1 if group[0] in ("denoise_spectral", "vad") else args.repeats
        best = {name: [float("inf")] * len(files) for name in group}
        for name in group:
            stages[name](0)  # warm-up: lazy imports, model loading, numba / FFT plans
        for _ in range(repeats):
            for i in range(len(files)):
                for name in group:
                    start = time.perf_counter()
                    stages[name](i)
                    best[name][i] = min(best[name][i], time.perf_counter() - start)
        for name in group:
            seconds = sum(best[name])
            results[name] = {
                "seconds": round(seconds, 4),
                "x_realtime": round(audio_seconds / seconds, 1),
                "repeats": repeats,
            }
            print(f"{name:<22}{seconds:>10.3f}{audio_seconds / seconds:>14.1f}", flush=True)

    def speedup(ours: str, ref: str) -> float | None:
        if ours in results and ref in results:
            return round(results[ref]["seconds"] / results[ours]["seconds"], 2)
        return None

    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "corpus": str(args.corpus),
        "files": len(files),
        "audio_seconds": round(audio_seconds, 2),
        "machine": _machine(),
        "mfcc_speedup_vs_librosa": speedup("mfcc", "librosa_mfcc"),
        "fbank_speedup_vs_librosa": speedup("fbank", "librosa_fbank"),
        "pitch_speedup_vs_librosa_yin": speedup("pitch", "librosa_yin"),
        "stages": results,
        "notes": {
            "resample": "16 kHz clips upsampled to 44.1 kHz outside the timer; "
            "timed 44.1k -> 16k (soxr HQ)",
            "x_realtime": "seconds of audio / seconds of compute, one file at a time, "
            "1 torch thread, BLAS/OpenMP limited to 1 thread; stages other than denoise "
            "and vad: best of `repeats` runs per file",
            "pairs": "mfcc/librosa_mfcc, fbank/librosa_fbank and pitch/librosa_yin run "
            "interleaved file by file in the same loop",
            "shared_machine": "CPU shared with other jobs; compare ratios from the same run",
        },
    }
    print(
        f"MFCC {report['mfcc_speedup_vs_librosa']}x, fbank {report['fbank_speedup_vs_librosa']}x, "
        f"pitch {report['pitch_speedup_vs_librosa_yin']}x faster than librosa"
    )
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
