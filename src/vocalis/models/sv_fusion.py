"""``sv_fusion``: speaker verification from pretrained-encoder layers, handcrafted features, both.

Three modes (``mode``), one back-end::

    mode 1 (PTM)          features=ptm          (B, L*H, T)
      -> learned softmax weights over the L layers -> (B, H, T) -> 1x1 conv -> (B, D, T)
    mode 2 (handcrafted)  features=<mode>       (B, C, T)
      -> 1-D CNN [conv k -> BatchNorm -> ReLU] x n -> 1x1 conv -> (B, D, T)
    mode 3 (fused)        features=ptm_<mode>   (B, L*H + C, T): both branches, then
      -> fusion: concat | cross_attention (8 heads) | gating (per frame or utterance)
    -> ECAPA-TDNN back-end (SE-Res2Net blocks, attentive statistics pooling)
      -> embedding (B, E=512) -> cosine head (for AAM-softmax) -> logits (B, speakers)

The input features come from :mod:`vocalis.features.ptm_stack` (``ptm``,
``ptm_mfbe_pitch``...) or a plain handcrafted extractor (``mfbe_pitch`` 81,
``mfcc_pitch`` 41, ``mfbe_only`` 80, ``mfcc_only`` 40, ``pitch_only`` 1);
:func:`vocalis.features.config.stack_name` names the one a mode needs (the recipe's
``${sv_features:...}`` resolver), and the model checks that the feature size fits
``ptm_layers x ptm_hidden`` (+ the handcrafted size).

``embed(..., kind="sv")`` (also ``pt``) is the speaker embedding that
:mod:`vocalis.verification` scores; ``extras["gate"]`` (B,) is the mean PTM
weight of the gate over each utterance's valid frames (mode 3, ``gating``).

Shape legend: B batch, L encoder layers, H hidden size, C handcrafted features,
T frames, D fusion width, E embedding size.

Example:
    >>> import torch
    >>> from vocalis.models import build_model
    >>> cfg = {"mode": 3, "fusion": "gating", "ptm_layers": 2, "ptm_hidden": 8, "width": 16,
    ...        "cnn_channels": [16], "ecapa_channels": [16, 16, 16, 48], "embedding_dim": 8,
    ...        "se_channels": 4, "attention_channels": 4}
    >>> model = build_model("sv_fusion", cfg, 2 * 8 + 81, 5).eval()
    >>> out = model(torch.randn(2, 97, 30), torch.tensor([30, 20]))
    >>> out.logits.shape, model.embed(torch.randn(2, 97, 30), kind="sv").shape
    (torch.Size([2, 5]), torch.Size([2, 8]))
    >>> bool(((out.extras["gate"] >= 0) & (out.extras["gate"] <= 1)).all())
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from vocalis.encoders.select import LayerMix
from vocalis.errors import ConfigError, ConfigValueError, ModelError
from vocalis.models.base import ModelOutput, SpeechClassifier
from vocalis.models.ecapa import Ecapa, EcapaConfig
from vocalis.models.fusion import FUSIONS, build_fusion
from vocalis.models.heads import HeadFields
from vocalis.models.masking import apply_mask, lengths_to_mask, masked_mean
from vocalis.models.registry import MODELS


@dataclass(frozen=True)
class SVFusionConfig(HeadFields):
    """Config of :class:`SVFusion` (``model: {name: sv_fusion, params: ...}``).

    Attributes:
        mode: 1 PTM layers only, 2 handcrafted features only, 3 both fused.
        fusion: mode 3: ``concat``, ``cross_attention`` or ``gating``.
        features: the handcrafted mode (``mfbe_pitch``, ``mfcc_pitch``, ``mfbe_only``,
            ``mfcc_only``, ``pitch_only``), for the record and the feature choice.
        ptm_layers: L, encoder layers in the input (GE2E 3, base SSL models 13).
        ptm_hidden: H, size of each layer (GE2E 256, base SSL models 768).
        layer_weights: ``learned`` softmax weights over the layers, or their ``mean``.
        width: D, the width both branches project to and the fusion works at.
        cnn_channels: channels of the handcrafted branch's convolution blocks.
        cnn_kernel: their temporal kernel (odd).
        attention_heads: heads of ``cross_attention``.
        gate: ``frame`` (one gate per frame) or ``utterance`` (one per item).
        dropout: dropout after the branches (and in the attention).
        ecapa_channels: the back-end's first TDNN, SE-Res2Net blocks, aggregation.
        ecapa_kernel_sizes: its kernels, one per channel entry (``[]``: 5, then 3 per
            block, then 1).
        ecapa_dilations: its dilations, one per channel entry (``[]``: 1, then 2, 3, 4...
            per block, then 1).
        res2net_scale: Res2Net splits of the back-end.
        se_channels: squeeze-excitation bottleneck of the back-end.
        attention_channels: attentive statistics pooling bottleneck.
        embedding_dim: E, the speaker embedding.
        head: ``cosine`` (default, for ``train.loss=aam``) or ``dense``.
        head_dropout: dropout before the output layer.
    """

    mode: int = 3
    fusion: Literal["concat", "cross_attention", "gating"] = "gating"
    features: str = "mfbe_pitch"
    ptm_layers: int = 3
    ptm_hidden: int = 256
    layer_weights: Literal["learned", "mean"] = "learned"
    width: int = 768
    cnn_channels: tuple[int, ...] = (256, 256)
    cnn_kernel: int = 5
    attention_heads: int = 8
    gate: Literal["frame", "utterance"] = "frame"
    dropout: float = 0.1
    ecapa_channels: tuple[int, ...] = (512, 512, 512, 512, 512, 1536)
    ecapa_kernel_sizes: tuple[int, ...] = ()
    ecapa_dilations: tuple[int, ...] = ()
    res2net_scale: int = 8
    se_channels: int = 128
    attention_channels: int = 128
    embedding_dim: int = 512
    head: Literal["dense", "cosine"] = "cosine"
    head_dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in (1, 2, 3):
            raise ConfigValueError("mode", self.mode, "1 (PTM), 2 (handcrafted) or 3 (fused)")
        if self.fusion not in FUSIONS:
            raise ConfigValueError("fusion", self.fusion, f"one of {', '.join(FUSIONS)}")
        if not self.features:
            raise ConfigValueError("features", self.features, "a handcrafted mode (mfbe_pitch...)")
        for key in ("ptm_layers", "ptm_hidden", "width", "attention_heads", "embedding_dim"):
            if getattr(self, key) < 1:
                raise ConfigValueError(key, getattr(self, key), "a positive size")
        if any(c < 1 for c in self.cnn_channels):
            raise ConfigValueError("cnn_channels", list(self.cnn_channels), "positive sizes")
        if self.cnn_kernel < 1 or self.cnn_kernel % 2 == 0:
            raise ConfigValueError("cnn_kernel", self.cnn_kernel, "a positive odd number")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigValueError("dropout", self.dropout, "a value in [0, 1)")
        self.backend_config()  # validates the ECAPA sizes

    def backend_config(self) -> EcapaConfig:
        """The :class:`~vocalis.models.ecapa.EcapaConfig` of the back-end (head fields included)."""
        n = len(self.ecapa_channels)
        kernels = list(self.ecapa_kernel_sizes) or [5] + [3] * (n - 2) + [1]
        dilations = list(self.ecapa_dilations) or [1, *range(2, n), 1]
        try:
            return EcapaConfig(
                channels=list(self.ecapa_channels),
                kernel_sizes=kernels,
                dilations=dilations,
                res2net_scale=self.res2net_scale,
                se_channels=self.se_channels,
                attention_channels=self.attention_channels,
                embedding_dim=self.embedding_dim,
                head=self.head,
                head_hidden=self.head_hidden,
                head_activation=self.head_activation,
                head_dropout=self.head_dropout,
                head_layernorm=self.head_layernorm,
                shared_dim=self.shared_dim,
                cosine_scale=self.cosine_scale,
            )
        except ConfigValueError as err:
            key = (
                err.key if err.key.startswith(("head", "shared", "cosine")) else f"ecapa_{err.key}"
            )
            key = {"ecapa_embedding_dim": "embedding_dim"}.get(key, key)
            raise ConfigValueError(key, err.value, err.expected) from None


class HandcraftedCNN(nn.Module):
    """1-D CNN over handcrafted features, projected to the fusion width.

    Padded frames are zeroed before every convolution, so a padded item gives what
    it gives alone (eval mode).

    Shape:
        x: (B, C, T), mask: (B, T) or None -> (B, D, T)
    """

    def __init__(self, c_in: int, channels: tuple[int, ...], kernel: int, width: int) -> None:
        super().__init__()
        blocks = []
        for c in channels:
            blocks.append(
                nn.Sequential(
                    nn.Conv1d(c_in, c, kernel, padding=kernel // 2),
                    nn.BatchNorm1d(c),
                    nn.ReLU(inplace=True),
                )
            )
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.proj = nn.Conv1d(c_in, width, 1)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Convolve ``x`` (B, C, T) and project to (B, D, T)."""
        for block in self.blocks:
            x = block(apply_mask(x, mask))
        return self.proj(x)


@MODELS.register("sv_fusion")
class SVFusion(SpeechClassifier):
    """PTM layers and/or handcrafted features -> (fusion) -> ECAPA-TDNN -> speaker embedding.

    Args:
        config: :class:`SVFusionConfig`.
        input_dim: F = ``ptm_layers * ptm_hidden`` (mode 1), C (mode 2) or their sum (mode 3).
        num_classes: training speakers.
        feature_name: features the model is built for (error messages).

    Raises:
        ConfigError: ``input_dim`` does not fit the mode and the PTM layout.

    Shape:
        features: (B, F, T), lengths: (B,) -> logits (B, speakers), embedding (B, E)
    """

    config_cls = SVFusionConfig

    def __init__(
        self,
        config: SVFusionConfig,
        input_dim: int,
        num_classes: int | list[int],
        feature_name: str | None = None,
    ) -> None:
        super().__init__(config, input_dim, num_classes, feature_name)
        c = config
        self.ptm_dim = c.ptm_layers * c.ptm_hidden if c.mode in (1, 3) else 0
        self.hand_dim = self.input_dim - self.ptm_dim if c.mode in (2, 3) else 0
        wanted = {1: "ptm", 2: c.features, 3: f"ptm_{c.features}"}[c.mode]
        bad = (c.mode == 1 and self.input_dim != self.ptm_dim) or (
            c.mode == 3 and self.hand_dim < 1
        )
        if bad:
            raise ConfigError(
                f"model sv_fusion mode {c.mode}: got F={self.input_dim} input features"
                f"{f' ({feature_name})' if feature_name else ''}, expected "
                f"{'' if c.mode == 1 else 'more than '}ptm_layers x ptm_hidden = "
                f"{c.ptm_layers} x {c.ptm_hidden} = {self.ptm_dim}: use features.extractor.name="
                f"{wanted} and set model.params.ptm_layers / ptm_hidden to the encoder's layout"
            )
        self.layer_mix: LayerMix | None = None
        self.ptm_proj: nn.Module | None = None
        if self.ptm_dim:
            self.layer_mix = LayerMix(range(c.ptm_layers), c.layer_weights == "learned")
            self.ptm_proj = nn.Conv1d(c.ptm_hidden, c.width, 1)
        self.cnn = (
            HandcraftedCNN(self.hand_dim, c.cnn_channels, c.cnn_kernel, c.width)
            if self.hand_dim
            else None
        )
        self.fusion = (
            build_fusion(c.fusion, c.width, c.attention_heads, c.gate, c.dropout)
            if c.mode == 3
            else None
        )
        self.drop = nn.Dropout(c.dropout)
        backend = Ecapa(c.backend_config(), c.width, num_classes, feature_name)
        self.head = backend.head
        backend.head = None  # the head is this model's (one copy in the state dict)
        self.backend = backend
        self.embedding_dim = c.embedding_dim

    def branches(
        self, features: Tensor, lengths: Tensor
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """The PTM and handcrafted frames (B, D, T), and the lengths to mask with.

        A branch the mode lacks is ``None``; so are the lengths when nothing is padded.
        """
        t = features.shape[2]
        short = self._mask_lengths(lengths, t)
        mask = None if short is None else lengths_to_mask(short, t)
        p = h = None
        if self.layer_mix is not None and self.ptm_proj is not None:
            layers = features[:, : self.ptm_dim].unflatten(1, (self.config.ptm_layers, -1))
            p = self.drop(self.ptm_proj(self.layer_mix(layers.unbind(1))))  # L x (B, H, T)
        if self.cnn is not None:
            h = self.drop(self.cnn(features[:, self.ptm_dim :], mask))
        return p, h, short

    def fuse(self, features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """The fused frames (B, D, T) and the gate (B, T) (``None`` without a gate)."""
        p, h, short = self.branches(features, lengths)
        if self.fusion is None:
            out = p if p is not None else h
            assert out is not None  # one branch exists in modes 1 and 2
            return out, None
        return self.fusion(p, h, short)

    def encode_with_gate(self, features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """The embedding (B, E) and each item's mean gate over its valid frames (B,) or None."""
        fused, gate = self.fuse(features, lengths)
        emb = self.backend.encode(fused, lengths)
        if gate is None:
            return emb, None
        mask = lengths_to_mask(lengths, gate.shape[1])
        return emb, masked_mean(gate[:, None], mask)[:, 0]

    def encode(self, features: Tensor, lengths: Tensor) -> Tensor:
        """The speaker embedding of ``features`` (B, F, T) with frame ``lengths`` (B,): (B, E)."""
        return self.encode_with_gate(features, lengths)[0]

    def forward(self, features: Tensor, lengths: Tensor | None = None) -> ModelOutput:
        """Speaker logits; ``extras["gate"]`` (B,) holds the mean gate with ``fusion=gating``."""
        features, lengths = self._prepare(features, lengths)
        emb, gate = self.encode_with_gate(features, lengths)
        out = self.classify(emb)
        if gate is not None:
            out.extras["gate"] = gate
        return out

    def embed(
        self,
        features: Tensor,
        lengths: Tensor | None = None,
        kind: str = "sv",
        pooling: Literal["mean", "sum"] = "mean",
    ) -> Tensor:
        """Utterance embeddings: ``sv`` / ``pt`` the speaker embedding, ``ft`` / ``st`` the head's.

        Shape:
            features: (B, F, T), lengths: (B,) -> (B, E)

        Raises:
            ModelError: an unknown kind, or one the head does not have.
        """
        if kind == "sv":
            kind = "pt"
        if kind not in ("pt", "ft", "st"):
            raise ModelError(f"embedding kind={kind!r}: expected 'sv', 'pt', 'ft' or 'st'")
        return super().embed(features, lengths, kind=kind, pooling=pooling)  # type: ignore[arg-type]

    def layer_weights(self) -> list[float]:
        """The PTM layer weights (L,) as plain numbers (``[]`` in mode 2; equal unless learned)."""
        if self.layer_mix is None:
            return []
        w = self.layer_mix.weights
        n = len(self.layer_mix.positions)
        return [1.0 / n] * n if w is None else w.detach().tolist()
