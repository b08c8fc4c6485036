"""The Ray backend on a real local cluster (a head and 2 worker nodes on this machine).

The cluster is started by the test (``ray.cluster_utils.Cluster``, the way Ray tests
itself: separate GCS and raylet processes) and the folds run as Ray tasks on it:
results equal a single-process run, a worker killed mid-fold is retried, finished
folds are skipped on rerun whatever the backend, and a killed driver's tasks die.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ray = pytest.importorskip(
    "ray", reason="the Ray backend needs ray (pip install 'vocalis[cluster]')"
)
psutil = pytest.importorskip("psutil", reason="the orphan check lists processes (psutil)")
pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="Ray clusters on POSIX"),
    pytest.mark.timeout(240),
]

import _backend_helpers as helpers  # noqa: E402

from vocalis.backends import BackendConfig  # noqa: E402
from vocalis.evaluation.crossval import RUN_KEYS, loso  # noqa: E402
from vocalis.testing import synth_speechlike, write_wav  # noqa: E402

SRC = str(Path(__file__).resolve().parents[2] / "src")
HERE = str(Path(__file__).resolve().parent)


@pytest.fixture(scope="module")
def cluster():
    """Head (no CPU: it only schedules) + 2 worker nodes with 1 CPU each, on this machine."""
    from ray.cluster_utils import Cluster

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, HERE, old) if p)
    ray.cloudpickle.register_pickle_by_value(helpers)
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False},
    )
    try:
        for _ in range(2):
            c.add_node(num_cpus=1)
        c.wait_for_nodes()
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()
        ray.cloudpickle.unregister_pickle_by_value(helpers)
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _results(out: Path) -> dict:
    cv = json.loads((out / "cv_results.json").read_text())
    return {k: v for k, v in cv.items() if k not in RUN_KEYS}


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory) -> tuple[Path, Path]:
    """3 speakers x 2 classes (f0 110 vs 220 Hz) x 3 clips, and a one-member ensemble recipe."""
    root = tmp_path_factory.mktemp("ens")
    rows = []
    for s, shift in enumerate((1.0, 1.1, 0.92)):
        for label, f0 in (("low", 110.0), ("high", 220.0)):
            for i in range(3):
                wav = synth_speechlike(0.4, f0=f0 * shift, seed=100 * s + 10 * i + int(f0))
                rows.append((write_wav(root / f"s{s}_{label}_{i}.wav", wav), label, f"s{s}"))
    manifest = root / "m.csv"
    with manifest.open("w", newline="") as fh:
        csv.writer(fh).writerows([("path", "label", "speaker"), *rows])
    recipe = {
        "kind": "ensemble",
        "cache_dir": str(root / "cache"),
        "ensemble": {
            "normalization": "online",
            "fusion_resolution": 0,
            "members": [
                {
                    "functionals": {"name": "lld_stats", "lld": "mfcc", "deltas": False},
                    "linear": {"classifier": "svm", "c_grid": [0.01, 1.0]},
                    "speed_factors": [],
                }
            ],
        },
    }
    path = root / "ens.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return manifest, path


def test_ray_loso_equals_a_single_process_run_and_skips_finished_folds(cluster, ensemble, tmp_path):
    from vocalis.cli.main import main

    manifest, recipe = ensemble
    base = ["loso", "--config", str(recipe), "--manifest", str(manifest)]
    assert main([*base, "--out", str(tmp_path / "local")]) == 0
    ray_args = ["--backend", "ray", "--ray-address", cluster.address, "--parallel", "2"]
    out = tmp_path / "ray"
    assert main([*base, "--out", str(out), "--speaker", "s0"]) == 0  # one fold locally first
    first = (out / "speaker_s0" / "predictions.csv").stat().st_mtime_ns
    assert main([*base, "--out", str(out), *ray_args]) == 0  # the other two on the cluster
    assert (out / "speaker_s0" / "predictions.csv").stat().st_mtime_ns == first  # skipped
    assert _results(out) == _results(tmp_path / "local")  # every metric, bit for bit
    cv = json.loads((out / "cv_results.json").read_text())
    assert cv["backend"] == {"name": "ray", "workers": 2} and cv["n_finished"] == 3
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("predictions.csv")}
    assert main([*base, "--out", str(out), *ray_args]) == 0  # all finished: nothing runs
    assert {p: p.stat().st_mtime_ns for p in out.rglob("predictions.csv")} == {
        p: t for p, t in stamps.items() if p.parent != out
    } | {out / "predictions.csv": (out / "predictions.csv").stat().st_mtime_ns}


def test_a_worker_killed_mid_fold_is_retried(cluster, tmp_path):
    """The fold's first attempt hangs; the test kills its Ray worker (SIGKILL); Ray reruns it."""
    import threading

    manifest = helpers.make_manifest(tmp_path)
    out = tmp_path / "cv"
    pid_file = out / "speaker_b" / "attempt.1.pid"
    killed = []

    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not pid_file.is_file():
            time.sleep(0.05)
        time.sleep(0.2)
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    est = helpers.FakeEstimator(str(manifest), hang_on=("speaker_b",))
    backend = BackendConfig("ray", workers=2, address=cluster.address, max_retries=2)
    cv = loso(est, out, backend=backend)
    thread.join(5)
    assert killed, "the hanging fold never started"
    assert cv["n_finished"] == 3 and not cv["failed"]
    assert sorted(p.name for p in (out / "speaker_b").glob("attempt.*.pid")) == [
        "attempt.1.pid",
        "attempt.2.pid",
    ]
    assert not psutil.pid_exists(killed[0])
    serial = loso(helpers.FakeEstimator(str(manifest)), tmp_path / "serial")
    assert {k: v for k, v in cv.items() if k not in RUN_KEYS} == {
        k: v for k, v in serial.items() if k not in RUN_KEYS
    }


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_tasks_die_with_their_driver(cluster, tmp_path, sig):
    """kill -9 of the driver: Ray ends its job; SIGTERM: the driver cancels its tasks (force).
    Either way the workers running its folds are gone."""
    manifest = helpers.make_manifest(tmp_path)
    out = tmp_path / "cv"
    script = (
        "import sys, ray, _backend_helpers as h\n"
        "ray.cloudpickle.register_pickle_by_value(h)\n"
        "from vocalis.backends import BackendConfig\n"
        "from vocalis import signals\n"
        "from vocalis.evaluation.crossval import loso\n"
        "with signals.installed():\n"
        f"    loso(h.FakeEstimator({str(manifest)!r}, hang_on=('speaker_a', 'speaker_b')), "
        f"{str(out)!r}, backend=BackendConfig('ray', workers=2, address={cluster.address!r}))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((SRC, HERE, os.environ["PYTHONPATH"])))
    driver = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    pids = [out / f"speaker_{s}" / "attempt.1.pid" for s in "ab"]
    deadline = time.monotonic() + 60
    while not all(p.is_file() for p in pids):
        assert time.monotonic() < deadline and driver.poll() is None, "the folds never started"
        time.sleep(0.05)
    time.sleep(0.2)
    workers = [int(p.read_text()) for p in pids]
    assert all(psutil.pid_exists(w) for w in workers)
    t0 = time.monotonic()
    driver.send_signal(sig)
    driver.wait(30)
    assert time.monotonic() - t0 < 10, "the driver did not stop within 10 s"
    deadline = time.monotonic() + 30
    while any(psutil.pid_exists(w) and psutil.Process(w).status() != "zombie" for w in workers):
        assert time.monotonic() < deadline, f"Ray workers {workers} outlived their driver"
        time.sleep(0.2)
    assert not (out / "speaker_a" / "predictions.csv").exists()  # nothing finished behind us


def test_features_on_the_cluster_equal_a_local_run(cluster, ensemble, tmp_path, capsys):
    """vocalis features --backend ray: the same arrays, the same failures, a cache that hits."""
    import numpy as np

    from vocalis.cli.main import main

    manifest, _ = ensemble
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00")
    with open(manifest, newline="") as fh:
        rows = list(csv.reader(fh))
    m = tmp_path / "m.csv"
    with open(m, "w", newline="") as fh:
        csv.writer(fh).writerows([*rows, (str(broken), "low", "s0")])
    base = ["features", str(m), "--features", "mfcc", "--no-progress", "--max-failures", "1"]
    assert main([*base, "--cache", str(tmp_path / "c1"), "--out", str(tmp_path / "a.npz")]) == 0
    local = capsys.readouterr().out
    ray_args = ["--backend", "ray", "--ray-address", cluster.address, "--workers", "2"]
    out_b = ["--cache", str(tmp_path / "c2"), "--out", str(tmp_path / "b.npz")]
    assert main([*base, *out_b, *ray_args]) == 0
    remote = capsys.readouterr().out
    assert "18 computed, 0 regenerated, 1 failed" in local and "18 computed" in remote
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert sorted(a.files) == sorted(b.files) and len(a.files) == 19  # 18 arrays + paths
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
    assert (tmp_path / "b.errors.csv").read_text() == (tmp_path / "a.errors.csv").read_text()
    assert main([*base, *out_b, *ray_args]) == 0  # the cache the driver wrote now hits
    assert "18 cache hits" in capsys.readouterr().out


def test_sweep_on_the_cluster_equals_a_local_sweep(cluster, ensemble, tmp_path):
    from vocalis.evaluation.sweep import sweep

    manifest, recipe = ensemble
    overrides = [f"manifest={manifest}", "ensemble.members.0.linear.c_grid=[0.01],[1.0]"]
    local = sweep(recipe, overrides, tmp_path / "local")
    remote = sweep(
        recipe, overrides, tmp_path / "ray",
        backend=BackendConfig("ray", workers=2, address=cluster.address),
    )  # fmt: skip
    assert [g["n"] for g in remote["groups"]] == [1, 1]

    def results(s: dict) -> list:
        return [
            {k: v for k, v in g.items() if k not in ("runs", "seconds", "seconds_std")}
            for g in s["groups"]
        ]

    assert results(remote) == results(local) and remote["table"] == local["table"]
