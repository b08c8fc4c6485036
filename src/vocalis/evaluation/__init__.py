"""Evaluation: cross-validation, scoring a model, plots, comparison and reports.

The metrics and predictions tables (:mod:`vocalis.metrics`, below training) are
importable from here too; the runners live in their modules
(:mod:`~vocalis.evaluation.crossval`, :mod:`~vocalis.evaluation.assess` with
:func:`evaluate`, the function behind ``vocalis eval``,
:mod:`~vocalis.evaluation.compare`, :mod:`~vocalis.evaluation.report`) and
import the training engine and matplotlib only when called.
"""

from vocalis.evaluation.assess import evaluate
from vocalis.metrics import (
    Predictions,
    ccc,
    classification_metrics,
    compute_eer,
    compute_min_dcf,
    concat_predictions,
    error_analysis,
    expected_calibration_error,
    mae,
    multilabel_metrics,
    read_predictions,
    regression_metrics,
    write_predictions,
)

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
