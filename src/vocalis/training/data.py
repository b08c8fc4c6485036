"""In-memory datasets of features, padding collation and seeded batch sampling.

Features are computed once (and cached), normalised, and held in memory as a list
of (F, T) tensors. :class:`EpochBatchSampler` yields batches of ``(index,
crop_seed)`` pairs; every random choice (order, buckets, crops) is a function of
``(seed, epoch)``, so epoch ``k`` of a resumed run sees exactly the batches of an
uninterrupted one, with any number of DataLoader workers. Under DDP each rank
takes every ``world_size``-th batch of the same epoch plan.

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
class Batch:
    """A padded batch.

    Attributes:
        features: (B, F, T) zero-padded features.
        lengths: (B,) int64 valid frames per item.
        targets: (B,) int64 class ids.
        indices: (B,) int64 dataset indices (rows of the split).
        regression: (B, K) float targets (NaN = missing) or ``None``.
    """

    features: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor
    regression: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        """Copy to ``device`` (non-blocking when pinned)."""

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(
            move(self.features),
            move(self.lengths),
            move(self.targets),
            self.indices,
            move(self.regression),
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
        return {"features": feats, "target": self.targets[index], "index": index, "regression": reg}


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
    return Batch(out, lengths, targets, indices, regression)


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
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise DataError(f"batch_size={batch_size}; expected >= 1")
        self.frames = np.asarray(frames, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.shuffle, self.bucketing, self.crop = shuffle, bucketing, crop
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.drop_last = drop_last
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Plan epoch ``epoch``; skip its first ``skip_batches`` batches (mid-epoch resume)."""
        self.epoch = int(epoch)
        self.skip = int(skip_batches)

    def plan(self) -> list[list[tuple[int, int | None]]]:
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
        for batch in self.plan()[self.skip :]:
            yield [i if s is None else (i, s) for i, s in batch]

    def __len__(self) -> int:
        return max(0, len(self.plan()) - self.skip)


def make_loader(
    dataset: FeatureDataset,
    sampler: EpochBatchSampler,
    *,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` with the batch plan of ``sampler``."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=False,
    )
