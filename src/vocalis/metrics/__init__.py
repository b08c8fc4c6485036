"""Metrics and predictions tables: pure numpy, below both training and evaluation.

Training validates with these functions and evaluation reports with them, so
they live under neither (imports point down the data flow: ``training`` and
``evaluation`` import ``metrics``, ``metrics`` imports neither).

- :mod:`~vocalis.metrics.classification`: accuracy, UAR, per-class P/R/F1,
  confusion, ECE; multi-label and regression metrics (CCC, MAE, RMSE).
- :mod:`~vocalis.metrics.predictions`: the :class:`Predictions` table of a model
  on labelled rows (``predictions.csv``), its metrics and error analysis.
- :mod:`~vocalis.metrics.verification`: EER and minDCF of verification scores.
"""

from vocalis.metrics.classification import (
    ccc,
    classification_metrics,
    expected_calibration_error,
    mae,
    multilabel_metrics,
    regression_metrics,
)
from vocalis.metrics.predictions import (
    Predictions,
    concat_predictions,
    error_analysis,
    read_predictions,
    write_predictions,
)
from vocalis.metrics.verification import compute_eer, compute_min_dcf

__all__ = [
    "Predictions",
    "ccc",
    "classification_metrics",
    "compute_eer",
    "compute_min_dcf",
    "concat_predictions",
    "error_analysis",
    "expected_calibration_error",
    "mae",
    "multilabel_metrics",
    "read_predictions",
    "regression_metrics",
    "write_predictions",
]
