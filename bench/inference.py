"""Inference speed on CPU: latency, real-time factor and throughput of the served graph.

For ``tier1`` (default config, 40 MFCC) and ``ecapa_c512`` (80 log-mel bands),
with **random-initialised weights** (speed does not depend on the values), the
whole path from a 3-s waveform to class probabilities
(:class:`vocalis.inference.pipeline.WaveformToProbs`: level normalisation,
features, normalisation, model, softmax) is timed as

* ``eager``: PyTorch eager, ``torch.inference_mode``;
* ``torchscript``: the graph of ``vocalis export --format torchscript``;
* ``onnx``: the graph of ``vocalis export --format onnx`` in ONNX Runtime (CPU EP),

each with 1 and 2 threads (``torch.set_num_threads`` / ORT ``intra_op_num_threads``).
Per setting: ``p50_ms``, ``p95_ms``, ``mean_ms`` over warm single-clip calls,
``rtf`` = mean wall-clock latency / audio duration, ``cpu_p50_ms`` and ``cpu_rtf``
(CPU time of the process per call: for one thread, what the latency is on an
idle core, robust to other jobs on a shared machine), and ``batch_clips_per_s``
for a batch of 16 clips. Tier-0 preprocessing (decode a 44.1 kHz WAV + resample to 16 kHz +
features, and the same with Silero VAD) is timed separately and reported as a
fraction of the total with the ECAPA ONNX single-thread model.

Usage::

    python bench/inference.py [--repeats 30] [--out bench/results/inference.json]

The reference point: WeSpeaker's ONNX ECAPA-TDNN c512 runs at RTF 0.018 on one
Xeon thread. On a shared machine numbers are pessimistic; ``machine.load_avg``
records the load when the run started.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from benchenv import cpu_name

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "inference.json"
SECONDS = 3.0
SR = 16000

MODELS = {
    "tier1": ("tier1", {}, "mfcc"),
    "ecapa_c512": ("ecapa", {"preset": "c512"}, "fbank"),
}


def make_checkpoint(path: Path, model: str, config: dict, features: str) -> Path:
    """A random-weight checkpoint of the full-size model (global normalisation)."""
    from vocalis.audio import Tier0Config
    from vocalis.checkpoint import save_checkpoint
    from vocalis.config import to_dict
    from vocalis.data import LabelEncoder
    from vocalis.features import FeatureConfig, extract, feature_dim
    from vocalis.features.normalize import GlobalMVN
    from vocalis.models import build_model

    torch.manual_seed(0)
    fcfg = FeatureConfig(name=features)
    dim = feature_dim(fcfg)
    classes = ["angry", "happy", "neutral", "sad"]
    net = build_model(model, config, dim, len(classes)).eval()
    mvn = GlobalMVN(dim).fit([extract(0.1 * torch.randn(SR * 2), fcfg)])
    save_checkpoint(
        path,
        {
            "model": {
                "kind": "neural",
                "name": model,
                "config": config,
                "input_dim": dim,
                "num_classes": 4,
            },
            "model_state": net.state_dict(),
            "pipeline": {"tier0": to_dict(Tier0Config()), "features": to_dict(fcfg)},
            "normalization": {"mode": "global", "state": mvn.state_dict()},
            "labels": LabelEncoder(classes).to_dict(),
            "config": {},
        },
    )
    return path


def test_clip() -> tuple[np.ndarray, str]:
    """A 3-s clip: EmoDB speech when present (tiled), else a synthetic speech-like signal."""
    import soundfile as sf

    from vocalis.testing import emodb_root, synth_speechlike

    root = emodb_root()
    if root is not None:
        x = sf.read(sorted((root / "wav").glob("*.wav"))[0], dtype="float32")[0]
        x = np.tile(x, int(np.ceil(SECONDS * SR / len(x))))[: int(SECONDS * SR)]
        return x.astype(np.float32), "emodb"
    return synth_speechlike(SECONDS, SR, seed=0), "synthetic"


def timeit(fn, repeats: int, warmup: int = 3, budget_s: float = 20.0) -> dict[str, float]:
    """Warm up, then time ``repeats`` calls (fewer, at least 5, past ``budget_s``)."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    cpu: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (len(times) < 5 or time.perf_counter() - start < budget_s):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    ms = 1000 * np.array(times)
    cpu_ms = 1000 * np.array(cpu)
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
        "rtf": float(ms.mean() / 1000 / SECONDS),
        # CPU time of this process per call: for 1 thread, the latency on an idle core
        "cpu_p50_ms": float(np.percentile(cpu_ms, 50)),
        "cpu_rtf": float(cpu_ms.mean() / 1000 / SECONDS),
        "calls": len(times),
    }


def runners(ckpt: Path, workdir: Path, threads: int):
    """``{mode: callable(x (B, T) float32 numpy, lengths (B,) int64)}``."""
    import onnxruntime as ort

    from vocalis.inference.export import export
    from vocalis.inference.pipeline import load_pipeline

    graph = load_pipeline(ckpt).waveform_to_probs(level=True)
    onnx_path, ts_path = workdir / f"{ckpt.stem}.onnx", workdir / f"{ckpt.stem}.ts"
    if not onnx_path.exists():
        export(ckpt, onnx_path, format="onnx")
        export(ckpt, ts_path, format="torchscript")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        script = torch.jit.load(str(ts_path))

    def eager(x, n):
        with torch.inference_mode():
            return graph(torch.from_numpy(x), torch.from_numpy(n))

    def torchscript(x, n):
        with torch.inference_mode():
            return script(torch.from_numpy(x), torch.from_numpy(n))

    def onnx(x, n):
        return sess.run(["probs"], {"waveform": x, "lengths": n})

    return {"eager": eager, "torchscript": torchscript, "onnx": onnx}


def bench_models(clip: np.ndarray, repeats: int, workdir: Path) -> dict:
    from vocalis.inference.pipeline import load_pipeline

    out: dict = {}
    x1 = clip[None, :]
    n1 = np.array([clip.shape[0]], dtype=np.int64)
    xb = np.repeat(x1, 16, axis=0)
    nb = np.repeat(n1, 16)
    for key, (name, config, features) in MODELS.items():
        ckpt = make_checkpoint(workdir / f"{key}.pt", name, config, features)
        params = sum(p.numel() for p in load_pipeline(ckpt).model.parameters())
        out[key] = {"params": int(params), "features": features}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for mode, fn in runners(ckpt, workdir, threads).items():
                stats = timeit(lambda fn=fn: fn(x1, n1), repeats)
                t = time.perf_counter()
                reps = max(2, repeats // 10)
                for _ in range(reps):
                    fn(xb, nb)
                per_batch = (time.perf_counter() - t) / reps
                stats["batch_clips_per_s"] = 16 / per_batch
                stats["batch_rtf"] = per_batch / (16 * SECONDS)
                out[key][f"{mode}_{threads}thread"] = stats
                print(
                    f"  {key:11s} {mode:11s} {threads}t  p50 {stats['p50_ms']:7.1f} ms  "
                    f"p95 {stats['p95_ms']:7.1f} ms  rtf {stats['rtf']:.4f}  "
                    f"cpu rtf {stats['cpu_rtf']:.4f}  "
                    f"batch {stats['batch_clips_per_s']:6.1f} clips/s",
                    flush=True,
                )
    return out


def bench_tier0(clip: np.ndarray, repeats: int, workdir: Path) -> dict:
    """Decode + resample + features (+ VAD) on a 44.1 kHz WAV, 1 thread."""
    import soundfile as sf

    from vocalis.audio import Tier0Config
    from vocalis.audio.io import resample
    from vocalis.audio.tier0 import run_tier0
    from vocalis.features import FeatureConfig, extract

    torch.set_num_threads(1)
    wav44 = resample(torch.from_numpy(clip), SR, 44100).numpy()
    path = workdir / "clip44k.wav"
    sf.write(path, wav44, 44100, subtype="PCM_16")
    fcfg = FeatureConfig(name="fbank")
    plain, with_vad = Tier0Config(), Tier0Config(vad=True)
    res = {
        "decode_resample_features": timeit(lambda: extract(run_tier0(path, plain), fcfg), repeats),
        "decode_resample_vad_features": timeit(
            lambda: extract(run_tier0(path, with_vad), fcfg), max(5, repeats // 2)
        ),
        "features_only": timeit(lambda: extract(torch.from_numpy(clip), fcfg), repeats),
    }
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per setting")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON to write")
    args = parser.parse_args(argv)
    import onnxruntime as ort

    clip, source = test_clip()
    print(f"clip: {SECONDS:.0f} s ({source}); random-init weights; load avg {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        results = bench_models(clip, args.repeats, workdir)
        tier0 = bench_tier0(clip, args.repeats, workdir)
    model_ms = results["ecapa_c512"]["onnx_1thread"]["mean_ms"]
    for key in ("decode_resample_features", "decode_resample_vad_features"):
        pre = tier0[key]["mean_ms"]
        tier0[key]["fraction_of_total_ecapa_onnx_1thread"] = pre / (pre + model_ms)
    results["tier0"] = tier0
    results["clip"] = {"seconds": SECONDS, "sample_rate": SR, "source": source}
    results["weights"] = "random init (speed only; accuracy not measured)"
    results["machine"] = {
        "cpu": cpu_name(),
        "cores_visible": os.cpu_count(),
        "load_avg_at_start": list(os.getloadavg()),
        "shared": "machine shared with other jobs: numbers may be pessimistic",
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "platform": platform.platform(),
    }
    results["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results["reference"] = "WeSpeaker ONNX ECAPA-TDNN c512: RTF 0.018 on one Xeon thread"
    onnx1 = results["ecapa_c512"]["onnx_1thread"]
    results["target"] = {
        "ecapa_c512_onnx_1thread_rtf": 0.02,
        "met_wall_clock": onnx1["rtf"] <= 0.02,
        "met_cpu_time": onnx1["cpu_rtf"] <= 0.02,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    _print_table(results)
    print(f"written to {args.out}")
    return 0


def _print_table(results: dict) -> None:
    print()
    head = ("model", "runtime", "p50 ms", "p95 ms", "RTF", "cpu RTF", "batch/s")
    print(f"{head[0]:12s} {head[1]:20s} " + " ".join(f"{h:>8s}" for h in head[2:]))
    for key in MODELS:
        for setting, s in results[key].items():
            if not isinstance(s, dict):
                continue
            print(
                f"{key:12s} {setting:20s} {s['p50_ms']:8.1f} {s['p95_ms']:8.1f} "
                f"{s['rtf']:8.4f} {s['cpu_rtf']:8.4f} {s['batch_clips_per_s']:8.1f}"
            )
    for key, s in results["tier0"].items():
        frac = s.get("fraction_of_total_ecapa_onnx_1thread")
        extra = f"  ({100 * frac:.0f}% of total with ecapa onnx 1t)" if frac is not None else ""
        print(f"tier0 {key:30s} p50 {s['p50_ms']:7.1f} ms{extra}")


if __name__ == "__main__":
    sys.exit(main())
