"""Run folders, checkpoints and evaluations on real local object stores.

The stores are a GCS emulator (gcp-storage-emulator) and an S3 server (moto in
server mode), started once per session by ``tests/conftest.py`` and skipped with a
reason when their packages are absent. Nothing is mocked: gcsfs and s3fs talk HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _training_helpers import tiny_overrides, write_corpus

from vocalis.checkpoint import load_checkpoint
from vocalis.errors import StorageError
from vocalis.io import URLPath, as_path, atomic_open, write_text
from vocalis.training.runfolder import RUN_FILES

KILLED_WRITER = """
import sys, time
from vocalis.io import atomic_open
with atomic_open(sys.argv[1], "wb") as fh:
    fh.write(b"half of a checkpoint")
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def _train(manifest, out, epochs):
    from vocalis.training import load_config, train

    return train(load_config(None, tiny_overrides(manifest, epochs)), out, progress=False)


def test_run_folder_on_store_is_complete_and_resumes(object_store, corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a silent local folder would appear here
    out = f"{object_store.url}/runs/exp1"
    _train(corpus, out, epochs=2)
    run = URLPath(out)
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    assert list(tmp_path.iterdir()) == []
    first = load_checkpoint(run / "checkpoints" / "last.pt")
    assert first.training["epoch"] == 2

    result = _train(corpus, out, epochs=3)  # the same command with more epochs resumes
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    log = (run / "log.txt").read_text()
    assert f"Resumed from {out}/checkpoints/last.pt at epoch 2" in log
    assert log.count("Epoch 1/2") == 1 and "Epoch 3/3" in log  # the first run's lines kept
    assert len((run / "history.csv").read_text().splitlines()) == 4
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 3
    assert load_checkpoint(run / "model.pt").training["epoch"] >= 1


def test_eval_reads_a_run_folder_on_the_store(s3_store, corpus, tmp_path, capsys):
    from vocalis.cli.main import main

    out = f"{s3_store.url}/runs/eval-me"
    _train(corpus, out, epochs=1)
    code = main(["eval", f"{out}/model", "--manifest", str(corpus), "--out", f"{out}/test",
                 "--no-visualize", "--no-progress"])  # fmt: skip
    assert code == 0
    assert "UAR" in capsys.readouterr().out
    record = json.loads((URLPath(out) / "test" / "metrics.json").read_text())
    assert record["kind"] == "eval" and record["n_rows"]["test"] == 18
    assert (URLPath(out) / "test" / "predictions.csv").is_file()


def test_killed_writer_leaves_no_visible_half_object(object_store):
    target = URLPath(f"{object_store.url}/ckpt/last.pt")
    write_text(target, "old")
    env = {**os.environ, **object_store.env, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert target.read_text() == "old"  # readers never saw the half
    assert [p.name for p in target.parent.iterdir()] == ["last.pt"]  # and no stray key


def test_failure_between_write_and_commit_keeps_the_old_object(object_store):
    target = URLPath(f"{object_store.url}/ckpt/best.pt")
    write_text(target, "old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_open(target, "wb") as fh:
        fh.write(b"new but unfinished")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    with atomic_open(target, "wb") as fh:
        fh.write(b"new")
    assert target.read_text() == "new"


def test_memory_store_uses_a_temporary_key_then_a_rename(monkeypatch):
    import fsspec

    fs = fsspec.filesystem("memory")
    moves = []
    real = type(fs).mv

    def mv(self, a, b, **kw):
        moves.append((a, b))
        assert fs.exists(a) and not fs.exists(b)  # nothing under the final key yet
        return real(self, a, b, **kw)

    monkeypatch.setattr(type(fs), "mv", mv)
    write_text("memory://rename-test/x/a.json", "{}")
    ((src, dst),) = moves
    assert dst == "/rename-test/x/a.json" and src.startswith("/rename-test/x/.a.json.")
    assert src.endswith(".part") and fs.ls("/rename-test/x", detail=False) == [dst]


def test_urls_never_become_local_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert isinstance(as_path("memory://b/run"), URLPath)
    write_text(as_path("memory://b/run") / "a.txt", "x")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError):
        open(URLPath("memory://b/run/a.txt"))  # noqa: SIM115  (no __fspath__: no silent local file)


def test_unknown_protocol_is_one_line():
    with pytest.raises(StorageError, match=r"nosuch://b/x: .*use a local path or a gs://"):
        write_text("nosuch://b/x", "x")


TRAIN_FOREVER = """
import sys
sys.path.insert(0, sys.argv[3])
from _training_helpers import tiny_overrides
from vocalis.training import load_config, train
train(load_config(None, tiny_overrides(sys.argv[1], 400)), sys.argv[2], progress=False)
"""


def test_run_killed_on_the_store_resumes_from_complete_checkpoints(object_store, corpus):
    import time

    out = f"{object_store.url}/runs/killed"
    last = URLPath(out) / "checkpoints" / "last.pt"
    env = {**os.environ, **object_store.env, "PYTHONPATH": os.pathsep.join(sys.path)}
    helpers = str(Path(__file__).parent)
    proc = subprocess.Popen(
        [sys.executable, "-c", TRAIN_FOREVER, str(corpus), out, helpers], env=env
    )
    try:
        deadline = time.monotonic() + 60
        while not last.is_file() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.3)  # a few epochs on: the kill lands during some write
    finally:
        proc.kill()
        proc.wait(10)
    assert last.is_file(), "the run never saved a checkpoint"
    done = load_checkpoint(last).training["epoch"]  # a complete checkpoint, whatever the moment
    assert 1 <= done < 400
    for p in URLPath(out).rglob("*"):
        assert not p.name.endswith(".part"), p
    result = _train(corpus, out, epochs=done + 1)
    assert [h["epoch"] for h in result.history] == list(range(1, done + 2))


def test_loso_report_and_compare_on_a_store(corpus, tmp_path, monkeypatch):
    from vocalis.evaluation.compare import compare
    from vocalis.evaluation.crossval import loso
    from vocalis.evaluation.report import report
    from vocalis.training import load_config

    monkeypatch.chdir(tmp_path)
    out = "memory://cv-test/loso"
    cfg = load_config(None, tiny_overrides(corpus, 1))
    cv = loso(cfg, out, speakers=["s1", "s2"], validation="speaker")
    assert cv["n_finished"] == 2 and cv["pooled"]["uar"] is not None
    root = URLPath(out)
    for name in ("cv_results.json", "training_results.json", "predictions.csv", "errors.csv"):
        assert (root / name).is_file(), name
    assert (root / "speaker_s1" / "model.pt").is_file()
    html = report(out)
    assert str(html) == f"{out}/report.html" and (root / "report.html").is_file()
    (row,) = compare([out])
    assert row["run"] == out and row["kind"] == "cv"
    assert list(tmp_path.iterdir()) == []


def test_cli_train_on_a_url_writes_its_plots_there_and_nothing_local(corpus, tmp_path, monkeypatch):
    from vocalis.cli.main import main

    monkeypatch.chdir(tmp_path)
    out = "memory://cli-train/runs/x"
    assert main(["train", "--out", out, "--no-progress", *tiny_overrides(corpus, 1)]) == 0
    assert (URLPath(out) / "training_curves.png").is_file()
    assert (URLPath(out) / "model.pt").is_file()
    assert list(tmp_path.iterdir()) == []


def test_local_trackers_refuse_a_url_run_folder_without_a_local_dir():
    from vocalis.errors import ConfigError
    from vocalis.training.tracking import TrackingConfig, open_tracker

    with pytest.raises(ConfigError, match=r"set tracking\.dir to a local folder"):
        open_tracker(TrackingConfig(backend="tensorboard"), "memory://t/run")


def test_data_cache_and_run_all_on_the_gcs_emulator(gcs_store, corpus):
    """The seed's setup: manifest, audio, feature cache and run folder in one bucket."""
    from vocalis.data import read_manifest
    from vocalis.training import load_config, train

    root = URLPath(f"{gcs_store.url}/corpus")
    rows = read_manifest(corpus)
    for p in rows.paths:
        (root / "wav" / Path(p).name).write_bytes(Path(p).read_bytes())
    text = Path(corpus).read_text().replace(str(Path(corpus).parent / "wav") + "/", "wav/")
    (root / "manifest.csv").write_text(text)  # relative paths: resolved in the bucket
    remote = read_manifest(str(root / "manifest.csv"))
    assert remote.paths[0] == f"{root}/wav/{Path(rows.paths[0]).name}"
    cache, out = f"{gcs_store.url}/cache", f"{gcs_store.url}/runs/all-remote"
    over = [o for o in tiny_overrides(corpus, 1) if not o.startswith(("dataset.manifest",
            "features.cache_dir"))]  # fmt: skip
    cfg = load_config(None, [*over, f"dataset.manifest={root / 'manifest.csv'}",
                             f"features.cache_dir={cache}"])  # fmt: skip
    train(cfg, out, progress=False)
    assert (URLPath(out) / "model.pt").is_file()
    entries = [p for p in URLPath(cache).rglob("*") if p.suffix != ".json"]
    assert len(entries) >= len(rows)  # one feature entry per recording, in the bucket


KILLED_UPLOAD = """
import os, sys
from vocalis.io import atomic_open
with atomic_open(sys.argv[1], "wb") as fh:
    fh.write(os.urandom(int(sys.argv[2])))
    print("uploading", flush=True)  # the with-block ends: the upload starts now
"""


@pytest.mark.parametrize("delay", [0.05, 0.3])
def test_a_kill_during_the_upload_shows_the_old_or_the_whole_new_object(object_store, delay):
    import time

    target = URLPath(f"{object_store.url}/ckpt/big-{delay}.pt")
    write_text(target, "old")
    size = 24 * 2**20
    env = {**os.environ, **object_store.env, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_UPLOAD, str(target), str(size)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "uploading"
        time.sleep(delay)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    data = target.read_bytes()
    assert data == b"old" or len(data) == size  # never a prefix of the new bytes


def test_storage_option_reaches_the_store_from_the_command_line(s3_store):
    from vocalis.training.runfolder import RunFolder

    run = f"{s3_store.url}/runs/opt"
    RunFolder(run).write_metrics(kind="eval", model="neural", test={"uar": 0.5, "accuracy": 0.5},
                                 n_rows={"test": 4}, classes=["a", "b"])  # fmt: skip
    wrong = "http://127.0.0.1:9"  # nothing listens there: only the option can make this work
    env = {**os.environ, **s3_store.env, "AWS_ENDPOINT_URL": wrong, "FSSPEC_S3_ENDPOINT_URL": wrong}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    table = f"{s3_store.url}/tables/cmp.csv"
    option = f"s3.endpoint_url={s3_store.endpoint}"
    cmd = [sys.executable, "-m", "vocalis", "--storage-option", option, "compare", run]
    done = subprocess.run([*cmd, "--out", table], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert URLPath(table).read_text().startswith("run,")


def test_an_unreachable_store_is_one_line_not_a_missing_run(s3_store, monkeypatch):
    import fsspec.config

    retries = {"retries": {"max_attempts": 1}}
    options = {"endpoint_url": "http://127.0.0.1:9", "config_kwargs": retries}
    monkeypatch.setitem(fsspec.config.conf, "s3", options)
    with pytest.raises(StorageError, match=r"model\.pt: the store did not answer"):
        URLPath("s3://vocalis-test/runs/x/model.pt").is_file()


def test_predict_and_embed_write_their_outputs_to_the_store(s3_store, corpus, tmp_path):
    import numpy as np

    from vocalis.cli.main import main
    from vocalis.inference.embed import embed

    run = f"{s3_store.url}/runs/predict-me"
    _train(corpus, run, epochs=1)
    preds = f"{s3_store.url}/out/preds.csv"
    for _ in range(2):  # the second run finds every row done and appends nothing
        assert main(["predict", str(corpus), "--checkpoint", run, "--out", preds,
                     "--no-speech-check"]) == 0  # fmt: skip
    lines = URLPath(preds).read_text().splitlines()
    assert len(lines) == 1 + 18 and lines[0].startswith("id,path,label")
    emb = f"{s3_store.url}/out/emb.npz"
    embed(run, manifest=str(corpus), out=emb, progress=False)
    local = tmp_path / "emb.npz"
    local.write_bytes(URLPath(emb).read_bytes())
    assert np.load(local)["embeddings"].shape[0] == 18


def test_overwrite_starts_a_url_run_over_and_another_config_is_refused(corpus):
    from vocalis.errors import ConfigError
    from vocalis.training import load_config, train

    out = "memory://overwrite-test/runs/x"
    _train(corpus, out, epochs=2)
    other = load_config(None, [*tiny_overrides(corpus, 1), "train.lr=0.02"])
    with pytest.raises(ConfigError, match=r"memory://overwrite-test/runs/x: this run folder was"):
        train(other, out, progress=False)
    result = train(other, out, overwrite=True, progress=False)
    assert [h["epoch"] for h in result.history] == [1]
    assert len((URLPath(out) / "history.csv").read_text().splitlines()) == 2
    assert "lr: 0.02" in (URLPath(out) / "config.yaml").read_text()
    assert "Resum" not in (URLPath(out) / "log.txt").read_text().split("Training tier1")[-1]
