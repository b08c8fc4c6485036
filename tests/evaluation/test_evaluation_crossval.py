"""The one cross-validation runner, driven by a fake estimator, and the neural estimator."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from vocalis.errors import ConfigError, DataError
from vocalis.evaluation.crossval import cross_validate, loso, plan_folds
from vocalis.metrics.predictions import concat_predictions, read_predictions
from vocalis.testing import ScriptedFitted

CLASSES = ["ang", "hap", "neu", "sad"]
SPEAKERS = ["03", "08", "09", "10"]


@dataclasses.dataclass
class FakeEstimator:
    """Implements the Estimator protocol; records every fold's split (checked by the tests).

    The runner records an exception raised inside a fold as a failed fold and goes
    on, so an ``assert`` inside ``fit`` could never fail a test: the splits are
    checked in the test body instead (:meth:`assert_no_leaks`).
    """

    manifest: str = ""
    normalization: str = "online"
    crash_on: str = "12"
    needs_validation: bool = True
    val_fraction: float = 0.2
    seed: int = 0
    fits: list = dataclasses.field(default_factory=list)
    splits: dict = dataclasses.field(default_factory=dict)

    @property
    def setup(self):
        return {"normalization": {"protocol": self.normalization}, "model": "fake"}

    def with_normalization(self, protocol):
        if protocol not in (None, "online", "speaker_norm"):
            raise ConfigError(f"normalization={protocol!r}")
        return dataclasses.replace(
            self, normalization=protocol or "online", fits=self.fits, splits=self.splits
        )

    def rows(self, manifest):
        return manifest, manifest

    def prepare(self, rows):
        pass

    def fit(self, rows, train, val, run_dir):
        spk = np.array(rows.speakers)
        name = Path(run_dir).name
        self.fits.append((name, set(spk[train]), set(spk[val]), train, val))
        self.splits[name] = (spk, np.asarray(train), np.asarray(val), np.array([], int))
        if self.crash_on in set(spk) and self.crash_on not in set(spk[train]) | set(spk[val]):
            raise RuntimeError(f"simulated crash on speaker {self.crash_on}")
        out = Path(run_dir)
        out.mkdir(parents=True, exist_ok=True)
        from vocalis.training.runfolder import RunFolder

        RunFolder(out).write_metrics(
            kind="train", model="neural", best_epoch=3, n_rows={"train": len(train)},
            details={"norm": self.normalization},
        )  # fmt: skip
        with open(out / "history.csv", "w") as fh:
            fh.write("epoch,train_loss,train_acc,val_loss,val_acc,val_uar,lr\n")
            for e in range(1, 4):
                fh.write(f"{e},{1.5 / e},{0.4 + 0.1 * e},{1.6 / e},{0.3 + 0.1 * e},0.5,0.001\n")
        with open(out.parent / "calls.txt", "a") as fh:
            fh.write(out.name + "\n")

        def tested(index):
            self.splits[name] = (*self.splits[name][:3], index)

        return ScriptedFitted(tuple(CLASSES), {"best_error": 0.4, "best_epoch": 3}, tested)

    def assert_no_leaks(self, rows: int | list[int], speaker_independent: bool = True) -> None:
        """No row in two parts of a fold, ``rows`` (all of ``range(rows)``) tested once each,
        no test speaker trained on."""
        assert self.splits, "the estimator was never fit"
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
        expected = list(range(rows)) if isinstance(rows, int) else sorted(rows)
        assert sorted(tested) == expected  # each row tested by exactly one fold


def test_the_leak_check_catches_a_leak():
    """The leak check itself fails on leaking splits (it is not a no-op)."""
    spk = np.array(["a", "a", "b", "b"])
    clean = (spk, np.array([0]), np.array([1]), np.array([2, 3]))
    leaks = {
        "test speaker in training": (spk, np.array([3]), np.array([]), np.array([0, 1, 2])),
        "a row in val and test": (spk, np.array([2]), np.array([0]), np.array([0, 1])),
        "a row in train and test": (spk, np.array([2, 0]), np.array([]), np.array([0, 1])),
    }
    for message, leak in leaks.items():
        est = FakeEstimator()
        est.splits.update(fold_0=clean, fold_1=leak)
        with pytest.raises(AssertionError, match=message):
            est.assert_no_leaks(4)
    est.splits.update(fold_0=clean, fold_1=(spk, np.array([2]), np.array([3]), np.array([0])))
    with pytest.raises(AssertionError):  # row 1 is never tested
        est.assert_no_leaks(4)
    est.splits["fold_1"] = (spk, np.array([2]), np.array([3]), np.array([0, 1]))
    est.assert_no_leaks(4)


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
    est = FakeEstimator(str(m))
    t0 = time.perf_counter()
    cv = loso(est, out)
    elapsed = time.perf_counter() - t0
    assert len(est.fits) == 4
    est.assert_no_leaks(48)
    assert sorted(calls(out)) == [f"speaker_{s}" for s in SPEAKERS]
    for s in SPEAKERS:
        assert (out / f"speaker_{s}" / "predictions.csv").is_file()
        fold = json.loads((out / f"speaker_{s}" / "metrics.json").read_text())
        assert fold["details"]["norm"] == "online"  # the fit's own metrics are kept
        assert fold["best_epoch"] == 3 and fold["fold"] == f"speaker_{s}"
        assert fold["details"]["test_groups"] == [s] and fold["n_rows"]["test"] == 12
        assert fold["test"]["uar"] == cv["folds"][f"speaker_{s}"]["uar"]
    tr = json.loads((out / "training_results.json").read_text())
    assert set(tr) == {f"speaker_{s}" for s in SPEAKERS}
    assert tr["speaker_03"]["status"] == "success"
    assert tr["speaker_03"]["best_error"] == pytest.approx(0.4)
    assert tr["speaker_03"]["best_epoch"] == 3
    # fold durations in seconds (rounded to 0.01 s), not timestamps: they fit in the call
    assert sum(tr[f"speaker_{s}"]["seconds"] for s in SPEAKERS) <= elapsed + 0.005 * len(SPEAKERS)
    assert (
        tr["speaker_03"]["n_train"] + tr["speaker_03"]["n_val"] == 36
        and tr["speaker_03"]["n_test"] == 12
    )
    on_disk = json.loads((out / "cv_results.json").read_text())
    assert on_disk["pooled"] == cv["pooled"]
    # pooled = metrics of the concatenated fold predictions, not the mean of folds
    parts = [read_predictions(out / f"speaker_{s}" / "predictions.csv") for s in SPEAKERS]
    assert cv["pooled"]["uar"] == pytest.approx(concat_predictions(parts).metrics()["uar"])
    assert cv["pooled"]["n"] == 48
    # every third id is predicted as the next class: 16 of 48 wrong
    assert cv["pooled"]["accuracy"] == pytest.approx(32 / 48)
    fold_uar = [cv["folds"][f"speaker_{s}"]["uar"] for s in SPEAKERS]
    assert cv["mean"]["uar"] == pytest.approx(np.mean(fold_uar))
    assert cv["std"]["uar"] == pytest.approx(np.std(fold_uar, ddof=1))
    assert cv["normalization"]["protocol"] == "online" and cv["model"] == "fake"
    assert cv["protocol"] == "loso" and not cv["speaker_dependent"]
    assert cv["validation"] == {"protocol": "stratified", "fraction": 0.2, "seed": 0}
    assert read_predictions(out / "predictions.csv").metrics()["uar"] == pytest.approx(
        cv["pooled"]["uar"]
    )
    # a model with one head: the keys of cv_results.json are those of before per-head
    # sections existed, and no fold writes a per-head record
    assert list(on_disk) == [
        "protocol", "group", "n_folds", "normalization", "speaker_dependent", "validation",
        "manifest", "model", "fold_names", "n_finished", "failed", "pooled", "mean", "std",
        "folds", "test_rows", "n_skipped", "seconds", "extract_seconds", "backend",
        "wall_seconds_total",
    ]  # fmt: skip
    assert not list(out.glob("*/head_outputs.npz")) and not list(out.glob("**/predictions_heads*"))
    assert "heads" not in json.loads((out / "speaker_03" / "metrics.json").read_text())


def test_rerun_skips_finished_and_single_speaker(tmp_path):
    m = make_manifest(tmp_path)
    out = tmp_path / "cv"
    est = FakeEstimator(str(m))
    loso(est, out, speakers=["08"])
    assert calls(out) == ["speaker_08"]
    cv = loso(est, out)
    assert sorted(calls(out)) == ["speaker_03", "speaker_08", "speaker_09", "speaker_10"]
    assert cv["n_finished"] == 4
    loso(est, out)  # nothing left to do
    assert len(calls(out)) == 4
    loso(est, out, speakers=["09"], overwrite=True)
    assert calls(out)[-1] == "speaker_09" and len(calls(out)) == 5
    with pytest.raises(DataError, match="not in") as err:
        loso(est, out, speakers=["77"])
    assert "available: speakers 03, 08, 09, 10" in str(err.value)
    loso(est, out, speaker="10", overwrite=True)  # one speaker, as a plain string
    assert calls(out)[-1] == "speaker_10" and len(calls(out)) == 6
    with pytest.raises(ConfigError, match="not both"):
        loso(est, out, speaker="10", speakers=["09"])


def test_cv_fold_with_a_wrong_name_lists_the_fold_names(tmp_path):
    est = FakeEstimator(str(make_manifest(tmp_path)))
    out = tmp_path / "gkf"
    with pytest.raises(DataError) as err:
        cross_validate(est, out, "group-kfold", folds=2, only=["fold_9"])
    message = str(err.value)
    assert "fold(s) fold_9 not in this group-kfold" in message
    assert message.endswith("available: folds fold_0, fold_1")
    with pytest.raises(DataError, match="available: folds fold_0, fold_1"):
        cross_validate(est, out, "group-kfold", folds=2, only=["03"])  # a speaker is no fold
    cross_validate(est, out, "group-kfold", folds=2, only=["fold_1"])
    assert calls(out) == ["fold_1"]


def test_failed_fold_is_recorded_and_others_go_on(tmp_path):
    m = make_manifest(tmp_path, speakers=["03", "12", "15"])
    out = tmp_path / "cv"
    est = FakeEstimator(str(m))
    cv = loso(est, out)
    del est.splits["speaker_12"]  # crashed in fit, before its test rows were predicted
    est.assert_no_leaks([i for i in range(36) if i // 12 != 1])  # rows of 03 and 15
    tr = json.loads((out / "training_results.json").read_text())
    assert tr["speaker_12"]["status"] == "failed" and "simulated crash" in tr["speaker_12"]["error"]
    assert tr["speaker_03"]["status"] == tr["speaker_15"]["status"] == "success"
    assert "simulated crash" in (out / "speaker_12" / "error.txt").read_text()
    assert cv["n_finished"] == 2 and "speaker_12" in cv["failed"]
    assert cv["pooled"]["n"] == 24


def test_the_summary_names_an_error_that_fails_every_fold_once(tmp_path, capsys):
    from vocalis.cli.cv import print_summary

    class EveryFoldFails(FakeEstimator):
        def fit(self, rows, train, val, run_dir):
            raise ConfigError("train.x: got 1, expected 2")

    m = make_manifest(tmp_path, speakers=["03", "12", "15"])
    cv = loso(EveryFoldFails(str(m)), tmp_path / "cv")
    assert cv["n_finished"] == 0 and len(cv["failed"]) == 3
    print_summary(cv)
    failed = [line for line in capsys.readouterr().out.splitlines() if "FAILED" in line]
    assert failed == [
        "  folds speaker_03, speaker_12, speaker_15 FAILED: ConfigError: train.x: got 1, expected 2"
    ]


def test_loso_refuses_manifest_without_speakers(tmp_path):
    m = make_manifest(tmp_path, with_speaker=False)
    with pytest.raises(DataError, match="no 'speaker' column"):
        loso(FakeEstimator(str(m)), tmp_path / "cv")


def test_loso_refuses_a_recipe_without_manifest(tmp_path):
    with pytest.raises(ConfigError, match="--manifest"):
        loso(FakeEstimator(""), tmp_path / "cv")


def test_normalization_protocols_are_recorded_and_never_mixed(tmp_path):
    m = make_manifest(tmp_path, speakers=["03", "08"])
    est = FakeEstimator(str(m))
    cv = loso(est, tmp_path / "sn", normalization="speaker_norm")
    assert cv["normalization"]["protocol"] == "speaker_norm"
    stored = json.loads((tmp_path / "sn" / "speaker_03" / "metrics.json").read_text())
    assert stored["details"]["norm"] == "speaker_norm"  # the estimator fit under that protocol
    with pytest.raises(ConfigError, match="never mixed"):
        loso(est, tmp_path / "sn", normalization="online")
    with pytest.raises(ConfigError, match="normalization"):
        loso(est, tmp_path / "x", normalization="cmvn")


def _neural_config(manifest: Path, *extra: str):
    from vocalis.training import load_config

    return load_config(None, [f"dataset.manifest={manifest}", *extra])


def test_neural_estimator_protocols_and_label_map(tmp_path):
    from vocalis.data import read_manifest
    from vocalis.training.estimator import estimator_for

    m = make_manifest(tmp_path)
    est = estimator_for(_neural_config(m), normalization="speaker_norm")
    assert est.config.features.normalization == "speaker" and est.needs_validation
    assert est.setup["normalization"]["features.normalization"] == "speaker"
    assert estimator_for(_neural_config(m)).config.features.normalization == "global"
    with pytest.raises(ConfigError, match="normalization='cmvn'"):
        estimator_for(_neural_config(m), normalization="cmvn")
    lmap = tmp_path / "map.yaml"
    lmap.write_text("angry: [ang]\nhappy: [hap]\nneutral: [neu]\n")  # 'sad' is dropped
    est = estimator_for(_neural_config(m, f"dataset.label_map={lmap}", "dataset.unmapped=drop"))
    raw, labelled = est.rows(read_manifest(m))
    assert len(raw) == len(labelled) == 36 and raw.ids == labelled.ids
    assert set(raw.labels()) == {"ang", "hap", "neu"}  # the engine maps these itself
    assert set(labelled.labels()) == {"angry", "happy", "neutral"}  # folds stratify on these
    est = estimator_for(_neural_config(m, f"dataset.label_map={lmap}"))
    with pytest.raises(DataError, match="'sad' is not in"):
        est.rows(read_manifest(m))


def test_online_keeps_a_recipe_that_normalises_nothing_unnormalised(tmp_path):
    """The waveform of model=ssl: a global mean / variance of raw samples would rescale
    every clip and change what the pretrained encoder hears (its input level)."""
    from vocalis.training.estimator import estimator_for

    m = make_manifest(tmp_path)
    wave = _neural_config(m, "features=waveform", "model=ssl")
    assert wave.features.normalization == "none"
    est = estimator_for(wave)
    assert est.config.features.normalization == "none"
    assert est.setup["normalization"]["protocol"] == "online"
    assert "no feature statistics" in est.setup["normalization"]["description"]
    # an explicit per-speaker protocol is still applied as asked
    assert estimator_for(wave, normalization="speaker_norm").config.features.normalization == (
        "speaker"
    )
    # features with statistics still get the training rows' global ones
    assert estimator_for(_neural_config(m)).config.features.normalization == "global"


def test_group_kfold_and_stratified_warning(tmp_path):
    m = make_manifest(tmp_path)
    est = FakeEstimator(str(m))
    cv = cross_validate(est, tmp_path / "gkf", "group-kfold", folds=2)
    est.assert_no_leaks(48)
    assert cv["fold_names"] == ["fold_0", "fold_1"] and cv["pooled"]["n"] == 48
    from vocalis.data.splits import SpeakerDependentWarning

    est = FakeEstimator(str(m))
    with pytest.warns(SpeakerDependentWarning, match="speaker-dependent"):
        cv = cross_validate(est, tmp_path / "strat", "stratified", folds=3)
    est.assert_no_leaks(48, speaker_independent=False)  # rows still never leak
    assert cv["speaker_dependent"] and cv["pooled"]["n"] == 48
    with pytest.raises(ConfigError, match="did you mean 'loso'"):
        cross_validate(FakeEstimator(str(m)), tmp_path / "x", "losso")


def test_estimator_without_validation_gets_every_non_test_row(tmp_path):
    m = make_manifest(tmp_path)
    est = FakeEstimator(str(m), needs_validation=False)
    cv = loso(est, tmp_path / "cv")
    est.assert_no_leaks(48)
    assert all(len(val) == 0 and len(train) == 36 for *_, train, val in est.fits)
    assert cv["n_finished"] == 4
    with pytest.raises(ConfigError, match="speaker-independent"):
        cross_validate(est, tmp_path / "s", "stratified")


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
    plans = plan_folds(man, "loso", validation="none")
    assert all(len(p.val) == 0 and len(p.train) + len(p.test) == len(man) for p in plans)


@pytest.mark.slow
def test_parallel_folds_match_serial(tmp_path):
    m = make_manifest(tmp_path, speakers=["03", "08", "09"])
    serial = loso(FakeEstimator(str(m)), tmp_path / "s")
    par = loso(FakeEstimator(str(m)), tmp_path / "p", parallel=2)
    assert par["pooled"]["uar"] == serial["pooled"]["uar"]
    assert sorted(calls(tmp_path / "p")) == ["speaker_03", "speaker_08", "speaker_09"]
    assert all(
        v["status"] == "success"
        for v in json.loads((tmp_path / "p" / "training_results.json").read_text()).values()
    )


def test_neural_estimator_predicts_as_the_trainer_tests(tmp_path):
    """fit + predict_proba give the probabilities the trainer's own test step writes."""
    from vocalis.data import read_manifest
    from vocalis.training import train
    from vocalis.training.estimator import estimator_for

    m = make_tone_manifest(tmp_path)
    tiny = [
        "features.cache_dir=" + str(tmp_path / "cache"), "features.workers=1",
        "features.extractor.name=mfcc", "features.extractor.n_mfcc=13",
        "features.extractor.n_mels_mfcc=20", "model=tier1", "model.params.channels=[8]",
        "model.params.lstm_hidden=8", "model.params.lstm_layers=1",
        "model.params.pooling_hidden=8", "train.epochs=2", "train.batch_size=4",
        "train.warmup_epochs=0", "train.patience=0",
    ]  # fmt: skip
    rows = read_manifest(m)
    plan = plan_folds(rows, "loso", seed=0)[0]
    for protocol in ("online", "speaker_norm"):
        est = estimator_for(_neural_config(m, *tiny), normalization=protocol)
        fitted = est.fit(rows, plan.train, plan.val, tmp_path / protocol / "fit")
        proba = fitted.predict_proba(rows, plan.test)
        assert fitted.predict_heads(rows, plan.test) is None  # one head: nothing more
        train(
            est.config, tmp_path / protocol / "ref", manifest=rows, train_indices=plan.train,
            val_indices=plan.val, test_indices=plan.test, progress=False,
        )  # fmt: skip
        ref = read_predictions(tmp_path / protocol / "ref" / "predictions.csv")
        assert list(ref.classes) == list(fitted.classes)
        np.testing.assert_allclose(proba, ref.probs, atol=2e-6)
        assert fitted.info["best_epoch"] in (1, 2)


def make_tone_manifest(tmp_path: Path) -> Path:
    """3 speakers x 2 labels (a 300 vs a 900 Hz tone) x 3 takes of 0.3-0.5 s."""
    from vocalis.testing import synth_tone, write_wav

    path = tmp_path / "tones.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "id", "speaker"])
        for s, spk in enumerate(["s1", "s2", "s3"]):
            for label, f0 in (("low", 300.0), ("high", 900.0)):
                for k in range(3):
                    wav = synth_tone(f0 * (1 + 0.05 * s), 0.3 + 0.1 * k)
                    uid = f"{spk}_{label}_{k}"
                    w.writerow([write_wav(tmp_path / f"{uid}.wav", wav), label, uid, spk])
    return path


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
    from vocalis.training.estimator import NeuralFitted

    monkeypatch.setattr(cli, "COMMANDS", ("loso", "cv"))
    seen = []

    def spy_train(config, out_dir, **kwargs):
        from vocalis.training.runfolder import RunFolder

        seen.append(config)
        RunFolder(out_dir).write_metrics(kind="train", model="neural", best_epoch=2)
        with open(Path(out_dir).parent / "calls.txt", "a") as fh:
            fh.write(Path(out_dir).name + "\n")
        return vocalis.training.TrainResult(
            out_dir=Path(out_dir), best_epoch=2, best_metrics={"val_uar": 0.5},
            test_metrics=None, history=[], stopped_early=False, classes=tuple(CLASSES),
        )  # fmt: skip

    monkeypatch.setattr(vocalis.training, "train", spy_train)
    monkeypatch.setattr(
        NeuralFitted, "predict_proba", lambda self, rows, index: ScriptedFitted(
            tuple(CLASSES), {}).predict_proba(rows, index)
    )  # fmt: skip
    m = make_manifest(tmp_path, speakers=["03", "08"])
    out = tmp_path / "t1"
    argv = ["loso", "--manifest", str(m), "--model", "tier1", "--features", "mfcc",
            "--epochs", "2", "--out", str(out), "--speaker", "03", "train.lr=0.01"]  # fmt: skip
    assert cli.main(argv) == 0
    cfg = seen[0]
    assert cfg.dataset.manifest == str(m) and cfg.model.name == "tier1"
    assert cfg.features.extractor.name == "mfcc"
    assert cfg.train.epochs == 2 and cfg.train.lr == 0.01
    assert cfg.features.normalization == "global"  # online protocol
    assert "pooled" in capsys.readouterr().out
    assert calls(out) == ["speaker_03"]
    tr = json.loads((out / "training_results.json").read_text())
    assert (
        tr["speaker_03"]["best_error"] == pytest.approx(0.5) and tr["speaker_03"]["best_epoch"] == 2
    )
    argv = ["cv", "--manifest", str(m), "--protocol", "group-kfold", "--folds", "2",
            "--normalization", "speaker_norm", "--out", str(tmp_path / "gkf")]  # fmt: skip
    assert cli.main(argv) == 0
    assert seen[-1].features.normalization == "speaker"
    assert json.loads((tmp_path / "gkf" / "cv_results.json").read_text())["n_finished"] == 2
    (tmp_path / "ns").mkdir()
    m2 = make_manifest(tmp_path / "ns", with_speaker=False)
    assert cli.main(["loso", "--manifest", str(m2), "--out", str(tmp_path / "ns")]) == 1
    assert "no 'speaker' column" in capsys.readouterr().err
