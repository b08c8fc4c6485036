"""Fine-tuning throughput and peak memory of a wav2vec 2.0 base-sized encoder (model=ssl).

The encoder is built from ``transformers.Wav2Vec2Config()`` (the base architecture:
7 convolutions, 12 transformer layers of 768, 95 M parameters) with random weights
and saved with ``save_pretrained`` into a temporary folder, so nothing is
downloaded; ``vocalis.models.ssl`` wraps it as ``model=ssl`` does (learned layer
weights over all 13 hidden states, mean pooling, the seed's 512/256 head), with the
convolutional feature encoder frozen and every transformer layer trained.

Per step: a batch of 8 x 3 s of noise (16 kHz) -> forward -> cross-entropy ->
backward -> AdamW step, with and without gradient checkpointing
(``train.gradient_checkpointing``). Each setting runs in its own subprocess, so its
peak RSS (``resource.getrusage``) is its own; ``--warmup`` untimed steps come first
(1 by default). Wall and CPU time are both recorded (the machine may be shared), and the
checkpointed run is quoted as a ratio to the plain one of the same invocation.
wav2vec 2.0 base normalises its feature encoder with group norm over the whole
input, so Vocalis runs the items of a batch one by one through it (a padded batch
would change the statistics); the transformer sees them as one batch.

Usage::

    python bench/ssl_finetune.py                      # CPU, 3 timed steps per setting
    python bench/ssl_finetune.py --steps 2 --device cuda

Writes ``bench/results/ssl.json`` and prints a table. The script is not called
``bench/ssl.py``: Python puts a script's folder first on ``sys.path``, so a
``bench/ssl.py`` would stand in for the standard library's ``ssl`` module in every
script under ``bench/`` (``urllib``, ``huggingface_hub`` and ``wandb`` import it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchenv import cpu_name

BATCH, SECONDS, SR = 8, 3.0, 16000
RESULTS = Path(__file__).resolve().parent / "results" / "ssl.json"


def _child(
    folder: str, checkpointing: bool, steps: int, device: str, threads: int, warmup: int = 1
) -> dict:
    """One setting, timed in this (fresh) process."""
    import torch

    from vocalis.models import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    params = {"encoder": {"source": folder, "freeze_feature_encoder": True}, "mlp": [512, 256]}
    model = build_model("ssl", params, 1, 7).to(device).train()
    model.set_gradient_checkpointing(checkpointing)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    n = int(SECONDS * SR)
    x = torch.randn(BATCH, 1, n, device=device) * 0.1
    lengths = torch.full((BATCH,), n, device=device)
    y = torch.randint(0, 7, (BATCH,), device=device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x, lengths).logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(warmup):  # allocations, first-call dispatch
        step()
    walls, cpus = [], []
    for _ in range(steps):
        t, c = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    wall = sum(walls) / steps
    out = {
        "gradient_checkpointing": checkpointing,
        "steps_timed": steps,
        "warmup_steps": warmup,
        "step_wall_s": round(wall, 3),
        "step_cpu_s": round(sum(cpus) / steps, 3),
        "utt_per_s": round(BATCH / wall, 3),
        "utt_per_cpu_s": round(BATCH / (sum(cpus) / steps), 3),
        "x_realtime": round(BATCH * SECONDS / wall, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    if device.startswith("cuda"):
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def _save_base(folder: Path) -> None:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(str(folder))


def main() -> None:
    """Run both settings in subprocesses and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3, help="timed steps per setting")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--child", nargs=2, metavar=("FOLDER", "CKPT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        res = _child(a.child[0], a.child[1] == "1", a.steps, a.device, a.threads, a.warmup)
        print("RESULT " + json.dumps(res))
        return
    t0, c0 = time.time(), time.process_time()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "wav2vec2-base-random"
        _save_base(folder)
        for ckpt in (False, True):
            cmd = [sys.executable, __file__, "--child", str(folder), "1" if ckpt else "0"]
            cmd += ["--steps", str(a.steps), "--device", a.device, "--threads", str(a.threads)]
            cmd += ["--warmup", str(a.warmup)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            line = next(x for x in out.splitlines() if x.startswith("RESULT "))
            runs.append(json.loads(line[7:]))
    plain, ckpt = runs
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {
        "what": "model=ssl fine-tuning step (forward, cross-entropy, backward, AdamW) of a "
        "randomly initialised wav2vec 2.0 base (Wav2Vec2Config()), feature encoder frozen, "
        f"batch {BATCH} x {SECONDS:g} s",
        "date": dt.date.today().isoformat(),
        "device": a.device,
        "cpu": cpu_name(),
        "threads": a.threads,
        "python": platform.python_version(),
        "runs": {"plain": plain, "gradient_checkpointing": ckpt},
        "checkpointing_vs_plain": {
            "time_ratio_wall": round(ckpt["step_wall_s"] / plain["step_wall_s"], 3),
            "time_ratio_cpu": round(ckpt["step_cpu_s"] / plain["step_cpu_s"], 3),
            "peak_rss_ratio": round(ckpt["peak_rss_mb"] / plain["peak_rss_mb"], 3),
        },
        "total_wall_s": round(time.time() - t0, 1),
        "total_cpu_s": round(time.process_time() - c0 + ru.ru_utime + ru.ru_stime, 1),
    }
    if "peak_gpu_mb" in plain:
        result["checkpointing_vs_plain"]["peak_gpu_ratio"] = round(
            ckpt["peak_gpu_mb"] / plain["peak_gpu_mb"], 3
        )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{'setting':<24} {'utt/s':>7} {'step wall s':>12} {'step cpu s':>11} {'peak RSS MB':>12}"
    )
    for name, r in result["runs"].items():
        print(
            f"{name:<24} {r['utt_per_s']:>7.2f} {r['step_wall_s']:>12.2f} "
            f"{r['step_cpu_s']:>11.2f} {r['peak_rss_mb']:>12.0f}"
        )
    print(json.dumps(result["checkpointing_vs_plain"]))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
