"""A fitted functionals ensemble as a torch module of waveforms (checkpoint kind ``ensemble``).

Every fitted parameter is a tensor (a weights-only checkpoint, no pickle)::

    waveform (B, T), lengths (B,)                 tier 0 done: mono, rate of the members
      -> per member m: functionals x (B, D_m)     lld_stats / ge2e_stats in torch;
                                                  ComParE / eGeMAPS through opensmile (numpy)
      -> speaker_norm only: per-speaker z-scores  (needs the speakers: predict_speakers)
      -> z = clip((x - mean) / std)               the member's train-only scaler
      -> s = z @ W.T + b                          the linear model in primal form, W (P, D_m)
      -> p_m = softmax(ovr(s) / T)                scikit-learn's SVC decision transform
                                                  (or softmax(s) for logistic regression)
      -> probs = sum_m w_m p_m                    fusion weights, (B, K)

:meth:`EnsembleModel.from_fit` converts an :class:`~vocalis.ensemble.recipe.EnsembleFit`
(scikit-learn models) and equals its ``predict_proba`` to float precision;
:func:`build_ensemble` (registered in :data:`vocalis.inference.MODEL_KINDS` by
:mod:`vocalis.ensemble`) rebuilds the module from a checkpoint.

Shape legend: B batch, T samples, D functionals, P linear outputs, K' classes seen by a
member, K classes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from vocalis.ensemble.linear import LinearPrimal
from vocalis.errors import ConfigError, ModelError
from vocalis.features.functionals import (
    OPENSMILE_SETS,
    FunctionalsConfig,
    compute_functionals,
    functionals_dim,
)

if TYPE_CHECKING:
    from vocalis.checkpoint import Checkpoint
    from vocalis.data import LabelEncoder
    from vocalis.ensemble.recipe import EnsembleFit

__all__ = ["EnsembleModel", "LinearMember", "build_ensemble", "save_ensemble"]

#: ``model.name`` of ensemble checkpoints.
MODEL_NAME = "functionals_ensemble"

#: What the recipe to use instead says when a speaker_norm model gets one clip.
ONLINE_RECIPE = "configs/recipes/emodb_functionals_online.yaml"


class LinearMember(nn.Module):
    """One member's scaler and linear model (see :class:`~vocalis.ensemble.linear.LinearPrimal`).

    Shape:
        x: (B, D) functionals -> (B, K) probabilities (float64).

    Example:
        >>> p = LinearPrimal("svm", np.zeros(2), np.ones(2), 0.0, np.array([[1.0, 0.0]]),
        ...                  np.zeros(1), np.array([0, 1]), 2)
        >>> LinearMember.from_primal(p)(torch.tensor([[0.0, 5.0]], dtype=torch.float64)).tolist()
        [[0.5, 0.5]]
    """

    def __init__(
        self,
        classifier: str,
        mean: Tensor,
        std: Tensor,
        weight: Tensor,
        bias: Tensor,
        columns: Tensor,
        clip: float,
        temperature: float,
        n_classes: int,
    ) -> None:
        super().__init__()
        if classifier not in ("svm", "logreg"):
            raise ModelError(f"ensemble member classifier {classifier!r}: expected svm or logreg")
        self.classifier = classifier
        self.clip = float(clip)
        self.temperature = float(temperature)
        self.n_classes = int(n_classes)
        for name, value in (("mean", mean), ("std", std), ("weight", weight), ("bias", bias)):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float64))
        self.register_buffer("columns", torch.as_tensor(columns, dtype=torch.int64))
        k_seen = int(self.columns.numel())
        place = torch.zeros(k_seen, self.n_classes, dtype=torch.float64)
        place[torch.arange(k_seen), self.columns] = 1.0
        self.register_buffer("place", place, persistent=False)
        pairs = [(i, j) for i in range(k_seen) for j in range(i + 1, k_seen)]
        first = torch.zeros(max(len(pairs), 1), k_seen, dtype=torch.float64)
        second = torch.zeros_like(first)
        for k, (i, j) in enumerate(pairs):
            first[k, i], second[k, j] = 1.0, 1.0
        self.register_buffer("pair_first", first, persistent=False)
        self.register_buffer("pair_second", second, persistent=False)

    @classmethod
    def from_primal(cls, p: LinearPrimal) -> LinearMember:
        """The module of a fitted member's :class:`LinearPrimal`."""
        return cls(
            p.classifier,
            torch.from_numpy(p.mean),
            torch.from_numpy(p.std),
            torch.from_numpy(p.weight),
            torch.from_numpy(p.bias),
            torch.from_numpy(p.columns),
            p.clip,
            p.temperature,
            p.n_classes,
        )

    @property
    def feature_dim(self) -> int:
        """D, the functionals this member reads."""
        return int(self.mean.numel())

    def standardise(self, x: Tensor) -> Tensor:
        """Standardise ``x`` (N, D) with the training statistics, then clip: (N, D) float64."""
        z = (x.double() - self.mean) / self.std
        return z.clamp(-self.clip, self.clip) if self.clip > 0 else z

    def forward(self, x: Tensor) -> Tensor:
        """Class probabilities (N, K) float64 of functionals ``x`` (N, D).

        Standardised and clipped (:meth:`standardise`), scored by the linear model,
        then turned into probabilities (softmax of the logistic regression, or
        scikit-learn's one-vs-one to one-vs-rest transform of the SVM margins).
        """
        scores = self.standardise(x) @ self.weight.T + self.bias
        if self.classifier == "logreg":
            proba = torch.softmax(scores, dim=1)
        elif self.columns.numel() == 2:  # one signed margin
            margin = scores[:, 0]
            proba = torch.softmax(torch.stack([-margin, margin], 1) / self.temperature, dim=1)
        else:  # scikit-learn's _ovr_decision_function of the one-vs-one decisions
            second_wins = (scores < 0).double()
            votes = (1.0 - second_wins) @ self.pair_first + second_wins @ self.pair_second
            conf = (-scores) @ (self.pair_second - self.pair_first)
            ovr = votes + conf / (3.0 * (conf.abs() + 1.0))
            proba = torch.softmax(ovr / self.temperature, dim=1)
        return proba @ self.place


def _speaker_standardise(x: Tensor, speakers: Sequence[str]) -> Tensor:
    """:func:`vocalis.ensemble.linear.speaker_standardise` in torch. Shape: (B, D) -> (B, D)."""
    out = torch.empty_like(x)
    names = np.asarray([str(s) for s in speakers])
    for s in np.unique(names):
        rows = torch.from_numpy(np.flatnonzero(names == s))
        part = x[rows]
        mu, sd = part.mean(0), part.std(0, unbiased=False)
        out[rows] = (part - mu) / torch.where(sd > 1e-12, sd, torch.ones_like(sd))
    return out


class EnsembleModel(nn.Module):
    """Functionals, scalers, linear members and fusion: waveforms to class probabilities.

    Args:
        functionals: each member's :class:`~vocalis.features.functionals.FunctionalsConfig`.
        members: each member's :class:`LinearMember`.
        weights: ``(M,)`` fusion weights (normalised to sum 1).
        normalization: ``online`` or ``speaker_norm`` (needs the speakers).

    Shape:
        waveform: (B, T), lengths: (B,) samples -> (B, K) float32 probabilities.

    Raises:
        ConfigError: members at different sample rates, a linear model whose size is
            not its functionals', or weights of the wrong size.
    """

    def __init__(
        self,
        functionals: Sequence[FunctionalsConfig],
        members: Sequence[LinearMember],
        weights: Tensor,
        normalization: str = "online",
    ) -> None:
        super().__init__()
        rates = sorted({f.sample_rate for f in functionals})
        if len(rates) != 1:
            raise ConfigError(
                f"ensemble members read audio at {rates} Hz; a saved ensemble needs one "
                "functionals.sample_rate for every member"
            )
        weights = torch.as_tensor(weights, dtype=torch.float64)
        if weights.shape != (len(members),) or len(members) != len(functionals):
            raise ConfigError(
                f"ensemble: {len(functionals)} functionals, {len(members)} members and "
                f"{tuple(weights.shape)} fusion weights; expected one of each per member"
            )
        if normalization not in ("online", "speaker_norm"):
            raise ConfigError(
                f"ensemble.normalization={normalization!r}: expected online or speaker_norm"
            )
        for m, (config, member) in enumerate(zip(functionals, members, strict=True)):
            if functionals_dim(config) != member.feature_dim:
                raise ConfigError(
                    f"ensemble member {m}: {config.name} gives {functionals_dim(config)} "
                    f"functionals, its linear model reads {member.feature_dim}"
                )
        self.functionals = list(functionals)
        self.members = nn.ModuleList(members)
        self.register_buffer("fusion_weights", weights / weights.sum())
        self.normalization = normalization
        self.sample_rate = rates[0]

    @property
    def num_classes(self) -> int:
        """K."""
        return self.members[0].n_classes

    @property
    def needs_speakers(self) -> bool:
        """True under ``speaker_norm``: score clips with :meth:`predict_speakers`."""
        return self.normalization == "speaker_norm"

    def _export_refusal(self) -> str:
        """Why tracing this ensemble for ``vocalis export`` is refused, in one line."""
        smile = [f.name for f in self.functionals if f.name in OPENSMILE_SETS]
        if smile:
            why = (
                f"its {', '.join(smile)} functionals come from opensmile (numpy, research "
                "licence), not torch"
            )
        else:
            why = (
                "its functionals are computed clip by clip in Python, which a traced graph "
                "would freeze to the example clips' lengths"
            )
        return (
            f"this ensemble cannot be exported: {why}; predict and serve it from its "
            "checkpoint (vocalis predict / vocalis serve --checkpoint RUN/model)"
        )

    @classmethod
    def from_fit(cls, fit: EnsembleFit) -> EnsembleModel:
        """The module of a fitted ensemble (its members' primal form, its fusion weights)."""
        return cls(
            [m.functionals for m in fit.config.members],
            [LinearMember.from_primal(clf.primal()) for clf in fit.members],
            torch.tensor(fit.weights, dtype=torch.float64),
            fit.config.normalization,
        )

    def member_functionals(self, waveform: Tensor, lengths: Tensor) -> list[Tensor]:
        """Each member's functionals of every item, ``M x (B, D_m)`` float64.

        Raises:
            ModelError: when traced for export (the message says why: ``_export_refusal``).
        """
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            raise ModelError(self._export_refusal())
        lengths = lengths.long()
        out = []
        for config in self.functionals:
            rows = [
                compute_functionals(waveform[b, : int(lengths[b])], self.sample_rate, config)
                for b in range(waveform.shape[0])
            ]
            out.append(torch.stack(rows).double())
        return out

    def proba_from_functionals(
        self, tables: Sequence[Tensor], speakers: Sequence[str] | None = None
    ) -> Tensor:
        """Fused probabilities ``(B, K)`` float64 of precomputed functionals.

        Raises:
            ModelError: a ``speaker_norm`` ensemble without ``speakers``.
        """
        if self.normalization == "speaker_norm":
            if speakers is None:
                raise ModelError(
                    "this ensemble was trained with speaker_norm: it standardises each speaker "
                    "with that speaker's own statistics, so one clip alone cannot be scored; "
                    "predict a manifest with a speaker column (vocalis predict m.csv, vocalis "
                    f"eval --manifest m.csv), or train the online recipe ({ONLINE_RECIPE})"
                )
            tables = [_speaker_standardise(t.double(), speakers) for t in tables]
        probs = [member(t) for member, t in zip(self.members, tables, strict=True)]
        return sum(w * p for w, p in zip(self.fusion_weights, probs, strict=True))

    def predict_speakers(
        self, waveform: Tensor, lengths: Tensor, speakers: Sequence[str] | None
    ) -> Tensor:
        """:meth:`forward` with each item's speaker (what ``speaker_norm`` needs).

        Under ``speaker_norm`` the items of one speaker are standardised together,
        so give all of a speaker's clips in one call.

        Shape:
            waveform: (B, T), lengths: (B,), speakers: B ids -> (B, K) float32.
        """
        tables = self.member_functionals(waveform, lengths)
        return self.proba_from_functionals(tables, speakers).float()

    def forward(self, waveform: Tensor, lengths: Tensor) -> Tensor:
        """Class probabilities (B, K) of padded ``waveform`` (B, T) with ``lengths`` (B,)."""
        return self.predict_speakers(waveform, lengths, None)

    def embed(
        self, waveform: Tensor, lengths: Tensor, kind: str = "pt", pooling: str = "mean"
    ) -> Tensor:
        """Utterance embeddings of the ensemble (see :class:`vocalis.inference.Embedder`).

        ``pt``: every member's functionals, concatenated; ``ft``: the same after each
        member's training standardisation and clipping (what its linear model reads;
        ``online`` ensembles only). An ensemble has no shared layer (``st``) and one
        set of functionals per member, so ``pooling`` does not apply.

        Shape:
            waveform: (B, T), lengths: (B,) -> (B, sum of D_m) float32.

        Raises:
            ModelError: ``st``, an unknown kind, or ``ft`` of a ``speaker_norm`` ensemble.
        """
        if kind not in ("pt", "ft"):
            raise ModelError(
                f"embedding kind={kind!r}: an ensemble gives 'pt' (its functionals) or 'ft' "
                "(the functionals as its linear members read them); it has no shared layer"
            )
        if kind == "ft" and self.needs_speakers:
            raise ModelError(
                "embedding kind='ft' of a speaker_norm ensemble needs each speaker's statistics; "
                "use --type pt (the raw functionals)"
            )
        tables = self.member_functionals(waveform, lengths)
        if kind == "ft":
            tables = [m.standardise(t) for m, t in zip(self.members, tables, strict=True)]
        return torch.cat(tables, dim=1).float()

    def spec_config(self) -> dict[str, Any]:
        """The checkpoint's ``model.config``: what :func:`build_ensemble` needs besides tensors."""
        from vocalis.config import to_dict

        return {
            "normalization": self.normalization,
            "sample_rate": self.sample_rate,
            "members": [
                {
                    "functionals": to_dict(f),
                    "classifier": m.classifier,
                    "clip": m.clip,
                    "temperature": m.temperature,
                    "n_classes": m.n_classes,
                }
                for f, m in zip(self.functionals, self.members, strict=True)
            ],
        }


def build_ensemble(ckpt: Checkpoint) -> EnsembleModel:
    """Rebuild the :class:`EnsembleModel` of an ``ensemble`` checkpoint.

    Raises:
        ModelError: the config and the tensors of the checkpoint disagree.
        ConfigError: a member's functionals config this Vocalis does not understand.
    """
    from vocalis.config import from_dict

    where = ckpt.source or "checkpoint"
    spec = ckpt.model.config
    state = ckpt.model_state
    functionals, members = [], []
    for m, member in enumerate(spec.get("members") or []):
        prefix = f"members.{m}."
        missing = [
            k for k in ("mean", "std", "weight", "bias", "columns") if prefix + k not in state
        ]
        if missing:
            raise ModelError(
                f"{where}: ensemble member {m} lacks {', '.join(prefix + k for k in missing)}; "
                "the checkpoint is incomplete, save it again"
            )
        functionals.append(
            from_dict(FunctionalsConfig, member["functionals"], where=f"model.members.{m}")
        )
        members.append(
            LinearMember(
                member["classifier"],
                *(state[prefix + k] for k in ("mean", "std", "weight", "bias", "columns")),
                member["clip"],
                member["temperature"],
                member["n_classes"],
            )
        )
    if not members or "fusion_weights" not in state:
        raise ModelError(f"{where}: an ensemble checkpoint without members or fusion weights")
    model = EnsembleModel(
        functionals, members, state["fusion_weights"], spec.get("normalization", "online")
    )
    model.load_state_dict(state)  # strict: no tensor left over
    if model.num_classes != len(ckpt.classes):
        raise ModelError(
            f"{where}: the ensemble gives {model.num_classes} classes, the labels list "
            f"{len(ckpt.classes)}; the checkpoint is inconsistent"
        )
    return model


def save_ensemble(
    path: str | os.PathLike,
    model: EnsembleModel,
    labels: LabelEncoder,
    config: dict[str, Any] | None = None,
) -> Checkpoint:
    """Write ``model`` as an ``ensemble`` checkpoint (format of :mod:`vocalis.checkpoint`).

    Tier 0 is decoding and resampling to the members' rate without level
    normalisation (what the functionals were trained on).

    Args:
        path: the file (a run folder's ``model.pt``).
        model: the fitted module.
        labels: the class names of its outputs.
        config: the recipe it was trained with (plain data).

    Returns:
        The :class:`~vocalis.checkpoint.Checkpoint` written.
    """
    from vocalis.audio import Tier0Config
    from vocalis.checkpoint import Checkpoint, ModelSpec, save_checkpoint

    ckpt = Checkpoint(
        model=ModelSpec(
            kind="ensemble",
            name=MODEL_NAME,
            config=model.spec_config(),
            num_classes=model.num_classes,
        ),
        model_state={k: v.detach().cpu() for k, v in model.state_dict().items()},
        labels=labels,
        tier0=Tier0Config(sample_rate=model.sample_rate, normalize="none"),
        config=dict(config or {}),
    )
    save_checkpoint(path, ckpt)
    return ckpt
