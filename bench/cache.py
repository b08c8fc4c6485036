"""Cache benchmark: ``vocalis features --cache`` cold vs warm, wall clock, on EmoDB.

What a user sees: the whole command timed from outside (``subprocess``, wall
clock, interpreter start-up and imports included):

1. a fresh manifest: ``vocalis prepare emodb <EmoDB> --out <tmp>/e.csv``;
2. **cold**: ``vocalis features e.csv --features mfcc --cache <fresh dir>``, each of
   ``--repeats`` runs on its own new cache folder (imports, hashing, extraction
   and writes all included);
3. **warm**: the same command again on a filled cache, ``--repeats`` times;
4. **corruption**: one entry truncated, the command run again; its output must say
   ``1 regenerated`` and its log name the entry (then a warm run is all hits again).

Medians are reported (the machine is shared). ``per_entry_ms`` is the hit path
alone, in this process: content keys from the hash index (one ``stat``) under the
pipeline config the command builds, plus the checked read of each entry, median of
``--repeats`` passes over the corpus.
``python_startup_s`` (``python -c pass``) is the floor any command pays.

The commands run with Python's bytecode cache on, as in a user's shell
(``PYTHONDONTWRITEBYTECODE`` is removed from their environment): without it every
run recompiles Vocalis's modules, ~25 ms that no installed package pays.

The command is the ``vocalis`` console script installed next to this
interpreter (what a virtual environment puts on ``PATH``); ``--command`` picks
another (e.g. a pyenv shim, which adds its own ~0.1-0.3 s to every run). Usage::

    python bench/cache.py                       # EmoDB from $VOCALIS_EMODB or ../shared/data/emodb
    python bench/cache.py --emodb /data/emodb --repeats 5

Writes ``bench/results/cache.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchenv import emodb_dir

RESULTS = Path(__file__).parent / "results" / "cache.json"
SUMMARY = re.compile(r"(\d+) files: (\d+) cache hits, (\d+) computed, (\d+) regenerated")


def _default_command() -> list[str]:
    script = Path(sys.executable).parent / "vocalis"
    if script.exists():
        return [str(script)]
    found = shutil.which("vocalis")
    return [found] if found else [sys.executable, "-m", "vocalis"]


#: A user's environment: bytecode caching on (see the module docstring).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=ENV)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return seconds, proc


def _counts(proc: subprocess.CompletedProcess) -> tuple[int, int, int, int]:
    match = SUMMARY.search(proc.stdout)
    if match is None:
        raise SystemExit(f"no summary line in the output:\n{proc.stdout}\n{proc.stderr}")
    return tuple(int(g) for g in match.groups())  # files, hits, computed, regenerated


def _per_entry_ms(manifest: Path, cache_dir: Path, features: str, repeats: int) -> float:
    """Median over passes of (keys + checked reads) / files, in this process."""
    from vocalis.cli.features import pipeline_from_args
    from vocalis.cli.main import build_parser
    from vocalis.data import read_manifest
    from vocalis.features.cache import FeatureCache
    from vocalis.features.config import cache_identity

    paths = read_manifest(manifest).paths
    args = build_parser().parse_args(["features", str(manifest), "--features", features])
    pipeline = cache_identity(pipeline_from_args(args))  # what `vocalis features` looks up
    times = []
    for _ in range(repeats):
        cache = FeatureCache(cache_dir)
        start = time.perf_counter()
        keys = cache.keys(paths, pipeline)
        found = [cache.read(k, repair=False, writable=False) for k in keys]
        times.append(time.perf_counter() - start)
        assert all(status == "hit" for _, status in found)
    return statistics.median(times) / len(paths) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emodb", default=str(emodb_dir()), help="EmoDB folder")
    parser.add_argument("--repeats", type=int, default=3, help="cold and warm runs each")
    parser.add_argument("--features", default="mfcc", help="extractor")
    parser.add_argument("--command", nargs="+", default=None, help="the vocalis command")
    args = parser.parse_args()
    vocalis = args.command or _default_command()

    with tempfile.TemporaryDirectory(prefix="vocalis-cache-bench-") as tmp:
        work = Path(tmp)
        manifest = work / "e.csv"
        _timed([*vocalis, "prepare", "emodb", args.emodb, "--out", str(manifest)])
        startup = statistics.median(
            _timed([sys.executable, "-c", "pass"])[0] for _ in range(args.repeats)
        )

        def features(cache_dir: Path) -> list[str]:
            return [*vocalis, "features", str(manifest), "--features", args.features,
                    "--cache", str(cache_dir), "--no-progress"]  # fmt: skip

        cold, warm = [], []
        for i in range(args.repeats):
            seconds, proc = _timed(features(work / f"cold{i}"))
            files, hits, computed, _ = _counts(proc)
            assert hits == 0 and computed == files, proc.stdout
            cold.append(seconds)
        cache_dir = work / "cold0"
        for _ in range(args.repeats):
            seconds, proc = _timed(features(cache_dir))
            files, hits, _, _ = _counts(proc)
            assert hits == files, proc.stdout
            warm.append(seconds)
        per_entry = _per_entry_ms(manifest, cache_dir, args.features, args.repeats)

        victim = sorted(cache_dir.rglob("*.vfeat"))[files // 2]
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
        _, proc = _timed(features(cache_dir))
        _, hits, computed, regenerated = _counts(proc)
        corruption_ok = (
            regenerated == 1
            and hits == files - 1
            and computed == 0
            and "corrupt entry" in proc.stderr
            and victim.name in proc.stderr
        )
        _, after = _timed(features(cache_dir))
        corruption_ok = corruption_ok and _counts(after)[1] == files

    result = {
        "files": files,
        "features": args.features,
        "command": " ".join(vocalis),
        "cold_s": round(statistics.median(cold), 3),
        "warm_s": round(statistics.median(warm), 3),
        "speedup": round(statistics.median(cold) / statistics.median(warm), 1),
        "per_entry_ms": round(per_entry, 4),
        "python_startup_s": round(startup, 3),
        "bytecode_cache": True,
        "cold_runs_s": [round(s, 3) for s in cold],
        "warm_runs_s": [round(s, 3) for s in warm],
        "corruption_regenerated": corruption_ok,
        "corruption_output": proc.stdout.strip().splitlines()[-1],
        "load_average": list(os.getloadavg()),
        "cpus": os.cpu_count(),
    }
    print(f"{'run':<12}{'median s':>10}   runs")
    print(f"{'cold':<12}{result['cold_s']:>10.3f}   {result['cold_runs_s']}")
    print(f"{'warm':<12}{result['warm_s']:>10.3f}   {result['warm_runs_s']}")
    print(f"{'python -c':<12}{result['python_startup_s']:>10.3f}")
    print(
        f"speedup {result['speedup']}x; hit path {result['per_entry_ms']:.3f} ms/entry; "
        f"corruption regenerated and reported: {corruption_ok}; load {result['load_average']}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    if not corruption_ok:
        raise SystemExit(f"corruption check failed: {proc.stdout}\n{proc.stderr}")


if __name__ == "__main__":
    main()
