"""DDP on CPU: two processes under torchrun train and rank 0 writes one run folder."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from _training_helpers import tiny_overrides

from vocalis.checkpoint import load_checkpoint


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(corpus, tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this torch build")
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "vocalis",
        "train",
        "--out",
        str(out),
        "--no-progress",
        "--device",
        "cpu",
        *tiny_overrides(corpus, epochs=1),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt.training["epoch"] == 1
    env_json = (out / "env.json").read_text()
    assert '"world_size": 2' in env_json
    log = (out / "log.txt").read_text()
    assert log.count("Epoch 1/1") == 1  # only rank 0 writes
    assert "world size 2" in log
    # every DDP rank saw half of the 3 batches per epoch (padded to 2 each): 2 optimiser steps
    assert ckpt.training["step"] == 2
