"""Training throughput of the built-in models on CPU.

End to end per step: features computed on the fly from the waveform
(``vocalis.features.extract``: 80 fbank for ECAPA, 40 MFCC for tier1) ->
forward -> plain cross-entropy -> backward -> AdamW step.

Two workloads:

* ``crops``: batches of 16 random 2-s crops (from EmoDB audio when present,
  otherwise white noise); no padding, so the models take their no-mask path.
* ``utterances``: whole EmoDB utterances (1.2-9 s) in batches of 16 *sorted by
  length* (consecutive utterances of the length-sorted list; the batches timed
  are drawn at random from all of them with a fixed seed), padded, with integer
  lengths: the masked path.

Each (model, workload) runs in its own subprocess so its peak RSS
(``resource.getrusage``) is its own. A short ``torch.profiler`` run names the
bottleneck by grouping self CPU time into feature extraction, convolutions,
LSTM, matmul/linear, normalisation and the optimizer.

Usage::

    python bench/train_speed.py                    # all models, both workloads
    python bench/train_speed.py --steps 4 --models tier1 ecapa_c512
    python bench/train_speed.py --no-utterances    # crops only

Writes ``bench/results/train_speed.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchenv import cpu_name, emodb_dir

EMODB = emodb_dir() / "wav"
RESULTS = Path(__file__).resolve().parent / "results" / "train_speed.json"
SAMPLE_RATE = 16000

#: name -> (model, model config, feature name)
MODELS = {
    "tier1": ("tier1", {}, "mfcc"),
    "ecapa_c512": ("ecapa", {"preset": "c512"}, "fbank"),
    "ecapa_1024": ("ecapa", {}, "fbank"),
}

#: op-name fragments -> group, first match wins (self CPU time is grouped this way)
GROUPS = [
    ("lstm", ("lstm", "rnn")),
    ("convolutions", ("conv",)),
    ("matmul/linear", ("addmm", "mm", "bmm", "matmul", "linear", "einsum")),
    ("normalisation", ("batch_norm", "layer_norm")),
    ("optimizer", ("adam", "_foreach", "lerp", "addcdiv", "addcmul")),
    ("fft", ("fft",)),
]


def _load_emodb() -> list:
    import soundfile as sf
    import torch

    if not EMODB.is_dir():
        return []
    wavs = []
    for path in sorted(EMODB.glob("*.wav")):
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        if sr != SAMPLE_RATE:
            raise SystemExit(f"{path}: sample rate {sr}, expected {SAMPLE_RATE}")
        wavs.append(torch.from_numpy(data.mean(axis=1)))
    return wavs


def _crop_batches(wavs: list, batch: int, seconds: float, seed: int):
    """Endless batches of random crops (B, samples); all the same length."""
    import torch

    g = torch.Generator().manual_seed(seed)
    n = int(seconds * SAMPLE_RATE)
    while True:
        if not wavs:
            yield torch.randn(batch, n, generator=g) * 0.1, None
            continue
        out = torch.zeros(batch, n)
        for b in range(batch):
            w = wavs[int(torch.randint(len(wavs), (1,), generator=g))]
            if len(w) > n:
                start = int(torch.randint(len(w) - n + 1, (1,), generator=g))
                out[b] = w[start : start + n]
            else:
                out[b, : len(w)] = w
        yield out, None


def _utterance_batches(wavs: list, batch: int, seed: int):
    """Length-sorted batches of whole utterances, visited in a seeded random order."""
    import torch

    order = sorted(range(len(wavs)), key=lambda i: len(wavs[i]))
    groups = [order[i : i + batch] for i in range(0, len(order), batch)]
    groups = [g for g in groups if len(g) == batch]
    rng = random.Random(seed)
    while True:
        rng.shuffle(groups)
        for grp in groups:
            lens = torch.tensor([len(wavs[i]) for i in grp])
            out = torch.zeros(len(grp), int(lens.max()))
            for b, i in enumerate(grp):
                out[b, : len(wavs[i])] = wavs[i]
            yield out, lens


def _categorise(name: str) -> str:
    low = name.lower()
    for group, keys in GROUPS:
        if any(k in low for k in keys):
            return group
    return "other"


def run_one(name: str, workload: str, args: argparse.Namespace) -> dict:
    """Measure one model on one workload (runs inside the worker subprocess)."""
    import torch
    import torch.nn.functional as F

    from vocalis.models import build_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    try:
        from vocalis.features import FeatureConfig, extract, feature_dim, frame_lengths

        feature_source = "vocalis.features.extract"
    except ImportError as err:  # the features area not available: say so
        msg = f"vocalis.features is not importable ({err}); nothing to measure"
        raise SystemExit(msg) from None

    model_name, model_cfg, feat_name = MODELS[name]
    fcfg = FeatureConfig(name=feat_name)
    num_classes = 7
    model = build_model(model_name, model_cfg, feature_dim(fcfg), num_classes, feat_name)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    wavs = _load_emodb()
    if workload == "utterances":
        if not wavs:
            return {"skipped": f"EmoDB not found at {EMODB}"}
        batches = _utterance_batches(wavs, args.batch, args.seed)
    else:
        batches = _crop_batches(wavs, args.batch, args.crop_s, args.seed)

    def step(wav, lens, labels):
        from torch.profiler import record_function

        with record_function("features"), torch.no_grad():
            feats = extract(wav, fcfg, lengths=lens)
            flens = None if lens is None else frame_lengths(lens, fcfg)
        with record_function("forward+loss"):
            out = model(feats, flens)
            loss = F.cross_entropy(out.logits, labels)
        with record_function("backward"):
            opt.zero_grad(set_to_none=True)
            loss.backward()
        with record_function("optimizer"):
            opt.step()
        return loss

    g = torch.Generator().manual_seed(args.seed)

    def next_batch():
        wav, lens = next(batches)
        labels = torch.randint(num_classes, (wav.shape[0],), generator=g)
        audio_s = (wav.shape[1] * wav.shape[0] if lens is None else int(lens.sum())) / SAMPLE_RATE
        return wav, lens, labels, audio_s

    for _ in range(args.warmup):
        wav, lens, labels, _ = next_batch()
        step(wav, lens, labels)

    elapsed = cpu = audio = feat_time = 0.0
    utts = 0
    for _ in range(args.steps):
        wav, lens, labels, audio_s = next_batch()
        t0, c0 = time.perf_counter(), time.process_time()
        step(wav, lens, labels)
        elapsed += time.perf_counter() - t0
        cpu += time.process_time() - c0
        audio += audio_s
        utts += wav.shape[0]
        t1 = time.perf_counter()
        with torch.no_grad():
            extract(wav, fcfg, lengths=lens)
        feat_time += time.perf_counter() - t1

    # profile a couple of steps and group self CPU time
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.profile_steps):
            wav, lens, labels, _ = next_batch()
            step(wav, lens, labels)
    events = prof.key_averages()
    phases = {}
    groups: dict[str, float] = {}
    total_self = 0.0
    top = []
    for ev in events:
        if ev.key in ("features", "forward+loss", "backward", "optimizer"):
            phases[ev.key] = ev.cpu_time_total
            continue
        total_self += ev.self_cpu_time_total
        grp = _categorise(ev.key)
        groups[grp] = groups.get(grp, 0.0) + ev.self_cpu_time_total
        top.append((ev.self_cpu_time_total, ev.key))
    top.sort(reverse=True)
    phase_total = sum(phases.values()) or 1.0
    phase_share = {k: round(v / phase_total, 3) for k, v in phases.items()}
    ranked = sorted(groups.items(), key=lambda kv: -kv[1])
    group_share = {k: round(v / total_self, 3) for k, v in ranked}
    feat_share = phase_share.get("features", 0.0)
    main_group, main_share = next(iter(group_share.items()))
    if feat_share > main_share:
        bottleneck = f"feature extraction ({feat_share:.0%} of step time)"
    else:
        ops = ", ".join([k for _, k in top if _categorise(k) == main_group][:3])
        bottleneck = (
            f"{main_group} ({main_share:.0%} of self CPU time: {ops}); "
            f"feature extraction {feat_share:.0%} of step time"
        )

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "x_realtime": round(audio / elapsed, 2),
        "utt_per_s": round(utts / elapsed, 2),
        "step_s": round(elapsed / args.steps, 3),
        "cpu_s_per_step": round(cpu / args.steps, 3),
        "x_realtime_cpu": round(audio / (cpu / args.threads), 2),
        "params": model.num_parameters(),
        "peak_rss_mb": round(rss_mb, 1),
        "bottleneck": bottleneck,
        "features": f"{feat_name} ({feature_dim(fcfg)}) via {feature_source}",
        "feature_share_measured": round(feat_time / elapsed, 3),
        "phase_share": phase_share,
        "self_cpu_share_by_group": group_share,
        "top_ops_self_cpu_ms": [[k, round(v / 1000.0 / args.profile_steps, 1)] for v, k in top[:8]],
        "steps": args.steps,
        "batch": args.batch,
        "audio_s_per_step": round(audio / args.steps, 2),
    }


def _machine(threads: int) -> dict:
    import torch

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    cpu = cpu_name()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_avg_at_start": load,
        "note": "machine shared with other jobs: numbers may be pessimistic",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile-steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop-s", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--omp-wait-policy",
        default="passive",
        choices=["passive", "active"],
        help="OpenMP idle threads sleep (passive) or spin (active). On a shared, loaded "
        "machine spinning threads steal the cores the other thread needs (2-3x slower); "
        "on a dedicated machine both give the same speed",
    )
    parser.add_argument("--no-utterances", action="store_true", help="skip the EmoDB workload")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "WORKLOAD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(run_one(args.worker[0], args.worker[1], args)))
        return 0

    workloads = ["crops"] + ([] if args.no_utterances else ["utterances"])
    results: dict = {}
    passthrough = [
        "--steps", str(args.steps), "--warmup", str(args.warmup),
        "--profile-steps", str(args.profile_steps), "--batch", str(args.batch),
        "--crop-s", str(args.crop_s), "--threads", str(args.threads), "--seed", str(args.seed),
    ]  # fmt: skip
    machine = _machine(args.threads)
    machine["omp_wait_policy"] = args.omp_wait_policy
    for workload in workloads:
        for name in args.models:
            cmd = [sys.executable, __file__, "--worker", name, workload, *passthrough]
            env = {**os.environ, "OMP_WAIT_POLICY": args.omp_wait_policy.upper()}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                raise SystemExit(f"{name}/{workload} failed")
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            key = name if workload == "crops" else f"{name}_utterances"
            results[key] = res
            if "skipped" in res:
                print(f"{key}: skipped ({res['skipped']})")
            else:
                print(
                    f"{key:<22} {res['x_realtime']:>6.1f}x rt ({res['x_realtime_cpu']:>5.1f}x cpu) "
                    f"{res['utt_per_s']:>6.1f} utt/s "
                    f"{res['params'] / 1e6:>6.2f} M params {res['peak_rss_mb']:>7.0f} MB  "
                    f"{res['bottleneck']}",
                    flush=True,
                )
    results["workloads"] = {
        "crops": f"batch {args.batch} of {args.crop_s:g}-s random crops"
        + (" of EmoDB audio" if EMODB.is_dir() else " of white noise"),
        "utterances": f"whole EmoDB utterances, batch {args.batch}, sorted by length "
        "(batches drawn at random, fixed seed), padded with integer lengths",
        "step": "features on the fly -> forward -> cross-entropy -> backward -> AdamW",
        "anchor": "SpeechBrain ECAPA c512 (6.2 M) with on-the-fly 80 fbank: 19.7 utt/s, "
        "about 39x real time on batch 16 of 2-s clips (2 cores)",
        "targets": {"ecapa_c512": ">= 40x real time", "tier1": ">= 50x real time"},
        "x_realtime": "seconds of audio trained per wall-clock second",
        "x_realtime_cpu": "seconds of audio per (process CPU seconds / threads): the wall-clock "
        "figure expected on uncontended cores if every thread stays busy (near true for the "
        "convolutions, an upper bound for the LSTM's small per-step matmuls); far less "
        "sensitive than x_realtime to other jobs on a shared machine",
    }
    results["machine"] = machine
    results["date"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
