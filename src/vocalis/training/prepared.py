"""The data of one run: rows, splits, labels, normalised features and datasets.

:func:`prepare_data` is the first half of :func:`vocalis.training.train`: read the
manifest, split it (speaker-independent by default), compute cached features
(failed files are skipped and logged), encode labels (from the training split;
a validation or test label unseen in training is an error), fit the normaliser
and build the :class:`~vocalis.training.data.FeatureDataset` of each part (the
training part as a :class:`~vocalis.training.data.WaveformDataset` when waveform
augmentation is on: tier-0 audio in memory, features computed per step).
Nothing is written to the run folder here, so bad input leaves it untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from vocalis.errors import DataError
from vocalis.training.config import ExperimentConfig
from vocalis.training.distributed import DistInfo, barrier
from vocalis.training.runfolder import RunFolder


@dataclass
class PreparedData:
    """Everything :func:`prepare_data` built.

    Attributes:
        rows: the manifest (label map applied).
        train_idx, val_idx, test_idx: manifest rows of each part (unreadable files dropped).
        encoder: the :class:`~vocalis.data.LabelEncoder` of the training labels.
        normalizer: the fitted :class:`~vocalis.features.normalize.FeatureNormalizer` applied to
            the datasets (``none`` when the model normalises its own input).
        model_norm: ``(mean, std)`` (F,) each for the model's ``input_norm`` layer when
            ``features.normalization=global`` and ``model.params.input_norm`` is true:
            the statistics then travel inside the model (and its exports), else ``None``.
        train, val, test: the datasets (``test`` is ``None`` without test rows); ``train``
            is a :class:`~vocalis.training.data.WaveformDataset` (features from
            augmented audio, on the fly) when ``augment`` has a waveform transform on.
        feature_dim: F.
        skipped: :class:`~vocalis.data.failures.Skipped` rows (unreadable audio),
            written to the run folder's ``errors.csv``.
        n_rows: the rows of the split before any was skipped.
        parts_from: where fixed parts came from (a split folder, ``--val-csv`` /
            ``--test-csv``: :func:`~vocalis.training.pipeline.given_parts`), else ``None``.
        val_fixed: the validation rows are one of those fixed parts (not held out).
        heads: the fitted :class:`~vocalis.data.targets.HeadSpec` of every head of a
            multi-head run (``dataset.label_columns``, or a regression loss), else
            ``None`` (one class head on ``dataset.label_column``, ``encoder``'s classes).
        aux_heads: a single-head run's reported auxiliary heads (the valence/arousal
            head, see :attr:`report_heads`).
        label_column: the class label column of a single-head run.
    """

    rows: Any
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    encoder: Any
    normalizer: Any
    train: Any
    val: Any
    test: Any | None
    feature_dim: int
    model_norm: tuple[torch.Tensor, torch.Tensor] | None = None
    skipped: list = field(default_factory=list)
    n_rows: int = 0
    parts_from: str | None = None
    val_fixed: bool = False
    heads: list | None = None
    aux_heads: list = field(default_factory=list)
    label_column: str = "label"

    @property
    def report_heads(self) -> list | None:
        """The heads a run reports: ``heads``, or the class head plus the auxiliary ones.

        A single-head run whose model has a valence/arousal head trained on
        ``dataset.regression_columns`` (``model.params.va_head``) reports that head as a
        regression head (raw targets, no z-scoring) beside its class head; ``None``
        for a plain single-head run.
        """
        if self.heads is not None:
            return self.heads
        if not self.aux_heads:
            return None
        return [self.class_head, *self.aux_heads]

    @property
    def class_head(self) -> Any:
        """The class head of a single-head run as a :class:`~vocalis.data.targets.HeadSpec`."""
        from vocalis.data.targets import HeadSpec

        column = self.label_column
        return HeadSpec(column, "multiclass", (column,), tuple(self.encoder.classes))

    @property
    def layout(self) -> Any:
        """The :class:`~vocalis.data.targets.HeadLayout` of ``heads`` (``None`` without)."""
        from vocalis.data.targets import HeadLayout

        return None if self.heads is None else HeadLayout(tuple(self.heads))


def _waveform_dataset(
    cfg: ExperimentConfig,
    rows: Any,
    idx: np.ndarray,
    frames: list[int],
    targets: list[int],
    speakers: list[str],
    normalizer: Any,
    regression: torch.Tensor | None,
    crop_frames: int | None,
    progress: bool,
    head_targets: torch.Tensor | None = None,
) -> Any:
    """The training split as tier-0 waveforms augmented on the fly (``augment`` has some on)."""
    from tqdm.auto import tqdm

    from vocalis.audio import run_tier0
    from vocalis.augment import WaveformAugment
    from vocalis.training.data import WaveformDataset

    pipe = cfg.features.pipeline
    sr = pipe.tier0.sample_rate
    paths = [rows.paths[i] for i in idx.tolist()]
    bar = tqdm(paths, desc="Audio for augmentation", disable=not progress, leave=False, unit="file")
    waves = [run_tier0(path, pipe.tier0) for path in bar]
    crop_samples = round(cfg.train.crop_seconds * sr) if crop_frames else None
    return WaveformDataset(
        waves,
        targets,
        speakers,
        frames,
        pipe.features,
        normalizer,
        WaveformAugment(cfg.augment),
        sr,
        regression,
        crop_frames,
        crop_samples,
        head_targets=head_targets,
    )


def _positions(needed: np.ndarray, rows: Any, missing: list[tuple[str, str]]):
    """``(position in needed, (id, message))`` of each utterance without a precomputed input."""
    at = {rows.ids[int(i)]: k for k, i in enumerate(needed.tolist())}
    return [(at[rid], (rid, msg)) for rid, msg in missing]


def warn_rare_classes(labels: list[str], ids: list[str], rows: Any) -> list[str]:
    """Warn, in one line, about classes with a single training example; return them.

    A one-example class cannot be learned or validated; it is usually a typo or
    a label that belongs to one speaker only.
    """
    from collections import Counter

    counts = Counter(labels)
    rare = sorted(c for c, n in counts.items() if n == 1)
    if rare:
        where = {lab: i for lab, i in zip(labels, ids, strict=True) if lab in rare}
        logging.getLogger(__name__).warning(
            "%s: class(es) with a single training example: %s; such a class cannot be "
            "learned or validated: merge it with dataset.label_map or remove the row",
            rows.source,
            ", ".join(f"{c!r} (row {where[c]})" for c in rare),
        )
    return rare


def prepare_data(
    cfg: ExperimentConfig,
    manifest: Any,
    indices: tuple[Any, Any, Any],
    dist: DistInfo,
    run: RunFolder,
    progress: bool,
) -> PreparedData:
    """Read, split, featurise and normalise the data of one run (see :class:`PreparedData`)."""
    from vocalis.data import LabelEncoder, encode_known
    from vocalis.features.normalize import FeatureNormalizer
    from vocalis.training.data import FeatureDataset, seconds_to_frames
    from vocalis.training.pipeline import (
        featurize_rows,
        given_parts,
        load_rows,
        regression_targets,
        speakers_of,
        split_rows,
    )

    pts = [p for p in (cfg.features.embedding_path, cfg.features.feature_path) if p]
    rows = load_rows(cfg.dataset, manifest, pts)
    caller = any(i is not None for i in indices)
    rows, indices, fixed = given_parts(cfg.dataset, rows, indices)
    if fixed:
        run.log(fixed)
    val_fixed = not caller and indices[1] is not None
    train_idx, val_idx, test_idx = split_rows(
        rows, cfg.dataset, cfg.train.seed, train=indices[0], val=indices[1], test=indices[2]
    )
    needed = np.concatenate([train_idx, val_idx, test_idx]).astype(np.int64)
    paths = [rows.paths[int(i)] for i in needed]
    if cfg.features.precomputed:
        from vocalis.features.precomputed import read_inputs

        fc = cfg.features
        feats, missing = read_inputs(
            [rows.ids[int(i)] for i in needed],
            dir=fc.dir,
            embedding_path=fc.embedding_path,
            feature_path=fc.feature_path,
        )
        failures = [
            (rows.paths[int(needed[k])], m[1]) for k, m in _positions(needed, rows, missing)
        ]
        if len(failures) > fc.max_failures * max(len(needed), 1):
            raise DataError(
                f"{len(failures)} of {len(needed)} utterances have no precomputed input (first: "
                f"{failures[0][1]}); features.max_failures={fc.max_failures}"
            )
    elif dist.enabled and cfg.features.cache_dir:
        # Rank 0 fills the cache, the others read it.
        feats = failures = None
        if dist.is_main:
            feats, failures = featurize_rows(paths, cfg.features, progress=progress)
        barrier(dist)
        if not dist.is_main:
            feats, failures = featurize_rows(paths, cfg.features, progress=False)
    else:
        feats, failures = featurize_rows(paths, cfg.features, progress=progress and dist.is_main)
    by_row = dict(zip(needed.tolist(), feats, strict=True))
    from vocalis.data.failures import Skipped, classify

    row_of = {rows.paths[int(i)]: int(i) for i in needed}
    skipped = []
    for path, message in failures:
        run.log(f"skipped {message if path in message else path + ': ' + message}", echo=False)
        i = row_of.get(path)
        rid = rows.ids[i] if i is not None else path
        skipped.append(Skipped(rid, path, "features", classify(message), message))

    def ok(idx: np.ndarray) -> np.ndarray:
        return np.asarray([i for i in idx.tolist() if by_row[i] is not None], dtype=np.int64)

    train_idx, val_idx, test_idx = ok(train_idx), ok(val_idx), ok(test_idx)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise DataError(
            f"{rows.source}: no readable file left in the "
            f"{'training' if len(train_idx) == 0 else 'validation'} "
            "split; check the audio paths in the manifest"
        )
    heads, packed = None, None
    if cfg.uses_heads():
        encoder, targets, heads, packed = _head_targets(cfg, rows, train_idx)
    else:
        labels = rows.labels(cfg.dataset.label_column)
        encoder = LabelEncoder.from_labels([labels[i] for i in train_idx])
        if len(encoder.classes) < 2:
            raise DataError(
                f"{rows.source}: the training split has a single class ({encoder.classes[0]}); "
                "a classifier needs at least two"
            )
        warn_rare_classes([labels[i] for i in train_idx], [rows.ids[i] for i in train_idx], rows)
        source = str(rows.source)
        targets = {}
        for part in (train_idx, val_idx, test_idx):
            ids = encode_known(encoder, [labels[i] for i in part], source) if len(part) else []
            targets.update(zip(part.tolist(), ids, strict=True))
    dim = int(by_row[int(train_idx[0])].shape[0])
    speakers = speakers_of(rows)
    from vocalis.features.normalize import GlobalMVN

    mode, stats = cfg.features.normalization, cfg.features.normalization_stats
    fixed = None if stats is None else GlobalMVN.from_stats(stats.mean, stats.std, dim)
    in_model = mode == "global" and bool(getattr(cfg.model.params, "input_norm", False))
    model_norm = None
    if in_model:
        mvn = fixed or GlobalMVN(dim).fit([by_row[i] for i in train_idx.tolist()])
        model_norm = (mvn.mean, mvn.std)
        mode = "none"
    normalizer = FeatureNormalizer(mode, dim)
    all_idx = np.concatenate([train_idx, val_idx, test_idx])
    if fixed is not None and not in_model:  # the dataset's statistics: nothing to fit
        normalizer.mvn = fixed
    else:
        normalizer.fit(
            [by_row[i] for i in train_idx.tolist()],
            [by_row[i] for i in all_idx.tolist()],
            [speakers[i] for i in all_idx.tolist()],
        )
    reg = regression_targets(rows, cfg.dataset.regression_columns)
    frame_shift = cfg.features.extractor.frame_shift
    crop = (
        seconds_to_frames(cfg.train.crop_seconds, frame_shift) if cfg.train.crop_seconds else None
    )

    def dataset(idx: np.ndarray, crop_frames: int | None = None) -> FeatureDataset:
        feats_ = [normalizer.normalize(by_row[i], speakers[i]) for i in idx.tolist()]
        r = reg[torch.as_tensor(idx)] if reg is not None else None
        h = packed[torch.as_tensor(idx)] if packed is not None else None
        tgts = [targets[i] for i in idx.tolist()]
        return FeatureDataset(feats_, tgts, r, crop_frames, head_targets=h)

    if cfg.augment.waveform_active:  # features computed on the fly from augmented audio
        train = _waveform_dataset(
            cfg,
            rows,
            train_idx,
            [int(by_row[i].shape[-1]) for i in train_idx.tolist()],
            [targets[i] for i in train_idx.tolist()],
            [speakers[i] for i in train_idx.tolist()],
            normalizer,
            reg[torch.as_tensor(train_idx)] if reg is not None else None,
            crop,
            progress and dist.is_main,
            packed[torch.as_tensor(train_idx)] if packed is not None else None,
        )
    else:
        train = dataset(train_idx, crop)
    return PreparedData(
        rows=rows,
        train_idx=train_idx,
        val_idx=val_idx,
        test_idx=test_idx,
        encoder=encoder,
        normalizer=normalizer,
        model_norm=model_norm,
        train=train,
        val=dataset(val_idx),
        test=dataset(test_idx) if len(test_idx) else None,
        feature_dim=dim,
        skipped=skipped,
        n_rows=len(needed),
        parts_from=fixed,
        val_fixed=val_fixed,
        heads=heads,
        aux_heads=_aux_heads(cfg) if heads is None else [],
        label_column=str(cfg.dataset.label_column),
    )


def _aux_heads(cfg: ExperimentConfig) -> list:
    """The valence/arousal regression head of a tier-1 model, as a reported head."""
    from vocalis.data.targets import HeadSpec, head_name

    cols = tuple(cfg.dataset.regression_columns)
    if not cols or not getattr(cfg.model.params, "va_head", False):
        return []
    name = head_name(cols)
    ones = (1.0,) * len(cols)
    return [
        HeadSpec(
            name,
            "regression",
            cols,
            cols,
            cfg.train.multitask_loss,
            0.0,
            (),
            (0.0,) * len(cols),
            ones,
        )
    ]


def _head_targets(cfg: ExperimentConfig, rows: Any, train_idx: np.ndarray):
    """Heads fitted on the training rows and the packed targets of every row.

    Returns:
        ``(encoder, targets, heads, packed)``: the first head's output names as a
        :class:`~vocalis.data.LabelEncoder`, ``{row: class id}`` of the first head
        (-1 where it is not a class head or the row has no label), the
        :class:`~vocalis.data.targets.HeadSpec` list and the (N, D) float target tensor.
    """
    from vocalis.data import LabelEncoder
    from vocalis.data.targets import encode_targets, fit_heads

    heads = fit_heads(
        rows, train_idx.tolist(), cfg.dataset.head_groups, cfg.train.loss, cfg.train.loss_weights
    )
    packed = torch.as_tensor(encode_targets(rows, heads), dtype=torch.float32)
    for h in heads:
        if h.kind == "multiclass" and not h.one_hot:
            labels = rows.column(h.columns[0])
            kept = [i for i in train_idx.tolist() if labels[i].strip()]
            warn_rare_classes([labels[i] for i in kept], [rows.ids[i] for i in kept], rows)
    first = packed[:, 0]
    ids = torch.where(torch.isfinite(first), first, torch.full_like(first, -1.0))
    if heads[0].kind != "multiclass":
        ids = torch.full_like(first, -1.0)
    targets = dict(enumerate(int(v) for v in ids.tolist()))
    return LabelEncoder(heads[0].classes), targets, heads, packed
