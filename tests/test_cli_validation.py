"""Every verb refuses a bad option in one line before anything heavy is loaded.

A wrong number, path, checkpoint or recipe name must not cost the user the
seconds of importing torch, binding a port, reading a manifest or loading a
model: the cases below run in one fresh interpreter, each checked right after
it ran, so the first case that imports torch is named.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vocalis.testing import sample_manifest_path

WAV = str(next(sample_manifest_path().parent.rglob("*.wav")))
CSV = str(sample_manifest_path())

#: (argv, a piece of the one error line). None of them may import torch.
CASES = [
    (["tier0", "/no/such.wav"], "AUDIO /no/such.wav: no such file"),
    (["tier0", WAV, "--sample-rate", "0"], "argument --sample-rate: got 0"),
    (["features", CSV, "--hop-length", "-1"], "argument --hop-length: got -1"),
    (["features", CSV, "--workers", "-1"], "argument --workers: got -1"),
    (["features", "/no/such.csv"], "/no/such.csv: manifest not found"),
    (["train", "--manifest", "/no/such.csv"], "--manifest /no/such.csv: no such file"),
    (["train", "--config", "no_such_recipe"], "recipe 'no_such_recipe': no such file"),
    (["train", "--manifest", CSV, "--epochs", "0"], "argument --epochs: got 0"),
    (["train", "--manifest", CSV, "--lr", "nan"], "argument --lr: got nan"),
    (["train", "--manifest", CSV, "--val-split", "1"], "argument --val-split: got 1"),
    (["eval", "/no/run", "--manifest", CSV], "--checkpoint /no/run: no such run folder"),
    (["eval", "/no/run", "--manifest", CSV, "--batch-size", "0"], "--batch-size: got 0"),
    (["test", "/no/run", "--manifest", CSV], "--checkpoint /no/run: no such run folder"),
    (["loso", "--manifest", "/no/such.csv", "--out", "o"], "--manifest /no/such.csv: no such"),
    (["loso", "--manifest", CSV, "--out", "o", "--parallel", "0"], "--parallel: got 0"),
    (["loso", "--manifest", CSV, "--out", "o", "--val-fraction", "2"], "--val-fraction: got 2"),
    (["loso", "--config", "nope", "--out", "o"], "recipe 'nope': no such file"),
    (["cv", "--manifest", CSV, "--out", "o", "--folds", "1"], "argument --folds: got 1"),
    (["cv", "--manifest", CSV, "--out", "o", "--protocol", "x"], "argument --protocol"),
    (["predict", "/no/such.wav"], "/no/such.wav: no such file or folder"),
    (["predict", WAV, "--checkpoint", "/no/run"], "--checkpoint /no/run: no such file"),
    (["predict", WAV, "--batch-size", "0"], "--batch-size: got 0"),
    (["embed", WAV, "--checkpoint", "/no/run", "--out", "e.npz"], "--checkpoint /no/run"),
    (["embed", "/no/such.wav", "--out", "e.npz"], "INPUT /no/such.wav: no such file"),
    (["embed", "--out", "e.npz"], "nothing to embed"),
    (["embed", WAV, "--out", "e.npz", "--threads", "-1"], "argument --threads: got -1"),
    (["export", "--checkpoint", "/no/run", "--out", "m.onnx"], "--checkpoint /no/run"),
    (["export", "--out", "m.onnx", "--opset", "11"], "expected an ONNX opset >= 17"),
    (["serve", "--port", "99999"], "99999 is not a TCP port"),
    (["serve", "--checkpoint", "/no/run"], "--checkpoint /no/run: no such run folder"),
    (["serve", "--max-queue", "-1"], "argument --max-queue: got -1"),
    (["sweep", "--config", "nope", "--out", "o"], "recipe 'nope': no such file"),
    (["sweep", "--parallel", "0", "--out", "o"], "argument --parallel: got 0"),
    (["report", "/no/dir"], "/no/dir is neither a run folder"),
    (["report", "/no/dir", "--top-errors", "-1"], "argument --top-errors: got -1"),
    (["compare", "/no/dir"], "none of /no/dir is a finished run"),
    (["config", "show", "--config", "nope"], "recipe 'nope': no such file"),
    (["prepare", "emodb", "/no/such", "--out", "m.csv"], "/no/such is not a directory"),
]

_PROBE = """
import contextlib, io, json, sys
from vocalis.cli.main import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as stop:
            rc = stop.code
    out.append({"rc": rc, "err": err.getvalue(), "torch": "torch" in sys.modules})
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli-validation")
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps([argv for argv, _ in CASES])],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("index", "case"), list(enumerate(CASES)), ids=lambda c: str(c)[:60])
def test_a_bad_option_is_one_line_before_torch(results, index, case):
    argv, needle = case
    got = results[index]
    lines = [line for line in got["err"].splitlines() if line.strip()]
    assert got["rc"] in (1, 2), got
    assert len(lines) == 1 and "Traceback" not in got["err"], got["err"]
    verb = "test" if argv[0] == "test" else argv[0]
    assert lines[0].startswith(f"vocalis {verb}: error:"), lines[0]
    assert needle in lines[0], lines[0]
    assert not got["torch"], f"{argv} imported torch before refusing"


def test_a_bad_config_value_is_refused_before_the_manifest_is_read(monkeypatch, capsys):
    """Recipe values are validated (typed config) before any data or model is touched."""
    import vocalis.data
    from vocalis.cli.main import main

    def boom(*args, **kwargs):
        raise AssertionError("the manifest was read before the config was validated")

    monkeypatch.setattr(vocalis.data, "read_manifest", boom)
    for argv in (
        ["train", "--manifest", CSV, "train.epochs=0", "--out", "o"],
        ["loso", "--manifest", CSV, "train.lr=-1", "--out", "o"],
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"vocalis {argv[0]}: error: train.") and "\n" not in err, err


#: The long verbs and the fewest arguments that parse.
LONG_VERBS = {
    "tier0": ["x.wav"],
    "features": ["m.csv"],
    "train": [],
    "eval": ["run", "--manifest", "m.csv"],
    "test": ["run", "--manifest", "m.csv"],
    "loso": ["--out", "o"],
    "cv": ["--out", "o"],
    "predict": ["x.wav"],
    "embed": ["x.wav", "--out", "e.npz"],
}


@pytest.mark.parametrize("verb", sorted(LONG_VERBS))
def test_every_long_verb_takes_progress_flags(verb):
    from vocalis.cli.main import build_parser

    parser = build_parser()
    argv = [verb, *LONG_VERBS[verb]]
    assert parser.parse_args([*argv, "--no-progress"]).progress is False
    assert parser.parse_args([*argv, "--progress"]).progress is True
    assert parser.parse_args(argv).progress is None  # auto: bars on a terminal only


def test_progress_bars_only_on_a_terminal_unless_asked(monkeypatch):
    import argparse
    import io

    from vocalis.cli.choices import progress_wanted

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    auto, on, off = (argparse.Namespace(progress=v) for v in (None, True, False))
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file or a pipe
    assert [progress_wanted(a) for a in (auto, on, off)] == [False, True, False]
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert [progress_wanted(a) for a in (auto, on, off)] == [True, True, False]


def test_overrides_may_follow_flags_in_order(capsys):
    """``a=1 --config R b=2`` applies both, the later word last; unknown flags still fail."""
    from vocalis.cli.main import main

    argv = ["config", "show", "train.epochs=5", "--config", "emodb_tier1", "train.epochs=7"]
    assert main([*argv, "model=ecapa"]) == 0
    shown = capsys.readouterr().out
    assert "  epochs: 7\n" in shown and "name: ecapa" in shown
    for verb in (["train", "--manifest", CSV, "--epochs", "1"], ["loso", "--out", "o"]):
        assert main([*verb, "train.nope=1"]) == 1  # reached the config parser
        assert "unknown key 'train.nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["config", "show", "--config", "emodb_tier1", "--nope", "x=1"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --nope" in capsys.readouterr().err
