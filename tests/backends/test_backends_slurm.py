"""The SLURM backend through submitit, with its jobs run as local processes (``cluster=local``).

A real SLURM is seldom at hand; submitit's LocalExecutor runs the same job files
(pickled task, result file) as subprocesses, so submission, results, retries of a
lost job and the driver heartbeat are exercised without one.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

submitit = pytest.importorskip("submitit", reason="--backend slurm needs submitit")
cloudpickle = pytest.importorskip("cloudpickle", reason="submitit pickles with cloudpickle")
pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="submitit is POSIX"),
    pytest.mark.timeout(240),
    pytest.mark.slow,
]

import _backend_helpers as helpers  # noqa: E402

from vocalis.backends import BackendConfig  # noqa: E402
from vocalis.evaluation.crossval import RUN_KEYS, loso  # noqa: E402

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(autouse=True)
def _by_value(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join((SRC, os.environ.get("PYTHONPATH", ""))))
    cloudpickle.register_pickle_by_value(helpers)
    yield
    cloudpickle.unregister_pickle_by_value(helpers)


def test_slurm_jobs_equal_a_single_process_run_and_a_lost_job_is_resubmitted(tmp_path):
    manifest = helpers.make_manifest(tmp_path)
    out = tmp_path / "cv"
    pid_file = out / "speaker_b" / "attempt.1.pid"
    killed = []

    def killer() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not pid_file.is_file():
            time.sleep(0.05)
        time.sleep(0.2)
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)  # the job's process: a node lost mid-fold
        killed.append(pid)

    threading.Thread(target=killer, daemon=True).start()
    backend = BackendConfig(
        "slurm",
        workers=3,
        max_retries=1,
        options={"cluster": "local", "folder": str(tmp_path / "jobs"), "timeout_min": 5},
    )
    cv = loso(helpers.FakeEstimator(str(manifest), hang_on=("speaker_b",)), out, backend=backend)
    assert killed and cv["n_finished"] == 3 and not cv["failed"]
    assert len(list((out / "speaker_b").glob("attempt.*.pid"))) == 2
    serial = loso(helpers.FakeEstimator(str(manifest)), tmp_path / "serial")
    assert {k: v for k, v in cv.items() if k not in RUN_KEYS} == {
        k: v for k, v in serial.items() if k not in RUN_KEYS
    }
    assert not list((tmp_path / "jobs").glob("*.alive"))  # the heartbeat is removed at the end
