"""In-memory datasets of features, padding collation and seeded batch sampling.

Features are computed once (and cached), normalised, and held in memory as a list
of (F, T) tensors. :class:`EpochBatchSampler` yields batches of ``(index,
crop_seed)`` pairs; every random choice (order, buckets, crops) is a function of
``(seed, epoch)``, so epoch ``k`` of a resumed run sees exactly the batches of an
uninterrupted one, with any number of DataLoader workers. Under DDP each rank
takes every ``world_size``-th batch of the same epoch plan.

With waveform augmentation on (``augment.speed.p > 0``, ...) the training split is
a :class:`WaveformDataset` instead: tier-0 waveforms in memory, augmented per item
in the loader (:class:`~vocalis.augment.chain.WaveformAugment`) with a seed the
sampler derives from ``(seed, epoch, rank, step, slot)`` (:func:`item_seed`), then
mixed across the batch (file mixup), featurised and normalised by
:meth:`WaveformDataset.collate`. Validation and test sets stay
:class:`FeatureDataset` (never augmented).

Example:
    >>> import torch
    >>> ds = FeatureDataset([torch.ones(2, 3), torch.ones(2, 5)], [0, 1])
    >>> batch = collate([ds[0], ds[1]])
    >>> batch.features.shape, batch.lengths.tolist(), batch.targets.tolist()
    (torch.Size([2, 2, 5]), [3, 5], [0, 1])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vocalis.errors import DataError


@dataclass
class BatchMix:
    """How the items of a batch were mixed in the loader (file mixup).

    The loss mixes the targets as for feature mixup:
    ``lam * loss(targets) + (1 - lam) * loss(targets[perm])``.

    Attributes:
        perm: (B,) int64 partner of each item.
        lam: weight of the item itself (>= 0.5).
    """

    perm: torch.Tensor
    lam: float


@dataclass
class Batch:
    """A padded batch.

    Attributes:
        features: (B, F, T) zero-padded features.
        lengths: (B,) int64 valid frames per item.
        targets: (B,) int64 class ids.
        indices: (B,) int64 dataset indices (rows of the split).
        regression: (B, K) float targets (NaN = missing) or ``None``.
        mix: the file mixup of the batch, or ``None``.
        head_targets: (B, D) packed targets of every head (multi-head runs,
            :func:`vocalis.data.targets.encode_targets`) or ``None``.
    """

    features: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor
    regression: torch.Tensor | None = None
    mix: BatchMix | None = None
    head_targets: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        """Copy to ``device`` (non-blocking when pinned)."""

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        mix = None if self.mix is None else BatchMix(move(self.mix.perm), self.mix.lam)
        return Batch(
            move(self.features),
            move(self.lengths),
            move(self.targets),
            self.indices,
            move(self.regression),
            mix,
            move(self.head_targets),
        )

    def __len__(self) -> int:
        return int(self.lengths.numel())

    def pin_memory(self) -> Batch:
        """Page-locked copy (called by the DataLoader with ``pin_memory=True``)."""

        def pin(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.pin_memory()

        return Batch(
            pin(self.features),
            pin(self.lengths),
            pin(self.targets),
            self.indices,
            pin(self.regression),
            self.mix,
            pin(self.head_targets),
        )


def seconds_to_frames(seconds: float, frame_shift: float) -> int:
    """Number of frames covering ``seconds`` (at least 1).

    Example:
        >>> seconds_to_frames(3.0, 0.01)
        300
    """
    return max(1, round(seconds / frame_shift))


class FeatureDataset(Dataset):
    """Utterance features held in memory, with class targets.

    Args:
        features: one (F, T_i) tensor per utterance (already normalised).
        targets: class id per utterance.
        regression: optional (N, K) float targets (NaN = missing annotation).
        crop_frames: random crops of at most this many frames when an item is
            requested with a crop seed (training); ``None`` keeps whole utterances.
        head_targets: optional (N, D) packed targets of every head (multi-head runs).

    Raises:
        DataError: empty dataset, mismatched sizes or features of different F.

    Items are dicts ``{"features": (F, T), "target": int, "index": int,
    "regression": (K,) or None}``. ``ds[i]`` gives the whole utterance;
    ``ds[(i, seed)]`` a random crop drawn with ``seed``.
    """

    def __init__(
        self,
        features: Sequence[torch.Tensor],
        targets: Sequence[int],
        regression: torch.Tensor | None = None,
        crop_frames: int | None = None,
        head_targets: torch.Tensor | None = None,
    ) -> None:
        if len(features) == 0:
            raise DataError("the dataset is empty: no utterance left to train or evaluate on")
        if len(features) != len(targets):
            raise DataError(f"{len(features)} feature arrays but {len(targets)} targets")
        dims = {int(f.shape[0]) for f in features}
        if len(dims) != 1:
            raise DataError(
                f"features have different dimensions {sorted(dims)}; all utterances must be "
                "extracted with the same feature config (clear the feature cache)"
            )
        if regression is not None and len(regression) != len(features):
            raise DataError(f"{len(features)} utterances but {len(regression)} regression rows")
        if crop_frames is not None and crop_frames < 1:
            raise DataError(f"crop_frames={crop_frames}; expected >= 1 or None")
        self.features = list(features)
        self.targets = [int(t) for t in targets]
        self.regression = regression
        self.crop_frames = crop_frames
        if head_targets is not None and len(head_targets) != len(features):
            raise DataError(f"{len(features)} utterances but {len(head_targets)} head-target rows")
        self.head_targets = head_targets

    @property
    def feature_dim(self) -> int:
        """F."""
        return int(self.features[0].shape[0])

    def num_frames(self, index: int) -> int:
        """Frames of item ``index`` as served in training (after cropping)."""
        t = int(self.features[index].shape[-1])
        return min(t, self.crop_frames) if self.crop_frames else t

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        feats = self.features[index]
        t = feats.shape[-1]
        if seed is not None and self.crop_frames and t > self.crop_frames:
            g = torch.Generator().manual_seed(int(seed))
            start = int(torch.randint(0, t - self.crop_frames + 1, (1,), generator=g))
            feats = feats[:, start : start + self.crop_frames]
        reg = None if self.regression is None else self.regression[index]
        item = {"features": feats, "target": self.targets[index], "index": index, "regression": reg}
        if self.head_targets is not None:
            item["head_targets"] = self.head_targets[index]
        return item


def collate(items: Sequence[dict[str, Any]]) -> Batch:
    """Zero-pad items to the longest one.

    Shape:
        items[i]["features"]: (F, T_i) -> Batch.features (B, F, max T_i), lengths (B,)
    """
    lengths = torch.tensor([int(it["features"].shape[-1]) for it in items], dtype=torch.long)
    f = int(items[0]["features"].shape[0])
    out = torch.zeros(len(items), f, int(lengths.max()), dtype=items[0]["features"].dtype)
    for i, it in enumerate(items):
        out[i, :, : lengths[i]] = it["features"]
    targets = torch.tensor([int(it["target"]) for it in items], dtype=torch.long)
    indices = torch.tensor([int(it["index"]) for it in items], dtype=torch.long)
    regression = None
    if items[0].get("regression") is not None:
        regression = torch.stack([torch.as_tensor(it["regression"]).float() for it in items])
    heads = None
    if items[0].get("head_targets") is not None:
        heads = torch.stack([torch.as_tensor(it["head_targets"]).float() for it in items])
    return Batch(out, lengths, targets, indices, regression, head_targets=heads)


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A 63-bit seed for one random stream of one epoch, derived from the run seed.

    Example:
        >>> epoch_seed(0, 1) == epoch_seed(0, 1) != epoch_seed(0, 2)
        True
    """
    return int(
        np.random.SeedSequence([int(seed), int(epoch), int(stream)]).generate_state(1, np.uint64)[0]
        >> 1
    )


def item_seed(seed: int, epoch: int, rank: int, step: int, slot: int) -> int:
    """The augmentation seed of one training item: a 63-bit function of its place in the run.

    ``step`` counts this rank's batches of the epoch and ``slot`` the item's place
    in its batch, so a resumed run (which skips the steps already done) gives every
    item the seed of the uninterrupted run, and the DataLoader worker that loads
    it plays no part.

    Example:
        >>> item_seed(0, 1, 0, 5, 2) == item_seed(0, 1, 0, 5, 2) != item_seed(0, 1, 0, 5, 3)
        True
    """
    ss = np.random.SeedSequence([int(seed), int(epoch), int(rank), int(step), int(slot), 11])
    return int(ss.generate_state(1, np.uint64)[0] >> 1)


class EpochBatchSampler:
    """Batches of ``(index, crop_seed)`` pairs, planned per epoch from the run seed.

    With ``shuffle`` the order is a permutation seeded by ``(seed, epoch)``; with
    ``bucketing`` utterances of similar length are batched together (pools of
    ``50 * batch_size`` sorted by length, then the batches shuffled). Without
    ``shuffle`` batches follow length order (validation; no crops). Under DDP,
    rank ``r`` of ``world_size`` takes batches ``r, r + world_size, ...`` of the
    plan, padded by repeating batches so every rank runs the same number of steps.
    A final training batch of a single item joins the previous batch.

    Args:
        frames: frames per item (for bucketing).
        batch_size: items per batch.
        shuffle: random order (training) or length order (evaluation).
        bucketing: group items of similar length.
        seed: run seed.
        crop: attach per-item crop seeds (training with random crops).
        augment: attach per-item augmentation seeds (:func:`item_seed`); the keys
            are then ``(index, crop_seed or None, augment_seed)``.
        rank: this process's rank.
        world_size: number of processes.
        drop_last: drop a final incomplete batch.
    """

    def __init__(
        self,
        frames: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        bucketing: bool = True,
        seed: int = 0,
        crop: bool = False,
        augment: bool = False,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise DataError(f"batch_size={batch_size}; expected >= 1")
        self.frames = np.asarray(frames, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.shuffle, self.bucketing, self.crop = shuffle, bucketing, crop
        self.augment = bool(augment)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.drop_last = drop_last
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Plan epoch ``epoch``; skip its first ``skip_batches`` batches (mid-epoch resume)."""
        self.epoch = int(epoch)
        self.skip = int(skip_batches)

    def plan(self) -> list[list[tuple[int, int | None]]]:  # (index, crop seed)
        """All batches of this rank for the current epoch (before skipping)."""
        n = len(self.frames)
        rng = np.random.default_rng(epoch_seed(self.seed, self.epoch, 1))
        if self.shuffle:
            order = rng.permutation(n)
            if self.bucketing:
                pool = 50 * self.batch_size
                chunks = [order[i : i + pool] for i in range(0, n, pool)]
                order = np.concatenate(
                    [c[np.argsort(self.frames[c], kind="stable")] for c in chunks]
                )
        else:
            order = np.argsort(self.frames, kind="stable") if self.bucketing else np.arange(n)
        batches = [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size and len(batches) > 1:
            batches = batches[:-1]
        elif self.shuffle and len(batches) > 1 and len(batches[-1]) == 1:
            # A training batch of one breaks batch norm: give the straggler to its neighbour.
            batches = [*batches[:-2], np.concatenate(batches[-2:])]
        if self.shuffle and self.bucketing:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.world_size > 1:
            extra = (-len(batches)) % self.world_size
            batches = batches + batches[:extra]
            batches = batches[self.rank :: self.world_size]
        seeds = np.random.default_rng(epoch_seed(self.seed, self.epoch, 2))
        out = []
        for b in batches:
            crop_seeds = seeds.integers(0, 2**62, size=len(b)) if self.crop else [None] * len(b)
            out.append(
                [
                    (int(i), None if s is None else int(s))
                    for i, s in zip(b.tolist(), crop_seeds, strict=True)
                ]
            )
        return out

    def __iter__(self) -> Iterator[list[Any]]:
        plan = self.plan()
        for step in range(self.skip, len(plan)):
            if self.augment:
                yield [
                    (i, s, item_seed(self.seed, self.epoch, self.rank, step, slot))
                    for slot, (i, s) in enumerate(plan[step])
                ]
            else:
                yield [i if s is None else (i, s) for i, s in plan[step]]

    def __len__(self) -> int:
        return max(0, len(self.plan()) - self.skip)


class WaveformDataset(Dataset):
    """Training utterances as tier-0 waveforms, augmented and featurised on the fly.

    Each item is cropped (with its crop seed) and augmented (with its augmentation
    seed) in ``__getitem__``; :meth:`collate` mixes the batch (file mixup), computes
    the features of each waveform with the run's extractor, normalises them with
    the training statistics, cuts them to ``crop_frames`` and pads. With no
    transform drawn, an item's features are exactly those the cached path gives.

    Args:
        waveforms: one (T_i,) tier-0 waveform per utterance.
        targets: class id per utterance.
        speakers: speaker per utterance (for speaker normalisation).
        frames: frames of each un-augmented utterance (for bucketing).
        features: the extractor config (``features.extractor``).
        normalizer: the fitted :class:`~vocalis.features.normalize.FeatureNormalizer`.
        augment: the waveform chain.
        sample_rate: the waveforms' rate in Hz.
        regression: optional (N, K) float targets (NaN = missing annotation).
        head_targets: optional (N, D) packed targets of every head (multi-head runs).
        crop_frames: train on random crops of at most this many frames; the
            waveform is cropped to ``crop_samples`` first.
        crop_samples: samples of a crop (required with ``crop_frames``).

    Raises:
        DataError: empty dataset or mismatched sizes.

    Items are dicts ``{"waveform": (T,), "target": int, "index": int, "regression":
    (K,) or None, "speaker": str, "seed": int}``; keys are ``(index, crop_seed or
    None, augment_seed)`` (:class:`EpochBatchSampler` with ``augment=True``).
    """

    def __init__(
        self,
        waveforms: Sequence[torch.Tensor],
        targets: Sequence[int],
        speakers: Sequence[str],
        frames: Sequence[int],
        features: Any,
        normalizer: Any,
        augment: Any,
        sample_rate: int,
        regression: torch.Tensor | None = None,
        crop_frames: int | None = None,
        crop_samples: int | None = None,
        head_targets: torch.Tensor | None = None,
    ) -> None:
        n = len(waveforms)
        if n == 0:
            raise DataError("the dataset is empty: no utterance left to train on")
        for name, values in (("targets", targets), ("speakers", speakers), ("frames", frames)):
            if len(values) != n:
                raise DataError(f"{n} waveforms but {len(values)} {name}")
        if crop_frames is not None and (crop_frames < 1 or not crop_samples):
            raise DataError(
                f"crop_frames={crop_frames}, crop_samples={crop_samples}; expected >= 1"
            )
        self.waveforms = list(waveforms)
        self.targets = [int(t) for t in targets]
        self.speakers = list(speakers)
        self.frames = [int(f) for f in frames]
        self.features, self.normalizer, self.augment = features, normalizer, augment
        self.sample_rate = int(sample_rate)
        self.regression = regression
        self.crop_frames, self.crop_samples = crop_frames, crop_samples
        self.head_targets = head_targets

    def num_frames(self, index: int) -> int:
        """Frames of item ``index`` before augmentation, after cropping (for bucketing)."""
        t = self.frames[index]
        return min(t, self.crop_frames) if self.crop_frames else t

    def __len__(self) -> int:
        return len(self.waveforms)

    def __getitem__(self, key: tuple[int, int | None, int]) -> dict[str, Any]:
        from vocalis.features.pipeline import torch_threads

        with torch_threads(1):  # per-utterance work is too small to split (as in workers)
            return self._item(key)

    def _item(self, key: tuple[int, int | None, int]) -> dict[str, Any]:
        index, crop_seed, seed = key
        wav = self.waveforms[index]
        if crop_seed is not None and self.crop_samples and wav.shape[-1] > self.crop_samples:
            g = torch.Generator().manual_seed(int(crop_seed))
            start = int(torch.randint(0, wav.shape[-1] - self.crop_samples + 1, (1,), generator=g))
            wav = wav[start : start + self.crop_samples]
        wav = self.augment(wav, self.sample_rate, int(seed))
        reg = None if self.regression is None else self.regression[index]
        return {
            "waveform": wav,
            "target": self.targets[index],
            "index": index,
            "regression": reg,
            "speaker": self.speakers[index],
            "seed": int(seed),
            "head_targets": None if self.head_targets is None else self.head_targets[index],
        }

    def collate(self, items: Sequence[dict[str, Any]]) -> Batch:
        """File mixup, features, normalisation, crop and padding of one batch.

        Shape:
            items[i]["waveform"]: (T_i,) -> Batch.features (B, F, max N_i)
        """
        from vocalis.features.pipeline import torch_threads

        with torch_threads(1):  # as in DataLoader workers, which run one thread
            return self._collate(items)

    def _collate(self, items: Sequence[dict[str, Any]]) -> Batch:
        from vocalis.features import extract

        waves = [it["waveform"] for it in items]
        seed = np.random.SeedSequence([it["seed"] for it in items]).generate_state(1, np.uint64)
        mixed = self.augment.mix(waves, int(seed[0] >> 1))
        mix = None
        if mixed is not None:
            waves, perm, lam = mixed
            mix = BatchMix(perm, lam)
        featurised = []
        for it, wav in zip(items, waves, strict=True):
            feats = self.normalizer.normalize(extract(wav, self.features), it["speaker"])
            if self.crop_frames and feats.shape[-1] > self.crop_frames:
                feats = feats[:, : self.crop_frames]
            featurised.append({**it, "features": feats})
        batch = collate(featurised)
        batch.mix = mix
        return batch


def make_loader(
    dataset: FeatureDataset | WaveformDataset,
    sampler: EpochBatchSampler,
    *,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` with the batch plan of ``sampler``.

    A :class:`WaveformDataset` is collated by its own :meth:`~WaveformDataset.collate`
    (features on the fly), a :class:`FeatureDataset` by :func:`collate`.
    """
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=dataset.collate if isinstance(dataset, WaveformDataset) else collate,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=False,
    )
