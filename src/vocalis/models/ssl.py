"""``ssl``: a pretrained speech encoder fine-tuned inside a classifier.

The encoder comes through the encoder contract (:mod:`vocalis.encoders`: GE2E,
or a wav2vec 2.0 / HuBERT / WavLM ``save_pretrained`` folder or Hugging Face
cache id), so the model takes the waveform itself (``features=waveform``, one
"feature" per sample)::

    features (B, 1, T) samples, lengths (B,) in samples
      -> encoder                     every layer (B, T', H), valid frames (B,)
      -> layer mix                   learned softmax weights over the chosen layers,
                                     their mean, or one layer       -> (B, T', H)
      -> pooling over valid frames   mean (or stats, attention...)  -> (B, H')
      -> standardise (optional)      BatchNorm without affine weights -> (B, H')
      -> MLP: [Linear -> BatchNorm -> ReLU -> Dropout] per size     -> (B, E)
                                     (a one-item batch uses the running statistics)
      -> head (Linear E -> C, from the shared head options)         -> logits (B, C)

The MLP is the seed's (sizes ``mlp``: 512 then 256 by default). Freezing:
the convolutional feature encoder (``freeze_feature_encoder``), the first N
stacked layers (``freeze_layers``; -1 freezes the whole encoder) until epoch
``unfreeze_after_epochs`` (0: never); :meth:`SSL.parameter_tiers` sorts the
parameters into ``frozen`` (frozen at first), ``encoder`` and ``head`` for
learning-rate tiers (``train.lr_tiers``).

Shape legend: B batch, T samples, T' encoder frames, H hidden size, E embedding, C classes.

Example:
    >>> from vocalis.models import build_model
    >>> model = build_model("ssl", {"encoder": {"layers": [1, 2]}, "mlp": [16]}, 1, 3).eval()
    >>> model(torch.randn(2, 1, 8000), torch.tensor([8000, 4000])).logits.shape
    torch.Size([2, 3])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from vocalis.encoders.base import PretrainedEncoder
from vocalis.encoders.select import LayerMix, open_encoder
from vocalis.errors import ConfigError, ConfigValueError
from vocalis.models.base import SpeechClassifier
from vocalis.models.heads import HeadFields, MultiHead
from vocalis.models.pooling import build_pooling
from vocalis.models.registry import MODELS


@dataclass(frozen=True)
class SSLEncoderConfig:
    """Which encoder, which of its layers, what is frozen (``model.params.encoder``).

    Attributes:
        source: ``ge2e`` (shipped with Vocalis), or a ``save_pretrained`` folder / a
            model id in the Hugging Face cache (:func:`vocalis.encoders.open_encoder`).
        weights: a weights file (GE2E's checkpoint; ``""``: its default).
        revision: revision of a cached model id (``""``: ``main``).
        layers: layers the classifier reads, numbered as the encoder numbers them
            (GE2E 1-3; ``transformers`` 0 = the transformer's input to
            ``num_hidden_layers``; negative from the last); ``[]``: all of them.
        layer_weights: how several layers combine: ``learned`` softmax weights
            (a weighted sum, trained with the head) or their ``mean``.
        layer_weights_init: the learned weights' starting values, one positive number
            per entry of ``layers`` (normalised to sum 1); ``[]``: equal weights.
        freeze_feature_encoder: never train the convolutional feature encoder.
        freeze_layers: freeze the first N stacked layers (-1: the whole encoder).
        unfreeze_after_epochs: train the frozen layers from this epoch on (0: never).

    Gradient checkpointing is a training setting, ``train.gradient_checkpointing``
    (:meth:`SSL.set_gradient_checkpointing`).
    """

    source: str = "ge2e"
    weights: str = ""
    revision: str = ""
    layers: tuple[int, ...] = ()
    layer_weights: Literal["learned", "mean"] = "learned"
    layer_weights_init: tuple[float, ...] = ()
    freeze_feature_encoder: bool = True
    freeze_layers: int = 0
    unfreeze_after_epochs: int = 0

    def __post_init__(self) -> None:
        if not self.source:
            raise ConfigValueError("source", self.source, "ge2e, a folder or a model id")
        if len(set(self.layers)) != len(self.layers):
            raise ConfigValueError("layers", list(self.layers), "distinct layer numbers")
        if self.layer_weights_init:
            init = list(self.layer_weights_init)
            if self.layer_weights != "learned" or len(init) != len(self.layers):
                raise ConfigValueError(
                    "layer_weights_init",
                    init,
                    "one starting weight per entry of layers (and layer_weights: learned)",
                )
            if min(init) <= 0:
                raise ConfigValueError("layer_weights_init", init, "positive weights")
        if self.freeze_layers < -1:
            raise ConfigValueError("freeze_layers", self.freeze_layers, ">= 0, or -1 (all)")
        if self.unfreeze_after_epochs < 0:
            raise ConfigValueError(
                "unfreeze_after_epochs", self.unfreeze_after_epochs, ">= 0 (0: never)"
            )


@dataclass(frozen=True)
class SSLConfig(HeadFields):
    """Config of :class:`SSL` (``model: {name: ssl, params: ...}``).

    Attributes:
        encoder: the encoder and what of it is frozen.
        pooling: pooling over valid frames (``mean``, ``stats``, ``attentive_stats``,
            ``attention``; :data:`vocalis.models.POOLINGS`).
        standardize: z-score the pooled vector per dimension (a BatchNorm without
            affine weights: batch statistics in training, the running training
            statistics in evaluation), as a linear SVM's standardised input. With
            ``mlp: []`` the model is then a linear classifier on standardised
            statistics of the (fine-tuned) encoder.
        mlp: sizes of the dense blocks between pooling and head (``[]``: none).
        mlp_dropout: dropout after each dense block.
        head_dropout: dropout before the output layer (the last block's dropout
            already precedes it, so 0 by default).
    """

    encoder: SSLEncoderConfig = field(default_factory=SSLEncoderConfig)
    pooling: str = "mean"
    standardize: bool = False
    mlp: tuple[int, ...] = (512, 256)
    mlp_dropout: float = 0.3
    head_dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if any(n < 1 for n in self.mlp):
            raise ConfigValueError("mlp", list(self.mlp), "positive layer sizes such as [512, 256]")
        if not 0.0 <= self.mlp_dropout < 1.0:
            raise ConfigValueError("mlp_dropout", self.mlp_dropout, "a value in [0, 1)")


class BatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` that normalises a one-item training batch with its running statistics.

    A batch of one (the last batch of an epoch) has no batch variance; plain
    ``BatchNorm1d`` refuses it. Here it is normalised as in evaluation, and the
    running statistics are left as they are.

    Shape:
        (B, C) -> (B, C).
    """

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` (B, C)."""
        if self.training and x.shape[0] == 1:
            return nn.functional.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


@MODELS.register("ssl")
class SSL(SpeechClassifier):
    """A pretrained encoder, a layer mix, pooling, the seed's MLP and a head.

    Args:
        config: the :class:`SSLConfig`.
        input_dim: must be 1 (the waveform, ``features=waveform``).
        num_classes: classes of the single head, or one entry per head.
        feature_name: name of the features (error messages).

    Raises:
        ConfigError: ``input_dim`` other than 1, the encoder not found, a layer it
            does not have, or a freezing setting the encoder cannot do.
    """

    config_cls = SSLConfig

    @classmethod
    def check_resources(cls, config: SSLConfig) -> None:
        """Open the encoder and build the model once, with a stand-in two-class head.

        That checks the weights are where ``config.encoder`` says, and that the layer
        settings fit the encoder (``layers``, ``layer_weights_init``, ``freeze_layers``),
        at the cost of one load of the weights.

        Raises:
            ConfigError: no such folder, a model id not in the Hugging Face cache, GE2E
                weights that are not there, or a layer setting the encoder does not have
                (one line saying where it looked, or what is allowed).

        Example:
            >>> ge2e = SSLEncoderConfig(layers=(1, 2))  # GE2E layers 1-2 ship with Vocalis
            >>> SSL.check_resources(SSLConfig(encoder=ge2e))
            >>> too_many = SSLEncoderConfig(layers=(1, 2), freeze_layers=3)
            >>> SSL.check_resources(SSLConfig(encoder=too_many))
            Traceback (most recent call last):
            ...
            vocalis.errors.ConfigValueError: model.params.encoder.freeze_layers: got 3, ...
            >>> SSL.check_resources(SSLConfig(encoder=SSLEncoderConfig(source="/no/model")))
            Traceback (most recent call last):
            ...
            vocalis.errors.ConfigError: hf encoder: no folder /no/model; give a folder ...
        """
        cls(config, 1, 2)

    def __init__(
        self,
        config: SSLConfig,
        input_dim: int,
        num_classes: int | list[int],
        feature_name: str | None = None,
    ) -> None:
        super().__init__(config, input_dim, num_classes, feature_name)
        if self.input_dim != 1:
            raise ConfigError(
                f"model 'ssl' takes the waveform (features=waveform, one value per sample), "
                f"got {self.input_dim} features per frame ({feature_name or 'features'})"
            )
        ec = config.encoder
        self.encoder: PretrainedEncoder = open_encoder(
            ec.source, ec.layers or (-1,), weights=ec.weights, revision=ec.revision
        )
        numbers = list(ec.layers) if ec.layers else list(self.encoder.layer_numbers)
        self.mix = LayerMix(
            [self.encoder.layer_index(k) for k in numbers],
            ec.layer_weights == "learned",
            ec.layer_weights_init or None,
        )
        hidden = self.encoder.hidden_size
        self.pooling = build_pooling(config.pooling, hidden)
        size = self.pooling.output_dim(hidden)
        self.standardize = BatchNorm(size, affine=False) if config.standardize else nn.Identity()
        blocks: list[nn.Module] = []
        for n in config.mlp:
            blocks += [
                nn.Linear(size, n),
                BatchNorm(n),
                nn.ReLU(),
                nn.Dropout(config.mlp_dropout),
            ]
            size = n
        self.mlp = nn.Sequential(*blocks)
        self.embedding_dim = size
        self.head = MultiHead.from_config(config, size, num_classes)
        self._frozen_at_first, self._always_frozen = self._freeze_plan()
        self.start_epoch(0)

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute the encoder's activations in the backward pass (less memory, more time).

        Raises:
            ConfigError: the encoder cannot.
        """
        self.encoder.set_gradient_checkpointing(enabled)

    def _freeze_plan(self) -> tuple[set[int], set[int]]:
        """Ids of encoder parameters frozen until the unfreeze epoch, and for good."""
        ec = self.config.encoder
        always: set[int] = set()
        if ec.freeze_feature_encoder and self.encoder.feature_encoder is not None:
            always = {id(p) for p in self.encoder.feature_encoder.parameters()}
        if ec.freeze_layers == -1:
            first = {id(p) for p in self.encoder.parameters()}
        else:
            blocks = self.encoder.blocks
            if ec.freeze_layers > len(blocks):
                raise ConfigValueError(
                    "model.params.encoder.freeze_layers",
                    ec.freeze_layers,
                    f"at most {len(blocks)} (the encoder's stacked layers), or -1 for all",
                )
            first = {id(p) for b in blocks[: ec.freeze_layers] for p in b.parameters()}
        return first - always, always

    def start_epoch(self, epoch: int) -> None:
        """Freeze or unfreeze the encoder's parts for 0-based ``epoch``.

        The feature encoder stays frozen with ``freeze_feature_encoder``; the
        layers of ``freeze_layers`` train from ``unfreeze_after_epochs`` on.
        """
        k = self.config.encoder.unfreeze_after_epochs
        thawed = k > 0 and epoch >= k
        for p in self.encoder.parameters():
            frozen = id(p) in self._always_frozen or (id(p) in self._frozen_at_first and not thawed)
            p.requires_grad_(not frozen)

    def parameter_tiers(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by learning-rate tier.

        Returns:
            ``frozen``: encoder parameters frozen at first (and those frozen for
            good, which never get a gradient); ``encoder``: the encoder's trainable
            ones; ``head``: the layer mix, pooling, standardisation, MLP and head.
        """
        frozen_ids = self._frozen_at_first | self._always_frozen
        enc = list(self.encoder.parameters())
        enc_ids = {id(p) for p in enc}
        return {
            "frozen": [p for p in enc if id(p) in frozen_ids],
            "encoder": [p for p in enc if id(p) not in frozen_ids],
            "head": [p for p in self.parameters() if id(p) not in enc_ids],
        }

    def encode(self, features: Tensor, lengths: Tensor) -> Tensor:
        """Pooled, MLP-projected encoder layers.

        Shape:
            features: (B, 1, T) samples, lengths: (B,) samples -> (B, E).

        Samples past each item's length are zeroed first, so whatever the padding
        holds, a padded item gives what it gives alone.
        """
        wav = features[:, 0]
        valid = torch.arange(wav.shape[1], device=wav.device)[None, :] < lengths[:, None]
        out = self.encoder(wav * valid.to(wav.dtype), lengths)  # encoders expect zero padding
        frames = self.mix(out).transpose(1, 2)  # (B, H, T')
        pooled = self.pooling(frames, out.lengths)
        return self.mlp(self.standardize(pooled))
