"""Evaluation: metrics, predictions tables, plots, cross-validation, comparison and reports.

The light pieces are importable from here; the runners live in their modules
(:mod:`~vocalis.evaluation.crossval`, :mod:`~vocalis.evaluation.assess` with
:func:`evaluate`, the function behind ``vocalis eval``,
:mod:`~vocalis.evaluation.compare`, :mod:`~vocalis.evaluation.report`) and
import the training engine and matplotlib only when called.
"""

from vocalis.evaluation.assess import evaluate
from vocalis.evaluation.metrics import (
    ccc,
    classification_metrics,
    expected_calibration_error,
    mae,
    multilabel_metrics,
    regression_metrics,
)
from vocalis.evaluation.predictions import (
    Predictions,
    concat_predictions,
    error_analysis,
    read_predictions,
    write_predictions,
)
from vocalis.evaluation.verification import compute_eer, compute_min_dcf

__all__ = [
    "Predictions",
    "ccc",
    "classification_metrics",
    "compute_eer",
    "compute_min_dcf",
    "concat_predictions",
    "error_analysis",
    "evaluate",
    "expected_calibration_error",
    "mae",
    "multilabel_metrics",
    "read_predictions",
    "regression_metrics",
    "write_predictions",
]
