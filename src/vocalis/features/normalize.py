"""Mean and variance normalisation: global, per utterance and per speaker.

All statistics are over valid frames only: give ``lengths`` (frames) for padded
batches and padded frames are neither counted nor changed (they stay zero).
Statistics are accumulated in float64 from streaming sums, so fitting on a list
of utterances or on the same data as padded batches gives the same numbers.

* :class:`GlobalMVN`: fitted on training features, an ``nn.Module`` whose
  buffers (``count``, ``sum``, ``sum_sq``) live in ``state_dict`` and so in the
  checkpoint.
* :func:`cmvn`: per-utterance normalisation, a pure function.
* :class:`SpeakerMVN`: one set of statistics per speaker; an unknown speaker
  either raises :class:`~vocalis.errors.DataError` (``unknown="error"``) or falls
  back to the statistics pooled over all training speakers (``unknown="global"``,
  the default).
* :class:`FeatureNormalizer`: the pipeline's normalisation by mode (one of the
  above), fitted by training, stored in and rebuilt from checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from vocalis.errors import ConfigError, DataError, ModelError


def _as_batch(
    feats: torch.Tensor, lengths: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(F, T) or (B, F, T) -> (B, F, T), lengths (B,), was_single."""
    single = feats.dim() == 2
    if feats.dim() not in (2, 3):
        raise ModelError(f"features must be (F, T) or (B, F, T), got shape {tuple(feats.shape)}")
    batch = feats.unsqueeze(0) if single else feats
    if lengths is None:
        lengths = torch.full((batch.shape[0],), batch.shape[-1], dtype=torch.long)
    lengths = torch.as_tensor(lengths, device=batch.device).long().reshape(-1)
    if lengths.numel() != batch.shape[0]:
        raise ModelError(f"got {lengths.numel()} lengths for a batch of {batch.shape[0]}")
    return batch, lengths, single


def _mask(batch: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, 1, T) float mask of valid frames."""
    t = torch.arange(batch.shape[-1], device=batch.device)
    return (t[None, :] < lengths[:, None]).to(batch.dtype)[:, None, :]


def _sums(batch: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-item frame count (B,), sum (B, F) and sum of squares (B, F) in float64."""
    x = batch.double() * _mask(batch, lengths).double()
    return lengths.double(), x.sum(-1), (x * x).sum(-1)


def cmvn(
    feats: torch.Tensor,
    lengths: torch.Tensor | None = None,
    variance: bool = True,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Per-utterance mean (and variance) normalisation over valid frames.

    Args:
        feats: ``(F, T)`` or padded ``(B, F, T)``.
        lengths: ``(B,)`` valid frames per item (default: all frames).
        variance: also divide by the standard deviation.
        eps: floor of the standard deviation.

    Returns:
        Same shape; padded frames are zero.

    Example:
        >>> x = torch.tensor([[[1.0, 3.0, 9.0]]])
        >>> cmvn(x, torch.tensor([2]), variance=False)
        tensor([[[-1.,  1.,  0.]]])
    """
    batch, lengths, single = _as_batch(feats, lengths)
    n, s, ss = _sums(batch, lengths)
    n = n.clamp(min=1)[:, None]
    mean = s / n
    out = batch.double() - mean[..., None]
    if variance:
        std = (ss / n - mean**2).clamp(min=0).sqrt().clamp(min=eps)
        out = out / std[..., None]
    out = (out * _mask(batch, lengths).double()).to(batch.dtype)
    return out[0] if single else out


class GlobalMVN(nn.Module):
    """Mean/variance normalisation with statistics fitted on training features.

    Args:
        feature_dim: number of features ``F``.
        variance: also divide by the standard deviation.
        eps: floor of the standard deviation.

    Example:
        >>> mvn = GlobalMVN(2)
        >>> _ = mvn.fit([torch.tensor([[0.0, 2.0], [1.0, 1.0]])])
        >>> mvn.mean.tolist(), mvn.std[0].item()
        ([1.0, 1.0], 1.0)
        >>> mvn(torch.tensor([[2.0], [1.0]]))
        tensor([[1.],
                [0.]])
    """

    def __init__(self, feature_dim: int, variance: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.variance = variance
        self.eps = eps
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sum", torch.zeros(feature_dim, dtype=torch.float64))
        self.register_buffer("sum_sq", torch.zeros(feature_dim, dtype=torch.float64))

    @property
    def feature_dim(self) -> int:
        """F, the number of features the statistics cover."""
        return self.sum.numel()

    @classmethod
    def from_stats(
        cls, mean: float | Sequence[float], std: float | Sequence[float], feature_dim: int
    ) -> GlobalMVN:
        """Fixed statistics given by the user (a dataset's mean and std), not fitted.

        Args:
            mean: one value for every feature, or ``feature_dim`` values.
            std: likewise; every value must be positive.
            feature_dim: F.

        Raises:
            ConfigError: a list of the wrong length, or a std that is not positive.

        Example:
            >>> mvn = GlobalMVN.from_stats(-4.0, 2.0, 3)
            >>> mvn.mean.tolist(), mvn.std.tolist()
            ([-4.0, -4.0, -4.0], [2.0, 2.0, 2.0])
        """
        values = {}
        for name, v in (("mean", mean), ("std", std)):
            t = torch.as_tensor(v, dtype=torch.float64).reshape(-1)
            if t.numel() == 1:
                t = t.expand(feature_dim)
            if t.numel() != feature_dim:
                raise ConfigError(
                    f"features.normalization.{name}: got {t.numel()} values, the features have "
                    f"F={feature_dim}; give one number or {feature_dim}"
                )
            values[name] = t
        if not bool((values["std"] > 0).all()):
            raise ConfigError(f"features.normalization.std: got {std!r}, expected values > 0")
        mvn = cls(feature_dim)
        mvn.count.fill_(1.0)
        mvn.sum.copy_(values["mean"])
        mvn.sum_sq.copy_(values["mean"] ** 2 + values["std"] ** 2)
        return mvn

    def update(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> GlobalMVN:
        """Add ``(F, T)`` or padded ``(B, F, T)`` features (with frame ``lengths``) to the sums."""
        batch, lengths, _ = _as_batch(feats, lengths)
        if batch.shape[1] != self.feature_dim:
            raise ModelError(
                f"GlobalMVN was built for {self.feature_dim} features, got {batch.shape[1]}"
            )
        n, s, ss = _sums(batch, lengths)
        self.count += n.sum().to(self.count.device)
        self.sum += s.sum(0).to(self.sum.device)
        self.sum_sq += ss.sum(0).to(self.sum_sq.device)
        return self

    def fit(
        self,
        features: Iterable[torch.Tensor] | torch.Tensor,
        lengths: torch.Tensor | None = None,
    ) -> GlobalMVN:
        """Reset and accumulate: a list of ``(F, T)`` or one padded ``(B, F, T)`` with lengths."""
        self.count.zero_()
        self.sum.zero_()
        self.sum_sq.zero_()
        if isinstance(features, torch.Tensor):
            return self.update(features, lengths)
        for feat in features:
            self.update(feat)
        return self

    @property
    def mean(self) -> torch.Tensor:
        """(F,) float32 mean."""
        self._check_fitted()
        return (self.sum / self.count).float()

    @property
    def std(self) -> torch.Tensor:
        """(F,) float32 standard deviation, floored at ``eps``."""
        self._check_fitted()
        mean = self.sum / self.count
        var = (self.sum_sq / self.count - mean**2).clamp(min=0)
        return var.sqrt().clamp(min=self.eps).float()

    def _check_fitted(self) -> None:
        if float(self.count) <= 0:
            raise ModelError("GlobalMVN has no statistics; call fit() on training features first")

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Normalise ``(F, T)`` or ``(B, F, T)``; padded frames (past ``lengths``) stay zero."""
        batch, lengths, single = _as_batch(feats, lengths)
        out = batch - self.mean.to(batch)[None, :, None]
        if self.variance:
            out = out / self.std.to(batch)[None, :, None]
        out = out * _mask(batch, lengths)
        return out[0] if single else out

    transform = forward

    def extra_repr(self) -> str:
        """The feature size and whether variance is normalised, shown by ``repr``."""
        return f"feature_dim={self.feature_dim}, variance={self.variance}"


class SpeakerMVN:
    """Per-speaker mean/variance normalisation.

    Args:
        feature_dim: number of features ``F``.
        variance: also divide by the standard deviation.
        unknown: a speaker not seen in :meth:`fit` raises ``DataError`` (``"error"``)
            or is normalised with the pooled statistics of all speakers (``"global"``).

    Example:
        >>> spk = SpeakerMVN(1).fit([torch.ones(1, 3), 3 * torch.ones(1, 3)], ["a", "b"])
        >>> spk.transform(torch.full((1, 2), 3.0), "b"), spk.transform(torch.full((1, 2), 3.0), "z")
        (tensor([[0., 0.]]), tensor([[1., 1.]]))
    """

    def __init__(
        self,
        feature_dim: int,
        variance: bool = True,
        unknown: Literal["global", "error"] = "global",
        eps: float = 1e-5,
    ) -> None:
        if unknown not in ("global", "error"):
            raise ValueError(f"unknown must be 'global' or 'error', got {unknown!r}")
        self.feature_dim = feature_dim
        self.variance = variance
        self.unknown = unknown
        self.eps = eps
        self.speakers: dict[str, GlobalMVN] = {}
        self.pooled = GlobalMVN(feature_dim, variance, eps)

    def fit(self, features: Sequence[torch.Tensor], speakers: Sequence[str]) -> SpeakerMVN:
        """Fit one ``GlobalMVN`` per speaker from ``(F, T)`` features and their speakers."""
        if len(features) != len(speakers):
            raise DataError(f"got {len(features)} feature arrays but {len(speakers)} speakers")
        self.speakers = {}
        self.pooled.fit([])
        for feat, spk in zip(features, speakers, strict=True):
            key = str(spk)
            if key not in self.speakers:
                self.speakers[key] = GlobalMVN(self.feature_dim, self.variance, self.eps)
            self.speakers[key].update(feat)
            self.pooled.update(feat)
        return self

    def stats_for(self, speaker: str) -> GlobalMVN:
        """The statistics used for ``speaker`` (its own, or pooled when unknown and allowed)."""
        key = str(speaker)
        if key in self.speakers:
            return self.speakers[key]
        if self.unknown == "error":
            known = ", ".join(sorted(self.speakers)[:10])
            raise DataError(
                f"speaker '{key}' has no normalisation statistics (known: {known}); "
                "fit SpeakerMVN on this speaker or use unknown='global'"
            )
        return self.pooled

    def transform(
        self, feats: torch.Tensor, speaker: str, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Normalise ``(F, T)`` (or a ``(B, F, T)`` batch of one speaker) with its statistics."""
        return self.stats_for(speaker)(feats, lengths)

    def state_dict(self) -> dict:
        """Plain tensors and strings, for a checkpoint."""
        return {
            "feature_dim": self.feature_dim,
            "variance": self.variance,
            "unknown": self.unknown,
            "eps": self.eps,
            "pooled": self.pooled.state_dict(),
            "speakers": {k: v.state_dict() for k, v in self.speakers.items()},
        }

    def load_state_dict(self, state: dict) -> SpeakerMVN:
        """Restore from :meth:`state_dict`."""
        self.__init__(state["feature_dim"], state["variance"], state["unknown"], state["eps"])
        self.pooled.load_state_dict(state["pooled"])
        for key, sd in state["speakers"].items():
            self.speakers[key] = GlobalMVN(self.feature_dim, self.variance, self.eps)
            self.speakers[key].load_state_dict(sd)
        return self


#: Normalisation modes of :class:`FeatureNormalizer`.
MODES = ("global", "utterance", "speaker", "none")


class FeatureNormalizer(nn.Module):
    """The feature normalisation of a pipeline, fitted in training and stored in checkpoints.

    One class for the training data path and for inference:

    * ``global``: :class:`GlobalMVN` fitted on the training utterances only;
      state = its ``state_dict`` (``count``, ``sum``, ``sum_sq``).
    * ``speaker``: :class:`SpeakerMVN`, one set of statistics per speaker from that
      speaker's own recordings (no labels used). :meth:`normalize` with a speaker
      uses that speaker's statistics; the batched :meth:`forward` (prediction, the
      exported graph), where the speaker is unknown, uses the statistics pooled
      over all training speakers.
    * ``utterance``: per-utterance CMVN (:func:`cmvn`); no state.
    * ``none``: identity.

    Args:
        mode: one of the above.
        feature_dim: F.
        variance: also divide by the standard deviation.

    Shape:
        feats: (B, F, N) or (F, N), lengths: (B,) frames -> same shape; padded
        frames stay zero.

    Example:
        >>> norm = FeatureNormalizer("global", 1).fit([torch.tensor([[1.0, 3.0]])])
        >>> norm(torch.tensor([[[1.0, 3.0, 7.0]]]), torch.tensor([2])).tolist()
        [[[-1.0, 1.0, 0.0]]]
        >>> FeatureNormalizer.from_state(norm.state(), 1).mvn.mean.tolist()
        [2.0]
    """

    def __init__(self, mode: str, feature_dim: int, variance: bool = True) -> None:
        super().__init__()
        if mode not in MODES:
            raise ConfigError(
                f"features.normalization: got {mode!r}, expected global, utterance, speaker or none"
            )
        self.mode = mode
        self.feature_dim = int(feature_dim)
        self.variance = bool(variance)
        #: The statistics :meth:`forward` uses (global: fitted; speaker: pooled).
        self.mvn: GlobalMVN | None = None
        self.speakers: SpeakerMVN | None = None

    def fit(
        self,
        train_features: Sequence[torch.Tensor],
        all_features: Sequence[torch.Tensor] = (),
        speakers: Sequence[str] = (),
    ) -> FeatureNormalizer:
        """Fit ``global`` on ``train_features``; ``speaker`` on ``all_features``/``speakers``.

        Shape:
            each feature array (F, N).
        """
        if self.mode == "global":
            self.mvn = GlobalMVN(self.feature_dim, self.variance).fit(list(train_features))
        elif self.mode == "speaker":
            self.speakers = SpeakerMVN(self.feature_dim, self.variance).fit(
                list(all_features), list(speakers)
            )
            self.mvn = self.speakers.pooled
        return self

    def _require_stats(self) -> GlobalMVN:
        if self.mvn is None:
            raise DataError(f"normalization={self.mode} has no statistics; fit it first")
        return self.mvn

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Normalise a padded batch (or one utterance) with the stored statistics."""
        if self.mode == "none":
            return feats
        if self.mode == "utterance":
            return cmvn(feats, lengths, variance=self.variance)
        return self._require_stats()(feats, lengths)

    def normalize(self, feats: torch.Tensor, speaker: str | None = None) -> torch.Tensor:
        """Normalise one utterance, with its speaker's statistics in ``speaker`` mode.

        Shape:
            feats: (F, N) -> (F, N)
        """
        if self.mode == "speaker":
            self._require_stats()
            return self.speakers.transform(feats, speaker or "")
        return self(feats)

    def state(self) -> dict[str, Any]:
        """``{"mode", "state"}``: the checkpoint's ``normalization`` entry."""
        state = None
        if self.speakers is not None:
            state = self.speakers.state_dict()
        elif self.mvn is not None:
            state = dict(self.mvn.state_dict())
        elif self.mode == "utterance" and not self.variance:
            state = {"variance": False}
        return {"mode": self.mode, "state": state}

    @classmethod
    def from_state(cls, data: Mapping[str, Any], feature_dim: int) -> FeatureNormalizer:
        """Rebuild from :meth:`state` (a checkpoint's ``normalization`` entry).

        Raises:
            ModelError: an unknown mode, missing or malformed statistics, or statistics
                of another feature size than ``feature_dim``.
        """
        mode = str(data.get("mode", "none"))
        state = data.get("state") or {}
        if mode not in MODES:
            raise ModelError(
                f"checkpoint normalization.mode={mode!r}: expected global, utterance, speaker "
                "or none"
            )
        norm = cls(mode, feature_dim, variance=bool(state.get("variance", True)))
        if mode not in ("global", "speaker"):
            return norm
        if not state:
            raise ModelError(
                f"checkpoint normalization.mode={mode!r} but normalization.state is empty; "
                "the checkpoint is incomplete, save it again from the run"
            )
        stats = state.get("pooled", state) if mode == "speaker" else state
        tensors = {k: v for k, v in stats.items() if isinstance(v, torch.Tensor)}
        if "sum" not in tensors:
            raise ModelError(
                f"checkpoint normalization.state has keys {sorted(stats)}, expected the "
                "GlobalMVN state (count, sum, sum_sq)"
            )
        if tensors["sum"].numel() != feature_dim:
            raise ModelError(
                f"normalisation statistics have {tensors['sum'].numel()} features, the feature "
                f"extractor gives {feature_dim}; the checkpoint is inconsistent"
            )
        if mode == "speaker":
            norm.speakers = SpeakerMVN(feature_dim).load_state_dict(dict(state))
            norm.mvn = norm.speakers.pooled
        else:
            norm.mvn = GlobalMVN(feature_dim, norm.variance, float(state.get("eps", 1e-5)))
            norm.mvn.load_state_dict(tensors)
        return norm

    def extra_repr(self) -> str:
        """The mode and feature size, shown by ``repr``."""
        return f"mode={self.mode}, feature_dim={self.feature_dim}"
