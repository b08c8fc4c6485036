"""GE2E zero-shot speaker verification on held-out EmoDB + BAVED speakers (the issue-11 anchor).

The pretrained GE2E d-vector (no training) embeds every clip; trials are built only among
held-out speakers. Speakers are split per corpus with ``vocalis.data.TrainValTestSplit``
(70 / 15 / 15 by speaker, seed 0): the test part gives the trials we report, the validation
part a development list for calibrating the threshold, and the training part the cohort for
score normalisation (up to 10 clips per speaker), so the three never share a speaker (these
are the speakers a trained system would train on; GE2E itself never saw any of them).

Reported: EER and minDCF (p_target 0.01) on the pooled test trials and on each corpus's own
trials (cross-corpus non-targets are easy: a German sentence against an Arabic word), for
no norm, z, t, s and adaptive s-norm; and the threshold calibrated on the dev list (at EER
and at FAR = 1 %) applied to the test list (false accepts / rejects there).

Usage::

    python bench/research/sv_ge2e_zeroshot.py --out bench/results/sv_ge2e_zeroshot.json
"""

from __future__ import annotations

import argparse
import csv
import platform
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BAVED = re.compile(r"(\d+)-([mf])-(\d+)-([0-6])-([012])-(\d+)\.wav")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def manifests(data: Path, work: Path) -> dict[str, list[dict]]:
    """Rows per corpus, speaker ids prefixed with the corpus name."""
    import vocalis

    emodb = vocalis.prepare("emodb", data / "emodb")
    rows = {
        "emodb": [
            {
                "path": r["path"],
                "id": f"emodb_{r['id']}",
                "speaker": f"emodb_{r['speaker']}",
                "gender": r.get("gender", ""),
                "label": r["label"],
            }
            for r in emodb
        ]
    }
    baved = []
    for p in sorted((data / "baved").glob("*/*.wav")):
        m = BAVED.fullmatch(p.name)
        if m:
            baved.append(
                {
                    "path": str(p),
                    "id": f"baved_{p.stem}",
                    "speaker": f"baved_{m[1]}",
                    "gender": {"m": "male", "f": "female"}[m[2]],
                    "label": m[5],
                }
            )
    rows["baved"] = baved
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "id", "speaker", "gender", "label"])
        w.writeheader()
        w.writerows(rows)
    return path


def subset(trials, keep):
    from vocalis.verification import TrialList

    idx = np.nonzero(keep)[0]
    return TrialList(
        trials.labels[idx],
        tuple(trials.enrol[i] for i in idx),
        tuple(trials.test[i] for i in idx),
        trials.source,
        trials.meta,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--work", default=str(ROOT / "work" / "sv_ge2e"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sv_ge2e_zeroshot.json"))
    ap.add_argument("--per-speaker", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from vocalis.data import Manifest, TrainValTestSplit
    from vocalis.verification import build_trials, load_embedder, score_trials, write_trials
    from vocalis.verification.api import calibrate_threshold

    t0, c0 = time.time(), _cpu()
    work = Path(args.work)
    corpora = manifests(Path(args.data), work)
    parts = {"train": [], "val": [], "test": []}
    split_speakers = {}
    for name, rows in corpora.items():
        m = Manifest(rows, source=name)
        sp = TrainValTestSplit().parts(m, seed=args.seed)
        split_speakers[name] = {k: sorted(map(str, v)) for k, v in sp.speakers.items()}
        for part in parts:
            chosen = set(split_speakers[name][part])
            parts[part] += [r for r in rows if r["speaker"] in chosen]
    rng = np.random.default_rng(args.seed)
    cohort_rows = []
    by_spk: dict[str, list[dict]] = {}
    for r in parts["train"]:
        by_spk.setdefault(r["speaker"], []).append(r)
    for spk in sorted(by_spk):
        rows = by_spk[spk]
        pick = rng.choice(len(rows), size=min(10, len(rows)), replace=False)
        cohort_rows += [rows[i] for i in sorted(pick)]
    test_csv = write_csv(work / "test.csv", parts["test"])
    dev_csv = write_csv(work / "dev.csv", parts["val"])
    cohort_csv = write_csv(work / "cohort.csv", cohort_rows)
    train_csv = write_csv(work / "train.csv", parts["train"])

    exclude = {r["speaker"] for r in parts["train"]}
    test = build_trials(test_csv, per_speaker=args.per_speaker, seed=args.seed, exclude=exclude)
    dev = build_trials(dev_csv, per_speaker=args.per_speaker, seed=args.seed, exclude=exclude)
    write_trials(work / "test.tsv", test)
    write_trials(work / "dev.tsv", dev)
    from vocalis.verification import read_trials

    test, dev = read_trials(work / "test.tsv"), read_trials(work / "dev.tsv")

    emb = load_embedder("ge2e")
    cache = work / "embeddings"
    corpus_of = {r["path"]: name for name, rows in corpora.items() for r in rows}
    e_corp = np.array([corpus_of[p] for p in test.enrol])
    t_corp = np.array([corpus_of[p] for p in test.test])
    lists = {"pooled": test}
    for name in corpora:
        lists[name] = subset(test, (e_corp == name) & (t_corp == name))
    results: dict[str, dict] = {}
    for norm in ("none", "z", "t", "s", "as"):
        for lname, tl in lists.items():
            t1, c1 = time.time(), _cpu()
            res = score_trials(
                emb,
                tl,
                norm=norm,
                cohort=None if norm == "none" else cohort_csv,
                top_k=100,
                cache_dir=cache,
                out=work / "scores" / f"{lname}_{norm}.tsv" if lname == "pooled" else None,
            )
            m = res.metrics
            results.setdefault(lname, {})[norm] = {
                "eer": round(m["eer"], 5),
                "min_dcf": round(m["min_dcf"], 5),
                "eer_threshold": round(m["eer_threshold"], 5),
                "n_target": m["n_target"],
                "n_nontarget": m["n_nontarget"],
                "cohort_size": m["cohort_size"],
                "top_k": m["top_k"],
                "wall_s": round(time.time() - t1, 1),
                "cpu_s": round(_cpu() - c1, 1),
            }
            print(
                f"{lname:7s} {norm:4s} EER {100 * m['eer']:6.2f} %  minDCF {m['min_dcf']:.4f}  "
                f"({m['n_target']} / {m['n_nontarget']})",
                flush=True,
            )
    transfer = {}
    for norm in ("none", "as"):
        for at in ("eer", "far=0.01"):
            rec, _ = calibrate_threshold(
                emb,
                dev,
                at=at,
                norm=norm,
                cohort=None if norm == "none" else cohort_csv,
                top_k=100,
                out=work / f"verifier_{norm}_{at.replace('=', '')}",
                cache_dir=cache,
            )
            res = score_trials(
                emb,
                test,
                norm=norm,
                cohort=None if norm == "none" else cohort_csv,
                top_k=100,
                cache_dir=cache,
            )
            thr = rec["threshold"]
            tgt, non = res.scores[res.labels == 1], res.scores[res.labels == 0]
            transfer[f"{norm}@{at}"] = {
                "threshold": round(thr, 5),
                "dev_far": round(rec["far"], 5),
                "dev_frr": round(rec["frr"], 5),
                "test_far": round(float(np.mean(non >= thr)), 5),
                "test_frr": round(float(np.mean(tgt < thr)), 5),
            }
            print(f"calibrated {norm}@{at}: {transfer[f'{norm}@{at}']}", flush=True)
    # GE2E saw none of these speakers: all 70 of them give a larger zero-shot list (no cohort
    # is left for a norm, so no norm)
    all_csv = write_csv(work / "all.csv", [r for rows in corpora.values() for r in rows])
    every = build_trials(all_csv, per_speaker=args.per_speaker, seed=args.seed)
    write_trials(work / "all.tsv", every)
    every = read_trials(work / "all.tsv")
    e_corp = np.array([corpus_of[p] for p in every.enrol])
    t_corp = np.array([corpus_of[p] for p in every.test])
    all_speakers = {}
    for lname, tl in {
        "pooled": every,
        **{n: subset(every, (e_corp == n) & (t_corp == n)) for n in corpora},
    }.items():
        t1, c1 = time.time(), _cpu()
        m = score_trials(emb, tl, cache_dir=cache).metrics
        all_speakers[lname] = {
            "eer": round(m["eer"], 5),
            "min_dcf": round(m["min_dcf"], 5),
            "n_target": m["n_target"],
            "n_nontarget": m["n_nontarget"],
            "wall_s": round(time.time() - t1, 1),
            "cpu_s": round(_cpu() - c1, 1),
        }
        print(
            f"all-70 {lname:7s} EER {100 * m['eer']:6.2f} %  minDCF {m['min_dcf']:.4f}", flush=True
        )
    n_clips = len(set(test.files()) | set(dev.files()) | {r["path"] for r in cohort_rows})
    out = {
        "what": "GE2E zero-shot (pretrained resemblyzer d-vector, no training) speaker "
        "verification on held-out EmoDB + BAVED speakers",
        "protocol": {
            "split": "per corpus, vocalis.data.TrainValTestSplit(by=speaker, 0.7/0.15/0.15), "
            f"seed {args.seed}; speaker ids prefixed emodb_/baved_",
            "test_speakers": {k: v["test"] for k, v in split_speakers.items()},
            "dev_speakers": {k: v["val"] for k, v in split_speakers.items()},
            "cohort": f"{len(cohort_rows)} clips, up to 10 per training-part speaker",
            "trials": f"vocalis.verification.build_trials(per_speaker={args.per_speaker}, "
            f"seed={args.seed})",
            "test_trials": {"n_target": test.n_target, "n_nontarget": test.n_nontarget},
            "dev_trials": {"n_target": dev.n_target, "n_nontarget": dev.n_nontarget},
            "as_norm_top_k": 100,
            "min_dcf": "p_target 0.01, c_miss = c_fa = 1, normalised by the default cost",
            "eer": "interpolated at the FNR = FPR crossing",
        },
        "results": results,
        "calibration_transfer": transfer,
        "all_70_speakers_no_norm": all_speakers,
        "clips_embedded": n_clips,
        "wall_s": round(time.time() - t0, 1),
        "cpu_s": round(_cpu() - c0, 1),
        "machine": f"{platform.machine()}, {platform.python_version()}, torch threads 1, "
        "shared machine (2 cores, 9 agents)",
        "train_manifest": str(train_csv.relative_to(ROOT))
        if train_csv.is_relative_to(ROOT)
        else str(train_csv),
    }
    from vocalis.io import write_json

    write_json(args.out, out)
    print(f"wrote {args.out} ({out['wall_s']} s wall, {out['cpu_s']} s CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
