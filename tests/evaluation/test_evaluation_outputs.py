"""Predictions tables, plots, evaluate, compare and the HTML report on fake run folders."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from vocalis.errors import DataError
from vocalis.metrics.predictions import (
    Predictions,
    concat_predictions,
    error_analysis,
    read_predictions,
    write_predictions,
)
from vocalis.training.runfolder import RunFolder

CLASSES = ["ang", "hap", "neu"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_rows(n=30, seed=0, speaker="03"):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        t = CLASSES[i % 3]
        p = rng.dirichlet(np.ones(3) * 0.7)
        pred = CLASSES[int(np.argmax(p))]
        probs = {f"p_{c}": float(p[j]) for j, c in enumerate(CLASSES)}
        rows.append({"path": f"/a/{speaker}_{i}.wav", "speaker": speaker, "true_label": t,
                     "pred_label": pred, **probs})  # fmt: skip
    return rows


def test_predictions_roundtrip_and_schema(tmp_path):
    rows = fake_rows()
    path = write_predictions(tmp_path / "predictions.csv", rows, classes=CLASSES)
    header = Path(path).read_text().splitlines()[0]
    assert header == "path,speaker,true_label,pred_label,correct,confidence,p_ang,p_hap,p_neu"
    pred = read_predictions(path)
    assert pred.classes == CLASSES and len(pred) == 30
    np.testing.assert_allclose(pred.probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(pred.confidence, pred.probs.max(1), atol=1e-6)
    assert pred.correct.tolist() == [r["true_label"] == r["pred_label"] for r in rows]
    m = pred.metrics()
    assert m["ece"] is not None and m["n"] == 30
    with pytest.raises(DataError, match="does not exist"):
        read_predictions(tmp_path / "nope.csv")
    (tmp_path / "bad.csv").write_text("file,label\nx,y\n")
    with pytest.raises(DataError, match="missing column"):
        read_predictions(tmp_path / "bad.csv")


def test_error_analysis_most_confident_first():
    pred = Predictions.from_rows(fake_rows(60))
    errors = error_analysis(pred, top=5)
    assert len(errors) == 5
    conf = [e["confidence"] for e in errors]
    assert conf == sorted(conf, reverse=True)
    wrong_conf = pred.confidence[~pred.correct]
    assert conf[0] == pytest.approx(wrong_conf.max())
    assert all(e["true_label"] != e["pred_label"] for e in errors)
    assert all(e["p_true"] < e["confidence"] for e in errors)


def test_concat_aligns_class_columns():
    a = Predictions.from_rows(fake_rows(6, speaker="03"))
    rows = [{"path": "x.wav", "speaker": "08", "true_label": "sad", "pred_label": "sad",
             "p_sad": 0.9, "p_ang": 0.1}]  # fmt: skip
    b = Predictions.from_rows(rows)
    c = concat_predictions([a, b])
    assert c.classes == [*CLASSES, "sad"] and c.probs.shape == (7, 4)
    assert c.probs[6].tolist() == [0.1, 0.0, 0.0, 0.9]


def _is_png(path):
    data = Path(path).read_bytes()
    return data[:8] == PNG_MAGIC and len(data) > 2000


def test_plots_write_pngs(tmp_path):
    from vocalis.evaluation import plots
    from vocalis.metrics.classification import classification_metrics

    pred = Predictions.from_rows(fake_rows())
    m = classification_metrics(pred.true_label, pred.pred_label, pred.probs, CLASSES)
    paths = [
        plots.plot_confusion(m["confusion"], CLASSES, tmp_path / "c.png"),
        plots.plot_confusion(m["confusion"], CLASSES, tmp_path / "cn.png", normalized=True),
        plots.plot_per_class(m["per_class"], tmp_path / "pc.png"),
        plots.plot_reliability(pred.confidence, pred.correct, tmp_path / "rel.png"),
        plots.plot_fold_uar({"03": 0.7, "08": 0.5}, tmp_path / "f.png", pooled=0.6),
    ]
    hist = tmp_path / "history.csv"
    hist.write_text(
        "epoch,train_loss,train_acc,val_loss,val_acc,val_uar,lr\n1,1.2,0.4,1.3,0.3,0.3,0.001\n2,0.9,0.6,1.1,0.5,0.45,0.0005\n"
    )
    paths.append(plots.plot_training_curves(hist, tmp_path / "curves.png"))
    assert all(_is_png(p) for p in paths)
    assert not list(tmp_path.glob(".*.part"))  # atomic: no leftovers
    with pytest.raises(DataError, match="does not match"):
        plots.plot_confusion([[1, 2], [3, 4]], CLASSES, tmp_path / "x.png")


def _anger_sadness(tmp_path):
    """The bundled clips of the tiny run's two classes (4 rows, 2 speakers)."""
    from vocalis.testing import sample_manifest

    rows = sample_manifest()
    keep = [i for i, lab in enumerate(rows.labels()) if lab in ("anger", "sadness")]
    return rows.select(keep)


def test_evaluate_scores_a_model_and_writes_the_record(tmp_path):
    from vocalis.evaluation import evaluate
    from vocalis.inference import Predictor
    from vocalis.testing import tiny_run

    run = tiny_run()
    rows = _anger_sadness(tmp_path)
    m = evaluate(run / "model", rows, tmp_path / "out", progress=False)
    out = tmp_path / "out"
    names = ["metrics.json", "predictions.csv", "misclassified.csv", "errors.csv"] + [
        f"plots/{p}.png" for p in ("confusion", "confusion_normalized", "per_class", "reliability")
    ]
    for name in names:
        assert (out / name).is_file(), name
    # the numbers are the Predictor's on the same clips
    preds = Predictor.from_checkpoint(run).predict_many(rows.paths, progress=False)
    expected = np.mean([p.label == t for p, t in zip(preds, rows.labels(), strict=True)])
    assert m["n"] == 4 and m["n_failed"] == 0 and m["accuracy"] == pytest.approx(expected)
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["schema"] == 1 and stored["kind"] == "eval" and stored["model"] == "neural"
    assert stored["test"]["uar"] == pytest.approx(m["uar"]) and stored["n_rows"]["test"] == 4
    assert stored["details"]["checkpoint"] == str(run / "model.pt")
    table = read_predictions(out / "predictions.csv")
    assert table.metrics()["uar"] == pytest.approx(m["uar"])
    # predictions.csv keeps 6 significant digits: a probability is off by up to 5e-7
    assert [p.probs["anger"] for p in preds] == pytest.approx(table.probs[:, 0].tolist(), abs=1e-6)
    m2 = evaluate(
        run, rows, tmp_path / "o2", visualize=False, save_predictions=False, progress=False
    )
    assert not (tmp_path / "o2" / "plots").exists() and (tmp_path / "o2" / "metrics.json").is_file()
    assert not (tmp_path / "o2" / "predictions.csv").exists()
    assert m2["uar"] == pytest.approx(m["uar"])
    assert "out_dir" not in evaluate(run, rows, progress=False)  # no out: nothing written


def test_eval_lists_unscorable_rows_in_errors_csv_and_misclassified_apart(tmp_path, capsys):
    """errors.csv = rows that could not be scored (the per-run summary of every verb);
    the most confident errors are misclassified.csv; counts in metrics.json."""
    import csv

    from vocalis.cli.main import main
    from vocalis.testing import tiny_run

    rows = _anger_sadness(tmp_path)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00")
    with open(tmp_path / "m.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "path", "label", "speaker"])
        for i, row in enumerate(zip(rows.paths, rows.labels(), rows.speakers, strict=True)):
            w.writerow([f"r{i}", *row])
        w.writerow(["bad", str(broken), "anger", rows.speakers[0]])
    out = tmp_path / "o"
    argv = ["eval", str(tiny_run()), "--manifest", str(tmp_path / "m.csv"), "--no-progress"]
    assert main([*argv, "--out", str(out), "--max-failures", "1"]) == 0
    assert f"1 of 5 row(s) skipped; listed in {out / 'errors.csv'}" in capsys.readouterr().err
    with open(out / "errors.csv", newline="") as fh:
        errors = list(csv.DictReader(fh))
    assert [(e["id"], e["path"], e["stage"]) for e in errors] == [("bad", str(broken), "predict")]
    assert errors[0]["reason"]
    with open(out / "misclassified.csv", newline="") as fh:
        assert set(next(csv.reader(fh))) >= {"path", "true_label", "pred_label"}
    details = json.loads((out / "metrics.json").read_text())["details"]
    assert details["rows"]["n_rows"] == 5 and details["rows"]["n_used"] == 4
    assert sum(details["rows"]["n_skipped"].values()) == 1
    assert details["files"]["misclassified"].endswith("misclassified.csv")
    assert main([*argv, "--out", str(tmp_path / "o2"), "--max-failures", "0"]) == 1
    err = capsys.readouterr().err
    assert "1 of 5 rows failed, more than max_failures=0" in err and "Traceback" not in err


def test_evaluate_refuses_labels_the_model_never_saw(tmp_path):
    from vocalis.evaluation import evaluate
    from vocalis.testing import sample_manifest_path, tiny_run

    with pytest.raises(DataError, match=r"never seen in training \(known classes: anger, sadness"):
        evaluate(tiny_run(), sample_manifest_path(), progress=False)


def test_cli_eval_and_its_alias_test(tmp_path, capsys):
    from vocalis.cli.main import main
    from vocalis.testing import tiny_run

    csv_path = tmp_path / "m.csv"
    _anger_sadness(tmp_path).write(csv_path)
    run = str(tiny_run())
    assert main(["eval", run, "--manifest", str(csv_path), "--no-progress"]) == 0
    first = capsys.readouterr().out
    assert "UAR" in first and "anger" in first
    out = tmp_path / "tst"
    assert main(["test", run, "--manifest", str(csv_path), "--out", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith(first)  # the same command, same numbers
    assert (out / "plots" / "confusion.png").is_file() and (out / "metrics.json").is_file()
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "alias: test" in capsys.readouterr().out


def make_cv_folder(tmp_path: Path) -> Path:
    """A LOSO folder as the runner writes it, with a fake estimator (fold 12 fails)."""
    from test_evaluation_crossval import FakeEstimator, make_manifest

    from vocalis.evaluation.crossval import loso

    m = make_manifest(tmp_path, speakers=["03", "08", "12"])
    out = tmp_path / "cv"
    loso(FakeEstimator(str(m)), out)
    return out


def make_run_folder(tmp_path: Path, name="run1", seed=0) -> Path:
    d = tmp_path / name
    d.mkdir()
    write_predictions(d / "predictions.csv", fake_rows(30, seed))
    RunFolder(d).write_metrics(
        kind="train", model="neural", best_epoch=4, epochs_run=2, seconds=12.5
    )
    (d / "config.yaml").write_text(
        "dataset: {val_protocol: speaker}\nmodel: {name: ecapa}\n"
        "features: {extractor: {name: fbank}}\n"
    )
    (d / "history.csv").write_text("epoch,train_loss,val_uar\n1,1.0,0.3\n2,0.8,0.4\n")
    return d


def test_report_on_cv_folder_embeds_images_and_tables(tmp_path):
    from vocalis.evaluation.report import report

    cv = make_cv_folder(tmp_path)
    path = report(cv)
    html = Path(path).read_text()
    assert path == str(cv / "report.html")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    # confusion x2, per-class, fold bars, 2 training curves, reliability
    assert len(images) == 7
    assert all(base64.b64decode(i)[:8] == PNG_MAGIC for i in images)
    assert "<h2>Folds</h2>" in html and "speaker_08" in html
    assert "Failed folds" in html and "simulated crash" in html  # speaker 12 fails
    assert "Most confident errors" in html and "<table>" in html
    assert "Calibration" in html and "Training curves" in html
    assert 'src="plots/' not in html and "file://" not in html  # self-contained


def test_report_on_run_folder(tmp_path):
    from vocalis.evaluation.report import report

    d = make_run_folder(tmp_path)
    html = Path(report(d, tmp_path / "r.html")).read_text()
    assert html.count("data:image/png;base64,") == 5  # confusion x2, per-class, curves, reliability
    assert "ecapa" in html and "Resolved config" in html
    with pytest.raises(DataError, match="neither a run folder"):
        report(tmp_path / "empty_dir_that_is_not_a_run")


def test_compare_runs_and_cv(tmp_path):
    from vocalis.evaluation.compare import compare, to_csv, to_markdown, write_table

    cv = make_cv_folder(tmp_path)
    r1 = make_run_folder(tmp_path, "run1", seed=0)
    r2 = make_run_folder(tmp_path, "run2", seed=5)
    rows = compare([r1, cv, r2, tmp_path / "missing"])
    assert len(rows) == 3
    uars = [r["uar"] for r in rows]
    assert uars == sorted(uars, reverse=True)
    by = {Path(r["run"]).name: r for r in rows}
    assert by["cv"]["kind"] == "cv" and by["cv"]["protocol"] == "loso (online)"
    assert by["cv"]["folds"] == "2/3 (partial)" and by["cv"]["epochs"] == 3.0  # speaker 12 failed
    assert by["cv"]["scored_on"] == "test" and by["cv"]["speaker_dependent"] is False
    assert by["run1"]["model"] == "ecapa" and by["run1"]["features"] == "fbank"
    assert by["run1"]["epochs"] == 2.0 and by["run1"]["seconds"] == 12.5
    assert by["run1"]["uar"] == pytest.approx(
        read_predictions(r1 / "predictions.csv").metrics()["uar"]
    )
    md = to_markdown(rows)
    assert md.count("\n") == 4 and md.startswith("| run | kind |")
    assert to_csv(rows).splitlines()[0].startswith("run,kind,model")
    write_table(rows, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().count("\n") == 4
    with pytest.raises(DataError, match=r"\.md or \.csv"):
        write_table(rows, tmp_path / "t.xlsx")
    with pytest.raises(DataError, match="none of"):
        compare([tmp_path / "missing"])


def test_cli_compare_report(tmp_path, monkeypatch, capsys):
    import vocalis.cli.main as cli
    from vocalis.cli.main import main

    # only this area's verbs: other subcommands import torch, which this test does not need
    monkeypatch.setattr(cli, "COMMANDS", ("compare", "report"))
    r1 = make_run_folder(tmp_path, "run1")
    assert main(["compare", str(r1), "--out", str(tmp_path / "t.md")]) == 0
    assert "| run1" in capsys.readouterr().out.replace(str(tmp_path) + "/", "")
    assert (tmp_path / "t.md").is_file()
    assert main(["report", str(r1)]) == 0
    assert (r1 / "report.html").is_file()
    assert main(["compare", str(tmp_path / "nothing")]) == 1  # one-line error, no traceback
    assert "error: none of" in capsys.readouterr().err


def _val_metrics(seed: int = 0) -> dict:
    return read_predictions_metrics(fake_rows(20, seed))


def read_predictions_metrics(rows) -> dict:
    from vocalis.metrics.predictions import Predictions

    classes = sorted({r["true_label"] for r in rows})
    return Predictions.from_rows(rows, classes).metrics()


def make_training_run(tmp_path: Path, name: str, val_protocol: str, seed: int = 0) -> Path:
    """A run folder as training leaves it: metrics.json with val metrics, no predictions.csv."""
    d = tmp_path / name
    d.mkdir()
    RunFolder(d).write_metrics(
        kind="train", model="neural", val=_val_metrics(seed), best_epoch=3, epochs_run=5,
        n_rows={"train": 80, "val": 20}, seconds=30.0,
    )  # fmt: skip
    (d / "config.yaml").write_text(
        f"dataset: {{val_protocol: {val_protocol}}}\nmodel: {{name: tier1}}\n"
        "features: {extractor: {name: mfcc}}\n"
    )
    return d


def test_compare_shows_validation_metrics_of_training_runs(tmp_path):
    from vocalis.evaluation.compare import COLUMN_HELP, COLUMNS, compare, legend

    speaker = make_training_run(tmp_path, "speaker", "speaker", seed=1)
    strat = make_training_run(tmp_path, "strat", "stratified", seed=2)
    rows = {Path(r["run"]).name: r for r in compare([speaker, strat])}
    for name, d in (("speaker", speaker), ("strat", strat)):
        val = RunFolder(d).read_metrics().val
        assert rows[name]["scored_on"] == "val"
        assert rows[name]["uar"] == pytest.approx(val["uar"]) == rows[name]["val_uar"]
        assert rows[name]["accuracy"] == pytest.approx(val["accuracy"])
    assert rows["speaker"]["speaker_dependent"] is False
    assert rows["strat"]["speaker_dependent"] is True  # a stratified split shares speakers
    assert set(COLUMN_HELP) == set(COLUMNS)  # every column explained
    assert all(f"{c}: " in legend() for c in COLUMNS)


def test_test_metrics_of_an_eval_record_in_the_run_folder(tmp_path):
    from vocalis.evaluation.compare import compare
    from vocalis.evaluation.report import report

    run = make_training_run(tmp_path, "run", "speaker")
    test = _val_metrics(seed=7)
    RunFolder(run / "test").write_metrics(kind="eval", model="neural", test=test)
    row = compare([run])[0]
    assert row["scored_on"] == "test" and row["uar"] == pytest.approx(test["uar"])
    assert row["val_uar"] == pytest.approx(RunFolder(run).read_metrics().val["uar"])
    html = Path(report(run)).read_text()
    assert "<h3>Validation</h3>" in html and "<h3>Test</h3>" in html
    assert "Confusion matrix (test)" in html and str(run / "test") in html


def test_report_of_a_training_run_shows_its_validation_metrics(tmp_path):
    from vocalis.evaluation.report import report

    run = make_training_run(tmp_path, "run", "speaker")
    html = Path(report(run)).read_text()
    uar = RunFolder(run).read_metrics().val["uar"]
    assert "No validation or test metrics" not in html
    assert f'<div class="v">{uar:.3f}</div><div class="k">UAR (validation)</div>' in html
    assert "Confusion matrix (validation)" in html and "held-out speakers" in html
    assert "<dt>UAR</dt>" in html and "<dt>best epoch</dt>" in html  # the legend
    strat = make_training_run(tmp_path, "strat", "stratified")
    assert "Speaker-dependent protocol" in Path(report(strat)).read_text()


def test_report_marks_an_unfinished_cv_as_partial(tmp_path):
    import json

    from vocalis.evaluation.report import FOLD_LEGEND, report

    cv = make_cv_folder(tmp_path)  # 2 of 3 folds finished (speaker 12 fails)
    html = Path(report(cv)).read_text()
    assert "<title>Vocalis report: cv (partial: 2 of 3 folds)</title>" in html
    assert "Partial result" in html and "(pooled test, partial: 2 of 3 folds)" in html
    for column in ("status", "val UAR", "best epoch", "test group"):
        assert "<th" in html and column in FOLD_LEGEND and f"<dt>{column}</dt>" in html
    assert "best val error" not in html
    results = json.loads((cv / "cv_results.json").read_text())
    results["n_finished"] = results["n_folds"]  # as if every fold had finished
    (cv / "cv_results.json").write_text(json.dumps(results))
    html = Path(report(cv)).read_text()
    assert "partial" not in html.split("<h2>Summary</h2>")[0].lower()
