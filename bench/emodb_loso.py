"""EmoDB leave-one-speaker-out benchmark: the classic openSMILE + SVM baseline.

Part 1 of the Vocalis benchmark. Two peer baselines that every emotion paper
compares against:

* ``compare_svm``: openSMILE ComParE_2016 functionals (6373 features) + linear SVM;
* ``egemaps_svm``: openSMILE eGeMAPSv02 functionals (88 features) + linear SVM;

each evaluated with leave-one-speaker-out over the 10 EmoDB speakers. The SVM
complexity ``C`` is chosen per outer fold by an inner leave-one-speaker-out on
the training speakers only (the test speaker is never seen). Two feature
normalisation protocols are reported separately, never mixed:

* ``online``: z-normalisation with statistics of the training speakers only;
* ``speaker_norm``: every speaker, the test speaker included, is standardised
  with its own statistics (uses the test speaker's unlabelled audio).

Part 2 (``--vocalis-recipe configs/recipes/X.yaml ...``) runs the Vocalis LOSO
runner on the same corpus and folds with a training recipe or a functionals
ensemble recipe (one per protocol) and adds its rows to the table; it is
skipped when the option is not given. ``--only vocalis`` keeps the peers'
entries of an existing results JSON instead of recomputing them.

Usage::

    python bench/emodb_loso.py                       # baselines only
    python bench/emodb_loso.py --vocalis-recipe configs/recipes/emodb_ecapa.yaml
    python bench/emodb_loso.py --only vocalis --vocalis-recipe \\
        configs/recipes/emodb_functionals_online.yaml \\
        configs/recipes/emodb_functionals_speaker_norm.yaml   # peers' numbers kept

Writes ``bench/results/emodb_loso.json`` shaped
``{"compare_svm": {"online": {...}, "speaker_norm": {...}}, "egemaps_svm": {...},
"vocalis": {...}}`` with ``pooled_uar``, ``accuracy``, ``fold_uar_mean``,
``fold_uar_std`` and ``seconds`` per system and protocol.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from benchenv import emodb_dir

HERE = Path(__file__).resolve().parent
DEFAULT_WAV = emodb_dir() / "wav"
DEFAULT_CACHE = Path(os.environ.get("VOCALIS_CACHE", Path.home() / ".cache" / "vocalis")) / "bench"
DEFAULT_OUT = HERE / "results" / "emodb_loso.json"
EMOTIONS = {
    "W": "anger",
    "L": "boredom",
    "E": "disgust",
    "A": "fear",
    "F": "happiness",
    "T": "sadness",
    "N": "neutral",
}
FEATURE_SETS = {"compare_svm": "ComParE_2016", "egemaps_svm": "eGeMAPSv02"}
C_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1e0)
PROTOCOLS = ("online", "speaker_norm")


# --------------------------------------------------------------------------- corpus


def list_corpus(wav_dir: Path) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Files, speaker ids and emotion labels parsed from EmoDB names ``SSTNNEV.wav``."""
    files = sorted(wav_dir.glob("*.wav"))
    if not files:
        raise SystemExit(f"no .wav files in {wav_dir}; pass --wav DIR pointing at EmoDB/wav")
    speakers = np.array([f.name[:2] for f in files])
    labels = np.array([EMOTIONS[f.name[5]] for f in files])
    return files, speakers, labels


# --------------------------------------------------------------------------- features


def _extract_chunk(feature_set: str, paths: list[str]) -> np.ndarray:
    import opensmile

    smile = opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, feature_set),
        feature_level=opensmile.FeatureLevel.Functionals,
    )
    return np.stack([smile.process_file(p).to_numpy()[0] for p in paths]).astype(np.float64)


def _cache_key(feature_set: str, files: list[Path]) -> str:
    import opensmile

    h = hashlib.sha256(f"{feature_set}|opensmile={opensmile.__version__}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def functionals(feature_set: str, files: list[Path], cache_dir: Path, jobs: int) -> np.ndarray:
    """openSMILE functionals for ``files``, cached on (feature set, version, file list).

    Shape:
        returns (N, F): one row per file (F = 6373 ComParE, 88 eGeMAPSv02).
    """
    cache = cache_dir / f"emodb_{feature_set}_{_cache_key(feature_set, files)}.npy"
    if cache.exists():
        return np.load(cache)
    t0 = time.perf_counter()
    chunks = [[str(p) for p in files[i::jobs]] for i in range(jobs)]
    with ProcessPoolExecutor(jobs) as pool:
        parts = list(pool.map(_extract_chunk, [feature_set] * jobs, chunks))
    feats = np.empty((len(files), parts[0].shape[1]))
    for i, part in enumerate(parts):
        feats[i::jobs] = part
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".part.npy")
    np.save(tmp, feats)
    os.replace(tmp, cache)
    print(f"  extracted {feature_set} {feats.shape} in {time.perf_counter() - t0:.0f} s -> {cache}")
    return feats


# --------------------------------------------------------------------------- protocol


def speaker_standardise(x: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """z-normalise each speaker's rows with that speaker's own mean and std."""
    out = np.empty_like(x)
    for s in np.unique(speakers):
        m = speakers == s
        mu, sd = x[m].mean(0), x[m].std(0)
        out[m] = (x[m] - mu) / np.where(sd > 1e-12, sd, 1.0)
    return out


def _kernels(xtr: np.ndarray, xte: np.ndarray, online: bool) -> tuple[np.ndarray, np.ndarray]:
    """Linear-kernel Gram matrices (train x train, test x train), after train-only z-norm.

    Precomputing them once per fold makes the C grid search cheap: libsvm then
    fits every C on the same (N, N) matrix instead of 6373-dim dot products.
    """
    if online:
        mu, sd = xtr.mean(0), xtr.std(0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    return xtr @ xtr.T, xte @ xtr.T


def _fit_predict_all(xtr, ytr, xte, online: bool, grid=C_GRID) -> dict[float, np.ndarray]:
    """Predictions of a linear SVM for every C in ``grid``."""
    from sklearn.svm import SVC

    ktr, kte = _kernels(xtr, xte, online)
    return {c: SVC(kernel="precomputed", C=c).fit(ktr, ytr).predict(kte) for c in grid}


def uar(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import recall_score

    return float(recall_score(y_true, y_pred, average="macro", zero_division=0))


def choose_c(x, y, speakers, online: bool) -> float:
    """C with the best pooled UAR of an inner leave-one-speaker-out on these speakers."""
    pred = {c: np.empty_like(y) for c in C_GRID}
    for s in np.unique(speakers):
        te = speakers == s
        for c, p in _fit_predict_all(x[~te], y[~te], x[te], online).items():
            pred[c][te] = p
    scores = [uar(y, pred[c]) for c in C_GRID]
    return C_GRID[int(np.argmax(scores))]  # first (smallest) C among ties


def _outer_fold(args) -> tuple[str, np.ndarray, float]:
    x, y, speakers, test_speaker, online = args
    te = speakers == test_speaker
    c = choose_c(x[~te], y[~te], speakers[~te], online)
    return test_speaker, _fit_predict_all(x[~te], y[~te], x[te], online, (c,))[c], c


def loso_svm(x, y, speakers, protocol: str, jobs: int) -> dict:
    """Outer LOSO with inner-LOSO choice of C; pooled and per-fold metrics."""
    t0 = time.perf_counter()
    online = protocol == "online"
    if not online:
        x = speaker_standardise(x, speakers)
    folds = sorted(np.unique(speakers))
    tasks = [(x, y, speakers, s, online) for s in folds]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(_outer_fold, tasks))
    else:
        results = [_outer_fold(t) for t in tasks]
    pred = np.empty_like(y)
    fold_uar, chosen = {}, {}
    for s, p, c in results:
        m = speakers == s
        pred[m] = p
        fold_uar[str(s)] = uar(y[m], p)
        chosen[str(s)] = c
    values = np.array(list(fold_uar.values()))
    return {
        "pooled_uar": round(uar(y, pred), 4),
        "accuracy": round(float(np.mean(pred == y)), 4),
        "fold_uar_mean": round(float(values.mean()), 4),
        "fold_uar_std": round(float(values.std(ddof=1)), 4),
        "seconds": round(time.perf_counter() - t0, 1),
        "fold_uar": {k: round(v, 4) for k, v in fold_uar.items()},
        "chosen_c": chosen,
    }


# --------------------------------------------------------------------------- vocalis part


def _vocalis_entry(summary: dict, seconds: float, recipe: Path, run_dir: Path) -> dict:
    pooled = summary["pooled"] or {}
    return {
        "pooled_uar": round(pooled.get("uar", float("nan")), 4),
        "accuracy": round(pooled.get("accuracy", float("nan")), 4),
        "fold_uar_mean": round(summary["mean"].get("uar", float("nan")), 4),
        "fold_uar_std": round(summary["std"].get("uar", float("nan")), 4),
        "seconds": round(seconds, 1),
        "folds_finished": summary["n_finished"],
        "failed": summary["failed"],
        "recipe": str(recipe),
        "run_dir": str(run_dir),
    }


def run_vocalis(args: argparse.Namespace) -> dict:
    """Part 2: the Vocalis LOSO runner on one or more recipes, same corpus and folds.

    The manifest is made from ``--wav`` with the EmoDB data recipe (its speakers
    are the peers' folds); the recipes' own manifest is not used. A functionals
    ensemble recipe (``kind: ensemble``) fixes its normalisation protocol, so
    give one recipe per protocol; a neural recipe is run under every
    ``--protocols``. Folds already finished in ``--vocalis-out`` are skipped (so
    an interrupted run continues) unless ``--vocalis-overwrite``; ``seconds``
    counts only the work done in this call, feature extraction (or cache reads)
    included.
    """
    from vocalis.data.corpora.emodb import prepare_emodb
    from vocalis.ensemble.recipe_file import EnsembleRecipe
    from vocalis.evaluation.crossval import loso
    from vocalis.training import load_recipe

    manifest = prepare_emodb(args.wav.parent)
    args.vocalis_out.mkdir(parents=True, exist_ok=True)
    manifest.write(args.vocalis_out / "emodb.csv")
    results: dict = {"recipe": [str(r) for r in args.vocalis_recipe]}
    for recipe_path in args.vocalis_recipe:
        loaded = load_recipe(str(recipe_path), list(args.vocalis_override))
        recipe = loaded if isinstance(loaded, EnsembleRecipe) else None
        if recipe is not None:
            protocols = [recipe.ensemble.normalization]
            config, overrides = recipe, []
        else:
            protocols = list(args.protocols)
            config, overrides = loaded, list(args.vocalis_override)
        for protocol in protocols:
            if protocol not in args.protocols:
                continue
            run_dir = args.vocalis_out / protocol
            print(f"  vocalis / {protocol} ({recipe_path}) ...", flush=True)
            load_before = os.getloadavg()
            t0 = time.perf_counter()
            summary = loso(
                config,
                run_dir,
                manifest=manifest,
                normalization=protocol,
                validation=args.vocalis_validation,
                speakers=args.vocalis_speakers,
                parallel=args.vocalis_parallel,
                overwrite=args.vocalis_overwrite,
            )
            entry = _vocalis_entry(summary, time.perf_counter() - t0, recipe_path, run_dir)
            entry["load_average_1m"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
            if recipe is not None:
                entry["model"] = "functionals ensemble: " + str(summary.get("features"))
                entry["extract_seconds"] = summary.get("extract_seconds")
            else:
                entry["overrides"] = overrides
            results[protocol] = entry
    return results


# --------------------------------------------------------------------------- main


def print_table(results: dict) -> None:
    head = (
        f"{'system':<14}{'protocol':<14}{'pooled UAR':>11}{'acc':>8}{'fold UAR':>17}{'time s':>9}"
    )
    print(head)
    print("-" * len(head))
    for system, by_protocol in results.items():
        for protocol, r in by_protocol.items():
            if not isinstance(r, dict) or "pooled_uar" not in r:
                continue
            fold = f"{r['fold_uar_mean']:.3f} ± {r['fold_uar_std']:.3f}"
            print(
                f"{system:<14}{protocol:<14}{r['pooled_uar']:>11.3f}{r['accuracy']:>8.3f}"
                f"{fold:>17}{r['seconds']:>9.1f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wav", type=Path, default=DEFAULT_WAV, help="EmoDB wav folder")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="functionals cache")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON")
    parser.add_argument("--jobs", type=int, default=2, help="processes (extraction and folds)")
    parser.add_argument(
        "--systems", nargs="*", default=list(FEATURE_SETS), choices=list(FEATURE_SETS)
    )
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument(
        "--only",
        choices=["peers", "vocalis"],
        default=None,
        help="run only the peers or only Vocalis; the other's entries are kept from --out",
    )
    parser.add_argument(
        "--vocalis-recipe",
        type=Path,
        nargs="+",
        default=None,
        help="also run Vocalis LOSO on these recipes (an ensemble recipe per protocol)",
    )
    parser.add_argument(
        "--vocalis-overwrite", action="store_true", help="recompute finished Vocalis folds"
    )
    parser.add_argument(
        "--vocalis-out", type=Path, default=Path("runs/bench-emodb-loso"), help="its run folder"
    )
    parser.add_argument(
        "--vocalis-override", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides"
    )
    parser.add_argument(
        "--vocalis-validation", choices=["stratified", "speaker"], default="stratified",
        help="validation split inside each fold",
    )  # fmt: skip
    parser.add_argument(
        "--vocalis-speakers", nargs="*", default=None, help="only these folds (smoke tests)"
    )
    parser.add_argument("--vocalis-parallel", type=int, default=1, help="folds at once")
    args = parser.parse_args(argv)

    files, speakers, labels = list_corpus(args.wav)
    print(f"EmoDB: {len(files)} files, {len(set(speakers))} speakers, {len(set(labels))} classes")
    results: dict = {}
    if args.out.exists():  # keep rows of systems not re-run this time
        results = json.loads(args.out.read_text())
    systems_meta: dict = dict((results.get("_meta") or {}).get("systems") or {})
    systems = [] if args.only == "vocalis" else args.systems
    for system in systems:
        feature_set = FEATURE_SETS[system]
        x = functionals(feature_set, files, args.cache, args.jobs)
        systems_meta[system] = {
            "features": f"openSMILE {feature_set} functionals",
            "dim": int(x.shape[1]),
        }
        results.setdefault(system, {})  # protocols not re-run keep their numbers
        for protocol in args.protocols:
            print(f"  {system} / {protocol} ...", flush=True)
            results[system][protocol] = loso_svm(x, labels, speakers, protocol, args.jobs)
    if args.only == "vocalis" and args.vocalis_recipe is None:
        raise SystemExit("--only vocalis needs --vocalis-recipe configs/recipes/X.yaml")
    if args.vocalis_recipe is not None and args.only != "peers":
        old = results.get("vocalis") if isinstance(results.get("vocalis"), dict) else {}
        new = run_vocalis(args)
        results["vocalis"] = {**old, **new}  # protocols not re-run keep their numbers
    else:
        print("  vocalis: skipped (pass --vocalis-recipe configs/recipes/X.yaml to run it)")
    results["_meta"] = {
        "corpus": "EmoDB (535 utterances, 10 speakers, 7 classes)",
        "protocol": "leave-one-speaker-out; C from inner LOSO on training speakers",
        "classifier": "sklearn SVC, linear kernel (precomputed Gram matrix)",
        "c_grid": list(C_GRID),
        "systems": systems_meta,
        "fold_uar_std": "sample standard deviation over the 10 folds (ddof=1)",
        "pooled_uar": "UAR of the concatenated predictions of all folds",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "peers_reused": args.only == "vocalis",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print_table(results)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
