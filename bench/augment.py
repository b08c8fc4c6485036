"""What augmentation costs: each transform in x real time, and training time augmented / not.

Two measurements, on EmoDB audio when present (synthetic tones + noise otherwise):

* ``transforms``: each transform of ``configs/augment/waveform_default.yaml`` applied
  with p = 1 to the same utterances (pitch and stretch in both Rubber Band modes),
  the features computed on the fly (MFCC, fbank), the feature transforms on padded
  batches, and the default chain as it runs in the loader (its own p's, then the
  MFCC features). Speed is ``x real time = seconds of audio / seconds of work``,
  from wall time and from CPU time (the machine is shared, so CPU time is the
  steadier number).
* ``training``: ``vocalis.train`` of tier1 (the recipe's default model) on 2 s EmoDB
  crops, speaker-independent validation, in this one process: ``augment=none``
  (features cached), ``augment=default`` (SpecAugment) and ``augment=waveform_default``
  with 0 and 1 loader workers. The runs are interleaved over ``--repeats`` rounds and
  each setting keeps its fastest round; the ratio to ``augment=none`` is the cost of
  augmentation. CPU time includes the loader workers (``RUSAGE_CHILDREN``).

Usage::

    python bench/augment.py                      # both parts, EmoDB when present
    python bench/augment.py --epochs 1 --repeats 1 --utterances 40

Writes ``bench/results/augment.json`` and prints the tables.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

from benchenv import cpu_name, emodb_dir

RESULTS = Path(__file__).resolve().parent / "results" / "augment.json"
SR = 16000

#: The target of issue 10: the default chain costs at most this much training time.
TARGET_RATIO = 1.5


def _clock() -> tuple[float, float]:
    """(wall, CPU of this process and its finished children) in seconds."""
    own = time.process_time()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), own + kids.ru_utime + kids.ru_stime


def _corpus(n: int) -> tuple[list, str]:
    """Up to ``n`` EmoDB waveforms (every k-th file), or synthetic ones."""
    import soundfile as sf
    import torch

    wav_dir = emodb_dir() / "wav"
    paths = sorted(wav_dir.glob("*.wav")) if wav_dir.is_dir() else []
    if paths:
        step = max(1, len(paths) // n)
        return [torch.from_numpy(sf.read(str(p), dtype="float32")[0]) for p in paths[::step][:n]], (
            f"EmoDB ({wav_dir})"
        )
    g = torch.Generator().manual_seed(0)
    waves = []
    for i in range(n):
        t = torch.arange(int(SR * (1.5 + (i % 4)))) / SR
        tone = 0.3 * torch.sin(2 * torch.pi * (150 + 10 * i) * t)
        waves.append(tone + 0.01 * torch.randn(len(t), generator=g))
    return waves, "synthetic tones"


def _time(fn, items) -> dict:
    items = list(items)
    fn(items[0])  # warm-up (library loading, caches): not timed
    w0, c0 = _clock()
    for item in items:
        fn(item)
    w1, c1 = _clock()
    return {"wall_s": w1 - w0, "cpu_s": c1 - c0}


def bench_transforms(n: int) -> dict:
    import torch

    from vocalis.augment import FileMixup, WaveformAugment
    from vocalis.augment.chain import STREAMS, build_transform, stream_generator
    from vocalis.features import FeatureConfig, extract
    from vocalis.training.components import feature_augmenters
    from vocalis.training.config import load_config

    threads = torch.get_num_threads()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the loader runs them (workers and the main-process hook)
    waves, source = _corpus(n)
    audio_s = sum(len(w) for w in waves) / SR
    cfg = load_config(None, ["augment=waveform_default"]).augment
    rows: dict[str, dict] = {}

    def record(name: str, timing: dict, what: str) -> None:
        rows[name] = {
            **{k: round(v, 4) for k, v in timing.items()},
            "x_realtime": round(audio_s / timing["wall_s"], 1),
            "x_realtime_cpu": round(audio_s / max(timing["cpu_s"], 1e-9), 1),
            "what": what,
        }
        print(f"  {name:<22} {rows[name]['x_realtime']:>9.1f} x RT  ({what})", flush=True)

    import dataclasses

    for name in ("shift", "speed", "pitch", "stretch", "gain", "noise"):
        sub = getattr(cfg, name)
        variants = [(name, sub)]
        if hasattr(sub, "high_quality"):
            variants = [
                (f"{name}_fast", dataclasses.replace(sub, high_quality=False)),
                (f"{name}_hq", dataclasses.replace(sub, high_quality=True)),
            ]
        for label, variant in variants:
            transform = build_transform(name, dataclasses.replace(cfg, **{name: variant}))
            what = ", ".join(
                f"{f.name}={getattr(variant, f.name)}" for f in dataclasses.fields(variant)[1:]
            )

            def run(item, transform=transform, name=name):
                i, w = item
                transform(w, SR, stream_generator(i, STREAMS[name]))

            record(label, _time(run, list(enumerate(waves))), what)
    chain = WaveformAugment(cfg)
    file_mixup = FileMixup(cfg.file_mixup.alpha)
    record(
        "file_mixup",
        _time(
            lambda k: file_mixup(waves[k : k + 16], torch.Generator().manual_seed(k)),
            range(0, len(waves), 16),
        ),
        "alpha=0.4, batches of 16",
    )
    for feat in ("mfcc", "fbank"):
        fcfg = FeatureConfig(name=feat)
        record(
            f"features_{feat}",
            _time(lambda w, fcfg=fcfg: extract(w, fcfg), waves),
            "computed per step when a waveform transform is on",
        )
    mfcc = FeatureConfig(name="mfcc")
    record(
        "chain_waveform_default",
        _time(lambda item: extract(chain(item[1], SR, item[0]), mfcc), list(enumerate(waves))),
        "shift, speed, pitch, stretch, gain, noise with their p, then MFCC",
    )
    full = load_config(
        None, ["augment=waveform_default", "augment.spec_noise.p=1", "augment.mixup.p=1"]
    )
    specaug, spec_noise, mixup = feature_augmenters(full)
    feats = [extract(w, mfcc) for w in waves]
    batches = []
    for k in range(0, len(feats), 16):
        part = feats[k : k + 16]
        lengths = torch.tensor([f.shape[-1] for f in part])
        x = torch.zeros(len(part), part[0].shape[0], int(lengths.max()))
        for i, f in enumerate(part):
            x[i, :, : f.shape[-1]] = f
        batches.append((x, lengths, torch.Generator().manual_seed(k)))
    for label, fn in (
        ("spec_mask", lambda b: specaug(b[0], b[1], b[2])),
        ("spec_noise", lambda b: spec_noise(b[0], b[1], b[2])),
        ("mixup", lambda b: mixup(b[0], b[1], b[2])),
    ):
        record(label, _time(fn, batches), "on padded MFCC batches of 16")
    torch.set_num_threads(threads)
    return {
        "source": source,
        "utterances": len(waves),
        "audio_s": round(audio_s, 1),
        "torch_threads": 1,
        "rows": rows,
    }


def _manifest(root: Path, max_files: int) -> Path | None:
    """EmoDB as a manifest: every k-th file (all 10 speakers), at most ``max_files``."""
    wav_dir = emodb_dir() / "wav"
    if not wav_dir.is_dir():
        return None
    paths = sorted(wav_dir.glob("*.wav"))
    paths = paths[:: max(1, -(-len(paths) // max_files))]
    out = root / "emodb.csv"
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "speaker"])
        for p in paths:
            w.writerow([str(p), p.stem[5], p.stem[:2]])
    return out


def _synthetic_manifest(root: Path) -> Path:
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    rows = []
    for spk in range(6):
        for lab in range(3):
            for k in range(8):
                t = np.arange(int(SR * 2.5)) / SR
                wav = 0.3 * np.sin(2 * np.pi * 150 * 1.6**lab * (1 + 0.03 * spk) * t)
                path = root / f"s{spk}_{lab}_{k}.wav"
                sf.write(path, (wav + 0.01 * rng.standard_normal(len(t))).astype("float32"), SR)
                rows.append([str(path), f"c{lab}", f"s{spk}"])
    out = root / "synthetic.csv"
    with open(out, "w", newline="") as fh:
        csv.writer(fh).writerows([["path", "label", "speaker"], *rows])
    return out


def bench_training(epochs: int, repeats: int, max_files: int, synthetic: bool = False) -> dict:
    from vocalis.training import load_config, train

    settings = {
        "none": ["augment=none"],
        "default": ["augment=default"],
        "waveform_default": ["augment=waveform_default"],
        "waveform_default_1_worker": ["augment=waveform_default", "train.num_workers=1"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = None if synthetic else _manifest(root, max_files)
        n = 0 if manifest is None else len(manifest.read_text().splitlines()) - 1
        source = f"EmoDB ({n} utterances, every k-th file; 2 of 10 speakers for validation)"
        if manifest is None:
            manifest, source = _synthetic_manifest(root), "synthetic tones (EmoDB absent)"
        base = [
            f"dataset.manifest={manifest}",
            "dataset.val_fraction=0.2",
            "features.cache_dir=" + str(root / "cache"),
            "model=tier1",
            "train=default",
            f"train.epochs={epochs}",
            "train.crop_seconds=2.0",
            "train.batch_size=16",
            "train.patience=0",
        ]
        # fill the feature cache once, so no timed run pays for it
        train(load_config(None, [*base, "augment=none", "train.epochs=1"]), None, progress=False)
        runs: dict[str, list[dict]] = {k: [] for k in settings}
        for r in range(repeats):
            for name, extra in settings.items():
                cfg = load_config(None, [*base, *extra])
                w0, c0 = _clock()
                result = train(cfg, None, progress=False)
                w1, c1 = _clock()
                runs[name].append(
                    {
                        "wall_s": round(w1 - w0, 2),
                        "cpu_s": round(c1 - c0, 2),
                        "val_uar": round(
                            float(result.best_metrics.get("val_uar", float("nan"))), 4
                        ),
                    }
                )
                print(
                    f"  round {r + 1} {name:<26} wall {w1 - w0:7.1f} s  cpu {c1 - c0:7.1f} s",
                    flush=True,
                )
    best = {k: min(v, key=lambda x: x["wall_s"]) for k, v in runs.items()}
    ref = best["none"]
    table = {
        k: {
            "overrides": " ".join(settings[k]),
            **b,
            "wall_ratio": round(b["wall_s"] / ref["wall_s"], 3),
            "cpu_ratio": round(b["cpu_s"] / ref["cpu_s"], 3),
        }
        for k, b in best.items()
    }
    return {
        "source": source,
        "model": "tier1 (recipe default sizes), MFCC, 2 s crops, batch 16",
        "epochs": epochs,
        "repeats": repeats,
        "runs": runs,
        "best": table,
        "target_ratio": TARGET_RATIO,
        "meets_target": table["waveform_default"]["wall_ratio"] <= TARGET_RATIO
        or table["waveform_default"]["cpu_ratio"] <= TARGET_RATIO,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=120, help="utterances per transform")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--synthetic", action="store_true", help="train on synthetic tones")
    parser.add_argument("--max-files", type=int, default=240, help="EmoDB files to train on")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import torch

    out = {
        "bench": "augment",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "note": "shared 2-core machine: compare ratios within this file, not absolute speeds",
    }
    try:
        import pedalboard

        out["pedalboard"] = pedalboard.__version__
    except ImportError:
        print("pedalboard missing: pip install 'vocalis[augment]'", file=sys.stderr)
        return 1
    print("Transforms (x real time, wall):", flush=True)
    out["transforms"] = bench_transforms(args.utterances)
    if not args.no_training:
        print("Training tier1 (same process, interleaved rounds):", flush=True)
        torch.set_num_threads(args.threads)
        out["training_threads"] = args.threads
        out["training"] = bench_training(args.epochs, args.repeats, args.max_files, args.synthetic)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    os.replace(tmp, args.out)
    _print(out)
    return 0


def _print(out: dict) -> None:
    t = out["transforms"]
    print(f"\nTransform cost on {t['utterances']} utterances ({t['audio_s']} s of {t['source']})")
    print(f"| {'transform':<24} | x real time (wall) | x real time (CPU) |")
    print(f"|{'-' * 26}|{'-' * 20}|{'-' * 19}|")
    for name, r in t["rows"].items():
        print(f"| {name:<24} | {r['x_realtime']:>18.1f} | {r['x_realtime_cpu']:>17.1f} |")
    if "training" in out:
        tr = out["training"]
        print(f"\nTraining {tr['model']}, {tr['epochs']} epochs on {tr['source']}")
        print(f"| {'augment':<26} | wall s | CPU s | wall ratio | CPU ratio |")
        print(f"|{'-' * 28}|--------|-------|------------|-----------|")
        for name, b in tr["best"].items():
            print(
                f"| {name:<26} | {b['wall_s']:>6.1f} | {b['cpu_s']:>5.1f} | "
                f"{b['wall_ratio']:>10.2f} | {b['cpu_ratio']:>9.2f} |"
            )
        print(f"target: waveform_default <= {tr['target_ratio']}x; met: {tr['meets_target']}")


if __name__ == "__main__":
    sys.exit(main())
