"""End-to-end training on tiny synthetic corpora: run folder, resume, errors, CLI, eval."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from _training_helpers import interrupt_then_resume, tiny_overrides, write_corpus

from vocalis.checkpoint import load_checkpoint, save_checkpoint
from vocalis.errors import ConfigError, DataError, ModelError
from vocalis.evaluation import evaluate
from vocalis.training import load_config, train
from vocalis.training.runfolder import HISTORY_COLUMNS, RUN_FILES


def _cfg(manifest, *extra, epochs=2):
    return load_config(None, [*tiny_overrides(manifest, epochs), *extra])


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max(float((sa[k].float() - sb[k].float()).abs().max()) for k in sa)


def test_run_folder_has_every_file(corpus, tmp_path):
    out = tmp_path / "run"
    result = train(_cfg(corpus), out, test_indices=[0, 1, 2, 3], progress=False)
    for name in (*RUN_FILES, "predictions.csv"):
        assert (out / name).is_file(), name
    with open(out / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and tuple(rows[0]) == HISTORY_COLUMNS
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_epoch"] == result.best_epoch >= 1
    assert metrics["test"]["uar"] == pytest.approx(result.test_metrics["uar"])
    assert metrics["schema"] == 1 and metrics["kind"] == "train" and metrics["model"] == "neural"
    assert metrics["n_rows"]["test"] == 4 and metrics["epochs_run"] == 2
    assert metrics["val"]["uar"] == pytest.approx(result.best_metrics["val_uar"])
    assert metrics["val"]["loss"] == pytest.approx(result.best_metrics["val_loss"])
    env = json.loads((out / "env.json").read_text())
    assert {"python", "torch", "vocalis", "device", "hostname", "world_size"} <= set(env)
    log = (out / "log.txt").read_text()
    assert "Epoch 2/2 | train loss" in log and "UAR" in log
    with open(out / "predictions.csv") as fh:
        pred = list(csv.DictReader(fh))
    assert len(pred) == 4
    assert list(pred[0])[:6] == [
        "path",
        "speaker",
        "true_label",
        "pred_label",
        "correct",
        "confidence",
    ]
    assert {"p_high", "p_low"} <= set(pred[0])
    resume_keys = (
        "optimizer",
        "scheduler",
        "scaler",
        "epoch",
        "rng",
        "best",
        "history",
        "normalization",
        "labels",
        "config",
        "pipeline",
    )
    for name in ("last.pt", "best.pt"):  # both can resume the run
        stored = load_checkpoint(out / "checkpoints" / name).to_payload()
        assert all(key in stored for key in resume_keys), (name, set(resume_keys) - set(stored))
    best = load_checkpoint(out / "checkpoints" / "best.pt")
    assert best.training["epoch"] == result.best_epoch
    assert best.training["metrics"]["epoch"] == result.best_epoch
    model = load_checkpoint(out / "model.pt")  # the deployable copy of best.pt
    assert model.training["epoch"] == result.best_epoch and "optimizer" not in model.training
    assert all(torch.equal(model.model_state[k], v) for k, v in best.model_state.items())
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt.normalization.mode == "global" and ckpt.training["epoch"] == 2
    assert json.loads((out / "label_map.json").read_text())["classes"] == ["high", "low"]


@pytest.mark.parametrize("stop_after_steps", [3, 4], ids=["epoch-boundary", "mid-epoch"])
def test_kill_and_resume_gives_the_same_weights(corpus, tmp_path, monkeypatch, stop_after_steps):
    # 12 training utterances, batch 4: 3 steps per epoch. Crops, SpecAugment, mixup and
    # dropout all draw random numbers, so any seeding slip shows up in the weights.
    extra = (
        "train.crop_seconds=0.3",
        "augment.spec_mask.p=1",
        "augment.mixup.p=1",
        "augment.mixup.alpha=0.4",
        "model.params.conv_dropout=0.3",
    )
    cfg = _cfg(corpus, *extra, epochs=3)
    full = train(cfg, tmp_path / "full", progress=False)
    resumed = interrupt_then_resume(cfg, tmp_path / "cut", monkeypatch, stop_after_steps)
    assert _same_weights(full.model, resumed.model) <= 1e-6
    assert [h["train_loss"] for h in full.history] == pytest.approx(
        [h["train_loss"] for h in resumed.history], abs=1e-9
    )
    assert "Resumed from" in (tmp_path / "cut" / "log.txt").read_text()


def test_resume_refuses_a_changed_config_and_keeps_the_folder(corpus, tmp_path):
    out = tmp_path / "run"
    train(_cfg(corpus, epochs=1), out, progress=False)
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"train\.lr.*--overwrite"):
        train(_cfg(corpus, "train.lr=0.5", epochs=1), out, progress=False)
    after = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert before == after
    # more epochs is a valid continuation; overwrite starts over
    more = train(_cfg(corpus, epochs=2), out, progress=False)
    assert [h["epoch"] for h in more.history] == [1, 2]
    fresh = train(_cfg(corpus, "train.lr=0.5", epochs=1), out, overwrite=True, progress=False)
    assert len(fresh.history) == 1
    assert "lr: 0.5" in (out / "config.yaml").read_text()


def test_unseen_label_in_eval_names_it(corpus, tmp_path):
    out = tmp_path / "run"
    train(_cfg(corpus, epochs=1), out, progress=False)
    other = write_corpus(tmp_path / "other", labels=("low", "mid"), per_cell=1)
    with pytest.raises(DataError, match=r"label 'mid' was never seen.*known classes: high, low"):
        evaluate(out / "checkpoints" / "best.pt", other, progress=False)


def test_evaluate_matches_training_test_metrics(corpus, tmp_path):
    from vocalis.data import read_manifest

    out = tmp_path / "run"
    res = train(_cfg(corpus, epochs=2), out, test_indices=list(range(0, 18, 3)), progress=False)
    sub = read_manifest(corpus).select(list(range(0, 18, 3)))
    metrics = evaluate(out / "checkpoints" / "best.pt", sub, out=tmp_path / "eval", progress=False)
    assert metrics["accuracy"] == pytest.approx(res.test_metrics["accuracy"])
    assert metrics["uar"] == pytest.approx(res.test_metrics["uar"])
    assert (tmp_path / "eval" / "predictions.csv").is_file()


def test_checkpoint_of_another_model_is_refused(corpus, tmp_path):
    out = tmp_path / "run"
    train(_cfg(corpus, epochs=1), out, progress=False)
    path = out / "checkpoints" / "best.pt"
    ckpt = load_checkpoint(path)
    save_checkpoint(tmp_path / "bad.pt", replace(ckpt, model=replace(ckpt.model, name="ecapa")))
    with pytest.raises(ModelError, match="another model"):
        evaluate(tmp_path / "bad.pt", corpus, progress=False)
    raw = torch.load(path, weights_only=True)
    raw["format_version"] = 99
    torch.save(raw, tmp_path / "new.pt")
    with pytest.raises(ModelError, match="newer"):
        evaluate(tmp_path / "new.pt", corpus, progress=False)


def test_bad_inputs_are_one_line_errors(corpus, tmp_path):
    with pytest.raises(ConfigError, match=r"dataset\.manifest is empty"):
        train(load_config(None, ["dataset.manifest="]), None, progress=False)
    with pytest.raises(DataError, match="training split is empty"):
        train(_cfg(corpus), None, train_indices=[], val_indices=[0, 1], progress=False)
    with pytest.raises(ConfigError, match=r"class_weights.*one per class"):
        train(_cfg(corpus, "train.class_weights=[1.0]"), None, progress=False)


def test_non_finite_loss_names_the_remedy(corpus, monkeypatch):
    import vocalis.training.losses as losses
    import vocalis.training.trainer as trainer
    from vocalis.data import read_manifest

    real = losses.Objective.forward

    def poisoned(self, logits, *args, **kwargs):
        loss, parts = real(self, logits, *args, **kwargs)
        return loss * float("nan"), parts

    monkeypatch.setattr(losses.Objective, "forward", poisoned)
    with pytest.raises(trainer.NonFiniteLossError, match=r"lower train\.lr") as err:
        train(_cfg(corpus, epochs=1), None, progress=False)
    held = str(err.value).split("; the batch held ")[1].split(", ")  # where to look
    ids = set(read_manifest(corpus).ids)
    assert held and set(held) <= ids and len(set(held)) == len(held)


def test_cli_train_then_eval(corpus, tmp_path, capsys):
    from vocalis.cli.main import main

    out = tmp_path / "cli_run"
    args = [
        "train",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--no-progress",
        "--seed",
        "3",
        *tiny_overrides(corpus, 1),
    ]
    assert main(args) == 0
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    assert "seed: 3" in (out / "config.yaml").read_text()
    assert main(args) == 0  # rerun resumes a finished run: nothing to do, still fine
    assert main([*args, "train.lr=0.9"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                str(out / "checkpoints" / "best.pt"),
                "--manifest",
                str(corpus),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "UAR" in capsys.readouterr().out


def test_first_ctrl_c_only_requests_a_stop():
    import os
    import signal

    from vocalis.training.state import GracefulInterrupt as _Interrupt

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a job started with `&` or nohup
    with _Interrupt() as interrupt:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupt.requested  # no KeyboardInterrupt: the loop stops at the next step
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C stops at once
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler comes back


def test_unreadable_file_is_skipped_and_logged(tmp_path):
    manifest = write_corpus(tmp_path / "c")
    lines = manifest.read_text().splitlines()
    broken = lines[1].split(",")[0]
    Path(broken).write_bytes(b"not audio")
    out = tmp_path / "run"
    result = train(_cfg(manifest, "features.max_failures=0.1", epochs=1), out, progress=False)
    assert len(result.history) == 1
    log = (out / "log.txt").read_text()
    assert "skipped" in log and broken.rsplit("/", 1)[-1] in log
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_rows"]["train"] + metrics["n_rows"]["val"] == 17
    # a resumed run keeps the first environment and records the new one
    train(_cfg(manifest, "features.max_failures=0.1", epochs=2), out, progress=False)
    env = json.loads((out / "env.json").read_text())
    assert len(env["resumes"]) == 1 and env["world_size"] == 1


@pytest.mark.slow
def test_ctrl_c_in_a_real_process_saves_and_exits_130(corpus, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "sig"
    cmd = [
        sys.executable,
        "-m",
        "vocalis",
        "train",
        "--out",
        str(out),
        "--no-progress",
        *tiny_overrides(corpus, epochs=200),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:
        if line.startswith("Epoch 1/200"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert 1 <= ckpt.training["epoch"] < 200
    assert "rerun the same command to resume" in (out / "log.txt").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda(corpus):
    with pytest.raises(ConfigError, match=r"no CUDA device; use train\.device=cpu"):
        train(_cfg(corpus, "train.device=cuda"), None, progress=False)


def test_global_normalisation_moves_into_a_model_with_input_norm(corpus, tmp_path):
    from vocalis.data import read_manifest

    out = tmp_path / "run"
    res = train(
        _cfg(corpus, "model.params.input_norm=true"),
        out,
        test_indices=[0, 4, 9, 13],
        progress=False,
    )
    ckpt = load_checkpoint(out / "checkpoints" / "best.pt")
    assert ckpt.normalization.mode == "none"  # the model carries the statistics
    mean = ckpt.model_state["input_norm.mean"]
    assert mean.abs().max() > 0.1 and ckpt.model_state["input_norm.std"].min() > 0
    sub = read_manifest(corpus).select([0, 4, 9, 13])
    metrics = evaluate(out / "checkpoints" / "best.pt", sub, progress=False)
    assert metrics["accuracy"] == pytest.approx(res.test_metrics["accuracy"])
    assert "normalization=global in the model" in (out / "log.txt").read_text()


def test_last_pt_is_best_pt_after_an_improving_epoch(corpus, tmp_path):
    """One copy on disk when best == last (a hard link); a later epoch breaks it safely."""
    import os

    out, ck = tmp_path / "run", tmp_path / "run" / "checkpoints"
    train(_cfg(corpus, epochs=1), out, progress=False)
    assert os.path.samefile(ck / "best.pt", ck / "last.pt")  # epoch 1 is the best so far
    best_bytes = (ck / "best.pt").read_bytes()
    last = load_checkpoint(ck / "last.pt")
    assert last.training["epoch"] == 1 and "optimizer" in last.training
    result = train(_cfg(corpus, epochs=2), out, progress=False)  # resumes from the shared file
    assert load_checkpoint(ck / "last.pt").training["epoch"] == 2
    if result.best_epoch == 2:
        assert os.path.samefile(ck / "best.pt", ck / "last.pt")
    else:  # last.pt was rewritten, best.pt kept its bytes
        assert not os.path.samefile(ck / "best.pt", ck / "last.pt")
        assert (ck / "best.pt").read_bytes() == best_bytes


def test_checkpoints_keep_the_training_dtype(corpus, tmp_path):
    out = tmp_path / "run"
    result = train(_cfg(corpus, epochs=1), out, progress=False)
    dtypes = {k: v.dtype for k, v in result.model.state_dict().items()}
    for name in ("checkpoints/best.pt", "checkpoints/last.pt", "model.pt"):
        state = load_checkpoint(out / name).model_state
        assert {k: v.dtype for k, v in state.items()} == dtypes, name
    assert torch.float64 not in dtypes.values()


def test_a_wide_ecapa_on_cpu_points_to_the_512_channel_preset():
    from vocalis.models import build_model

    wide = build_model("ecapa", {"channels": [1024, 1024, 1024, 1024, 3072]}, 80, 7)
    notice = wide.cpu_notice()
    assert notice.startswith("notice: ECAPA with 1024 channels") and "model=ecapa_c512" in notice
    assert build_model("ecapa", {"preset": "c512"}, 80, 7).cpu_notice() is None
