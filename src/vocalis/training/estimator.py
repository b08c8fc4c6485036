"""The estimator contract: fit on some manifest rows, then give class probabilities.

Every kind of model Vocalis can cross-validate or train on a whole manifest
implements :class:`Estimator`; the cross-validation runner
(:mod:`vocalis.evaluation.crossval`) and ``vocalis train`` know nothing else::

    estimator.rows(manifest)                      -> (rows, labelled rows)
    estimator.prepare(rows)                       # shared work before the folds
    fitted = estimator.fit(rows, train, val, run_dir)
    fitted.predict_proba(rows, index)             -> (N, K), columns = fitted.classes
    fitted.predict_heads(rows, index)             -> HeadOutputs (several heads) or None
    fitted.save(path)                             # the deployable model.pt

Implementations:

* :class:`NeuralEstimator` (here): a thin adapter over :func:`vocalis.training.train`;
* :class:`vocalis.training.ensemble_estimator.EnsembleEstimator`: the functionals ensemble.

Indices are int64 positions into ``rows``; ``val`` is empty for estimators
whose ``needs_validation`` is False (they validate internally, e.g. by inner
leave-one-speaker-out).
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from vocalis.errors import ConfigError, DataError
from vocalis.io import as_path

if TYPE_CHECKING:
    from vocalis.data import Manifest
    from vocalis.data.targets import HeadSpec
    from vocalis.training.config import ExperimentConfig

__all__ = [
    "NORMALIZATIONS",
    "Estimator",
    "Fitted",
    "HeadOutputs",
    "NeuralEstimator",
    "NeuralFitted",
    "estimator_for",
]

#: Normalisation protocol -> ``features.normalization`` of the neural training engine.
NORMALIZATIONS = {"online": "global", "speaker_norm": "speaker"}


@dataclasses.dataclass(frozen=True)
class HeadOutputs:
    """Every head's outputs and targets on some rows, as the model's test pass gives them.

    Attributes:
        heads: the fitted heads in model order (their scalers and thresholds).
        outputs: (N, sum C_h) outputs side by side (probabilities of class heads,
            z-scored values of regression heads); NaN rows: unreadable audio.
        targets: (N, sum width_h) packed targets
            (:func:`~vocalis.data.targets.encode_targets`; NaN: not annotated).
    """

    heads: tuple[HeadSpec, ...]
    outputs: np.ndarray
    targets: np.ndarray

    def first_head(self) -> np.ndarray:
        """(N, C_1) outputs of the first head (what ``predict_proba`` returns)."""
        return self.outputs[:, : self.heads[0].size]


class Fitted(Protocol):
    """A model fitted on some rows.

    Attributes:
        classes: class names, the columns of :meth:`predict_proba`.
        info: what the fit reports (``best_error``, ``best_epoch``, an ensemble's
            chosen ``C`` and fusion weights...), recorded per fold by the runner.
    """

    classes: tuple[str, ...]
    info: dict[str, Any]

    def predict_proba(self, rows: Manifest, index: np.ndarray) -> np.ndarray:
        """``(len(index), K)`` class probabilities of ``rows[index]`` (NaN rows: unreadable)."""
        ...

    def predict_heads(self, rows: Manifest, index: np.ndarray) -> HeadOutputs | None:
        """Every head's outputs on ``rows[index]``, or ``None`` for a model with one head.

        When not ``None``, its :meth:`HeadOutputs.first_head` equals
        :meth:`predict_proba` (one prediction pass gives both). A user's own
        estimator with one head returns ``None``.
        """
        ...

    def save(self, path: str | os.PathLike) -> None:
        """Write the deployable checkpoint (``model.pt``) to ``path``."""
        ...


@runtime_checkable
class Estimator(Protocol):
    """Something that fits on manifest rows.

    Attributes:
        needs_validation: True when :meth:`fit` needs held-out validation rows
            (early stopping of a neural net); False when it validates inside the
            training rows (the ensemble's inner LOSO), so ``val`` is empty.
        setup: what ``cv_results.json`` records about it (``model``, ``features``,
            ``normalization`` with its ``protocol``, ``config``...).
        manifest: the recipe's manifest CSV (``""``: none, give one).
        val_fraction: default share of training rows held out for validation.
        seed: seed of validation splits and random protocols.
    """

    needs_validation: bool
    setup: dict[str, Any]
    manifest: str
    val_fraction: float
    seed: int

    def with_normalization(self, protocol: str | None) -> Estimator:
        """The estimator under the ``online`` / ``speaker_norm`` protocol (None: default)."""
        ...

    def rows(self, manifest: Manifest) -> tuple[Manifest, Manifest]:
        """``(rows indices refer to, the same rows with their final labels)``."""
        ...

    def prepare(self, rows: Manifest) -> None:
        """Work every fold shares (feature caches), done once before folds run."""
        ...

    def fit(
        self,
        rows: Manifest,
        train: np.ndarray,
        val: np.ndarray,
        run_dir: str | os.PathLike | None,
    ) -> Fitted:
        """Fit on ``rows[train]`` (validating on ``rows[val]``); write ``run_dir``."""
        ...


# --------------------------------------------------------------------------- neural


@dataclasses.dataclass
class NeuralFitted:
    """A neural run trained by :func:`vocalis.training.train`.

    Attributes:
        config: the experiment config it was trained with.
        result: the :class:`~vocalis.training.TrainResult` (best weights loaded).
        train, val: the rows it was trained and validated on.
        classes: class names.
        info: ``best_error`` (1 - validation UAR) and ``best_epoch``.
    """

    config: ExperimentConfig
    result: Any
    train: np.ndarray
    val: np.ndarray
    classes: tuple[str, ...]
    info: dict[str, Any]

    def predict_proba(self, rows: Manifest, index: np.ndarray) -> np.ndarray:
        """Probabilities of ``rows[index]`` exactly as the trainer tests its best weights.

        The data of the run is prepared again (features from the feature cache)
        with ``index`` as the test rows, so the normaliser is fit as in training:
        global statistics from the training rows, or, under ``speaker``
        normalisation, each speaker's own statistics (the predicted speakers'
        unlabelled audio included). Rows whose audio cannot be read are NaN. A
        model with several heads gives its first head's probabilities
        (:meth:`predict_heads` gives every head).
        """
        heads = self.predict_heads(rows, index)
        if heads is not None:
            return heads.first_head()
        return self._predict(rows, index, with_heads=False).outputs

    def predict_heads(self, rows: Manifest, index: np.ndarray) -> HeadOutputs | None:
        """Every head's outputs on ``rows[index]`` as the trainer's test pass scores them.

        ``None`` for a run with one head. Otherwise the run's reported heads (those of
        ``TrainResult.heads``: a multi-head run's heads with their fitted scalers
        and thresholds, or the class head and a valence/arousal head), the outputs
        of the model's test pass (:func:`~vocalis.training.predict.model_head_outputs`)
        and the rows' packed targets; NaN rows: unreadable audio.
        """
        if self.result.heads is None:
            return None
        return self._predict(rows, index, with_heads=True)

    def _predict(self, rows: Manifest, index: np.ndarray, with_heads: bool) -> HeadOutputs:
        from vocalis.augment import AugmentConfig
        from vocalis.training.distributed import DistInfo
        from vocalis.training.engine import amp_dtype, resolve_device
        from vocalis.training.predict import model_head_outputs, predict_dataset
        from vocalis.training.prepared import prepare_data
        from vocalis.training.runfolder import RunFolder

        index = np.asarray(index, dtype=np.int64)
        cfg = self.config
        # no training audio for on-the-fly augmentation is needed to predict
        cfg = dataclasses.replace(cfg, augment=AugmentConfig())
        data = prepare_data(
            cfg, rows, (self.train, self.val, index), DistInfo(), RunFolder(None), False
        )
        heads = tuple(self.result.heads or ()) if with_heads else ()
        width = sum(h.size for h in heads) if heads else len(self.classes)
        out = np.full((len(index), width), np.nan)
        tgt = np.full((len(index), sum(h.width for h in heads)), np.nan)
        if data.test is None:
            return HeadOutputs(heads, out, tgt)
        device = resolve_device(cfg.train.device)
        model = self.result.model.to(device)
        dtype = amp_dtype(cfg.train.amp, device)
        batch_size = cfg.train.batch_size
        probs, _ = predict_dataset(
            model, data.test, batch_size=batch_size, device=device, amp_dtype=dtype
        )
        position = {int(i): k for k, i in enumerate(index.tolist())}
        at = [position[int(i)] for i in data.test_idx.tolist()]
        if not heads:  # one head: its probabilities
            out[at] = probs[:, : len(self.classes)]
            return HeadOutputs(heads, out, tgt)
        _, outputs, targets = model_head_outputs(
            model, data, data.test, probs, batch_size=batch_size, device=device, amp_dtype=dtype
        )
        out[at], tgt[at] = outputs, targets
        return HeadOutputs(heads, out, tgt)

    def save(self, path: str | os.PathLike) -> None:
        """Copy the best checkpoint, without its training state, to ``path``.

        A seed ensemble (``train.members``) has no ``best.pt`` of its own: its
        ``model.pt`` (every member) is copied.
        """
        from vocalis.checkpoint import MODEL_FILE, slim_checkpoint

        run_dir = self.result.out_dir
        if run_dir is None:
            raise DataError("a neural run trained without a run folder has no checkpoint to save")
        run_dir = as_path(run_dir)
        members = self.config.train.members > 1
        slim_checkpoint(
            run_dir / MODEL_FILE if members else run_dir / "checkpoints" / "best.pt", path
        )


@dataclasses.dataclass
class NeuralEstimator:
    """:func:`vocalis.training.train` as an :class:`Estimator`.

    Args:
        config: the experiment config.
        overwrite: start existing run folders over instead of resuming them.
        progress: progress bars while training.
    """

    config: ExperimentConfig
    overwrite: bool = False
    progress: bool = True
    needs_validation: bool = dataclasses.field(default=True, init=False)

    @property
    def manifest(self) -> str:
        """``dataset.manifest``."""
        return self.config.dataset.manifest

    @property
    def val_fraction(self) -> float:
        """``dataset.val_fraction``."""
        return self.config.dataset.val_fraction

    @property
    def seed(self) -> int:
        """``dataset.seed``, else ``train.seed``."""
        seed = self.config.dataset.seed
        return int(self.config.train.seed if seed is None else seed)

    @property
    def setup(self) -> dict[str, Any]:
        """Model, features, normalisation and the resolved config."""
        from vocalis.config import to_dict

        mode = self.config.features.normalization
        protocol = {v: k for k, v in NORMALIZATIONS.items()}.get(mode, mode)
        if mode == "none":
            protocol = "online"  # nothing fitted (with_normalization keeps ``none``)
        return {
            "normalization": {
                "protocol": protocol,
                "features.normalization": mode,
                "description": _describe(protocol, mode),
            },
            "model": self.config.model.name,
            "features": self.config.features.extractor.name,
            "config": to_dict(self.config),
        }

    def rows(self, manifest: Manifest) -> tuple[Manifest, Manifest]:
        """Rows a label map drops are removed first (the engine then maps the rest).

        The labelled rows carry the final labels in their ``label`` column.

        Raises:
            ConfigError: a recipe whose first head is not a class head (a regression
                or multi-label head first): cross-validation scores folds on the
                first head's classes; a model whose pretrained inputs are missing
                (refused once here, not once per fold).
        """
        from vocalis.models import check_model_resources

        dataset = self.config.dataset
        manifest.require(dataset.label_column)
        self._check_first_head(manifest)
        check_model_resources(self.config.model.name, self.config.model.params)
        mapped = manifest
        if dataset.label_map is not None:
            from vocalis.data import apply_label_map

            mapped = apply_label_map(
                manifest, dataset.label_map, column=dataset.label_column, unmapped=dataset.unmapped
            )
            kept = set(mapped.ids)
            manifest = manifest.select([i for i, uid in enumerate(manifest.ids) if uid in kept])
        if dataset.label_column != "label":
            mapped = mapped.with_column("label", mapped.column(dataset.label_column))
        return manifest, mapped

    def _check_first_head(self, manifest: Manifest) -> None:
        """Refuse, before any fold trains, a recipe whose first head has no classes."""
        from vocalis.data.targets import fit_heads

        cfg = self.config
        if not cfg.uses_heads():
            return
        heads = fit_heads(
            manifest,
            range(len(manifest)),
            cfg.dataset.head_groups,
            cfg.train.loss,
            cfg.train.loss_weights,
        )
        first = heads[0]
        if first.kind != "multiclass":
            classes = [h.name for h in heads if h.kind == "multiclass"]
            fix = (
                f"put a class head first (dataset.label_columns=[{classes[0]}, ...]): every "
                "head is then reported in cv_results.json's 'heads'"
                if classes
                else "add a class head first; cross-validating regression or multi-label "
                "heads alone is not supported yet (train with --test-csv, or vocalis eval)"
            )
            raise ConfigError(
                f"cross-validation scores folds on the first head, and '{first.name}' is a "
                f"{first.kind} head; {fix}"
            )

    def prepare(self, rows: Manifest) -> None:
        """Nothing: every fold computes (or reads cached) features in :func:`train`."""

    def fit(
        self,
        rows: Manifest,
        train: np.ndarray,
        val: np.ndarray,
        run_dir: str | os.PathLike | None,
    ) -> NeuralFitted:
        """Train on ``rows[train]``, early-stop on ``rows[val]``; resumes ``run_dir``."""
        from vocalis.training import train as train_fn

        train, val = np.asarray(train, np.int64), np.asarray(val, np.int64)
        result = train_fn(
            self.config,
            run_dir,
            manifest=rows,
            train_indices=train,
            val_indices=val,
            overwrite=self.overwrite,
            progress=self.progress,
        )
        uar = (result.best_metrics or {}).get("val_uar")
        info = {
            "best_error": None if uar is None else round(1.0 - float(uar), 6),
            "best_epoch": result.best_epoch,
        }
        return NeuralFitted(self.config, result, train, val, tuple(result.classes), info)

    def with_normalization(self, protocol: str | None) -> NeuralEstimator:
        """The same experiment under the ``online`` or ``speaker_norm`` protocol.

        ``online`` standardises with the training rows' global statistics, except
        where the recipe normalises nothing (``features.normalization: none``: the
        waveform of ``model=ssl``, whose encoder sets its own input level; features
        that are already on their scale). Nothing is then fitted at all, which is
        online by construction; a global mean and variance of raw samples would
        rescale every waveform and change what a pretrained encoder sees.

        Raises:
            ConfigError: an unknown protocol.
        """
        protocol = protocol or "online"
        if protocol not in NORMALIZATIONS:
            raise ConfigError(
                f"normalization={protocol!r}; expected one of: {', '.join(NORMALIZATIONS)}"
            )
        mode = NORMALIZATIONS[protocol]
        if protocol == "online" and self.config.features.normalization == "none":
            mode = "none"
        features = dataclasses.replace(self.config.features, normalization=mode)
        return dataclasses.replace(self, config=dataclasses.replace(self.config, features=features))


def _describe(protocol: str, mode: str = "") -> str:
    if protocol == "online" and mode == "none":
        return "no feature statistics (features.normalization: none)"
    if protocol == "online":
        return "train-speaker statistics only"
    if protocol == "speaker_norm":
        return (
            "per-speaker standardisation of every speaker, test speaker included "
            "(its unlabelled audio)"
        )
    return protocol


def estimator_for(
    config: Any,
    *,
    normalization: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Estimator:
    """The estimator of a recipe path, an experiment config or an ensemble recipe.

    Args:
        config: a recipe YAML path, an :class:`~vocalis.training.ExperimentConfig`,
            an :class:`~vocalis.ensemble.recipe_file.EnsembleRecipe`, or an
            :class:`Estimator` (returned under ``normalization``).
        normalization: ``online`` / ``speaker_norm`` (None: ``online``, or the
            protocol an ensemble recipe fixes).
        overwrite: neural runs start over instead of resuming.
        progress: progress bars while training.

    Raises:
        ConfigError: an unknown protocol, or one an ensemble recipe contradicts.
    """
    from vocalis.ensemble.recipe_file import EnsembleRecipe
    from vocalis.training.config import ExperimentConfig, load_recipe

    if isinstance(config, (str, os.PathLike)):
        config = load_recipe(config)
    if isinstance(config, EnsembleRecipe):
        from vocalis.training.ensemble_estimator import EnsembleEstimator

        return EnsembleEstimator(config).with_normalization(normalization)
    if isinstance(config, Estimator):
        return config.with_normalization(normalization)
    if not isinstance(config, ExperimentConfig):
        raise ConfigError(
            f"expected a recipe path, an ExperimentConfig or an EnsembleRecipe, got "
            f"{type(config).__name__}"
        )
    return NeuralEstimator(config, overwrite, progress).with_normalization(normalization)
