"""The LOSO / CV runner, driven by a fake training function that writes predictions."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from vocalis.errors import ConfigError, DataError
from vocalis.evaluation.crossval import cross_validate, loso, plan_folds
from vocalis.evaluation.predictions import concat_predictions, read_predictions, write_predictions

CLASSES = ["ang", "hap", "neu", "sad"]
SPEAKERS = ["03", "08", "09", "10"]


@dataclasses.dataclass(frozen=True)
class FakeDataset:
    manifest: str = ""
    label_column: str = "label"
    val_fraction: float = 0.2
    seed: int | None = None
    label_map: dict | None = None
    unmapped: str = "error"


@dataclasses.dataclass(frozen=True)
class FakeFeatures:
    normalization: str = "global"
    extractor: dict = dataclasses.field(default_factory=lambda: {"name": "mfcc"})


@dataclasses.dataclass(frozen=True)
class FakeModel:
    name: str = "tier1"


@dataclasses.dataclass(frozen=True)
class FakeTrain:
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    dataset: FakeDataset = dataclasses.field(default_factory=FakeDataset)
    features: FakeFeatures = dataclasses.field(default_factory=FakeFeatures)
    model: FakeModel = dataclasses.field(default_factory=FakeModel)
    train: FakeTrain = dataclasses.field(default_factory=FakeTrain)


@dataclasses.dataclass
class FakeResult:
    run_dir: str
    best_epoch: int
    best_metrics: dict
    test_metrics: dict


def fake_train(config, out_dir, *, manifest, train_indices, val_indices, test_indices, overwrite):
    """Stands in for vocalis.training.train: writes the run folder (speaker 12 crashes)."""
    out = Path(out_dir)
    spk = np.array(manifest.speakers)
    if "12" in set(spk[test_indices]):
        raise RuntimeError("simulated crash on speaker 12")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in test_indices:
        r = manifest[int(i)]
        k = CLASSES.index(r["label"])
        pred = CLASSES[(k + 1) % 4] if int(r["id"][1:]) % 3 == 0 else r["label"]
        probs = {f"p_{c}": (0.7 if c == pred else 0.1) for c in CLASSES}
        rows.append({"path": r["path"], "speaker": r["speaker"], "true_label": r["label"],
                     "pred_label": pred, **probs})  # fmt: skip
    write_predictions(out / "predictions.csv", rows, classes=CLASSES)
    with open(out / "history.csv", "w") as fh:
        fh.write("epoch,train_loss,train_acc,val_loss,val_acc,val_uar,lr\n")
        for e in range(1, 4):
            fh.write(
                f"{e},{1.5 / e},{0.4 + 0.1 * e},{1.6 / e},{0.3 + 0.1 * e},{0.3 + 0.1 * e},0.001\n"
            )
    (out / "metrics.json").write_text(
        json.dumps({"best_epoch": 3, "norm": config.features.normalization})
    )
    calls = out.parent / "calls.txt"
    with open(calls, "a") as fh:
        fh.write(out.name + "\n")
    return FakeResult(str(out), 3, {"uar": 0.6, "accuracy": 0.6}, {})


class RecordingTrain:
    """``fake_train`` that keeps every fold's split, for leak checks outside the runner.

    The runner records an exception raised inside a fold as a failed fold and goes
    on, so an ``assert`` inside the training function could never fail a test.
    The splits are checked in the test body instead (:meth:`assert_no_leaks`).
    """

    def __init__(self) -> None:
        self.splits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def __call__(self, config, out_dir, *, manifest, train_indices, val_indices, test_indices,
                 overwrite):  # fmt: skip
        parts = [np.asarray(i, dtype=int) for i in (train_indices, val_indices, test_indices)]
        self.splits[Path(out_dir).name] = (np.array(manifest.speakers), *parts)
        return fake_train(config, out_dir, manifest=manifest, train_indices=train_indices,
                          val_indices=val_indices, test_indices=test_indices,
                          overwrite=overwrite)  # fmt: skip

    def assert_no_leaks(self, n_rows: int, speaker_independent: bool = True) -> None:
        """No row in two parts of a fold, every row tested once, no test speaker trained on."""
        assert self.splits, "the training function was never called"
        tested = []
        for name, (spk, *parts) in self.splits.items():
            train, val, test = (np.asarray(p, dtype=int) for p in parts)
            assert len(test) and len(train), name
            assert not np.intersect1d(train, val).size, f"{name}: a row in train and val"
            assert not np.intersect1d(train, test).size, f"{name}: a row in train and test"
            assert not np.intersect1d(val, test).size, f"{name}: a row in val and test"
            if speaker_independent:
                seen = set(spk[train]) | set(spk[val])
                assert not seen & set(spk[test]), f"{name}: test speaker in training"
            tested.extend(test.tolist())
        assert sorted(tested) == list(range(n_rows))  # each row tested by exactly one fold


def test_recording_train_catches_a_leak():
    """The leak check itself fails on leaking splits (it is not a no-op)."""
    spk = np.array(["a", "a", "b", "b"])
    clean = (spk, np.array([0]), np.array([1]), np.array([2, 3]))
    leaks = {
        "test speaker in training": (spk, np.array([3]), np.array([]), np.array([0, 1, 2])),
        "a row in val and test": (spk, np.array([2]), np.array([0]), np.array([0, 1])),
        "a row in train and test": (spk, np.array([2, 0]), np.array([]), np.array([0, 1])),
    }
    for message, leak in leaks.items():
        rec = RecordingTrain()
        rec.splits = {"fold_0": clean, "fold_1": leak}
        with pytest.raises(AssertionError, match=message):
            rec.assert_no_leaks(4)
    rec.splits = {"fold_0": clean, "fold_1": (spk, np.array([2]), np.array([3]), np.array([0]))}
    with pytest.raises(AssertionError):  # row 1 is never tested
        rec.assert_no_leaks(4)
    rec.splits = {"fold_0": clean, "fold_1": (spk, np.array([2]), np.array([3]), np.array([0, 1]))}
    rec.assert_no_leaks(4)


def make_manifest(tmp_path: Path, speakers=SPEAKERS, with_speaker=True) -> Path:
    path = tmp_path / "m.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "id", "speaker"] if with_speaker else ["path", "label", "id"])
        n = 0
        for s in speakers:
            for rep in range(3):
                for c in CLASSES:
                    row = [f"/audio/{s}_{c}_{rep}.wav", c, f"u{n}"]
                    w.writerow([*row, s] if with_speaker else row)
                    n += 1
    return path


def calls(out: Path) -> list[str]:
    f = out / "calls.txt"
    return f.read_text().split() if f.exists() else []


def test_loso_layout_and_pooled_metrics(tmp_path):
    m = make_manifest(tmp_path)
    out = tmp_path / "cv"
    rec = RecordingTrain()
    cv = loso(FakeConfig(dataset=FakeDataset(str(m))), out, train_fn=rec)
    rec.assert_no_leaks(48)
    assert sorted(calls(out)) == [f"speaker_{s}" for s in SPEAKERS]
    for s in SPEAKERS:
        assert (out / f"speaker_{s}" / "predictions.csv").is_file()
    tr = json.loads((out / "training_results.json").read_text())
    assert set(tr) == set(SPEAKERS)
    assert tr["03"]["status"] == "success"
    assert tr["03"]["best_error"] == pytest.approx(0.4)
    assert tr["03"]["best_epoch"] == 3 and tr["03"]["seconds"] >= 0
    on_disk = json.loads((out / "cv_results.json").read_text())
    assert on_disk["pooled"] == cv["pooled"]
    # pooled = metrics of the concatenated fold predictions, not the mean of folds
    parts = [read_predictions(out / f"speaker_{s}" / "predictions.csv") for s in SPEAKERS]
    assert cv["pooled"]["uar"] == pytest.approx(concat_predictions(parts).metrics()["uar"])
    assert cv["pooled"]["n"] == 48
    fold_uar = [cv["folds"][f"speaker_{s}"]["uar"] for s in SPEAKERS]
    assert cv["mean"]["uar"] == pytest.approx(np.mean(fold_uar))
    assert cv["std"]["uar"] == pytest.approx(np.std(fold_uar, ddof=1))
    assert cv["normalization"]["protocol"] == "online"
    assert cv["protocol"] == "loso" and not cv["speaker_dependent"]
    assert read_predictions(out / "predictions.csv").metrics()["uar"] == pytest.approx(
        cv["pooled"]["uar"]
    )


def test_rerun_skips_finished_and_single_speaker(tmp_path):
    m = make_manifest(tmp_path)
    out = tmp_path / "cv"
    cfg = FakeConfig(dataset=FakeDataset(str(m)))
    loso(cfg, out, speakers=["08"], train_fn=fake_train)
    assert calls(out) == ["speaker_08"]
    cv = loso(cfg, out, train_fn=fake_train)
    assert sorted(calls(out)) == ["speaker_03", "speaker_08", "speaker_09", "speaker_10"]
    assert cv["n_finished"] == 4
    loso(cfg, out, train_fn=fake_train)  # nothing left to do
    assert len(calls(out)) == 4
    with pytest.raises(DataError, match="not in"):
        loso(cfg, out, speakers=["77"], train_fn=fake_train)


def test_failed_fold_is_recorded_and_others_go_on(tmp_path):
    m = make_manifest(tmp_path, speakers=["03", "12", "15"])
    out = tmp_path / "cv"
    rec = RecordingTrain()
    cv = loso(FakeConfig(dataset=FakeDataset(str(m))), out, train_fn=rec)
    rec.assert_no_leaks(36)  # speaker 12's fold was planned without a leak, then crashed
    tr = json.loads((out / "training_results.json").read_text())
    assert tr["12"]["status"] == "failed" and "simulated crash" in tr["12"]["error"]
    assert tr["03"]["status"] == tr["15"]["status"] == "success"
    assert "simulated crash" in (out / "speaker_12" / "error.txt").read_text()
    assert cv["n_finished"] == 2 and "12" in cv["failed"]
    assert cv["pooled"]["n"] == 24


def test_loso_refuses_manifest_without_speakers(tmp_path):
    m = make_manifest(tmp_path, with_speaker=False)
    with pytest.raises(DataError, match="no 'speaker' column"):
        loso(FakeConfig(dataset=FakeDataset(str(m))), tmp_path / "cv", train_fn=fake_train)


def test_normalization_protocols_are_recorded_and_never_mixed(tmp_path):
    m = make_manifest(tmp_path, speakers=["03", "08"])
    cfg = FakeConfig(dataset=FakeDataset(str(m)))
    cv = loso(cfg, tmp_path / "sn", normalization="speaker_norm", train_fn=fake_train)
    assert cv["normalization"]["protocol"] == "speaker_norm"
    assert cv["normalization"]["features.normalization"] == "speaker"
    stored = json.loads((tmp_path / "sn" / "speaker_03" / "metrics.json").read_text())
    assert stored["norm"] == "speaker"  # the engine saw the per-speaker protocol
    with pytest.raises(ConfigError, match="never mixed"):
        loso(cfg, tmp_path / "sn", normalization="online", train_fn=fake_train)
    with pytest.raises(ConfigError, match="normalization"):
        loso(cfg, tmp_path / "x", normalization="cmvn", train_fn=fake_train)


def test_label_map_drops_rows_before_indexing(tmp_path):
    m = make_manifest(tmp_path)
    lmap = {"angry": ["ang"], "happy": ["hap"], "neutral": ["neu"]}  # 'sad' is dropped
    cfg = FakeConfig(dataset=FakeDataset(str(m), label_map=lmap, unmapped="drop"))
    rec = RecordingTrain()
    cv = loso(cfg, tmp_path / "cv", train_fn=rec)
    rec.assert_no_leaks(36)  # indices into the mapped manifest, not the original rows
    assert cv["pooled"]["n"] == 36
    pred = read_predictions(tmp_path / "cv" / "predictions.csv")
    assert "sad" not in set(pred.true_label)
    cfg = FakeConfig(dataset=FakeDataset(str(m), label_map=lmap, unmapped="error"))
    with pytest.raises(DataError, match="'sad' is not in"):
        loso(cfg, tmp_path / "cv2", train_fn=fake_train)


def test_group_kfold_and_stratified_warning(tmp_path):
    m = make_manifest(tmp_path)
    cfg = FakeConfig(dataset=FakeDataset(str(m)))
    rec = RecordingTrain()
    cv = cross_validate(cfg, tmp_path / "gkf", "group-kfold", folds=2, train_fn=rec)
    rec.assert_no_leaks(48)
    assert cv["fold_names"] == ["fold_0", "fold_1"] and cv["pooled"]["n"] == 48
    from vocalis.data.splits import SpeakerDependentWarning

    cfg99 = FakeConfig(dataset=FakeDataset(str(m), seed=99))
    rec = RecordingTrain()
    with pytest.warns(SpeakerDependentWarning, match="speaker-dependent"):
        cv = cross_validate(cfg99, tmp_path / "strat", "stratified", folds=3, train_fn=rec)
    rec.assert_no_leaks(48, speaker_independent=False)  # rows still never leak
    assert cv["speaker_dependent"] and cv["pooled"]["n"] == 48
    with pytest.raises(ConfigError, match="did you mean 'loso'"):
        cross_validate(cfg, tmp_path / "x", "losso", train_fn=fake_train)


def test_plan_folds_validation_choices(tmp_path):
    from vocalis.data import read_manifest

    man = read_manifest(make_manifest(tmp_path, speakers=["a", "b", "c", "d", "e", "f"]))
    spk = np.array(man.speakers)
    labels = np.array(man.labels())
    plans = plan_folds(man, "loso", validation="stratified", val_fraction=0.2, seed=0)
    assert [p.name for p in plans] == [f"speaker_{s}" for s in "abcdef"]
    for p in plans:
        assert set(spk[p.test]) == {p.test_groups[0]}
        assert len(np.intersect1d(p.train, p.val)) == 0
        assert len(p.train) + len(p.val) + len(p.test) == len(man)
        assert sorted(set(labels[p.val])) == CLASSES  # stratified: every class in val
    plans = plan_folds(man, "loso", validation="speaker", val_fraction=0.2, seed=0)
    for p in plans:
        assert not set(spk[p.val]) & set(spk[p.train])  # held-out training speakers
        assert p.test_groups[0] not in set(spk[p.val])


@pytest.mark.slow
def test_parallel_folds_match_serial(tmp_path):
    m = make_manifest(tmp_path, speakers=["03", "08", "09"])
    cfg = FakeConfig(dataset=FakeDataset(str(m)))
    serial = loso(cfg, tmp_path / "s", train_fn=fake_train)
    par = loso(cfg, tmp_path / "p", parallel=2, train_fn=fake_train)
    assert par["pooled"]["uar"] == serial["pooled"]["uar"]
    assert sorted(calls(tmp_path / "p")) == ["speaker_03", "speaker_08", "speaker_09"]
    assert all(
        v["status"] == "success"
        for v in json.loads((tmp_path / "p" / "training_results.json").read_text()).values()
    )


EMODB = Path(os.environ.get("VOCALIS_EMODB", "/work/shared/data/emodb")) / "wav"


@pytest.mark.emodb
@pytest.mark.skipif(not EMODB.is_dir(), reason=f"EmoDB not found at {EMODB}")
def test_emodb_loso_plan_is_speaker_independent():
    from vocalis.data import Manifest

    rows = [
        {"path": str(f), "label": f.name[5], "speaker": f.name[:2]}
        for f in sorted(EMODB.glob("*.wav"))
    ]
    man = Manifest(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plans = plan_folds(man, "loso", seed=0)
    assert len(plans) == 10
    assert sum(len(p.test) for p in plans) == 535
    spk = np.array(man.speakers)
    for p in plans:
        assert set(spk[p.train]).isdisjoint(spk[p.test])
        assert round(0.2 * (len(p.train) + len(p.val))) == len(p.val)


def test_cli_loso_and_cv_map_flags_to_overrides(tmp_path, monkeypatch, capsys):
    import vocalis.cli.main as cli
    import vocalis.training

    monkeypatch.setattr(cli, "COMMANDS", ("loso", "cv"))
    seen = []

    def spy_train(config, out_dir, **kwargs):
        seen.append(config)
        return fake_train(FakeConfig(dataset=FakeDataset(seed=0)), out_dir, **kwargs)

    monkeypatch.setattr(vocalis.training, "train", spy_train)
    m = make_manifest(tmp_path, speakers=["03", "08"])
    out = tmp_path / "t1"
    argv = ["loso", "--manifest", str(m), "--model", "tier1", "--features", "mfcc",
            "--epochs", "2", "--out", str(out), "--speaker", "03", "train.lr=0.01"]  # fmt: skip
    assert cli.main(argv) == 0
    cfg = seen[0]
    assert cfg.dataset.manifest == str(m) and cfg.model.name == "tier1"
    assert cfg.features.extractor["name"] == "mfcc"
    assert cfg.train.epochs == 2 and cfg.train.lr == 0.01
    assert cfg.features.normalization == "global"  # online protocol
    assert "pooled" in capsys.readouterr().out
    assert calls(out) == ["speaker_03"]
    argv = ["cv", "--manifest", str(m), "--protocol", "group-kfold", "--folds", "2",
            "--normalization", "speaker_norm", "--out", str(tmp_path / "gkf")]  # fmt: skip
    assert cli.main(argv) == 0
    assert seen[-1].features.normalization == "speaker"
    assert json.loads((tmp_path / "gkf" / "cv_results.json").read_text())["n_finished"] == 2
    (tmp_path / "ns").mkdir()
    m2 = make_manifest(tmp_path / "ns", with_speaker=False)
    assert cli.main(["loso", "--manifest", str(m2), "--out", str(tmp_path / "ns")]) == 1
    assert "no 'speaker' column" in capsys.readouterr().err
