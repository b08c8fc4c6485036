"""Training losses, found by name in :data:`LOSSES`.

Classification losses take ``(logits (B, C), target (B,) class ids)``; ``bce``
also takes multi-hot ``(B, C)`` targets; regression losses take ``(pred (B, K),
target (B, K))`` and ignore NaN targets (a missing annotation). :class:`Objective`
combines a classification loss with an optional weighted regression loss on the
model's ``extras["va"]`` (multi-task emotion: categories + valence/arousal).

Example:
    >>> import torch
    >>> logits, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    >>> round(float(LOSSES.get("ce")()(logits, y)), 4)
    0.2201
    >>> round(float(FocalLoss(gamma=0.0)(logits, y)), 4)
    0.2201
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vocalis.errors import ConfigError, DataError, ModelError
from vocalis.registry import Registry

#: Loss name -> ``nn.Module`` class.
LOSSES: Registry[type[nn.Module]] = Registry("loss")

#: Losses for class labels (the main task of a run).
CLASSIFICATION_LOSSES = ("ce", "focal", "aam", "bce")


def class_weights(
    labels: Sequence[int], num_classes: int, *, classes: Sequence[str] | None = None
) -> torch.Tensor:
    """Inverse-frequency class weights, averaging 1 over the training items.

    Args:
        labels: class ids of the training split.
        num_classes: C.
        classes: class names, used to name a class without examples in the error.

    Returns:
        (C,) float weights; ``w_c = N / (C * n_c)``.

    Raises:
        DataError: a class has no training example (its weight would be infinite).

    Example:
        >>> class_weights([0, 0, 0, 1], 2)
        tensor([0.6667, 2.0000])
    """
    counts = torch.bincount(torch.as_tensor(list(labels), dtype=torch.long), minlength=num_classes)
    if (counts == 0).any():
        missing = int((counts == 0).nonzero()[0, 0])
        name = classes[missing] if classes is not None else str(missing)
        raise DataError(
            f"class '{name}' has no training example, so class_weights=auto is undefined; "
            "use a split that keeps every class in training, or drop the class with a label_map"
        )
    return (counts.sum() / (num_classes * counts.float())).float()


def _check_target(logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.ndim != 2 or target.shape[0] != logits.shape[0]:
        raise ModelError(
            f"loss: logits {tuple(logits.shape)} and targets {tuple(target.shape)} do not match; "
            "expected logits (B, C) and targets (B,)"
        )


@LOSSES.register("ce")
class CrossEntropy(nn.Module):
    """Cross-entropy with optional class weights and label smoothing (``torch`` semantics).

    Args:
        weight: (C,) class weights or ``None``.
        label_smoothing: share of the target mass spread uniformly over the classes.
    """

    def __init__(self, weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("weight", weight, persistent=False)
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss. Shape: logits (B, C), target (B,) -> scalar."""
        _check_target(logits, target)
        return F.cross_entropy(
            logits.float(), target, weight=self.weight, label_smoothing=self.label_smoothing
        )


@LOSSES.register("focal")
class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): ``-(1 - p_t)^gamma log p_t``; gamma 0 gives CE.

    With class weights the batch mean is weighted by ``w[y]`` (as ``torch`` CE does);
    label smoothing spreads ``label_smoothing`` of the target mass over the classes.

    Args:
        gamma: focusing parameter (>= 0).
        weight: (C,) class weights or ``None``.
        label_smoothing: as in :class:`CrossEntropy`.
    """

    def __init__(
        self, gamma: float = 2.0, weight: torch.Tensor | None = None, label_smoothing: float = 0.0
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise ConfigError(f"train.focal_gamma: got {gamma}, expected >= 0")
        self.gamma = float(gamma)
        self.register_buffer("weight", weight, persistent=False)
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss. Shape: logits (B, C), target (B,) -> scalar."""
        _check_target(logits, target)
        logp = F.log_softmax(logits.float(), dim=-1)
        num_classes = logits.shape[-1]
        q = F.one_hot(target, num_classes).float()
        if self.label_smoothing:
            q = q * (1.0 - self.label_smoothing) + self.label_smoothing / num_classes
        focus = (1.0 - logp.exp()).clamp_min(0.0) ** self.gamma if self.gamma else 1.0
        per_item = -(q * focus * logp).sum(dim=-1)
        if self.weight is None:
            return per_item.mean()
        w = self.weight[target]
        return (w * per_item).sum() / w.sum()


@LOSSES.register("aam")
class AAMSoftmax(nn.Module):
    """Additive angular margin softmax (ArcFace) on cosine logits.

    The model's logits must be cosines between the normalised embedding and
    normalised class weights (a cosine head), in [-1, 1]. The target angle gets
    ``margin`` added, every logit is multiplied by ``scale``, then cross-entropy.
    With ``margin=0`` this is cross-entropy on ``scale * cos``.

    Args:
        margin: additive angle in radians (0.2 typical).
        scale: logit scale (30 typical).
        weight: (C,) class weights or ``None``.
        label_smoothing: as in :class:`CrossEntropy`.

    Raises:
        ModelError: (on call) logits outside [-1, 1], i.e. not a cosine head.
    """

    def __init__(
        self,
        margin: float = 0.2,
        scale: float = 30.0,
        weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= margin < math.pi / 2:
            raise ConfigError(f"train.aam_margin: got {margin}, expected radians in [0, pi/2)")
        if scale <= 0:
            raise ConfigError(f"train.aam_scale: got {scale}, expected > 0")
        self.margin, self.scale = float(margin), float(scale)
        self.full_margin = self.margin
        self.register_buffer("weight", weight, persistent=False)
        self.label_smoothing = float(label_smoothing)

    def warm_up(self, epoch: int, epochs: float) -> float:
        """Margin warm-up: ``margin * min(1, epoch / epochs)`` from here on; returns it.

        ``epoch`` is 0-based, so the first epoch trains without a margin (plain
        scaled-cosine softmax) and the full margin applies from epoch ``epochs``.
        """
        frac = 1.0 if epochs <= 0 else min(1.0, max(0.0, epoch / epochs))
        self.margin = self.full_margin * frac
        return self.margin

    def with_full_margin(self) -> AAMSoftmax:
        """A copy with the full margin (validation losses stay comparable during warm-up)."""
        import copy

        full = copy.copy(self)
        full.margin = self.full_margin
        return full

    def forward(self, cosine: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss. Shape: cosine (B, C), target (B,) -> scalar."""
        _check_target(cosine, target)
        cosine = cosine.float()
        if cosine.detach().abs().max() > 1.0 + 1e-3:
            raise ModelError(
                "loss aam: the model's logits are not cosines (|logit| > 1); use a model "
                "with a cosine head or choose train.loss=ce"
            )
        cosine = cosine.clamp(-1.0 + 1e-7, 1.0 - 1e-7)
        m = self.margin
        sine = (1.0 - cosine**2).sqrt()
        phi = cosine * math.cos(m) - sine * math.sin(m)  # cos(theta + m)
        # Past theta = pi - m, cos(theta + m) stops decreasing: use a linear penalty.
        phi = torch.where(cosine > math.cos(math.pi - m), phi, cosine - math.sin(math.pi - m) * m)
        onehot = F.one_hot(target, cosine.shape[-1]).bool()
        logits = self.scale * torch.where(onehot, phi, cosine)
        return F.cross_entropy(
            logits, target, weight=self.weight, label_smoothing=self.label_smoothing
        )


@LOSSES.register("bce")
class BinaryCrossEntropy(nn.Module):
    """Per-class sigmoid cross-entropy for multi-label targets (or one-vs-rest).

    Args:
        weight: (C,) per-class weights or ``None``.
        label_smoothing: targets become ``t (1 - s) + s / 2``.
        pos_weight: (C,) weight of each label's positive examples (``negatives /
            positives`` balances a rare finding), or ``None``.
    """

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        pos_weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight, persistent=False)
        self.register_buffer("pos_weight", pos_weight, persistent=False)
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss. Shape: logits (B, C), target (B,) ids or (B, C) multi-hot -> scalar."""
        if target.ndim == 1:
            _check_target(logits, target)
            target = F.one_hot(target, logits.shape[-1])
        target = target.float()
        if self.label_smoothing:
            target = target * (1.0 - self.label_smoothing) + self.label_smoothing / 2
        return F.binary_cross_entropy_with_logits(
            logits.float(), target, weight=self.weight, pos_weight=self.pos_weight
        )


class _Regression(nn.Module):
    """Mean over the finite targets; NaN marks a missing annotation."""

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss. Shape: pred (B, K), target (B, K) -> scalar."""
        if pred.shape != target.shape:
            raise ModelError(
                f"regression loss: predictions {tuple(pred.shape)} and targets "
                f"{tuple(target.shape)} differ; the model's extras['va'] must have one "
                "output per dataset.regression_columns entry"
            )
        mask = torch.isfinite(target)
        if not mask.any():
            return pred.sum() * 0.0
        return self.elementwise(pred.float()[mask], target.float()[mask]).mean()


@LOSSES.register("mse")
class MSELoss(_Regression):
    """Mean squared error over the annotated targets."""

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Squared error per element (same shape as ``pred``)."""
        return (pred - target) ** 2


@LOSSES.register("smoothl1")
class SmoothL1Loss(_Regression):
    """Huber loss (beta 1) over the annotated targets."""

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Smooth L1 (Huber, beta 1) per element (same shape as ``pred``)."""
        return F.smooth_l1_loss(pred, target, reduction="none")


def build_classification_loss(
    name: str,
    *,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    focal_gamma: float = 2.0,
    aam_margin: float = 0.2,
    aam_scale: float = 30.0,
) -> nn.Module:
    """The classification loss called ``name`` with the relevant options."""
    cls = LOSSES.get(name)
    if issubclass(cls, _Regression):
        raise ConfigError(
            f"train.loss: got {name!r}, a regression loss; the main task needs one of: "
            f"{', '.join(CLASSIFICATION_LOSSES)} (use multitask_loss for regression)"
        )
    if name == "focal":
        return cls(gamma=focal_gamma, weight=weight, label_smoothing=label_smoothing)
    if name == "aam":
        return cls(
            margin=aam_margin, scale=aam_scale, weight=weight, label_smoothing=label_smoothing
        )
    return cls(weight=weight, label_smoothing=label_smoothing)


class Objective(nn.Module):
    """Classification loss plus ``lambda`` times a regression loss on ``extras["va"]``.

    Args:
        classification: the main loss (``logits``, class ids).
        regression: auxiliary loss (``extras[regression_key]``, targets) or ``None``.
        regression_weight: lambda.
        regression_key: the extras entry holding the regression outputs.
    """

    def __init__(
        self,
        classification: nn.Module,
        regression: nn.Module | None = None,
        regression_weight: float = 0.0,
        regression_key: str = "va",
    ) -> None:
        super().__init__()
        self.classification = classification
        self.regression = regression
        self.regression_weight = float(regression_weight)
        self.regression_key = regression_key

    def forward(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        extras: dict[str, torch.Tensor] | None = None,
        regression_target: torch.Tensor | None = None,
        head_targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and its parts (``{"cls": ..., "reg": ...}``); ``head_targets`` is unused."""
        loss = self.classification(logits, target)
        parts = {"cls": float(loss.detach())}
        if self.regression is not None and self.regression_weight > 0:
            pred = (extras or {}).get(self.regression_key)
            if pred is None:
                raise ModelError(
                    f"train.multitask_lambda > 0 but the model gives no extras"
                    f"['{self.regression_key}']; use a model with a regression head "
                    "or set train.multitask_lambda=0"
                )
            if regression_target is None:
                raise DataError(
                    "train.multitask_lambda > 0 but no regression targets; set "
                    "dataset.regression_columns (e.g. [valence, arousal])"
                )
            reg = self.regression(pred, regression_target)
            parts["reg"] = float(reg.detach())
            loss = loss + self.regression_weight * reg
        return loss, parts


class HeadsObjective(nn.Module):
    """The weighted sum of one loss per head, on the heads' concatenated logits.

    Each head takes its slice of the model's logits and of the packed target matrix
    (:func:`vocalis.data.targets.encode_targets`): class ids for a multiclass head,
    0/1 columns for a multi-label head, z-scored values for a regression head. Rows
    whose target is NaN (a missing annotation) are left out of that head's loss; a
    batch in which a head has no annotated row adds 0 for it.

    Args:
        layout: a :class:`~vocalis.data.targets.HeadLayout` (heads, slices).
        losses: one loss module per head.

    Example:
        >>> from vocalis.data.targets import HeadLayout, HeadSpec
        >>> layout = HeadLayout([HeadSpec("e", "multiclass", ("e",), ("a", "b")),
        ...                      HeadSpec("v", "regression", ("v",), ("v",), "mse", 0.5)])
        >>> obj = HeadsObjective(layout, [CrossEntropy(), MSELoss()])
        >>> logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
        >>> loss, parts = obj(logits, None, head_targets=torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        >>> round(float(loss), 4), sorted(parts)
        (0.2201, ['e', 'v'])
    """

    def __init__(self, layout: object, losses: Sequence[nn.Module]) -> None:
        super().__init__()
        self.layout = layout
        self.losses = nn.ModuleList(losses)

    def per_head(
        self, logits: torch.Tensor, head_targets: torch.Tensor
    ) -> list[torch.Tensor | None]:
        """Each head's mean loss (``None`` for a head without an annotated row)."""
        out: list[torch.Tensor | None] = []
        layout = self.layout
        for h, loss, (o0, o1), (t0, t1) in zip(
            layout.heads, self.losses, layout.outputs, layout.targets, strict=True
        ):
            lg, tg = logits[:, o0:o1], head_targets[:, t0:t1]
            if h.kind == "multiclass":
                keep = torch.isfinite(tg[:, 0])
                if not keep.any():
                    out.append(None)
                    continue
                out.append(loss(lg[keep], tg[keep, 0].long()))
            elif h.kind == "multilabel":
                keep = torch.isfinite(tg).all(dim=1)
                if not keep.any():
                    out.append(None)
                    continue
                out.append(loss(lg[keep], tg[keep]))
            else:
                out.append(loss(lg, tg))
        return out

    def forward(
        self,
        logits: torch.Tensor,
        target: torch.Tensor | None,
        extras: dict[str, torch.Tensor] | None = None,
        regression_target: torch.Tensor | None = None,
        head_targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and each head's part (``{head: value}``); ``target`` is unused."""
        if head_targets is None:
            raise DataError("a multi-head objective needs the packed head targets of the batch")
        total = logits.sum() * 0.0
        parts: dict[str, float] = {}
        for h, value in zip(self.layout.heads, self.per_head(logits, head_targets), strict=True):
            if value is None:
                continue
            parts[h.name] = float(value.detach())
            total = total + h.weight * value
        return total, parts


def build_head_losses(
    layout: object,
    weights: Sequence[torch.Tensor | None] | None = None,
    **options: float,
) -> list[nn.Module]:
    """One loss module per head of ``layout`` (its ``loss`` name), with class weights.

    Args:
        layout: a :class:`~vocalis.data.targets.HeadLayout`.
        weights: per head, (C_h,) class weights (of a multi-label head: the weight of
            each label's positives) or ``None``.
        **options: ``label_smoothing``, ``focal_gamma``, ``aam_margin``, ``aam_scale``.

    Raises:
        ConfigError: a regression loss on a class head or the reverse.
    """
    out: list[nn.Module] = []
    heads = layout.heads
    weights = list(weights) if weights is not None else [None] * len(heads)
    for h, w in zip(heads, weights, strict=True):
        regression = h.loss in ("mse", "smoothl1")
        if regression != (h.kind == "regression"):
            raise ConfigError(
                f"train.loss.{h.name}: {h.loss!r} does not fit a {h.kind} head; use mse or "
                "smoothl1 for numbers, ce/focal/aam/bce for classes"
            )
        if regression:
            out.append(LOSSES.get(h.loss)())
        elif h.kind == "multilabel":  # its "class weights" weigh each label's positives
            out.append(BinaryCrossEntropy(pos_weight=w))
        else:
            out.append(build_classification_loss(h.loss, weight=w, **options))
    return out
