"""Vocalis: train, evaluate and serve speech classifiers.

The main entry points are importable from the package itself, one per CLI verb
(the README maps every verb to its function):

- data: :func:`read_manifest`, :class:`Manifest`, :func:`prepare` (a corpus folder
  to a manifest), :class:`LabelEncoder`;
- tier 0 and features: :func:`run_tier0`, :class:`Tier0Config`, :func:`extract`,
  :func:`extract_many`, :class:`FeatureConfig`, :class:`PipelineConfig`;
- training: :func:`load_config`, :func:`load_recipe` (a neural or an
  ensemble recipe), :class:`ExperimentConfig`, :func:`train` (a neural model),
  :func:`train_ensemble` (a functionals ensemble, fitted on every row);
- evaluation: :func:`evaluate` (score a model on a manifest), and speaker-independent
  :func:`loso`, :func:`cross_validate`, :func:`sweep`, :func:`compare`,
  :func:`report`;
- using a model: :class:`Predictor`, :func:`predict`, :func:`predict_segments`,
  :func:`embed`, :func:`export`, :func:`serve`;
- speaker verification: :func:`build_trials`, :func:`score_trials`,
  :func:`calibrate_threshold`, :func:`verify_pair`;
- :class:`VocalisError`, the base of every error meant for the user.

``import vocalis`` is cheap: it imports no torch, numpy or any other heavy
package; each name is imported from its module on first use (PEP 562, see
:mod:`vocalis.lazy`) and is the very object of that module.

Example:
    >>> import vocalis
    >>> vocalis.read_manifest is vocalis.data.read_manifest
    True
    >>> "train" in dir(vocalis) and "loso" in vocalis.__all__
    True
"""

from vocalis.lazy import lazy_exports

__version__ = "0.1.0"

#: Public name -> the module it is imported from on first use.
_EXPORTS = {
    # data
    "Manifest": "vocalis.data",
    "read_manifest": "vocalis.data",
    "prepare": "vocalis.data",
    "LabelEncoder": "vocalis.data",
    # tier 0 and features
    "Tier0Config": "vocalis.audio",
    "run_tier0": "vocalis.audio",
    "FeatureConfig": "vocalis.features",
    "PipelineConfig": "vocalis.features",
    "extract": "vocalis.features",
    "extract_many": "vocalis.features",
    # training
    "ExperimentConfig": "vocalis.training",
    "load_config": "vocalis.training",
    "load_recipe": "vocalis.training",
    "train": "vocalis.training",
    "train_ensemble": "vocalis.training.ensemble_estimator",
    # speaker-independent evaluation
    "loso": "vocalis.evaluation.crossval",
    "cross_validate": "vocalis.evaluation.crossval",
    "sweep": "vocalis.evaluation.sweep",
    "evaluate": "vocalis.evaluation",
    "compare": "vocalis.evaluation.compare",
    "report": "vocalis.evaluation.report",
    # using a model
    "Predictor": "vocalis.inference",
    "predict": "vocalis.inference",
    "predict_segments": "vocalis.inference",
    "embed": "vocalis.inference.embed",
    "export": "vocalis.inference.export",
    "serve": "vocalis.inference.server",
    # speaker verification
    "build_trials": "vocalis.verification",
    "score_trials": "vocalis.verification",
    "calibrate_threshold": "vocalis.verification",
    "verify_pair": "vocalis.verification",
    # errors
    "VocalisError": "vocalis.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
