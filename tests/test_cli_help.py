"""One help style for every verb: useful defaults only, no docstring markup, help everywhere."""

from __future__ import annotations

import argparse
import re

import pytest

from vocalis.cli.main import build_parser


def _verbs() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = {}
    for name, p in sub.choices.items():
        out[name] = p
        for action in p._actions:  # nested verbs (config list / show)
            if isinstance(action, argparse._SubParsersAction):
                out.update({f"{name} {n}": q for n, q in action.choices.items()})
    return out


VERBS = _verbs()


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_help_text_style(verb):
    parser = VERBS[verb]
    text = parser.format_help()
    assert "(default: None)" not in text and "(default: False)" not in text
    assert not re.search(r"default:[^\n]*\(default:", text), text  # no duplicated defaults
    assert "``" not in text and not re.search(r":(func|class|mod|meth|data):`", text)
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help, f"vocalis {verb}: {action.option_strings or action.dest} has no help"
        shown = parser._get_formatter()._get_help_string(action)
        if action.required:
            assert "(default:" not in shown, f"{verb} {action.option_strings}: required"


def test_a_bad_number_is_refused_while_parsing(capsys):
    parser = build_parser()
    for argv, needle in (
        (["predict", "x.wav", "--batch-size", "0"], "expected an integer >= 1"),
        (["predict", "x.wav", "--min-speech", "2"], "expected a share in [0, 1]"),
        (["predict", "x.wav", "--window", "-1"], "expected a number > 0"),
        (["tier0", "x.wav", "--vad-threshold", "abc"], "'abc' is not a share in [0, 1]"),
    ):
        with pytest.raises(SystemExit) as err:
            parser.parse_args(argv)
        assert err.value.code == 2
        assert needle in capsys.readouterr().err
