"""The argparse number types of vocalis.cli.choices refuse what the verbs cannot use."""

from __future__ import annotations

import argparse

import pytest

from vocalis.cli.choices import port, positive_float, positive_int, share


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "0", "-1", "x"])
def test_positive_float_refuses_non_finite_and_non_positive(text):
    with pytest.raises(argparse.ArgumentTypeError):
        positive_float(text)


def test_accepted_values_parse():
    assert positive_float("0.5") == 0.5 and positive_int("3") == 3 and share("1") == 1.0
    assert port("0") == 0 and port("65535") == 65535  # 0: any free port


@pytest.mark.parametrize(("fn", "text"), [(positive_int, "0"), (share, "1.5"), (port, "65536")])
def test_out_of_range_is_refused(fn, text):
    with pytest.raises(argparse.ArgumentTypeError):
        fn(text)
