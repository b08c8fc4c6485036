"""Evaluation: cross-validation, scoring a model, plots, comparison and reports.

The metrics and predictions tables live in :mod:`vocalis.metrics` (below
training); the runners live in their modules (:mod:`~vocalis.evaluation.crossval`,
:mod:`~vocalis.evaluation.assess` with :func:`evaluate`, the function behind ``vocalis eval``,
:mod:`~vocalis.evaluation.compare`, :mod:`~vocalis.evaluation.report`) and
import the training engine and matplotlib only when called.
"""

from vocalis.evaluation.assess import evaluate

__all__ = ["evaluate"]
