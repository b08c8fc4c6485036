"""Classification heads on top of a backbone embedding.

A :class:`DenseHead` is ``[LayerNorm] -> [Linear(hidden) -> activation] -> dropout
-> Linear(classes)``; with ``cosine=True`` the last layer returns cosine
similarities between the L2-normalised input and L2-normalised class weights
(for AAM-softmax / additive-margin losses, which apply the margin and the scale
themselves). A :class:`MultiHead` holds one head per label group (``num_classes=[4, 2]``),
optionally behind one shared dense layer, and concatenates their logits.

Each head has a kind (:meth:`MultiHead.set_kinds`; default ``multiclass``):
``multiclass`` heads give softmax probabilities, ``multilabel`` heads one sigmoid
per label, ``regression`` heads their raw (z-scored) values (:func:`head_probs`).

Embeddings exposed for ``model.embed``:
  * ``st``: output of the shared dense layer (after the activation);
  * ``ft``: output of each head's first dense layer *before* its activation (the
    linear map only, as the seed recipe takes it), merged across heads by mean or sum.

Shape legend: B batch, E embedding size, C total classes (sum over heads).

Example:
    >>> import torch
    >>> head = MultiHead(16, [3, 2], hidden=8, shared_dim=12)
    >>> out = head(torch.randn(4, 16))
    >>> out.logits.shape, out.per_head[1].shape
    (torch.Size([4, 5]), torch.Size([4, 2]))
    >>> head.ft(torch.randn(4, 16)).shape
    torch.Size([4, 8])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vocalis.data.targets import HEAD_KINDS
from vocalis.errors import ConfigError, ConfigValueError, ModelError

Activation = Literal["relu", "gelu", "leaky_relu"]


def make_activation(name: str) -> nn.Module:
    """``relu`` | ``gelu`` | ``leaky_relu`` as a module."""
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01)
    raise ConfigError(f"model.head_activation: got {name!r}, expected relu, gelu or leaky_relu")


@dataclass(frozen=True)
class HeadFields:
    """Head options shared by every model config (flat keys in ``model:``).

    Attributes:
        head: ``dense`` (linear logits) or ``cosine`` (cosine logits in [-1, 1]
            for margin losses such as AAM-softmax; the loss applies margin and scale).
        head_hidden: size of each head's bottleneck dense layer; 0 = no hidden layer
            (then ``embed(kind="ft")`` is unavailable).
        head_activation: activation after the hidden and shared layers.
        head_dropout: dropout before each head's output layer.
        head_layernorm: LayerNorm on the head input.
        shared_dim: size of a dense layer shared by all heads; 0 = none.
        cosine_scale: scale applied to cosine logits to compute ``probs``.
    """

    head: Literal["dense", "cosine"] = "dense"
    head_hidden: int = 0
    head_activation: Activation = "relu"
    head_dropout: float = 0.1
    head_layernorm: bool = False
    shared_dim: int = 0
    cosine_scale: float = 30.0

    def __post_init__(self) -> None:
        for key in ("head_hidden", "shared_dim"):
            if getattr(self, key) < 0:
                raise ConfigValueError(key, getattr(self, key), ">= 0 (0 disables the layer)")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ConfigValueError("head_dropout", self.head_dropout, "a value in [0, 1)")


class CosineLinear(nn.Module):
    """Cosine similarity between normalised inputs and normalised class weights.

    Shape:
        x: (B, E) -> (B, C), values in [-1, 1]
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_dim, in_dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        """Cosine similarities between ``x`` (B, D) and the class weights: (B, K)."""
        return F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))


class DenseHead(nn.Module):
    """One classification head.

    Args:
        in_dim: input size E.
        num_classes: outputs C.
        hidden: bottleneck size; 0 = none.
        activation: ``relu`` | ``gelu`` | ``leaky_relu``.
        dropout: dropout before the output layer.
        layernorm: LayerNorm on the input.
        cosine: cosine output layer instead of a linear one.

    Shape:
        x: (B, E) -> (B, C)
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        hidden: int = 0,
        activation: str = "relu",
        dropout: float = 0.0,
        layernorm: bool = False,
        cosine: bool = False,
    ) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim) if layernorm else nn.Identity()
        self.hidden = (
            nn.Sequential(nn.Linear(in_dim, hidden), make_activation(activation))
            if hidden > 0
            else None
        )
        self.dropout = nn.Dropout(dropout)
        out_in = hidden if hidden > 0 else in_dim
        self.out = CosineLinear(out_in, num_classes) if cosine else nn.Linear(out_in, num_classes)

    def ft(self, x: Tensor) -> Tensor:
        """Output of the first dense layer (the bottleneck) before its activation.

        Shape:
            x: (B, E) -> (B, hidden)
        """
        if self.hidden is None:
            raise ModelError(
                "embed(kind='ft') needs a hidden dense layer in the head, but model.head_hidden=0: "
                "use kind='pt' or set model.head_hidden > 0 and retrain"
            )
        return self.hidden[0](self.norm(x))

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, K) of pooled features ``x`` (B, D)."""
        x = self.norm(x)
        if self.hidden is not None:
            x = self.hidden(x)
        return self.out(self.dropout(x))


@dataclass
class HeadOutput:
    """What :class:`MultiHead` returns.

    Attributes:
        logits: heads' logits concatenated in head order, (B, C).
        per_head: each head's logits, [(B, C_h)].
    """

    logits: Tensor
    per_head: list[Tensor]


class MultiHead(nn.Module):
    """One head per label group behind an optional shared dense layer.

    Args:
        in_dim: embedding size E.
        num_classes: classes of one head, or a list with one entry per head.
        hidden: see :class:`DenseHead`, as for ``activation``, ``dropout``, ``layernorm``
            and ``cosine``.
        shared_dim: size of the shared dense layer; 0 = none.

    Shape:
        x: (B, E) -> logits (B, sum(num_classes))
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int | list[int],
        hidden: int = 0,
        activation: str = "relu",
        dropout: float = 0.0,
        layernorm: bool = False,
        cosine: bool = False,
        shared_dim: int = 0,
    ) -> None:
        super().__init__()
        sizes = [num_classes] if isinstance(num_classes, int) else list(num_classes)
        if not sizes or any(int(n) < 1 for n in sizes):
            raise ModelError(
                f"num_classes={num_classes!r}: expected a positive integer or a non-empty "
                "list of them (one per label group)"
            )
        self.sizes = [int(n) for n in sizes]
        self.kinds = ["multiclass"] * len(self.sizes)
        self.shared = (
            nn.Sequential(nn.Linear(in_dim, shared_dim), make_activation(activation))
            if shared_dim > 0
            else None
        )
        head_in = shared_dim if shared_dim > 0 else in_dim
        self.heads = nn.ModuleList(
            DenseHead(head_in, n, hidden, activation, dropout, layernorm, cosine)
            for n in self.sizes
        )

    @classmethod
    def from_config(
        cls, config: HeadFields, in_dim: int, num_classes: int | list[int]
    ) -> MultiHead:
        """Build from the head fields of a model config."""
        return cls(
            in_dim,
            num_classes,
            hidden=config.head_hidden,
            activation=config.head_activation,
            dropout=config.head_dropout,
            layernorm=config.head_layernorm,
            cosine=config.head == "cosine",
            shared_dim=config.shared_dim,
        )

    def set_kinds(self, kinds: list[str]) -> None:
        """Set each head's kind: ``multiclass``, ``multilabel`` or ``regression``.

        Raises:
            ModelError: not one kind per head, or an unknown kind.
        """
        kinds = [str(k) for k in kinds]
        if len(kinds) != len(self.sizes) or any(k not in HEAD_KINDS for k in kinds):
            raise ModelError(
                f"head kinds {kinds}: expected {len(self.sizes)} of {', '.join(HEAD_KINDS)}"
            )
        self.kinds = kinds

    def st(self, x: Tensor) -> Tensor:
        """Output of the shared dense layer, (B, shared_dim)."""
        if self.shared is None:
            raise ModelError(
                "embed(kind='st') needs a shared dense layer, but model.shared_dim=0: "
                "use kind='pt' or 'ft', or set model.shared_dim > 0 and retrain"
            )
        return self.shared(x)

    def ft(self, x: Tensor, pooling: str = "mean") -> Tensor:
        """First dense layer of every head, merged by ``mean`` or ``sum``, (B, hidden)."""
        if pooling not in ("mean", "sum"):
            raise ModelError(f"embed pooling={pooling!r}: expected 'mean' or 'sum'")
        if self.shared is not None:
            x = self.shared(x)
        stacked = torch.stack([head.ft(x) for head in self.heads], dim=0)
        return stacked.mean(dim=0) if pooling == "mean" else stacked.sum(dim=0)

    def forward(self, x: Tensor) -> HeadOutput:
        """Every head's output (and the shared layer's) for pooled features ``x`` (B, D)."""
        if self.shared is not None:
            x = self.shared(x)
        per_head = [head(x) for head in self.heads]
        logits = per_head[0] if len(per_head) == 1 else torch.cat(per_head, dim=1)
        return HeadOutput(logits=logits, per_head=per_head)


def head_probs(
    per_head: list[Tensor], scale: float = 1.0, kinds: list[str] | None = None
) -> Tensor:
    """Per-head outputs, concatenated: probabilities of class heads, values of regression heads.

    A ``multiclass`` head gives a softmax (a sigmoid when it has a single output), a
    ``multilabel`` head one sigmoid per label, a ``regression`` head its raw values
    (``scale`` applies to class heads only).

    Shape:
        per_head: [(B, C_h)] -> (B, sum C_h)

    Example:
        >>> p = head_probs([torch.zeros(1, 2), torch.zeros(1, 1)])
        >>> p
        tensor([[0.5000, 0.5000, 0.5000]])
        >>> head_probs([torch.zeros(1, 2), torch.ones(1, 1)], kinds=["multilabel", "regression"])
        tensor([[0.5000, 0.5000, 1.0000]])
    """
    kinds = kinds or ["multiclass"] * len(per_head)
    parts = []
    for lg, kind in zip(per_head, kinds, strict=True):
        if kind == "regression":
            parts.append(lg)
        elif kind == "multilabel" or lg.shape[1] == 1:
            parts.append(torch.sigmoid(scale * lg))
        else:
            parts.append(torch.softmax(scale * lg, dim=1))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
