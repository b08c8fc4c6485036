"""The experiment config: YAML groups composed by name, overridden, then typed.

A run is described by one :class:`ExperimentConfig` with four sections
(``dataset``, ``features``, ``model``, ``train``). Its YAML comes from groups in
``configs/`` (one folder per concern)::

    configs/dataset/emodb.yaml    configs/features/mfcc.yaml
    configs/model/tier1.yaml      configs/train/default.yaml

A recipe picks one file per group and adds its own overrides::

    defaults:
      - dataset: emodb
      - features: mfcc
      - model: tier1
      - train: default
    train:
      epochs: 30

Command-line overrides are either a group choice (``model=ecapa``) or a dotted
key (``train.lr=3e-4``). OmegaConf does the merging; the result is validated once
into frozen dataclasses whose unknown keys raise :class:`~vocalis.errors.ConfigError`
with the nearest valid key.

Example:
    >>> cfg = load_config(None, ["train.epochs=3", "train.lr=0.01"])
    >>> cfg.train.epochs, cfg.train.lr, cfg.dataset.val_protocol
    (3, 0.01, 'speaker')
    >>> load_config(None, ["train.epoch=3"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    vocalis.errors.ConfigError: unknown key 'train.epoch' (did you mean 'epochs'?); ...
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vocalis.config import from_dict, to_dict
from vocalis.errors import ConfigError
from vocalis.registry import did_you_mean

#: Config groups, in the order they are composed.
GROUPS = ("dataset", "features", "model", "train")

#: Groups used when neither a recipe nor the command line picks one.
DEFAULT_GROUPS = {"features": "mfcc", "model": "tier1", "train": "default"}

#: Keys that may differ between a run folder's config and a resumed run.
RESUMABLE_KEYS = (
    "train.epochs",
    "train.num_workers",
    "train.device",
    "features.workers",
    "features.cache_dir",
)


@dataclass(frozen=True)
class DatasetConfig:
    """Which manifest, which label, and how validation data is held out.

    Args:
        name: free-text corpus name (for the record only).
        manifest: manifest CSV path (or fsspec URL); set per run or in the recipe.
        label_column: manifest column with the class label.
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
    """

    name: str = ""
    manifest: str | None = None
    label_column: str = "label"
    label_map: str | dict | None = None
    unmapped: Literal["error", "drop", "keep"] = "error"
    val_protocol: Literal["speaker", "stratified", "split_column"] = "speaker"
    val_fraction: float = 0.2
    split_column: str = "split"
    regression_columns: list[str] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(
                f"dataset.val_fraction: got {self.val_fraction}, expected a fraction in (0, 1)"
            )


@dataclass(frozen=True)
class FeaturesConfig:
    """Tier 0, the feature extractor and normalisation.

    Args:
        tier0: :class:`vocalis.audio.Tier0Config` fields.
        extractor: :class:`vocalis.features.FeatureConfig` fields (``name`` picks it).
        normalization: ``global`` (mean/variance fit on the training split only),
            ``speaker`` (per-speaker statistics), ``utterance`` (per-utterance CMVN)
            or ``none``. With ``global`` and a model built with ``input_norm: true``
            the statistics are stored in the model instead (and the checkpoint's
            pipeline normalisation is ``none``), so exported models carry them.
        cache_dir: feature cache folder (``null``: no cache).
        workers: processes used for feature extraction.
        max_failures: share of unreadable files tolerated before training stops.
    """

    tier0: dict = field(default_factory=dict)
    extractor: dict = field(default_factory=lambda: {"name": "mfcc"})
    normalization: Literal["global", "utterance", "speaker", "none"] = "global"
    cache_dir: str | None = None
    workers: int = 2
    max_failures: float = 0.1

    def __post_init__(self) -> None:
        from vocalis.audio import Tier0Config
        from vocalis.features.config import FeatureConfig

        from_dict(Tier0Config, self.tier0, where="features.tier0")
        from_dict(FeatureConfig, self.extractor, where="features.extractor")
        if self.workers < 0:
            raise ConfigError(f"features.workers: got {self.workers}, expected >= 0")
        if not 0.0 <= self.max_failures < 1.0:
            raise ConfigError(
                f"features.max_failures: got {self.max_failures}, expected a fraction in [0, 1)"
            )


@dataclass(frozen=True)
class ModelConfig:
    """Which model and its parameters (validated by the model's own config class).

    Args:
        name: registry key (``tier1``, ``ecapa``).
        params: the model config's fields.
    """

    name: str = "tier1"
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation (validation and test data are never augmented).

    Args:
        specaugment: mask random time and frequency bands of the features.
        time_masks: number of time masks per utterance.
        time_mask_frames: maximum width of one time mask, in frames.
        freq_masks: number of frequency masks per utterance.
        freq_mask_bins: maximum width of one frequency mask, in feature bins.
        mixup_alpha: Beta(alpha, alpha) mixup of features and targets; 0 disables.
        waveform_copies: noisy/gain-changed copies of each training utterance added
            once, before feature extraction (0: off).
        min_snr_db: lowest SNR of the added white noise, in dB.
        max_snr_db: highest SNR of the added white noise, in dB.
        max_gain_db: gain drawn uniformly in [-max_gain_db, max_gain_db] dB.
    """

    specaugment: bool = False
    time_masks: int = 2
    time_mask_frames: int = 20
    freq_masks: int = 2
    freq_mask_bins: int = 8
    mixup_alpha: float = 0.0
    waveform_copies: int = 0
    min_snr_db: float = 10.0
    max_snr_db: float = 30.0
    max_gain_db: float = 6.0

    def __post_init__(self) -> None:
        for key in ("time_masks", "time_mask_frames", "freq_masks", "freq_mask_bins"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.augment.{key}: got {getattr(self, key)}, expected >= 0")
        if self.mixup_alpha < 0:
            raise ConfigError(f"train.augment.mixup_alpha: got {self.mixup_alpha}, expected >= 0")
        if self.waveform_copies < 0:
            raise ConfigError(
                f"train.augment.waveform_copies: got {self.waveform_copies}, expected >= 0"
            )
        if self.min_snr_db > self.max_snr_db:
            raise ConfigError(
                f"train.augment.min_snr_db: got {self.min_snr_db} > max_snr_db "
                f"{self.max_snr_db}; swap them"
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
        max_lr: peak of ``onecycle`` (default ``10 * lr``).
        step_epochs: ``step``: epochs between decays.
        gamma: ``step``: decay factor.
        restart_epochs: ``cosine_restarts``: epochs of the first cycle.
        restart_mult: ``cosine_restarts``: cycle length multiplier.
        plateau_patience: ``plateau``: epochs without improvement before a decay.
        plateau_factor: ``plateau``: decay factor.
        loss: ``ce``, ``focal``, ``aam`` (needs cosine logits), ``bce``.
        label_smoothing: for ``ce``/``focal``/``aam``.
        class_weights: ``auto`` (inverse training frequency, averaging 1 per item), ``none`` or a
            list with one weight per class (in label order).
        focal_gamma: focusing parameter of ``focal`` (0 gives ``ce``).
        aam_margin: additive angular margin of ``aam`` (radians).
        aam_scale: logit scale of ``aam``.
        multitask_lambda: weight of the auxiliary regression loss on the model's
            ``extras["va"]`` against ``dataset.regression_columns`` (0: off).
        multitask_loss: ``smoothl1`` or ``mse``.
        patience: early stopping: epochs without improvement (0: off).
        min_delta: early stopping: smallest change that counts as improvement.
        monitor: metric that picks ``best.pt`` and drives early stopping.
        mode: ``max`` or ``min`` for ``monitor``.
        grad_clip: max gradient norm (0: off).
        amp: mixed precision (fp16 + GradScaler on CUDA, bf16 on CPU).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        seed: run seed; every random stream is derived from it.
        deterministic: ``torch.use_deterministic_algorithms`` (slower on GPU).
        num_workers: DataLoader worker processes.
        bucketing: batch utterances of similar length (less padding).
        crop_seconds: train on random crops of this length (``null``: whole files).
        augment: augmentation settings.
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
    max_lr: float | None = None
    step_epochs: int = 10
    gamma: float = 0.5
    restart_epochs: int = 10
    restart_mult: int = 1
    plateau_patience: int = 3
    plateau_factor: float = 0.5
    loss: str = "ce"
    label_smoothing: float = 0.0
    class_weights: str | list[float] = "none"
    focal_gamma: float = 2.0
    aam_margin: float = 0.2
    aam_scale: float = 30.0
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
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        def bad(key: str, expected: str) -> ConfigError:
            return ConfigError(f"train.{key}: got {getattr(self, key)!r}, expected {expected}")

        if self.epochs < 1:
            raise bad("epochs", "at least 1")
        if self.batch_size < 1:
            raise bad("batch_size", "at least 1")
        if self.lr <= 0:
            raise bad("lr", "a positive learning rate such as 1e-3")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise bad("label_smoothing", "a value in [0, 1)")
        if isinstance(self.class_weights, str) and self.class_weights not in ("auto", "none"):
            raise bad("class_weights", "auto, none or a list of numbers")
        if self.monitor not in MONITORS:
            raise ConfigError(
                f"train.monitor: got {self.monitor!r}{did_you_mean(self.monitor, MONITORS)}, "
                f"expected one of: {', '.join(MONITORS)}"
            )
        if self.grad_clip < 0:
            raise bad("grad_clip", ">= 0 (0 disables clipping)")
        if self.patience < 0:
            raise bad("patience", ">= 0 (0 disables early stopping)")
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


#: Metrics that ``train.monitor`` can follow.
MONITORS = ("val_uar", "val_acc", "val_loss", "val_macro_f1")


@dataclass(frozen=True)
class ExperimentConfig:
    """One training run: dataset, features, model and training loop."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def config_dir() -> Path:
    """The ``configs/`` folder: ``$VOCALIS_CONFIG_DIR``, ``./configs`` or the source tree's."""
    env = os.environ.get("VOCALIS_CONFIG_DIR")
    if env:
        return Path(env)
    here = Path("configs")
    if (here / "train").is_dir():
        return here
    return Path(__file__).resolve().parents[3] / "configs"


def _read_yaml(path: Path) -> dict[str, Any]:
    from omegaconf import OmegaConf

    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{path}: not valid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _group_file(root: Path, group: str, name: str) -> Path | None:
    path = root / group / f"{name}.yaml"
    return path if path.is_file() else None


def _group_body(root: Path, group: str, name: str) -> dict[str, Any]:
    """The section a group choice stands for (``model=ecapa`` -> configs/model/ecapa.yaml)."""
    path = _group_file(root, group, name)
    if path is not None:
        body = _read_yaml(path)
        body.pop("defaults", None)
        return body
    # No file: a bare registry name is still a valid choice for models and features.
    if group == "model":
        return {"name": name}
    if group == "features":
        return {"extractor": {"name": name}}
    available = sorted(p.stem for p in (root / group).glob("*.yaml")) if root.is_dir() else []
    raise ConfigError(
        f"{group}={name}: no {root / group / (name + '.yaml')}{did_you_mean(name, available)}; "
        f"available: {', '.join(available) or 'none'}"
    )


def _parse_defaults(raw: Any, where: str) -> dict[str, str]:
    choices: dict[str, str] = {}
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else None
    if items is None:
        raise ConfigError(f"{where}: 'defaults' must be a list like [dataset: emodb, model: tier1]")
    for item in items:
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: defaults entry {item!r} is not 'group: name'")
        for group, name in item.items():
            if group not in GROUPS:
                raise ConfigError(
                    f"{where}: unknown config group '{group}'{did_you_mean(str(group), GROUPS)}; "
                    f"groups: {', '.join(GROUPS)}"
                )
            choices[str(group)] = str(name)
    return choices


def compose(
    recipe: str | os.PathLike | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    root: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Compose the raw config dict: group defaults, recipe body, command-line overrides.

    Args:
        recipe: a recipe YAML (``defaults`` + overrides) or ``None``.
        overrides: ``group=name`` choices and dotted ``section.key=value`` overrides.
        root: the ``configs/`` folder (default: :func:`config_dir`).

    Returns:
        A plain dict with the sections ``dataset``, ``features``, ``model``, ``train``.

    Raises:
        ConfigError: a missing file, an unknown group or a malformed override.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    base = Path(root) if root is not None else None
    body: dict[str, Any] = {}
    choices = dict(DEFAULT_GROUPS)
    if recipe is not None:
        path = Path(recipe)
        body = _read_yaml(path)
        if body.get("kind") == "ensemble" or "ensemble" in body:
            raise ConfigError(
                f"{path} is an ensemble recipe (functional features + linear SVM fusion), "
                f"not a neural training config; run it with `vocalis loso --config {path}`"
            )
        if base is None and path.resolve().parent.parent.joinpath("train").is_dir():
            base = path.resolve().parent.parent
        if "defaults" in body:
            choices.update(_parse_defaults(body.pop("defaults"), str(path)))
        unknown = [k for k in body if k not in GROUPS]
        if unknown:
            raise ConfigError(
                f"{path}: unknown section '{unknown[0]}'{did_you_mean(unknown[0], GROUPS)}; "
                f"sections: {', '.join(GROUPS)}"
            )
    base = base or config_dir()
    dotted: list[str] = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.epochs=30")
        key, value = item.split("=", 1)
        key = key.strip().lstrip("+")
        if "." not in key:
            if key not in GROUPS:
                raise ConfigError(
                    f"override {item!r}: '{key}' is not a config group"
                    f"{did_you_mean(key, GROUPS)}; use group=name or section.key=value"
                )
            choices[key] = value.strip()
        else:
            dotted.append(f"{key}={value}")
    # A new model choice must not inherit the recipe's params for another model.
    merged = OmegaConf.create({g: {} for g in GROUPS})
    for group in GROUPS:
        if group in choices:
            merged = OmegaConf.merge(merged, {group: _group_body(base, group, choices[group])})
    try:
        if body:
            merged = OmegaConf.merge(merged, body)
        if dotted:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(dotted))
    except OmegaConfBaseException as err:
        first = str(err).splitlines()[0]
        raise ConfigError(f"cannot merge config overrides ({first})") from None
    return OmegaConf.to_container(merged, resolve=True)  # type: ignore[return-value]


def validate_model_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check ``model.params`` against the model's own config class; returns full params.

    Falls back to returning ``params`` unchanged when the model registry is not
    importable (the model is validated again when it is built).
    """
    try:
        from vocalis.models import MODELS, default_model_config
    except ImportError:
        return dict(params)
    MODELS.get(name)  # unknown model -> ConfigError with suggestion
    default = default_model_config(name)
    if dataclasses.is_dataclass(default):
        return to_dict(from_dict(type(default), params, where="model.params"))
    if isinstance(default, dict):
        valid = list(default)
        for key in params:
            if key not in default:
                raise ConfigError(
                    f"unknown key 'model.params.{key}'{did_you_mean(str(key), valid)}; "
                    f"valid keys: {', '.join(valid)}"
                )
        return {**default, **params}
    return dict(params)


def from_raw(raw: dict[str, Any], *, check_model: bool = True) -> ExperimentConfig:
    """Validate a composed dict into an :class:`ExperimentConfig`."""
    cfg = from_dict(ExperimentConfig, raw)
    from vocalis.audio import Tier0Config
    from vocalis.features.config import FeatureConfig

    features = dataclasses.replace(
        cfg.features,
        tier0=to_dict(from_dict(Tier0Config, cfg.features.tier0)),
        extractor=to_dict(from_dict(FeatureConfig, cfg.features.extractor)),
    )
    cfg = dataclasses.replace(cfg, features=features)
    if check_model:
        full = validate_model_params(cfg.model.name, cfg.model.params)
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, params=full))
    return cfg


def load_config(
    path: str | os.PathLike | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    root: str | os.PathLike | None = None,
) -> ExperimentConfig:
    """Compose, override and validate an experiment config.

    Args:
        path: recipe YAML (``configs/recipes/emodb_tier1.yaml``) or ``None`` for the
            default groups (``features=mfcc model=tier1 train=default``).
        overrides: ``group=name`` and ``section.key=value`` strings.
        root: the ``configs/`` folder (default: next to the recipe, else
            ``$VOCALIS_CONFIG_DIR``, ``./configs`` or the source tree's).

    Returns:
        The validated config.

    Raises:
        ConfigError: unknown key (with the nearest valid one), bad value or file.
    """
    return from_raw(compose(path, overrides, root=root))


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
