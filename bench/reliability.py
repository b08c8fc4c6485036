"""Reliability benchmark (issue 14): bad files, kill -9 and resume, orphans, a hostile service,
schema fuzz, SIGTERM stop times, and LOSO scale-out on a local Ray.

    python bench/reliability.py                 # everything, ~15 min on 2 busy cores
    python bench/reliability.py --only kills --kill-points 5   # one section, fewer kills

Prints one table and writes ``bench/results/reliability.json``. Every process is a real
``vocalis`` command (``python -m vocalis.cli.main``) on tiny synthetic corpora, so the
numbers say what a user's run would do:

* files: a corpus with one file of each broken kind (empty, cut header, truncated data
  chunk, random bytes, text, missing, NaN samples, 10 ms) beside good ones; per verb the
  files tried, broken, reported (in its errors.csv) and lost (broken, not reported);
* kills: for features, train and LOSO, chains of kill -9 at random moments (half of them
  the moment a ``.part`` temp file, i.e. a cache or checkpoint write, appears), each kill
  followed by a rerun of the same command; the final state is compared with an
  uninterrupted run (arrays, weights, cv_results.json); leftover ``.part`` files and
  orphaned worker processes (the process executor and ``--parallel 2`` chains) are counted;
* service: ``vocalis serve`` under concurrent hostile requests of many kinds, while one
  client sends valid clips (their p95 latency), with the server's peak RSS against the
  bound the documented formula gives; a hypothesis-driven fuzz of the OpenAPI routes;
* sigterm: the time each long verb takes to stop on SIGTERM, and its exit code;
* scale-out: LOSO on EmoDB (a cheap functionals ensemble on cached features) in this
  process and on 1, 2 and 3 local Ray workers; wall time and cv_results.json equality.

Wall and CPU time are recorded; the machine is shared, so compare the scale-out rows
with each other (same run), not with other benchmarks.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

import psutil  # noqa: E402

RESULTS = HERE / "results" / "reliability.json"

TINY = [
    "model=tier1",
    "model.params.channels=[8]",
    "model.params.lstm_hidden=8",
    "model.params.lstm_layers=1",
    "model.params.pooling_hidden=8",
    "features.extractor.name=mfcc",
    "features.extractor.n_mfcc=13",
    "features.extractor.n_mels_mfcc=20",
    "features.workers=1",
    "train=default",
    "train.batch_size=4",
    "train.lr=0.01",
    "train.warmup_epochs=0",
    "train.patience=0",
    "train.device=cpu",
    "dataset.val_fraction=0.34",
]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(SRC) + os.pathsep + e.get("PYTHONPATH", "")
    e["OMP_NUM_THREADS"] = "1"
    return e


def start(args: list[str], cwd: Path, quiet: bool = False) -> subprocess.Popen:
    out = subprocess.DEVNULL if quiet else subprocess.PIPE  # an orphan holding a pipe would hang
    return subprocess.Popen(
        [sys.executable, "-m", "vocalis.cli.main", *args],
        cwd=cwd,
        env=env(),
        stdout=out,
        stderr=out,
        text=True,
        start_new_session=True,
    )


def run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vocalis.cli.main", *args],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --------------------------------------------------------------------------- corpora


def write_corpus(root: Path, speakers=("s1", "s2", "s3"), per_cell: int = 3, seconds=0.5):
    """Tones (label -> pitch) for 3 speakers x 2 labels; returns the manifest rows."""
    import soundfile as sf

    sr, rng, rows = 16000, np.random.default_rng(0), []
    for s_i, spk in enumerate(speakers):
        for l_i, lab in enumerate(("low", "high")):
            for k in range(per_cell):
                n = int(sr * seconds * (1 + 0.25 * ((k + s_i) % 3)))
                t = np.arange(n) / sr
                f = 200.0 * (2.5**l_i) * (1 + 0.05 * s_i)
                wav = 0.5 * np.sin(2 * np.pi * f * t) + 0.02 * rng.standard_normal(n)
                path = root / "wav" / f"{spk}_{lab}_{k}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, wav.astype(np.float32), sr)
                rows.append(
                    {"id": f"{spk}_{lab}_{k}", "path": str(path), "label": lab, "speaker": spk}
                )
    return rows


def write_manifest(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def broken_files(root: Path) -> dict[str, Path]:
    """One file of each broken kind."""
    import soundfile as sf

    root.mkdir(parents=True, exist_ok=True)
    good = io.BytesIO()
    sf.write(good, np.zeros(16000, np.float32) + 0.1, 16000, format="WAV", subtype="PCM_16")
    raw = good.getvalue()
    out = {
        "empty": b"",
        "cut_header": raw[:20],
        "truncated_data": raw[: len(raw) // 3],
        "random_bytes": np.random.default_rng(1).bytes(5000),
        "text": b"this is not audio\n" * 50,
    }
    paths = {}
    for kind, data in out.items():
        p = root / f"{kind}.wav"
        p.write_bytes(data)
        paths[kind] = p
    nan = np.full(16000, np.nan, np.float32)
    sf.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
    paths["nan_samples"] = root / "nan.wav"
    sf.write(root / "short.wav", np.zeros(160, np.float32), 16000)
    paths["10ms"] = root / "short.wav"
    paths["missing"] = root / "does_not_exist.wav"
    return paths


# --------------------------------------------------------------------------- files


def reported_paths(errors_csv: Path) -> set[str]:
    if not errors_csv.is_file():
        return set()
    with open(errors_csv, newline="") as fh:
        return {r["path"] for r in csv.DictReader(fh)}


def bench_files(work: Path) -> list[dict]:
    rows = write_corpus(work / "c")
    broken = broken_files(work / "broken")
    spk = ("s1", "s2", "s3")
    bad_rows = [
        {"id": f"bad_{k}", "path": str(p), "label": ("low", "high")[i % 2], "speaker": spk[i % 3]}
        for i, (k, p) in enumerate(broken.items())
    ]
    m = write_manifest(work / "m.csv", rows + bad_rows)
    bad = {r["path"] for r in bad_rows}
    tried = len(rows) + len(bad_rows)
    table = []

    def row(verb: str, proc: subprocess.CompletedProcess, reported: set[str]) -> None:
        table.append(
            {
                "verb": verb,
                "exit": proc.returncode,
                "tried": tried,
                "broken": len(bad),
                "reported": len(reported & bad),
                "lost": len(bad - reported),
                "false_reports": len(reported - bad),
                "traceback": "Traceback" in proc.stderr,
            }
        )

    p = run(
        [
            "features",
            str(m),
            "--features",
            "mfcc",
            "--out",
            str(work / "f.npz"),
            "--max-failures",
            "0.5",
            "--no-progress",
        ],
        work,
    )
    row("features", p, reported_paths(work / "f.errors.csv"))
    run_dir = work / "run"
    p = run(
        [
            "train",
            f"dataset.manifest={m}",
            *TINY,
            "train.epochs=1",
            "--out",
            str(run_dir),
            "--max-failures",
            "0.5",
            "--no-progress",
        ],
        work,
    )
    row("train", p, reported_paths(run_dir / "errors.csv"))
    p = run(
        [
            "eval",
            str(run_dir),
            "--manifest",
            str(m),
            "--out",
            str(work / "ev"),
            "--max-failures",
            "0.5",
            "--no-progress",
            "--no-visualize",
        ],
        work,
    )
    row("eval", p, reported_paths(work / "ev" / "errors.csv"))
    p = run(
        [
            "predict",
            str(m),
            "--checkpoint",
            str(run_dir),
            "--out",
            str(work / "p.csv"),
            "--max-failures",
            "1.0",
            "--no-progress",
        ],
        work,
    )
    row("predict", p, reported_paths(work / "p.errors.csv"))
    p = run(
        [
            "loso",
            f"dataset.manifest={m}",
            *TINY,
            "train.epochs=1",
            "--out",
            str(work / "loso"),
            "--max-failures",
            "0.5",
        ],
        work,
    )
    row("loso", p, reported_paths(work / "loso" / "errors.csv"))
    return table


# --------------------------------------------------------------------------- kills


def parts(folder: Path) -> list[Path]:
    return list(folder.rglob(".*.part")) if folder.exists() else []


def kill_once(args, cwd, watch: Path, at_write: bool, delay: float) -> dict:
    """Start, kill -9 at a random moment (or when a .part appears), count orphans."""
    proc = start(args, cwd, quiet=True)
    t0 = time.monotonic()
    during_write, children = False, []
    deadline = t0 + (60 if at_write else delay)
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            children = psutil.Process(proc.pid).children(recursive=True) or children
        except psutil.NoSuchProcess:
            break
        if at_write and parts(watch):
            break
        time.sleep(0.002 if at_write else 0.05)
    finished = proc.poll() is not None
    if not finished:
        proc.kill()
        during_write = bool(parts(watch))
    proc.wait()
    time.sleep(0.1)
    end = time.monotonic() + 5
    alive = [c for c in children if _alive(c)]
    while alive and time.monotonic() < end:
        time.sleep(0.1)
        alive = [c for c in children if _alive(c)]
    for c in alive:  # do not leave them behind the benchmark
        c.kill()
    return {
        "at": round(time.monotonic() - t0, 2),
        "during_write": during_write,
        "finished_before_kill": finished,
        "orphans": len(alive),
    }


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def chain(name, args, cwd, watch, n_kills, ref_seconds, final_equal, resumed) -> dict:
    kills = []
    for k in range(n_kills):
        at_write = k % 2 == 1
        delay = random.uniform(0.3, 1.0) * ref_seconds
        kills.append(kill_once(args, cwd, watch, at_write, delay))
    done = run(args, cwd)
    left = parts(watch)
    return {
        "kills": kills,
        "final_exit": done.returncode,
        "final_equal": final_equal(),
        "resumed": resumed(done),
        "parts_left": len(left),
    }


def npz_equal(a: Path, b: Path) -> bool:
    x, y = np.load(a), np.load(b)
    return sorted(x.files) == sorted(y.files) and all(np.array_equal(x[k], y[k]) for k in x.files)


def weights_equal(a: Path, b: Path) -> bool:
    from vocalis.checkpoint import load_checkpoint

    try:
        sa, sb = load_checkpoint(a).model_state, load_checkpoint(b).model_state
    except Exception:
        return False
    return sa.keys() == sb.keys() and all(bool((sa[k] == sb[k]).all()) for k in sa)


def cv_equal(a: Path, b: Path) -> bool:
    from vocalis.evaluation.crossval import RUN_KEYS

    try:
        x, y = (json.loads((p / "cv_results.json").read_text()) for p in (a, b))
    except (OSError, json.JSONDecodeError):
        return False
    drop = (*RUN_KEYS, "manifest")
    return {k: v for k, v in x.items() if k not in drop} == {
        k: v for k, v in y.items() if k not in drop
    }


def bench_kills(work: Path, n_points: int, chains: int = 4) -> dict:
    rows = write_corpus(work / "c", per_cell=8)
    m = write_manifest(work / "m.csv", rows)
    small = write_manifest(work / "small.csv", write_corpus(work / "c2", per_cell=3))
    per_chain = max(1, n_points // chains)
    out: dict = {}

    # features: reference, then chains (chain 0 with the process executor: orphan check)
    ref = work / "f_ref"
    base = ["features", str(m), "--features", "mfcc", "--no-progress", "--denoise", "spectral"]
    t0 = time.monotonic()
    run([*base, "--cache", str(ref), "--out", str(work / "f_ref.npz")], work)
    t_ref = time.monotonic() - t0
    res = []
    for c in range(chains):
        cache = work / f"f{c}"
        extra = ["--executor", "process", "--workers", "2"] if c == 0 else ["--workers", "1"]
        args = [*base, "--cache", str(cache), "--out", str(work / f"f{c}.npz"), *extra]
        res.append(
            chain(
                "features",
                args,
                work,
                cache,
                per_chain,
                t_ref,
                lambda c=c: npz_equal(work / "f_ref.npz", work / f"f{c}.npz"),
                lambda p: "cache hits" in p.stdout and " 0 cache hits" not in p.stdout,
            )
        )
    out["features"] = res

    # train: an uninterrupted run, then chains that must end with the same weights
    targs = ["train", f"dataset.manifest={m}", *TINY, "train.epochs=4", "--no-progress"]
    t0 = time.monotonic()
    run([*targs, "--out", str(work / "t_ref")], work)
    t_ref = time.monotonic() - t0
    res = []
    for c in range(chains):
        d = work / f"t{c}"
        res.append(
            chain(
                "train",
                [*targs, "--out", str(d)],
                work,
                d,
                per_chain,
                t_ref,
                lambda d=d: weights_equal(
                    work / "t_ref" / "checkpoints" / "last.pt", d / "checkpoints" / "last.pt"
                ),
                lambda p, d=d: (
                    "Resumed from" in (d / "log.txt").read_text()
                    if (d / "log.txt").is_file()
                    else False
                ),
            )
        )
    out["train"] = res

    # LOSO: chain 0 with --parallel 2 (orphan check)
    largs = ["loso", f"dataset.manifest={small}", *TINY, "train.epochs=2"]
    t0 = time.monotonic()
    run([*largs, "--out", str(work / "l_ref")], work)
    t_ref = time.monotonic() - t0
    res = []
    for c in range(chains):
        d = work / f"l{c}"
        extra = ["--parallel", "2"] if c == 0 else []
        res.append(
            chain(
                "loso",
                [*largs, "--out", str(d), *extra],
                work,
                d,
                per_chain,
                t_ref,
                lambda d=d: cv_equal(work / "l_ref", d),
                lambda p: "finished earlier, skipped" in p.stderr or "Resumed from" in p.stderr,
            )
        )
    out["loso"] = res
    return out


def kill_summary(kills: dict) -> list[dict]:
    table = []
    for verb, chains in kills.items():
        points = [k for ch in chains for k in ch["kills"]]
        table.append(
            {
                "verb": verb,
                "kill_points": len(points),
                "killed_during_write": sum(k["during_write"] for k in points),
                "finished_before_kill": sum(k["finished_before_kill"] for k in points),
                "chains": len(chains),
                "chains_resumed": sum(
                    bool(ch["resumed"]) for ch in chains
                ),  # rerun used saved state
                "final_state_equal": sum(bool(ch["final_equal"]) for ch in chains),
                "final_exit_nonzero": sum(ch["final_exit"] != 0 for ch in chains),
                "orphans": sum(k["orphans"] for k in points),
                "parts_left": sum(ch["parts_left"] for ch in chains),
            }
        )
    return table


# --------------------------------------------------------------------------- service


def _request(port, method, path, body=b"", headers=None, timeout=30.0):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _multipart(data: bytes, name="clip.wav", field="file") -> tuple[bytes, dict]:
    b = "vocalisbench0123"
    head = (
        f'--{b}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{b}--\r\n".encode(), {
        "Content-Type": f"multipart/form-data; boundary={b}"
    }


def _audio(seconds: float, fmt="WAV", value=0.0, noise=True) -> bytes:
    import soundfile as sf

    from vocalis.testing import synth_speechlike

    x = synth_speechlike(seconds, 16000) if noise else np.full(int(16000 * seconds), value)
    buf = io.BytesIO()
    sf.write(
        buf, np.asarray(x, np.float32), 16000, format=fmt, subtype="FLOAT" if fmt == "WAV" else None
    )
    return buf.getvalue()


def _raw(port: int, data: bytes, hold: float = 0.0, read: bool = True) -> str:
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        s.sendall(data)
        if hold:
            time.sleep(hold)
        if not read:
            return "closed"
        got = s.recv(64)
        return got.split(b" ")[1].decode() if got.startswith(b"HTTP/") else "closed"
    except OSError:
        return "closed"
    finally:
        s.close()


def _chunked(port: int, total: int) -> str:
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    body, headers = _multipart(b"\0" * total)
    try:
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            + f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode()
        )
        for k in range(0, len(body), 65536):
            piece = body[k : k + 65536]
            s.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        got = s.recv(64)
        return got.split(b" ")[1].decode() if got.startswith(b"HTTP/") else "closed"
    except OSError:
        return "closed"
    finally:
        s.close()


def hostile_kinds(port: int, limits: dict) -> dict:
    """kind -> (count, a function sending one request and returning its status)."""
    rng = np.random.default_rng(7)
    wav = _audio(1.0)
    upload = limits["max_upload_mb"] * 1024 * 1024

    def post(data, **kw):
        body, h = _multipart(data, **kw)
        return lambda: str(_request(port, "POST", "/predict", body, h))

    nan = io.BytesIO()
    import soundfile as sf

    sf.write(nan, np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT", format="WAV")
    big_head = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: " + b"a" * 70000 + b"\r\n\r\n"
    many = (
        b"GET /health HTTP/1.1\r\nHost: x\r\n"
        + b"".join(f"X-{i}: {i}\r\n".encode() for i in range(2000))
        + b"\r\n"
    )
    return {
        "random_bytes": (300, lambda: post(rng.bytes(int(rng.integers(1, 60000))))()),
        "truncated_wav": (200, post(wav[: len(wav) // 4])),
        "nan_samples": (100, post(nan.getvalue())),
        "silent_flac_30min": (40, post(_audio(1800, "FLAC", noise=False))),
        "oversize_body": (40, post(b"\0" * (upload + 1024))),
        "chunked_oversize": (40, lambda: _chunked(port, upload + 65536)),
        "missing_field": (200, post(wav, field="nothing")),
        "wrong_content_type": (
            200,
            lambda: str(_request(port, "POST", "/predict", wav, {"Content-Type": "text/plain"})),
        ),
        "bad_paths_methods": (
            300,
            lambda: str(
                _request(
                    port,
                    random.choice(["GET", "DELETE", "PUT", "PATCH"]),
                    random.choice(
                        [
                            "/predict",
                            "/../../etc/passwd",
                            "/x" * 50,
                            "/health?x=" + "%" * 30,
                            "/docs/../",
                        ]
                    ),
                )
            ),
        ),
        "huge_header": (100, lambda: _raw(port, big_head)),
        "many_headers": (100, lambda: _raw(port, many)),
        "half_open": (200, lambda: _raw(port, b"POST /predict HTTP/1.1\r\n", read=False)),
        "slow_headers": (20, lambda: _raw(port, b"POST /predict HTTP/1.1\r\nHost:", hold=3.0)),
        "slow_body": (
            20,
            lambda: _raw(
                port,
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                b"Content-Type: multipart/form-data; boundary=z\r\n\r\n--z",
                hold=5.0,
            ),
        ),
    }


def start_server(ckpt: Path, work: Path, limits: dict) -> tuple[subprocess.Popen, int]:
    args = ["serve", "--checkpoint", str(ckpt), "--port", "0", "--threads", "1"]
    for k, v in limits.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vocalis.cli.main", *args],
        cwd=work,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = proc.stdout.readline()
    port = int(re.search(r"listening on http://[\d.]+:(\d+)", line).group(1))
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    for _ in range(600):
        try:
            if _request(port, "GET", "/health") == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


def bench_service(work: Path, fuzz_cases: int, scale: float = 1.0) -> dict:
    from vocalis.inference.guards import ServiceLimits
    from vocalis.testing import tiny_run

    ckpt = tiny_run() / "model.pt"
    limits = {
        "max_upload_mb": 2,
        "max_duration": 20,
        "max_queue": 4,
        "max_concurrency": 1,
        "header_timeout": 2,
        "body_timeout": 4,
        "queue_timeout": 10,
    }
    proc, port = start_server(ckpt, work, limits)
    ps = psutil.Process(proc.pid)
    valid = _multipart(_audio(2.0))
    for _ in range(3):
        _request(port, "POST", "/predict", *valid)  # warm up
    base_mb = ps.memory_info().rss / 2**20
    bound = ServiceLimits(
        max_upload_mb=2, max_duration_s=20, max_queue=4, max_concurrency=1
    ).memory_bound_mb(model_mb=base_mb)
    peak = [base_mb]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], ps.memory_info().rss / 2**20)
            except psutil.NoSuchProcess:
                return
            time.sleep(0.02)

    threading.Thread(target=watch, daemon=True).start()
    latencies, valid_status = [], {}

    def valid_client():
        while not stop.is_set():
            t = time.perf_counter()
            try:
                s = str(_request(port, "POST", "/predict", *valid))
            except OSError:
                s = "closed"
            valid_status[s] = valid_status.get(s, 0) + 1
            if s == "200":
                latencies.append(time.perf_counter() - t)
            time.sleep(0.05)

    vt = threading.Thread(target=valid_client, daemon=True)
    vt.start()
    kinds = hostile_kinds(port, limits)
    from concurrent.futures import ThreadPoolExecutor

    kinds = {k: (max(1, int(n * scale)), fn) for k, (n, fn) in kinds.items()}
    jobs = [(k, fn) for k, (n, fn) in kinds.items() for _ in range(n)]
    random.shuffle(jobs)
    statuses: dict[str, dict[str, int]] = {k: {} for k in kinds}
    t0 = time.perf_counter()

    def one(job):
        kind, fn = job
        try:
            s = fn()
        except OSError:
            s = "closed"
        return kind, s

    with ThreadPoolExecutor(12) as pool:
        for kind, s in pool.map(one, jobs):
            statuses[kind][s] = statuses[kind].get(s, 0) + 1
    hostile_s = time.perf_counter() - t0
    stop.set()
    vt.join(30)
    fuzz = schema_fuzz(port, fuzz_cases)
    from vocalis.audio import io as _  # noqa: F401  (the memory acceptance below)

    before = ps.memory_info().rss / 2**20
    body, h = _multipart(_audio(1800, "FLAC", noise=False), name="silence.flac")
    t = time.perf_counter()
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/predict", body=body, headers=h)
    resp = conn.getresponse()
    text = resp.read().decode(errors="replace")
    silence = {
        "status": resp.status,
        "names_the_limit": f"limit of {limits['max_duration']} s" in text,
        "detail": text[:200],
        "rss_increase_mb": round(ps.memory_info().rss / 2**20 - before, 1),
        "seconds": round(time.perf_counter() - t, 2),
    }
    proc.terminate()
    proc.wait(20)
    five = {
        k: sum(v for s, v in st.items() if s.startswith("5") and s != "503")
        for k, st in statuses.items()
    }
    lat = sorted(latencies)
    return {
        "limits": limits,
        "hostile": {k: {"sent": kinds[k][0], "status": statuses[k], "5xx": five[k]} for k in kinds},
        "hostile_sent": len(jobs),
        "hostile_seconds": round(hostile_s, 1),
        "5xx_total": sum(five.values()),
        "valid": {
            "sent": sum(valid_status.values()),
            "status": valid_status,
            "p50_s": round(statistics.median(lat), 3) if lat else None,
            "p95_s": round(lat[int(0.95 * (len(lat) - 1))], 3) if lat else None,
        },
        "memory": {
            "baseline_mb": round(base_mb, 1),
            "peak_mb": round(peak[0], 1),
            "bound_mb": round(bound, 1),
            "within_bound": peak[0] <= bound,
        },
        "schema_fuzz": fuzz,
        "silent_flac_30min": silence,
    }


def _bind(send, path, method):
    return lambda q, b: send(path, method, q, b)


def schema_fuzz(port: int, cases: int) -> dict:
    """Hypothesis-driven requests for every route and method of the OpenAPI schema."""
    import http.client

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/openapi.json")
    schema = json.loads(conn.getresponse().read())
    conn.close()
    routes = [(p, m.upper(), op) for p, ops in schema["paths"].items() for m, op in ops.items()]
    failures, statuses, n = [], {}, [0]

    def params(op):
        names = [q["name"] for q in op.get("parameters", []) if q.get("in") == "query"]
        return (
            st.dictionaries(st.sampled_from(names), st.text(max_size=20)) if names else st.just({})
        )

    body = st.one_of(
        st.binary(max_size=4000).map(lambda b: (b, {"Content-Type": "application/octet-stream"})),
        st.binary(max_size=4000).map(lambda b: _multipart(b)),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.text(max_size=10),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
            max_leaves=8,
        ).map(lambda j: (json.dumps(j).encode(), {"Content-Type": "application/json"})),
        st.just((b"", {})),
    )
    per = max(10, cases // max(1, len(routes)))

    def send(path, method, q, b):
        from urllib.parse import urlencode

        data, headers = b
        url = path + ("?" + urlencode(q) if q else "")
        n[0] += 1
        try:
            s = _request(port, method, url, data if method != "GET" else b"", headers)
        except OSError as err:
            failures.append(f"{method} {url}: {type(err).__name__}")
            return
        statuses[str(s)] = statuses.get(str(s), 0) + 1
        if s >= 500 and s != 503:
            failures.append(f"{method} {url}: {s}")

    for path, method, op in routes:
        case = settings(
            max_examples=per, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )(given(q=params(op), b=body)(_bind(send, path, method)))
        case()
    return {
        "tool": "hypothesis",
        "routes": len(routes),
        "cases": n[0],
        "status": statuses,
        "failures": len(failures),
        "first_failures": failures[:5],
    }


# --------------------------------------------------------------------------- sigterm


def bench_sigterm(work: Path) -> list[dict]:
    rows = write_corpus(work / "c", per_cell=12, seconds=1.0)
    m = write_manifest(work / "m.csv", rows)
    big = write_manifest(
        work / "big.csv", [{**r, "id": f"{r['id']}_{k}"} for k in range(20) for r in rows]
    )
    run_dir = str(work / "model")
    run(["train", f"dataset.manifest={m}", *TINY, "train.epochs=1", "--out", run_dir], work)
    verbs = {
        "features": [
            "features",
            str(m),
            "--cache",
            str(work / "fc"),
            "--workers",
            "2",
            "--executor",
            "process",
            "--denoise",
            "spectral",
            "--no-progress",
        ],
        "train": [
            "train",
            f"dataset.manifest={m}",
            *TINY,
            "train.epochs=50",
            "--out",
            str(work / "t"),
            "--no-progress",
        ],
        "loso": [
            "loso",
            f"dataset.manifest={m}",
            *TINY,
            "train.epochs=50",
            "--out",
            str(work / "l"),
            "--parallel",
            "2",
        ],
        "cv": [
            "cv",
            f"dataset.manifest={m}",
            *TINY,
            "train.epochs=50",
            "--folds",
            "3",
            "--out",
            str(work / "cv"),
        ],
        "predict": [
            "predict",
            str(big),
            "--checkpoint",
            run_dir,
            "--out",
            str(work / "p.csv"),
            "--no-progress",
            "--batch-size",
            "1",
        ],
        "eval": ["eval", run_dir, "--manifest", str(big), "--no-progress", "--batch-size", "1"],
    }
    out = []
    for verb, args in verbs.items():
        proc = start(args, work)
        time.sleep(6.0)
        running = proc.poll() is None
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        took = time.monotonic() - t0
        last = [ln for ln in err.strip().splitlines() if ln.strip()][-1:] or [""]
        out.append(
            {
                "verb": verb,
                "running_at_signal": running,
                "stop_s": round(took, 2),
                "exit": proc.returncode,
                "one_line": last[0][:160],
            }
        )
    return out


# --------------------------------------------------------------------------- scale-out

SCALE_RECIPE = {
    "kind": "ensemble",
    "ensemble": {
        "normalization": "online",
        "fusion_resolution": 10,
        "members": [
            {
                "functionals": {"name": "lld_stats", "lld": "mfcc", "deltas": True},
                "linear": {
                    "classifier": "svm",
                    "balanced": True,
                    "c_grid": [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
                },
                "speed_factors": [0.9, 1.1],
            },
            {
                "functionals": {"name": "lld_stats", "lld": "fbank", "deltas": True},
                "linear": {
                    "classifier": "svm",
                    "balanced": True,
                    "c_grid": [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
                },
                "speed_factors": [],
            },
        ],
    },
}


def bench_scaleout(work: Path, workers=(1, 2, 3)) -> dict:
    import yaml
    from benchenv import emodb_dir

    from vocalis.backends import BackendConfig
    from vocalis.data.corpora.emodb import prepare_emodb
    from vocalis.evaluation.crossval import loso
    from vocalis.training import load_recipe

    wav = emodb_dir() / "wav"
    if not wav.is_dir():
        return {"skipped": f"EmoDB not found at {wav}"}
    manifest = prepare_emodb(wav.parent)
    recipe_path = work / "scale.yaml"
    recipe_path.write_text(yaml.safe_dump({**SCALE_RECIPE, "cache_dir": str(work / "cache")}))
    recipe = load_recipe(str(recipe_path))
    rows = {}

    def timed(name, backend):
        t0, c0 = time.perf_counter(), time.process_time()
        cv = loso(recipe, work / name, manifest=manifest, backend=backend)
        rows[name] = {
            "wall_s": round(time.perf_counter() - t0, 1),
            "driver_cpu_s": round(time.process_time() - c0, 1),
            "extract_s": cv["extract_seconds"],
            "pooled_uar": cv["pooled"]["uar"],
            "n_finished": cv["n_finished"],
        }

    timed("warm_cache", None)  # computes the functionals cache (not a timing row)
    shutil.rmtree(work / "warm_cache")
    timed("local_1_process", None)
    for n in workers:
        timed(f"ray_{n}_workers", BackendConfig("ray", workers=n))
    for name in rows:
        rows[name]["cv_results_equal_local"] = cv_equal(work / "local_1_process", work / name)
    rows.pop("warm_cache", None)
    base = rows["ray_1_workers"]["wall_s"]
    for n in workers:
        rows[f"ray_{n}_workers"]["speedup_vs_1_worker"] = round(
            base / rows[f"ray_{n}_workers"]["wall_s"], 2
        )
    return {
        "corpus": f"EmoDB ({len(manifest)} clips, 10 speakers)",
        "estimator": "functionals ensemble: lld_stats mfcc+fbank, linear SVMs",
        "rows": rows,
    }


# --------------------------------------------------------------------------- main


def print_table(res: dict) -> None:
    lines = ["| section | item | result |", "|---|---|---|"]
    for r in res.get("files", []):
        lines.append(
            f"| files | {r['verb']} | tried {r['tried']}, broken {r['broken']}, "
            f"reported {r['reported']}, lost {r['lost']}, false reports "
            f"{r['false_reports']}, exit {r['exit']} |"
        )
    for r in res.get("kills_summary", []):
        lines.append(
            f"| kill -9 | {r['verb']} | {r['kill_points']} kill points "
            f"({r['killed_during_write']} during a write), {r['chains_resumed']}/"
            f"{r['chains']} chains resumed, final state equal "
            f"{r['final_state_equal']}/{r['chains']}, orphans {r['orphans']}, "
            f".part left {r['parts_left']} |"
        )
    s = res.get("service")
    if s:
        lines.append(
            f"| service | hostile | {s['hostile_sent']} requests of "
            f"{len(s['hostile'])} kinds in {s['hostile_seconds']} s, 5xx "
            f"{s['5xx_total']} |"
        )
        lines.append(
            f"| service | valid under load | {s['valid']['sent']} sent "
            f"{s['valid']['status']}, p95 {s['valid']['p95_s']} s |"
        )
        mem = s["memory"]
        lines.append(
            f"| service | memory | peak {mem['peak_mb']} MB vs bound {mem['bound_mb']} "
            f"MB (baseline {mem['baseline_mb']}) |"
        )
        f = s["schema_fuzz"]
        lines.append(
            f"| service | schema fuzz ({f['tool']}) | {f['cases']} cases on "
            f"{f['routes']} routes, {f['failures']} failures |"
        )
        q = s["silent_flac_30min"]
        lines.append(
            f"| service | 30-min silent FLAC | {q['status']}, names the limit: "
            f"{q['names_the_limit']}, RSS +{q['rss_increase_mb']} MB |"
        )
    for r in res.get("sigterm", []):
        lines.append(f"| SIGTERM | {r['verb']} | stopped in {r['stop_s']} s, exit {r['exit']} |")
    so = res.get("scaleout", {})
    for name, r in (so.get("rows") or {}).items():
        lines.append(
            f"| scale-out | {name} | wall {r['wall_s']} s, UAR {r['pooled_uar']:.4f}, "
            f"cv_results equal: {r['cv_results_equal_local']}"
            + (f", x{r['speedup_vs_1_worker']}" if "speedup_vs_1_worker" in r else "")
            + " |"
        )
    if so.get("skipped"):
        lines.append(f"| scale-out | - | skipped: {so['skipped']} |")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        choices=["files", "kills", "service", "sigterm", "scaleout"],
    )
    parser.add_argument("--kill-points", type=int, default=20, help="per verb")
    parser.add_argument("--fuzz-cases", type=int, default=600)
    parser.add_argument("--hostile-scale", type=float, default=1.0, help="x hostile requests")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed)
    sections = args.only or ["files", "kills", "service", "sigterm", "scaleout"]
    res: dict = json.loads(args.out.read_text()) if args.out.is_file() and args.only else {}
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="vocalis-rel-") as tmp:
        work = Path(tmp)
        for name in sections:
            s0 = time.perf_counter()
            d = work / name
            d.mkdir()
            print(f"== {name}", flush=True)
            if name == "files":
                res["files"] = bench_files(d)
            elif name == "kills":
                res["kills"] = bench_kills(d, args.kill_points)
                res["kills_summary"] = kill_summary(res["kills"])
            elif name == "service":
                res["service"] = bench_service(d, args.fuzz_cases, args.hostile_scale)
            elif name == "sigterm":
                res["sigterm"] = bench_sigterm(d)
            elif name == "scaleout":
                res["scaleout"] = bench_scaleout(d)
            res.setdefault("_seconds", {})[name] = round(time.perf_counter() - s0, 1)
    from benchenv import cpu_name

    res["_meta"] = {
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "wall_s": round(time.perf_counter() - t0, 1),
        "driver_cpu_s": round(time.process_time() - c0, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "sections": sections,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=str) + "\n")
    print_table(res)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
