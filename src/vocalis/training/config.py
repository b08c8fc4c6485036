"""The experiment config: YAML groups composed by name, overridden, then typed.

A run is described by one :class:`ExperimentConfig` with six sections
(``dataset``, ``features``, ``model``, ``train``, ``augment``, ``tracking``). Its YAML
comes from groups in ``configs/`` (one folder per concern)::

    configs/dataset/emodb.yaml    configs/features/mfcc.yaml
    configs/model/tier1.yaml      configs/train/default.yaml
    configs/augment/default.yaml  (SpecAugment; waveform_default adds speed, pitch, noise...)
    configs/tracking/none.yaml    (tensorboard.yaml, wandb.yaml)

A recipe picks one file per group and adds its own overrides::

    defaults:
      - dataset: emodb
      - features: mfcc
      - model: tier1
      - train: default
      - augment: waveform_default
    train:
      epochs: 30

Command-line overrides are either a group choice (``model=ecapa``) or a dotted
key (``train.lr=3e-4``); ``model.<key>`` other than ``name`` and ``params`` is short
for ``model.params.<key>`` (``model.mode=3``). Hydra's compose API composes the
groups, OmegaConf applies the overrides (:func:`vocalis.config.compose_groups`); the
result is validated once into frozen dataclasses whose unknown keys raise
:class:`~vocalis.errors.ConfigError` with the nearest valid key. The features section
is typed all the way down (:class:`~vocalis.audio.Tier0Config`,
:class:`~vocalis.features.FeatureConfig`).

:func:`load_recipe` is the one loader of every recipe kind: a neural experiment
(an :class:`ExperimentConfig`) or a ``kind: ensemble`` recipe (an
:class:`~vocalis.ensemble.recipe_file.EnsembleRecipe`), both with groups and
``key=value`` overrides, found by path or by name (``emodb_tier1``).

Example:
    >>> cfg = load_config(None, ["train.epochs=3", "train.lr=0.01"])
    >>> cfg.train.epochs, cfg.train.lr, cfg.dataset.val_protocol
    (3, 0.01, 'speaker')
    >>> load_config(None, ["train.epoch=3"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    vocalis.errors.UnknownKeyError: unknown key 'train.epoch' (did you mean 'epochs'?); ...
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from vocalis.audio.config import Tier0Config
from vocalis.augment.config import AugmentConfig
from vocalis.config import compose_groups, find_recipe, from_dict, key_paths, read_yaml, to_dict
from vocalis.data.splits import TrainValTestSplit
from vocalis.errors import ConfigError, UnknownKeyError
from vocalis.features.config import FeatureConfig, PipelineConfig
from vocalis.registry import did_you_mean
from vocalis.training.tracking import TrackingConfig

if TYPE_CHECKING:
    from vocalis.ensemble.recipe_file import EnsembleRecipe

#: Config groups, in the order they are composed.
GROUPS = ("dataset", "features", "model", "train", "augment", "tracking")

#: Groups used when neither a recipe nor the command line picks one.
DEFAULT_GROUPS = {
    "features": "mfcc",
    "model": "tier1",
    "train": "default",
    "augment": "default",
    "tracking": "none",
}

#: Keys that may differ between a run folder's config and a resumed run.
RESUMABLE_KEYS = (
    "train.epochs",
    "train.members",
    "train.num_workers",
    "train.device",
    "features.workers",
    "features.cache_dir",
    *(
        f"tracking.{key}"
        for key in ("backend", "dir", "project", "name", "mode", "log_every_steps")
    ),
)


@dataclass(frozen=True)
class DatasetConfig:
    """Which manifest, which label, and how validation data is held out.

    Args:
        name: free-text corpus name (for the record only).
        manifest: manifest CSV path (or fsspec URL); set per run or in the recipe.
        label_column: manifest column with the class label (a single-head run). A list
            here means the same as ``label_columns``.
        label_columns: one entry per head: a column name, or a list of columns read by
            one head (multi-label, one-hot or multi-target regression); empty: one head
            on ``label_column``. Its first column becomes ``label_column`` (the one
            ``label_map`` applies to and stratified splits use). See
            :mod:`vocalis.data.targets` for the head kinds.
        label_groups: a label-group text file (one line per head, comma-separated
            columns) read into ``label_columns`` when the config is loaded (the resolved
            config then holds the heads and ``label_groups`` is ``null``).
        label_map: a builtin map name (``4class``), a YAML path or a
            ``{target: [source, ...]}`` mapping applied to ``label_column``.
        unmapped: what happens to a label the map does not list: ``error``,
            ``drop`` (remove the row) or ``keep``.
        val_protocol: ``speaker`` (hold out whole speakers, speaker-independent),
            ``stratified`` (random per class: speaker-dependent, warns) or
            ``split_column`` (use the manifest's ``split_column``: train/val/test).
        val_fraction: share of speakers (or utterances) held out for validation.
        split_column: manifest column read by ``val_protocol=split_column``.
        regression_columns: numeric manifest columns used as auxiliary regression
            targets (e.g. ``[valence, arousal]`` for multi-task training).
        seed: split seed; ``null`` uses ``train.seed``.
        split: a three-way train / validation / test split
            (:class:`~vocalis.data.splits.TrainValTestSplit`, e.g. ``{by: speaker,
            train: 0.7, val: 0.15, test: 0.15}``: whole speakers per part); it
            replaces ``val_protocol`` / ``val_fraction`` for ``vocalis train``, whose
            test part is scored at the end (``metrics.json`` ``test``). Rows given by
            the caller (a cross-validation fold) win. ``null``: train / validation only.
        split_dir: a split folder (local or URL) of ``train.csv`` / ``test.csv`` /
            optional ``val.csv`` id lists (:mod:`vocalis.data.splitdir`): the parts are
            exactly those rows (without ``val.csv`` validation is held out of
            ``train.csv`` by ``val_protocol``); rows given by the caller win.
        val_manifest: a second manifest whose rows are the validation part (``--val-csv``);
            no validation rows are then held out of ``manifest``.
        test_manifest: a manifest whose rows are the test part (``--test-csv``), scored
            with the best weights at the end (``metrics.json`` ``test``).
    """

    name: str = ""
    manifest: str | None = None
    label_column: str | list[str | list[str]] = "label"
    label_columns: list[str | list[str]] = field(default_factory=list)
    label_groups: str | None = None
    label_map: str | dict | None = None
    unmapped: Literal["error", "drop", "keep"] = "error"
    val_protocol: Literal["speaker", "stratified", "split_column"] = "speaker"
    val_fraction: float = 0.2
    split_column: str = "split"
    regression_columns: list[str] = field(default_factory=list)
    seed: int | None = None
    split: TrainValTestSplit | None = None
    split_dir: str | None = None
    val_manifest: str | None = None
    test_manifest: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(
                f"dataset.val_fraction: got {self.val_fraction}, expected a fraction in (0, 1)"
            )
        if self.split is not None and self.val_protocol == "split_column":
            raise ConfigError(
                "dataset.split and dataset.val_protocol=split_column both define the parts; "
                "keep one (dataset.split=null to use the split column)"
            )
        given = [
            k
            for k in ("split_dir", "val_manifest", "test_manifest")
            if getattr(self, k) is not None
        ]
        if self.split_dir is not None and len(given) > 1:
            raise ConfigError(
                f"dataset.split_dir and dataset.{given[1]} both define parts; keep one "
                "(a split folder has its own val.csv and test.csv)"
            )
        other = "dataset.split" if self.split is not None else None
        if given and self.val_protocol == "split_column":
            other = "dataset.val_protocol=split_column"
        if given and other:
            raise ConfigError(f"dataset.{given[0]} and {other} both define the parts; keep one")
        columns = list(self.label_columns)
        if isinstance(self.label_column, list):
            if columns and columns != self.label_column:
                raise ConfigError(
                    f"dataset.label_column={self.label_column} and dataset.label_columns="
                    f"{columns} disagree; set only dataset.label_columns"
                )
            columns = list(self.label_column)
        if self.label_groups:
            from vocalis.data.targets import read_label_groups

            groups = read_label_groups(self.label_groups)
            if columns and [list(g) for g in self.head_groups_of(columns)] != groups:
                raise ConfigError(
                    f"dataset.label_groups={self.label_groups} and dataset.label_columns="
                    f"{columns} disagree; give one of them"
                )
            columns = [g[0] if len(g) == 1 else g for g in groups]
            object.__setattr__(self, "label_groups", None)  # read once: its heads are kept
        for i, entry in enumerate(columns):
            if (isinstance(entry, list) and not entry) or entry in ("", None):
                raise ConfigError(
                    f"dataset.label_columns[{i}]: empty entry; give a column name or a "
                    "list of column names per head"
                )
        names = [c for g in self.head_groups_of(columns) for c in g]
        dup = sorted({c for c in names if names.count(c) > 1})
        if dup:
            raise ConfigError(
                f"dataset.label_columns: column '{dup[0]}' is in two heads; a column "
                "belongs to one head"
            )
        object.__setattr__(self, "label_columns", columns)
        if columns:
            object.__setattr__(self, "label_column", self.head_groups_of(columns)[0][0])

    @staticmethod
    def head_groups_of(columns: list[str | list[str]]) -> list[tuple[str, ...]]:
        """``label_columns`` entries as tuples of column names, one per head."""
        return [tuple(c) if isinstance(c, list) else (str(c),) for c in columns]

    @property
    def head_groups(self) -> list[tuple[str, ...]]:
        """The label columns of each head (one head on ``label_column`` by default)."""
        if not self.label_columns:
            return [(str(self.label_column),)]
        return self.head_groups_of(self.label_columns)

    @property
    def head_names(self) -> list[str]:
        """The heads' names (``train.loss`` and ``train.loss_weights`` keys)."""
        from vocalis.data.targets import head_name

        return [head_name(g) for g in self.head_groups]


@dataclass(frozen=True)
class NormalizationStats:
    """Fixed feature statistics of a dataset, used instead of fitting them.

    Written ``features.normalization: {mean: -4.27, std: 4.57}`` (or as
    ``features.normalization_stats``): features become ``(x - mean) / std``, as with
    ``global`` normalisation, but nothing is fitted on the training rows; the values
    travel in the checkpoint like fitted ones.

    Args:
        mean: one value for every feature, or one per feature (F values).
        std: likewise, positive.
    """

    mean: float | list[float] = 0.0
    std: float | list[float] = 1.0

    def __post_init__(self) -> None:
        values = self.std if isinstance(self.std, list) else [self.std]
        if not values or not all(isinstance(v, (int, float)) and v > 0 for v in values):
            raise ConfigError(
                f"features.normalization.std: got {self.std!r}, expected a positive number "
                "(or one per feature)"
            )


@dataclass(frozen=True)
class FeaturesConfig:
    """Tier 0, the feature extractor and normalisation.

    Args:
        tier0: decoding, resampling, denoising and VAD.
        extractor: the feature extractor (``name`` picks it) and its parameters.
        normalization: ``global`` (mean/variance fit on the training split only),
            ``speaker`` (per-speaker statistics), ``utterance`` (per-utterance CMVN)
            or ``none``. With ``global`` and a model built with ``input_norm: true``
            the statistics are stored in the model instead (and the checkpoint's
            pipeline normalisation is ``none``), so exported models carry them.
            A mapping ``{mean: m, std: s}`` gives fixed dataset statistics instead
            (``global`` with :class:`NormalizationStats`, nothing fitted).
        normalization_stats: the fixed statistics (set by the mapping form above).
        cache_dir: feature cache folder: ``auto`` (the shipped groups: ``$VOCALIS_CACHE``
            or the user cache folder, :mod:`vocalis.cachedir`), a path, or ``null`` (no cache).
        workers: processes used for feature extraction.
        max_failures: share of unreadable files tolerated before training stops.
        dir: precomputed features, ``DIR/<id>.npy`` (C, T) per manifest row
            (``extractor.name: npy``; :mod:`vocalis.features.precomputed`).
        embedding_path: precomputed pretrained-model embeddings, a ``.pt`` keyed by
            utterance id (``extractor.name: precomputed``).
        feature_path: precomputed handcrafted (C, T) features, a ``.pt`` keyed by
            utterance id (``extractor.name: precomputed``); stacked after the embeddings.

    Raises:
        ConfigError: an unknown extractor, tier 0 and extractor at different sample
            rates, or a value out of range.

    Example:
        >>> cfg = from_dict(FeaturesConfig, {"extractor": {"name": "fbank", "n_fbank": 40}})
        >>> cfg.extractor.n_fbank, cfg.tier0.sample_rate, cfg.pipeline.features.name
        (40, 16000, 'fbank')
    """

    tier0: Tier0Config = field(default_factory=Tier0Config)
    extractor: FeatureConfig = field(default_factory=lambda: FeatureConfig(name="mfcc"))
    normalization: Literal["global", "utterance", "speaker", "none"] = "global"
    normalization_stats: NormalizationStats | None = None
    cache_dir: str | None = None
    workers: int = 2
    max_failures: float = 0.1
    dir: str | None = None
    embedding_path: str | None = None
    feature_path: str | None = None

    def __post_init__(self) -> None:
        self.pipeline  # noqa: B018  (checks the extractor name and the sample rates)
        if self.normalization_stats is not None and self.normalization != "global":
            raise ConfigError(
                f"features.normalization_stats are fixed global statistics; got them with "
                f"normalization={self.normalization}: drop one"
            )
        name, pt = self.extractor.name, bool(self.embedding_path or self.feature_path)
        if (name == "npy") != bool(self.dir) or (name == "precomputed") != pt:
            raise ConfigError(
                f"features: extractor.name={name!r} with dir={self.dir!r}, embedding_path="
                f"{self.embedding_path!r}, feature_path={self.feature_path!r}; precomputed "
                "inputs go together: features=npy features.dir=DIR, or extractor.name="
                "precomputed with embedding_path and/or feature_path (.pt files)"
            )
        if self.workers < 0:
            raise ConfigError(f"features.workers: got {self.workers}, expected >= 0")
        if not 0.0 <= self.max_failures < 1.0:
            raise ConfigError(
                f"features.max_failures: got {self.max_failures}, expected a fraction in [0, 1)"
            )

    @property
    def precomputed(self) -> bool:
        """Inputs are read from files (``dir``, ``embedding_path``, ``feature_path``)."""
        return bool(self.dir or self.embedding_path or self.feature_path)

    @property
    def pipeline(self) -> PipelineConfig:
        """Tier 0 + extractor: what the feature cache is keyed on and checkpoints carry."""
        return PipelineConfig(tier0=self.tier0, features=self.extractor)


@dataclass(frozen=True)
class ModelConfig:
    """Which model, and its own typed config.

    Args:
        name: registry key (``tier1``, ``ecapa``).
        params: the model's config dataclass (``Tier1Config``, ``EcapaConfig``...), or a
            mapping of its fields, which is validated into it (defaults filled in).

    Raises:
        ConfigError: an unknown model (with the nearest name), an unknown key (with
            the nearest one) or a value the model does not allow, named
            ``model.params.<key>`` with the value and what is allowed.

    Example:
        >>> ModelConfig("tier1", {"lstm_hidden": 64}).params.lstm_hidden
        64
        >>> ModelConfig("tier1", {"kernel_size": 4})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        vocalis.errors.ConfigError: model.params.kernel_size: got 4, expected a positive ...
    """

    name: str = "tier1"
    params: Any = field(default_factory=dict)

    def __post_init__(self) -> None:
        from vocalis.errors import ConfigValueError
        from vocalis.models import model_config_class

        config_cls = model_config_class(self.name)  # unknown model: ConfigError, suggestion
        params = self.params
        if isinstance(params, dict):
            data = {k: v for k, v in params.items() if k != "name"}
            try:
                params = from_dict(config_cls, data, where="model.params")
            except ConfigValueError as err:  # already named model.params.<key>
                raise ConfigError(str(err)) from None
        elif not isinstance(params, config_cls):
            raise ConfigError(
                f"model.params: got a {type(params).__name__}, expected a {config_cls.__name__} "
                f"(the config of model '{self.name}') or a mapping of its fields"
            )
        object.__setattr__(self, "params", params)


@dataclass(frozen=True)
class LRTiers:
    """Learning-rate factors by parameter tier (``train.lr_tiers``), times ``train.lr``.

    The model sorts its parameters into tiers
    (:meth:`~vocalis.models.SpeechClassifier.parameter_tiers`; a model without a
    pretrained encoder has only ``head``).

    Args:
        frozen: encoder layers frozen at first (trained once unfrozen).
        encoder: the encoder's trainable layers.
        head: everything after the encoder (layer weights, pooling, MLP, head).

    Example:
        >>> LRTiers(encoder=0.2).frozen
        0.01
    """

    frozen: float = 0.01
    encoder: float = 0.1
    head: float = 1.0

    def __post_init__(self) -> None:
        for key in ("frozen", "encoder", "head"):
            if getattr(self, key) < 0:
                raise ConfigError(
                    f"train.lr_tiers.{key}: got {getattr(self, key)}, expected a factor >= 0"
                )


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation loop.

    Args:
        epochs: passes over the training split.
        batch_size: utterances per step (per process under DDP).
        lr: learning rate (peak rate after warm-up).
        optimizer: ``adam``, ``adamw`` or ``sgd``.
        momentum: SGD momentum.
        nesterov: SGD Nesterov momentum.
        weight_decay: L2 (adam, sgd) or decoupled (adamw) weight decay.
        scheduler: ``cosine``, ``cosine_restarts``, ``plateau``, ``onecycle``, ``step``
            or ``none``.
        warmup_epochs: linear warm-up from 0 to ``lr`` (not with plateau/onecycle).
        min_lr: floor of the cosine schedules.
        cosine_t_max_epochs: ``cosine``: epochs from the end of the warm-up down to
            ``min_lr`` (T_max); past them the rate stays at ``min_lr``. ``null``: the
            rest of the run.
        max_lr: peak of ``onecycle`` (default ``10 * lr``).
        step_epochs: ``step``: epochs between decays.
        gamma: ``step``: decay factor.
        restart_epochs: ``cosine_restarts``: epochs of the first cycle.
        restart_mult: ``cosine_restarts``: cycle length multiplier.
        plateau_patience: ``plateau``: epochs without improvement before a decay.
        plateau_factor: ``plateau``: decay factor.
        loss: ``ce``, ``focal``, ``aam`` (needs cosine logits), ``bce`` (multi-label on
            0/1 columns), ``mse`` or ``smoothl1`` (regression, z-scored targets); one
            name for every head or ``{head: loss}`` (heads not named take ``ce``).
        loss_weights: ``{head: weight}`` of each head's loss in the total (default 1).
        label_smoothing: for ``ce``/``focal``/``aam``.
        class_weights: ``auto`` (inverse training frequency, averaging 1 per item), ``none`` or a
            list with one weight per class (in label order).
        focal_gamma: focusing parameter of ``focal`` (0 gives ``ce``).
        aam_margin: additive angular margin of ``aam`` (radians).
        aam_scale: logit scale of ``aam``.
        aam_margin_warmup_epochs: ``aam``: the margin grows linearly from 0 (first
            epoch) to ``aam_margin`` over this many epochs (0: the full margin at once).
        multitask_lambda: weight of the auxiliary regression loss on the model's
            ``extras["va"]`` against ``dataset.regression_columns`` (0: off).
        multitask_loss: ``smoothl1`` or ``mse``.
        patience: early stopping: epochs without improvement (0: off).
        min_delta: early stopping: smallest change that counts as improvement.
        monitor: metric that picks ``best.pt`` and drives early stopping; ``epoch``
            keeps the last epoch (a fixed schedule: no choice on the validation split).
        mode: ``max`` or ``min`` for ``monitor`` (``max`` with ``epoch``).
        grad_clip: max gradient norm (0: off).
        amp: mixed precision (fp16 + GradScaler on CUDA, bf16 on CPU).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        seed: run seed; every random stream is derived from it.
        deterministic: ``torch.use_deterministic_algorithms`` (slower on GPU).
        num_workers: DataLoader worker processes.
        bucketing: batch utterances of similar length (less padding).
        crop_seconds: train on random crops of this length (``null``: whole files).
        lr_tiers: one parameter group per tier of the model with ``lr`` times the
            tier's factor (:class:`LRTiers`, e.g. ``{frozen: 0.01, encoder: 0.1,
            head: 1.0}``); ``null``: one group. Not with ``scheduler=onecycle``.
        gradient_checkpointing: recompute the pretrained encoder's activations in the
            backward pass (less memory, about a third more time; ``model=ssl``).
        members: train this many copies of the model with seeds ``seed``, ``seed + 1``,
            ... (each its own initialisation, batch order and augmentation draws, in
            ``members/<k>/`` of the run folder) and predict with the mean of their class
            probabilities (:mod:`vocalis.training.members`); 1: one model. The same
            validation rows for every member; one class head only.
    """

    epochs: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    scheduler: Literal["cosine", "cosine_restarts", "plateau", "onecycle", "step", "none"] = (
        "cosine"
    )
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    cosine_t_max_epochs: float | None = None
    max_lr: float | None = None
    step_epochs: int = 10
    gamma: float = 0.5
    restart_epochs: int = 10
    restart_mult: int = 1
    plateau_patience: int = 3
    plateau_factor: float = 0.5
    loss: str | dict[str, str] = "ce"
    loss_weights: dict[str, float] = field(default_factory=dict)
    label_smoothing: float = 0.0
    class_weights: str | list[float] = "none"
    focal_gamma: float = 2.0
    aam_margin: float = 0.2
    aam_scale: float = 30.0
    aam_margin_warmup_epochs: float = 0.0
    multitask_lambda: float = 0.0
    multitask_loss: Literal["smoothl1", "mse"] = "smoothl1"
    patience: int = 10
    min_delta: float = 0.0
    monitor: str = "val_uar"
    mode: Literal["max", "min"] = "max"
    grad_clip: float = 1.0
    amp: bool = False
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    num_workers: int = 0
    bucketing: bool = True
    crop_seconds: float | None = None
    lr_tiers: LRTiers | None = None
    gradient_checkpointing: bool = False
    members: int = 1

    def __post_init__(self) -> None:
        def bad(key: str, expected: str) -> ConfigError:
            return ConfigError(f"train.{key}: got {getattr(self, key)!r}, expected {expected}")

        if self.epochs < 1:
            raise bad("epochs", "at least 1")
        if self.batch_size < 1:
            raise bad("batch_size", "at least 1")
        if not isinstance(self.members, int) or isinstance(self.members, bool) or self.members < 1:
            raise bad("members", "a whole number >= 1 (1: one model)")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise bad("lr", "a positive finite learning rate such as 1e-3")
        if not (math.isfinite(self.min_lr) and self.min_lr >= 0):
            raise bad("min_lr", "a finite learning rate >= 0")
        if self.max_lr is not None and not (math.isfinite(self.max_lr) and self.max_lr > 0):
            raise bad("max_lr", "a positive finite learning rate or null")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise bad("label_smoothing", "a value in [0, 1)")
        if isinstance(self.class_weights, str) and self.class_weights not in ("auto", "none"):
            raise bad("class_weights", "auto, none or a list of numbers")
        if self.monitor not in MONITORS and not self.monitor.startswith("val_"):
            raise ConfigError(
                f"train.monitor: got {self.monitor!r}{did_you_mean(self.monitor, MONITORS)}, "
                f"expected one of: {', '.join(MONITORS)}"
            )
        if self.monitor == "epoch" and self.mode != "max":
            raise bad("mode", "max with train.monitor=epoch (the last epoch is kept)")
        if self.monitor == "epoch" and self.scheduler == "plateau":
            raise bad("scheduler", "not plateau with train.monitor=epoch (it would never decay)")
        if self.grad_clip < 0:
            raise bad("grad_clip", ">= 0 (0 disables clipping)")
        if self.patience < 0:
            raise bad("patience", ">= 0 (0 disables early stopping)")
        if self.cosine_t_max_epochs is not None and not self.cosine_t_max_epochs > 0:
            raise bad("cosine_t_max_epochs", "a positive number of epochs, or null (the whole run)")
        if self.aam_margin_warmup_epochs < 0:
            raise bad("aam_margin_warmup_epochs", ">= 0 (0: the full margin from the start)")
        if self.warmup_epochs < 0:
            raise bad("warmup_epochs", ">= 0 (0 disables warm-up)")
        if self.crop_seconds is not None and self.crop_seconds <= 0:
            raise bad("crop_seconds", "a positive duration in seconds or null")
        if self.device != "auto" and not (
            self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")
        ):
            raise bad("device", "auto, cpu, cuda or cuda:N")
        if self.num_workers < 0:
            raise bad("num_workers", ">= 0")
        if self.lr_tiers is not None and self.scheduler == "onecycle":
            raise ConfigError(
                "train.lr_tiers: scheduler=onecycle drives every group to one max_lr; use "
                "cosine, cosine_restarts, step, plateau or none with learning-rate tiers"
            )

    @property
    def peak_lr(self) -> float:
        """The peak rate of ``onecycle``: ``max_lr``, or ``10 * lr`` when it is null.

        Example:
            >>> TrainConfig(lr=1e-3).peak_lr, TrainConfig(lr=1e-3, max_lr=2e-3).peak_lr
            (0.01, 0.002)
        """
        return self.max_lr if self.max_lr is not None else 10 * self.lr


#: Metrics that ``train.monitor`` can follow (plus ``val_<head>_<metric>`` of a multi-head
#: run: ``uar``, ``acc``, ``macro_f1`` of class heads, ``macro_auc`` of multi-label heads,
#: ``ccc``, ``mae``, ``rmse`` of regression heads). ``val_ccc`` is the mean CCC of the
#: regression heads; a run without class heads follows it when ``val_uar`` is asked for.
#: ``epoch`` keeps the last epoch (every epoch "improves"; no early stop).
MONITORS = ("val_uar", "val_acc", "val_loss", "val_macro_f1", "val_ccc", "epoch")


@dataclass(frozen=True)
class ExperimentConfig:
    """One training run: dataset, features, model, training loop, augmentation, tracking.

    ``tracking`` (:class:`~vocalis.training.tracking.TrackingConfig`) only says where
    metrics go besides ``history.csv``; changing it never blocks a resume.
    """

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self) -> None:
        from vocalis.data.targets import check_head_options

        names = self.dataset.head_names
        check_head_options(names, self.train.loss, self.train.loss_weights)
        monitor = self.train.monitor
        if monitor not in MONITORS and not any(monitor.startswith(f"val_{n}_") for n in names):
            raise ConfigError(
                f"train.monitor: got {monitor!r}{did_you_mean(monitor, MONITORS)}, expected one "
                f"of: {', '.join(MONITORS)} or val_<head>_<metric> for a head of "
                f"{', '.join(names)}"
            )
        self._check_members()

    def uses_heads(self) -> bool:
        """Whether the run trains explicit heads (``dataset.label_columns`` or a regression loss).

        Without, a run is the classic single class head on ``dataset.label_column``.
        """
        from vocalis.data.targets import REGRESSION_LOSSES

        loss = self.train.loss
        several = not isinstance(loss, str) or loss in REGRESSION_LOSSES
        return bool(self.dataset.label_columns) or several

    def _check_members(self) -> None:
        """Refuse a seed ensemble (``train.members`` > 1) of several heads."""
        t = self.train
        if t.members > 1 and (self.uses_heads() or t.multitask_lambda > 0):
            raise ConfigError(
                f"train.members={t.members} averages one class head; this run trains "
                "several heads (dataset.label_columns, a regression loss or "
                "train.multitask_lambda): set train.members=1"
            )


def _bare_model(name: str) -> dict[str, Any]:
    return {"name": name}


def _bare_features(name: str) -> dict[str, Any]:
    return {"extractor": {"name": name}}


def compose(
    recipe: str | os.PathLike | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    root: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Compose the raw config dict of a neural recipe: groups, recipe body, overrides.

    Args:
        recipe: a recipe path or name (``defaults`` + overrides), or ``None``.
        overrides: ``group=name`` choices and dotted ``section.key=value`` overrides.
        root: the ``configs/`` folder (default: :func:`vocalis.config.config_dir`).

    Returns:
        A plain dict with the sections ``dataset``, ``features``, ``model``, ``train``
        and ``tracking``.

    Raises:
        ConfigError: a missing file, an unknown group or section, a malformed
            override, or an ensemble recipe (with the command that runs it).
    """
    _register_resolvers()
    overrides = [_model_shorthand(item) for item in overrides]
    if recipe is not None:
        path = find_recipe(recipe, root)
        if _is_ensemble(read_yaml(path)):
            raise ConfigError(
                f"{path} is an ensemble recipe (functional features + linear SVM fusion), "
                f"not a neural training config; run it with `vocalis train --config {path}` "
                f"(fits on all rows) or `vocalis loso --config {path}`"
            )
        recipe = path
    return compose_groups(
        recipe,
        overrides,
        root=root,
        default_groups=DEFAULT_GROUPS,
        sections=GROUPS,
        fallbacks={"model": _bare_model, "features": _bare_features},
    )


def _model_shorthand(item: str) -> str:
    """``model.mode=3`` -> ``model.params.mode=3``: a model key other than name / params.

    Example:
        >>> _model_shorthand("model.fusion=gating"), _model_shorthand("model.name=ecapa")
        ('model.params.fusion=gating', 'model.name=ecapa')
    """
    key, sep, value = item.partition("=")
    parts = key.strip().lstrip("+").split(".")
    if sep and len(parts) >= 2 and parts[0] == "model" and parts[1] not in ("name", "params"):
        return f"model.params.{'.'.join(parts[1:])}={value}"
    return item


def _register_resolvers() -> None:
    """Register the resolvers recipes may call.

    ``${sv_features:MODE,HANDCRAFTED}``: the extractor a speaker-verification mode
    reads (:func:`vocalis.features.config.stack_name`).
    """
    from omegaconf import OmegaConf

    from vocalis.features.config import stack_name

    if not OmegaConf.has_resolver("sv_features"):
        OmegaConf.register_new_resolver("sv_features", stack_name)


def _is_ensemble(body: dict[str, Any]) -> bool:
    from vocalis.ensemble.recipe_file import is_ensemble_recipe

    return is_ensemble_recipe(body)


def from_raw(raw: dict[str, Any]) -> ExperimentConfig:
    """Validate a composed dict into an :class:`ExperimentConfig`.

    Args:
        raw: plain data with the sections ``dataset``, ``features``, ``model``, ``train``
            (a composed recipe, or a run folder's ``config.yaml``).

    Raises:
        ConfigError: an unknown key (with the nearest one, or the section where a key of
            that name lives: :func:`key_elsewhere`) or an invalid value, named by its
            dotted path (``model.params.dropout``); a ``train.augment`` section
            (augmentation moved to the ``augment`` section: the message gives the new keys).
    """
    train = raw.get("train")
    if isinstance(train, dict) and isinstance(train.get("augment"), dict):
        raise ConfigError(moved_augment_message(train["augment"]))
    try:
        return from_dict(ExperimentConfig, _normalization_shorthand(raw))
    except UnknownKeyError as err:
        model = raw.get("model")
        name = model.get("name") if isinstance(model, dict) else None
        hint = key_elsewhere(err.path, name if isinstance(name, str) else None, err.value)
        raise (UnknownKeyError(hint, err.path, err.value) if hint else err) from None


def key_elsewhere(path: str, model: str | None = None, value: Any = None) -> str:
    """The message for an unknown key that another section of the experiment has.

    Options are spread over sections by what they act on, and users guess wrong:
    ``train.unfreeze_after_epochs`` is an encoder setting, ``model.encoder.gradient_
    checkpointing`` a training one.

    Args:
        path: the unknown key's dotted path as :func:`vocalis.config.from_dict` names it
            (``train.unfreeze_after_epochs``, ``model.params.encoder.gradient_checkpointing``).
        model: the experiment's model name, whose parameters are searched too (written
            ``model.<key>``, the command-line shorthand of ``model.params.<key>``).
        value: the value given; a mapping is matched with sections only (``model.encoder:
            {source: ge2e}`` is not ``train.lr_tiers.encoder``), anything else with
            plain keys only.

    Returns:
        ``"unknown key 'P' (did you mean 'S.K'?)"`` naming at most three places, or
        ``""`` when no other section has a key of that name (or too many do).

    Example:
        >>> print(key_elsewhere("model.params.encoder.lr", "ssl"))
        unknown key 'model.encoder.lr' (did you mean 'train.lr'?)
        >>> key_elsewhere("train.no_such_key", "ssl")
        ''
    """
    from vocalis.models import model_config_class

    every = key_paths(ExperimentConfig)
    if model is not None:
        with contextlib.suppress(ConfigError):  # an unknown model has its own message
            for name, paths in key_paths(model_config_class(model), "model").items():
                every[name] = every.get(name, []) + paths
    flat = {p for paths in every.values() for p in paths}

    def section(place: str) -> bool:
        return any(q.startswith(place + ".") for q in flat)

    shown = path.replace("model.params.", "model.", 1)
    places = [
        p
        for p in every.get(path.rsplit(".", 1)[-1], [])
        if p not in (path, shown)
        and not p.startswith("model.params")
        and section(p) == isinstance(value, dict)
    ]
    if not places or len(places) > 3:
        return ""
    return f"unknown key '{shown}' (did you mean {' or '.join(repr(p) for p in places)}?)"


def _normalization_shorthand(raw: dict[str, Any]) -> dict[str, Any]:
    """``features.normalization: {mean, std}`` -> ``global`` + ``normalization_stats``."""
    feats = raw.get("features")
    norm = feats.get("normalization") if isinstance(feats, dict) else None
    if not isinstance(norm, dict):
        return raw
    norm = dict(norm)
    mode = norm.pop("mode", "global")
    unknown = sorted(set(norm) - {"mean", "std"})
    if unknown or not {"mean", "std"} <= set(norm):
        raise ConfigError(
            f"features.normalization: got keys {sorted(norm)}, expected {{mean: M, std: S}} "
            "(fixed dataset statistics) or one of global, utterance, speaker, none"
        )
    return {**raw, "features": {**feats, "normalization": mode, "normalization_stats": norm}}


def moved_augment_message(old: dict[str, Any]) -> str:
    """The one-line error for a ``train.augment`` section, with the keys that replace it.

    Example:
        >>> moved_augment_message({"specaugment": True, "mixup_alpha": 0.2}).split(": ")[-1]
        'augment.spec_mask.p=1 augment.mixup.p=1 augment.mixup.alpha=0.2 (see configs/augment/)'
    """
    new: list[str] = []
    for key, value in old.items():
        if key == "specaugment":
            new.append(f"augment.spec_mask.p={1 if value else 0}")
        elif key in ("time_masks", "time_mask_frames", "freq_masks", "freq_mask_bins"):
            new.append(f"augment.spec_mask.{key}={value}")
        elif key == "mixup_alpha":
            new += [f"augment.mixup.p={1 if value else 0}"]
            new += [f"augment.mixup.alpha={value}"] if value else []
        elif key == "waveform_copies":
            share = round(value / (value + 1), 2) if value else 0  # augmented share of the rows
            new += [f"augment.noise.p={share}", f"augment.gain.p={share}"]
        elif key in ("min_snr_db", "max_snr_db"):
            new.append(f"augment.noise.{key}={value}")
        elif key == "max_gain_db":
            new += [f"augment.gain.min_gain_db={-value}", f"augment.gain.max_gain_db={value}"]
        else:
            new.append(f"augment.<transform>.{key}")
    return (
        "train.augment moved to its own section, augment (group configs/augment/: augment=default, "
        "augment=waveform_default; noisy copies are now drawn on the fly in the data loader); "
        f"instead of train.augment write: {' '.join(new) or 'augment=none'} (see configs/augment/)"
    )


def load_config(
    path: str | os.PathLike | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    root: str | os.PathLike | None = None,
) -> ExperimentConfig:
    """Compose, override and validate a neural experiment config.

    Args:
        path: recipe path or name (``configs/recipes/emodb_tier1.yaml`` or
            ``emodb_tier1``), or ``None`` for the default groups
            (``features=mfcc model=tier1 train=default``).
        overrides: ``group=name`` and ``section.key=value`` strings.
        root: the ``configs/`` folder (default: next to the recipe, else
            ``$VOCALIS_CONFIG_DIR``, ``./configs`` or the source tree's).

    Returns:
        The validated config.

    Raises:
        ConfigError: unknown key (with the nearest valid one), bad value or file, or
            an ensemble recipe (load it with :func:`load_recipe`).
    """
    return from_raw(compose(path, overrides, root=root))


def load_recipe(
    recipe: str | os.PathLike | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    root: str | os.PathLike | None = None,
) -> ExperimentConfig | EnsembleRecipe:
    """Load any recipe: a neural experiment or a ``kind: ensemble`` recipe.

    Both kinds take config groups (a ``defaults`` list) and ``key=value``
    overrides; an ensemble's overrides address its own keys
    (``manifest=work/emodb.csv``, ``ensemble.fusion_resolution=0``,
    ``cache_dir=null``).

    Args:
        recipe: recipe path or name, or ``None`` (the default neural groups).
        overrides: ``group=name`` and ``key=value`` strings.
        root: the ``configs/`` folder (see :func:`load_config`).

    Returns:
        An :class:`ExperimentConfig`, or an
        :class:`~vocalis.ensemble.recipe_file.EnsembleRecipe` (its ``source`` is the file).

    Raises:
        ConfigError: an unknown key (with the nearest one), bad value or missing file;
            the message names the recipe file.

    Example:
        >>> recipe = load_recipe("emodb_functionals_online", ["ensemble.fusion_resolution=0"])
        >>> type(recipe).__name__, recipe.ensemble.fusion_resolution
        ('EnsembleRecipe', 0)
        >>> load_recipe("emodb_tier1", ["train.epochs=2"]).train.epochs
        2
    """
    if recipe is None:
        return load_config(None, overrides, root=root)
    path = find_recipe(recipe, root)
    if not _is_ensemble(read_yaml(path)):
        return load_config(path, overrides, root=root)
    from vocalis.ensemble.recipe_file import recipe_from_dict

    raw = compose_groups(path, overrides, root=root)
    try:
        return recipe_from_dict(raw, str(path))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def config_to_yaml(config: ExperimentConfig) -> str:
    """The resolved config as YAML text (what ``config.yaml`` in a run folder holds)."""
    import yaml

    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=False)


def config_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts.

    Example:
        >>> config_diff({"train": {"lr": 1.0, "epochs": 2}}, {"train": {"lr": 2.0, "epochs": 2}})
        ['train.lr']
    """
    keys: list[str] = []
    for key in sorted(set(old) | set(new)):
        at = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys.extend(config_diff(a, b, at + "."))
        elif a != b:
            keys.append(at)
    return keys
