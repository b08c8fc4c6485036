"""CLI start-up: building the parser imports no torch (nor numpy), yet --help lists choices."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vocalis.cli.main import COMMANDS, build_parser, main


def _loaded_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys\n"
        "print(sorted(m for m in ('torch', 'numpy', 'pandas', 'scipy', 'sklearn', 'yaml') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return eval(out.stdout.strip().splitlines()[-1])  # a list literal we printed


def test_building_the_parser_imports_no_heavy_package():
    assert _loaded_after("import vocalis.cli.main; vocalis.cli.main.build_parser()") == []


@pytest.mark.parametrize("verb", COMMANDS)
def test_every_cli_module_imports_only_light_modules(verb):
    assert _loaded_after(f"import vocalis.cli.{verb}") == []


def test_parsing_a_builtin_feature_name_imports_no_torch():
    code = (
        "from vocalis.cli.main import build_parser\n"
        "a = build_parser().parse_args(['features', 'm.csv', '--features', 'mfcc_pitch', "
        "'--denoise', 'spectral'])\n"
        "assert (a.features, a.denoise) == ('mfcc_pitch', 'spectral')"
    )
    assert "torch" not in _loaded_after(code)


def test_builtin_name_lists_match_the_registries():
    from vocalis.audio.denoise import DENOISERS
    from vocalis.cli.choices import BUILTIN_DENOISERS
    from vocalis.features import BUILTIN_FEATURES, FEATURES

    assert tuple(FEATURES.names()) == BUILTIN_FEATURES
    assert tuple(DENOISERS.names()) == BUILTIN_DENOISERS


def test_help_still_lists_the_registry_choices_and_defaults(capsys):
    for argv, expected in [
        (["features"], ["mfcc_pitch", "pitch_only", "spectral", "demucs"]),
        (
            ["tier0"],
            ["spectral", "(default: 16000)", "denoiser: demucs, none, spectral (default: none)"],
        ),
        (["prepare"], ["emodb", "ravdess", "corpus options", "4class"]),
        (["train"], ["ecapa", "mfcc"]),
        (["export"], ["onnx", "torchscript", "waveform"]),
        (["embed"], ["pt, ft, st", "mean, sum"]),
        (["cv"], ["group-kfold", "online"]),
    ]:
        with pytest.raises(SystemExit):
            build_parser().parse_args([*argv, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for word in expected:
            assert word in text, (argv, word)


def test_unknown_choice_is_rejected_with_the_list(capsys):
    with pytest.raises(SystemExit) as err:
        build_parser().parse_args(["features", "m.csv", "--features", "mfc"])
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert "invalid choice: 'mfc'" in message and "'mfcc'" in message


def test_tier0_defaults_come_from_tier0config():
    from vocalis.audio.tier0 import Tier0Config
    from vocalis.cli.choices import resolve_defaults

    args = resolve_defaults(build_parser().parse_args(["tier0", "a.wav"]))
    cfg = Tier0Config()
    assert (args.sample_rate, args.normalize, args.denoise, args.vad) == (
        cfg.sample_rate,
        cfg.normalize,
        cfg.denoise,
        cfg.vad,
    )
    assert args.vad_threshold == cfg.vad_threshold and args.vad_pad_ms == cfg.vad_pad_ms


def test_top_level_help_lists_every_verb(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert all(verb in out for verb in COMMANDS)


def test_features_help_lists_builtins_without_importing_torch():
    code = (
        "import contextlib, io\n"
        "from vocalis.cli.main import build_parser\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    build_parser().parse_args(['features', '--help'])\n"
        "assert 'mfcc_pitch' in out.getvalue() and 'spectral' in out.getvalue()"
    )
    assert "torch" not in _loaded_after(code)
