"""Speaker verification on held-out EmoDB + BAVED speakers: GE2E zero-shot vs trained sv_fusion.

Protocol (fixed before any result was seen):

- Corpora: EmoDB (10 speakers) and BAVED (60 speakers), 16 kHz.
- Held-out speakers (never trained on, never in the cohort): EmoDB 03 (m), 08 (f),
  16 (f); BAVED 100, 101, 102, 103 (21 clips each), 0, 2 (14 each), 1, 10, 11, 12
  (7 each): 13 speakers. Trials: every pair of their clips (target = same speaker);
  the counts are in the JSON.
- Training speakers: the other 57 (EmoDB 7, BAVED 50), at most 80 clips each
  (seeded draw; BAVED's largest speakers have up to 349; 1,194 clips), closed-set
  speaker classification with AAM-softmax; validation = 15 % of each training
  speaker's clips (closed-set identification accuracy).
- Systems: GE2E zero-shot (the pretrained d-vector, no training: the anchor);
  sv_fusion mode 1 (GE2E layers 1-3, learned layer weights), mode 2 with each
  handcrafted mode, mode 3 (GE2E layers + mfbe_pitch) with each fusion.
- Scores: cosine; with and without s-norm (cohort: 300 clips of training speakers,
  the same for every system). EER (interpolated at FNR = FPR) and minDCF (p_target
  0.01, C_miss = C_fa = 1, normalised) from :mod:`vocalis.metrics`.
- 3 seeds per trained system; mean +- std.

Scaled for the shared 2-core CPU (stated in the JSON): the back-end is ECAPA-TDNN
with 4 SE-Res2Net blocks at 64 channels (aggregation 192) instead of 512 / 1536,
fusion width 64 instead of 768, 128-d embeddings instead of 512, 1.2 s training
crops, at most 8 epochs (patience 3), at most 80 training clips per speaker
(the first run of this benchmark kept 20, 552 clips in all).
Features (GE2E layers, handcrafted) are computed once per extractor and cached.

Run: ``python bench/speaker.py --jobs 2`` (about 27 min on 2 cores);
``--quick`` for a smoke run (one seed, two systems, 2 epochs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "bench" / "results" / "speaker.json"

EMODB_HELD = ("03", "08", "16")
BAVED_HELD = tuple(f"baved_{k}" for k in (100, 101, 102, 103, 0, 2, 1, 10, 11, 12))
MAX_TRAIN_CLIPS = 80
COHORT_SIZE = 300
SEEDS = (42, 123, 456)

#: The scaled model and loop (see the module docstring).
SCALE = [
    "model.width=64",
    "model.cnn_channels=[64]",
    "model.ecapa_channels=[64,64,64,64,64,192]",
    "model.se_channels=32",
    "model.attention_channels=32",
    "model.embedding_dim=128",
    "model.attention_heads=8",
    "train.epochs=8",
    "train.patience=3",
    "train.batch_size=32",
    "train.lr=0.002",
    "train.crop_seconds=1.2",
    "train.device=cpu",
    "features.workers=0",
]

SYSTEMS = [
    ("mode1", ["model.mode=1"]),
    *[(f"mode3_{fu}", ["model.mode=3", f"model.fusion={fu}", "model.features=mfbe_pitch"])
      for fu in ("gating", "concat", "cross_attention")],
    *[(f"mode2_{f}", ["model.mode=2", f"model.features={f}"]) for f in (
        "mfbe_pitch", "mfcc_pitch", "mfbe_only", "mfcc_only", "pitch_only")],
]  # fmt: skip


def shared_data() -> Path:
    """``../shared/data`` next to the repository (EmoDB's parent)."""
    from benchenv import emodb_dir

    return emodb_dir().parent


def manifests(
    work: Path, quick: bool = False, max_clips: int = MAX_TRAIN_CLIPS
) -> tuple[Path, Path, dict]:
    """Write the training and held-out manifests; return their paths and a description.

    ``max_clips``: training clips kept per speaker (a seeded draw). ``quick``: 12
    training speakers with 8 clips each and 5 clips per held-out speaker.
    """
    from vocalis.data import Manifest, prepare

    data = shared_data()
    emodb = prepare("emodb", data / "emodb")
    baved = prepare("baved", data / "baved")
    emodb = Manifest(
        [{**r, "speaker": f"emodb_{r['speaker']}", "corpus": "emodb"} for r in emodb],
        source="emodb",
    )
    baved = Manifest([{**r, "corpus": "baved"} for r in baved], source="baved")
    cols = ("path", "id", "label", "speaker", "gender", "corpus")
    rows = [{c: r.get(c, "") for c in cols} for m in (emodb, baved) for r in m]
    held = {f"emodb_{s}" for s in EMODB_HELD} | set(BAVED_HELD)
    rng = np.random.default_rng(0)
    train_rows, held_rows = [], []
    by_spk: dict[str, list[dict]] = {}
    for r in rows:
        (held_rows if r["speaker"] in held else by_spk.setdefault(r["speaker"], [])).append(r)
    cap = 8 if quick else max_clips
    for spk in sorted(by_spk)[: 12 if quick else None]:
        clips = by_spk[spk]
        if len(clips) > cap:
            keep = sorted(rng.choice(len(clips), cap, replace=False).tolist())
            clips = [clips[i] for i in keep]
        train_rows += clips
    if quick:
        count: dict[str, int] = {}
        held_rows = [r for r in held_rows if count.setdefault(r["speaker"], 0) < 5
                     and not count.__setitem__(r["speaker"], count[r["speaker"]] + 1)]  # fmt: skip
    train_csv, held_csv = work / "sv_train.csv", work / "sv_heldout.csv"
    Manifest(train_rows, source="sv_train").write(train_csv)
    Manifest(held_rows, source="sv_heldout").write(held_csv)
    desc = {
        "held_out_speakers": sorted(held),
        "held_out_clips": len(held_rows),
        "train_speakers": len(by_spk),
        "train_clips": len(train_rows),
        "max_train_clips_per_speaker": cap,
    }
    return train_csv, held_csv, desc


def all_pairs(speakers: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every unordered pair of clips: enrol index, test index, target label."""
    i, j = np.triu_indices(len(speakers), k=1)
    spk = np.asarray(speakers)
    return i, j, (spk[i] == spk[j]).astype(np.int64)


def evaluate(emb: np.ndarray, cohort: np.ndarray, trials: tuple) -> dict:
    """EER / minDCF with and without s-norm."""
    from vocalis.metrics.verification import compute_eer, compute_min_dcf
    from vocalis.verification.scoring import cosine_scores, normalize_scores

    i, j, y = trials
    raw = cosine_scores(emb, emb, i, j)
    out = {}
    for norm in ("none", "s"):
        s = raw if norm == "none" else normalize_scores(raw, emb[i], emb[j], "s", cohort)
        out[norm] = {
            "eer": float(compute_eer(s, y)[0]),
            "min_dcf": float(compute_min_dcf(s, y)[0]),
        }
    return out


def ge2e_anchor(held_paths: list[str], cohort_paths: list[str], trials: tuple) -> dict:
    """GE2E zero-shot: the pretrained d-vector (vocalis.verification's ``ge2e``)."""
    from vocalis.verification import load_embedder

    emb = load_embedder("ge2e")
    t0, c0 = time.perf_counter(), time.process_time()
    e, failed = emb.embed_files(held_paths)
    c, failed_c = emb.embed_files(cohort_paths)
    assert not failed and not failed_c, (failed, failed_c)
    res = evaluate(e, c, trials)
    res["embed_seconds"] = round(time.perf_counter() - t0, 1)
    res["embed_cpu_seconds"] = round(time.process_time() - c0, 1)
    return res


@torch.no_grad()
def embed_run(run: Path, paths: list[str], cache: Path) -> np.ndarray:
    """Speaker embeddings of ``paths`` by a trained run, from the (cached) features."""
    from vocalis.features.config import PipelineConfig
    from vocalis.features.pipeline import extract_many
    from vocalis.inference.pipeline import load_pipeline
    from vocalis.training.data import collate

    pipe = load_pipeline(run / "model.pt")
    net = pipe.neural
    ckpt = pipe.checkpoint
    config = PipelineConfig(tier0=ckpt.tier0, features=ckpt.features)
    feats = extract_many(paths, config, cache=str(cache), workers=1, progress=False).features
    out = []
    for lo in range(0, len(paths), 32):
        items = [
            {"features": f, "target": 0, "index": k} for k, f in enumerate(feats[lo : lo + 32])
        ]
        batch = collate(items)
        x = net.head.norm(batch.features, batch.lengths)
        out.append(net.head.model.embed(x, batch.lengths, kind="sv").numpy())
    return np.concatenate(out)


def train_system(name: str, extra: list[str], seed: int, train_csv: Path, work: Path,
                 epochs: int | None) -> tuple[Path, dict]:  # fmt: skip
    """Train one system with one seed; return its run folder and timing."""
    from vocalis.training import train
    from vocalis.training.config import load_config

    over = [
        f"dataset.manifest={train_csv}",
        f"features.cache_dir={work / 'cache'}",
        *SCALE,
        *extra,
        f"train.seed={seed}",
    ]
    if epochs is not None:
        over.append(f"train.epochs={epochs}")
    cfg = load_config("sv_fusion", over)
    out = work / "runs" / f"{name}_seed{seed}"
    t0, c0 = time.perf_counter(), time.process_time()
    result = train(cfg, out, overwrite=True, progress=False)
    timing = {
        "train_seconds": round(time.perf_counter() - t0, 1),
        "train_cpu_seconds": round(time.process_time() - c0, 1),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "val_identification_accuracy": result.best_metrics.get("val_acc"),
        "best_val_loss": result.best_metrics.get("val_loss"),
    }
    return out, timing


def run_one(task: tuple, common: tuple) -> tuple[str, dict]:
    """Train one (seed, system) and score it on the held-out trials."""
    torch.set_num_threads(1)
    seed, name, extra = task
    train_csv, work, held_paths, cohort_paths, trials, desc, quick = common
    run, timing = train_system(name, extra, seed, train_csv, work, 2 if quick else None)
    emb = embed_run(run, held_paths, work / "cache")
    coh = embed_run(run, cohort_paths, work / "cache")
    scores = evaluate(emb, coh, trials)
    (run / "heldout_scores.json").write_text(
        json.dumps({"eer": scores["none"]["eer"], "min_dcf": scores["none"]["min_dcf"],
                    "s_norm": scores["s"], "on": "held-out",
                    "target_trials": desc["target_trials"],
                    "nontarget_trials": desc["nontarget_trials"]}, indent=1)
    )  # fmt: skip
    return name, {"seed": seed, **timing, **scores}


@contextlib.contextmanager
def _runner(jobs: int) -> Iterator[Callable]:
    """``submit(tasks, common)`` yielding ``run_one`` results as they finish.

    ``jobs`` > 1: that many spawned processes, one torch thread each (the feature
    cache is shared and written atomically, so two runs may fill it at once).
    """
    if jobs <= 1:
        yield lambda tasks, common: (run_one(t, common) for t in tasks)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:

        def submit(tasks: list, common: tuple) -> Iterator[tuple[str, dict]]:
            futures = [pool.submit(run_one, t, common) for t in tasks]
            for f in as_completed(futures):
                yield f.result()

        yield submit


def mean_std(values: list[float]) -> dict:
    """Mean and sample standard deviation (0 for one value)."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def table(results: dict) -> str:
    """The README table: EER / minDCF (mean +- std over seeds), with and without s-norm."""
    lines = [
        "| system | EER % | minDCF | EER % s-norm | minDCF s-norm | closed-set acc (val) "
        "| train s (CPU s) | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def pm(d: dict) -> str:
        return f"{100 * d['mean']:.2f} ± {100 * d['std']:.2f}"

    def pm3(d: dict) -> str:
        return f"{d['mean']:.3f} ± {d['std']:.3f}"

    a = results["ge2e_zero_shot"]
    lines.append(
        f"| GE2E zero-shot (anchor) | {100 * a['none']['eer']:.2f} | {a['none']['min_dcf']:.3f} "
        f"| {100 * a['s']['eer']:.2f} | {a['s']['min_dcf']:.3f} | – | 0 | – |"
    )
    for name, r in results["systems"].items():
        s = r["summary"]
        lines.append(
            f"| {name} | {pm(s['none_eer'])} | {pm3(s['none_min_dcf'])} | {pm(s['s_eer'])} | "
            f"{pm3(s['s_min_dcf'])} | {pm3(s['val_acc'])} | {s['train_seconds']['mean']:.0f} "
            f"({s['train_cpu_seconds']['mean']:.0f}) | {s['n_seeds']} |"
        )
    return "\n".join(lines)


def finalize(results: dict, systems: list, per_seed: dict, wall0: float, cpu0: float,
             done: bool) -> None:  # fmt: skip
    """Summaries (mean +- std over the seeds run so far), targets, machine, table."""
    results["systems"] = {}
    for name, extra in systems:
        runs = per_seed[name]
        if not runs:
            continue
        summary = {
            f"{n}_{k}": mean_std([r[n][k] for r in runs])
            for n in ("none", "s")
            for k in ("eer", "min_dcf")
        }
        summary["val_acc"] = mean_std([r["val_identification_accuracy"] for r in runs])
        summary["train_seconds"] = mean_std([r["train_seconds"] for r in runs])
        summary["train_cpu_seconds"] = mean_std([r["train_cpu_seconds"] for r in runs])
        summary["n_seeds"] = len(runs)
        results["systems"][name] = {"overrides": extra, "seeds": runs, "summary": summary}
    anchor = min(results["ge2e_zero_shot"][n]["eer"] for n in ("none", "s"))

    def best(names: list[str]) -> tuple:
        pick = [(min(results["systems"][n]["summary"][f"{k}_eer"]["mean"] for k in ("none", "s")),
                 n) for n in names]  # fmt: skip
        return min(pick) if pick else (None, None)

    names = list(results["systems"])
    trained = best(names)
    fusion = best([n for n in names if n.startswith("mode3")])
    single = best([n for n in names if not n.startswith("mode3")])
    results["targets"] = {
        "anchor_eer_best_norm": anchor,
        "best_trained": {"system": trained[1], "eer": trained[0]},
        "relative_eer_reduction_vs_ge2e": None if trained[0] is None else 1 - trained[0] / anchor,
        "target_20pct_met": None if trained[0] is None else trained[0] <= 0.8 * anchor,
        "best_fusion": {"system": fusion[1], "eer": fusion[0]},
        "best_single_branch": {"system": single[1], "eer": single[0]},
        "fusion_beats_single": None if None in (fusion[0], single[0]) else fusion[0] < single[0],
        "note": "EER of a system = its better of none / s-norm (mean over seeds); the anchor's too",
    }
    ru = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # --jobs workers, once they exit
    results["scaled"] = {
        "overrides": SCALE,
        "note": __doc__.split("Scaled for")[1].split("\n\n")[0],
    }
    results["complete"] = done
    results["machine"] = {
        "wall_seconds": round(time.perf_counter() - wall0, 1),
        "cpu_seconds": round(time.process_time() - cpu0 + kids.ru_utime + kids.ru_stime, 1),
        "max_rss_mib": round(ru.ru_maxrss / 1024, 1),
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    results["table"] = table(results)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write ``bench/results/speaker.json``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=os.environ.get("VOCALIS_BENCH_WORK", "/tmp/vocalis_speaker"))
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 2 systems, 2 epochs")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--only", default="", help="comma-separated systems to (re)run")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the other systems of an existing --out and replace the ones run",
    )
    ap.add_argument("--reason", default="", help="why systems are rerun (kept in the JSON)")
    ap.add_argument("--jobs", type=int, default=1, help="(seed, system) runs trained at once")
    ap.add_argument(
        "--max-train-clips",
        type=int,
        default=MAX_TRAIN_CLIPS,
        help=f"training clips per speaker, a seeded draw (default: {MAX_TRAIN_CLIPS})",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    train_csv, held_csv, desc = manifests(work, args.quick, args.max_train_clips)
    from vocalis.data import read_manifest

    held = read_manifest(held_csv)
    train_m = read_manifest(train_csv)
    rng = np.random.default_rng(1)
    size = min(COHORT_SIZE, len(train_m))
    cohort_idx = sorted(rng.choice(len(train_m), size, replace=False).tolist())
    cohort_paths = [train_m.paths[i] for i in cohort_idx]
    trials = all_pairs(held.column("speaker"))
    n_tgt = int(trials[2].sum())
    desc.update(
        target_trials=n_tgt,
        nontarget_trials=int(len(trials[2]) - n_tgt),
        cohort="300 clips of training speakers (seeded), the same for every system",
    )
    print(json.dumps(desc, indent=1), flush=True)
    results: dict = {"protocol": desc, "systems": {}}
    results["ge2e_zero_shot"] = ge2e_anchor(held.paths, cohort_paths, trials)
    print("GE2E zero-shot", results["ge2e_zero_shot"], flush=True)
    systems = SYSTEMS[:2] if args.quick else SYSTEMS
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {n for n, _ in SYSTEMS}
        if unknown:
            raise SystemExit(f"--only: unknown system(s) {sorted(unknown)}")
        systems = [(n, e) for n, e in SYSTEMS if n in wanted]
    kept: dict = {}
    if args.merge and Path(args.out).is_file():
        old = json.loads(Path(args.out).read_text())
        kept = {n: r["seeds"] for n, r in old.get("systems", {}).items()}
        rerun = {
            "systems": [n for n, _ in systems],
            "reason": args.reason,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        results["reruns"] = [*old.get("reruns", []), rerun]
    seeds = SEEDS[:1] if args.quick else SEEDS
    per_seed: dict[str, list[dict]] = {name: [] for name, _ in systems}
    all_systems = [(n, e) for n, e in SYSTEMS if n in per_seed or n in kept]
    for name in kept:
        per_seed.setdefault(name, kept[name])
    # seeds outside, systems inside: every system has one seed before any has two, and the
    # JSON is rewritten after each run (``complete`` says whether all of them finished)
    tasks = [(seed, name, extra) for seed in seeds for name, extra in systems]
    common = (train_csv, work, held.paths, cohort_paths, trials, desc, args.quick)
    with _runner(args.jobs) as submit:
        for name, record in submit(tasks, common):
            per_seed[name].append(record)
            per_seed[name].sort(key=lambda r: seeds.index(r["seed"]) if r["seed"] in seeds else -1)
            print(name, record["seed"], json.dumps(record), flush=True)
            done = all(len(v) == len(seeds) for v in per_seed.values())
            finalize(results, all_systems, per_seed, wall0, cpu0, done)
            if not args.quick or args.out != str(RESULTS):
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(results["table"])
    print(json.dumps(results["targets"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
