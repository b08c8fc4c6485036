"""The pretrained-encoder contract: :class:`PretrainedEncoder`, :class:`EncoderOutput`, a registry.

A pretrained speech encoder maps a zero-padded waveform batch and its integer
lengths to the output of every layer and the number of valid frames per item.
Features (frozen encoder frames, statistics of a layer) and models (an encoder
fine-tuned inside a classifier) both code to this contract, so a new encoder
(GE2E, wav2vec 2.0, HuBERT, WavLM) plugs into both by registering one class.

Frame-count rules differ between encoders (GE2E: centred 10 ms frames,
``1 + T // 160``; wav2vec 2.0: 20 ms frames of a strided convolution without
padding), so every encoder answers :meth:`PretrainedEncoder.frame_lengths`
itself and callers never assume a formula.

Example:
    >>> import torch
    >>> class Mean(PretrainedEncoder):
    ...     sample_rate, num_layers, hidden_size, frame_shift = 16000, 1, 1, 0.01
    ...     identity = "mean"
    ...     def frame_lengths(self, lengths):
    ...         return lengths // 160
    ...     def forward(self, waveform, lengths=None):
    ...         waveform, lengths = self.check_input(waveform, lengths)
    ...         n = waveform.shape[1] // 160
    ...         blocks = waveform[:, : n * 160].reshape(len(waveform), n, 160)
    ...         return EncoderOutput((blocks.mean(-1, keepdim=True),), self.frame_lengths(lengths))
    >>> out = Mean()(torch.ones(2, 480), torch.tensor([480, 320]))
    >>> out.last.shape, out.lengths.tolist()
    (torch.Size([2, 3, 1]), [3, 2])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from vocalis.errors import ConfigError, ModelError
from vocalis.registry import Registry


@dataclass(frozen=True)
class EncoderOutput:
    """Every layer's output of a :class:`PretrainedEncoder` and the valid frames per item.

    Attributes:
        hidden_states: one ``(B, T', H)`` tensor per layer, first layer first (what
            "layer" means is the encoder's: GE2E's LSTM layers; for ``transformers``
            models the transformer input, then each transformer layer); frames at
            or past ``lengths[i]`` of item ``i`` are padding (values unspecified).
        lengths: ``(B,)`` int64 valid frames per item.

    Shape:
        hidden_states: num_layers x (B, T', H); lengths: (B,).
        B batch, T' frames, H hidden size.
    """

    hidden_states: tuple[torch.Tensor, ...]
    lengths: torch.Tensor

    @property
    def last(self) -> torch.Tensor:
        """The last layer's output ``(B, T', H)``."""
        return self.hidden_states[-1]


class PretrainedEncoder(nn.Module):
    """Base class of pretrained speech encoders (subclasses fill in the attributes).

    Attributes:
        sample_rate: input rate in Hz the weights were trained at.
        num_layers: number of layer outputs :meth:`forward` returns.
        hidden_size: size ``H`` of each layer output.
        frame_shift: seconds between output frames.
        identity: what the weights are, for cache keys: the SHA-256 of a weights
            file, or ``repository@revision``.
        first_layer: the number of the layer ``hidden_states[0]`` holds; layers are
            numbered as the encoder's authors number them (GE2E: 1 for its first
            LSTM layer; ``transformers``: 0 for the transformer's input).
        export_friendly: compute with ops every ONNX runtime has (set by the
            exporter; GE2E then computes its spectrum with a DFT convolution).
    """

    sample_rate: int = 16000
    num_layers: int = 0
    hidden_size: int = 0
    frame_shift: float = 0.0
    identity: str = ""
    first_layer: int = 0
    export_friendly: bool = False

    @classmethod
    def from_source(
        cls, source: str, layers: Sequence[int] = (-1,), weights: str = "", revision: str = ""
    ) -> PretrainedEncoder:
        """Load the encoder a features or model config names (see :func:`open_encoder`).

        Subclasses map the choice to their ``from_pretrained`` arguments; this
        default passes ``weights`` (or ``source``) as the checkpoint.

        Args:
            source: the registry name, or a folder / model id for ``hf``.
            layers: the layers the caller reads (an encoder may load fewer).
            weights: a weights file, when the encoder reads one.
            revision: a revision of a cached model id.
        """
        return cls.from_pretrained(weights or None)  # type: ignore[attr-defined]

    @classmethod
    def source_identity(
        cls, source: str, layers: Sequence[int] = (-1,), weights: str = "", revision: str = ""
    ) -> str:
        """The :attr:`identity` :meth:`from_source` would give, cheaply.

        Subclasses compute it without building the model; this default loads it.
        """
        return cls.from_source(source, layers, weights, revision).identity

    @property
    def layer_numbers(self) -> range:
        """The numbers of the layers :meth:`forward` returns, in order.

        Example:
            >>> type("E", (PretrainedEncoder,), {"num_layers": 3, "first_layer": 1})().layer_numbers
            range(1, 4)
        """
        return range(self.first_layer, self.first_layer + self.num_layers)

    def layer_index(self, layer: int) -> int:
        """The position in :attr:`EncoderOutput.hidden_states` of layer number ``layer``.

        Args:
            layer: a number in :attr:`layer_numbers`, or a negative one counting
                from the last (``-1``: the last layer).

        Raises:
            ConfigError: no such layer (the message gives the valid numbers).

        Example:
            >>> enc = type("E", (PretrainedEncoder,), {"num_layers": 3, "first_layer": 1})()
            >>> enc.layer_index(1), enc.layer_index(-1)
            (0, 2)
        """
        numbers = self.layer_numbers
        index = int(layer) - numbers.start if layer >= 0 else self.num_layers + int(layer)
        if not 0 <= index < self.num_layers:
            raise ConfigError(
                f"encoder layer {layer}: {type(self).__name__} has layers {numbers.start} to "
                f"{numbers.stop - 1} (or -1 for the last, -2 for the one before, ...)"
            )
        return index

    @property
    def feature_encoder(self) -> nn.Module | None:
        """The front end before the stacked layers, when it has parameters.

        A convolutional feature encoder; fine-tuning may freeze it
        (``freeze_feature_encoder``). None when the front end has no weights (GE2E).
        """
        return None

    @property
    def blocks(self) -> list[nn.Module]:
        """The stacked layers (transformer or LSTM layers), first first.

        Fine-tuning freezes the first N of them (``freeze_layers``).
        """
        return []

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute the blocks' activations in the backward pass instead of storing them.

        Raises:
            ConfigError: this encoder cannot (the default).
        """
        raise ConfigError(
            f"{type(self).__name__} does not support gradient checkpointing; set "
            "train.gradient_checkpointing=false"
        )

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid output frames for input lengths in samples (this encoder's own rule).

        Shape:
            (B,) integer samples -> (B,) int64 frames.
        """
        raise NotImplementedError

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        """Every layer's output for a zero-padded batch.

        Args:
            waveform: ``(B, T)`` float samples at :attr:`sample_rate`.
            lengths: ``(B,)`` valid samples per item (all ``T`` when None).

        Returns:
            :class:`EncoderOutput` with ``num_layers`` tensors ``(B, T', H)`` and
            ``frame_lengths(lengths)``.

        Shape:
            (B, T), (B,) -> num_layers x (B, T', H), (B,).
        """
        raise NotImplementedError

    def check_input(
        self, waveform: torch.Tensor, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate a batch and fill in ``lengths``: ``(B, T)`` float, ``(B,)`` int64.

        Raises:
            ModelError: the waveform is not ``(B, T)`` or ``lengths`` does not fit it.
        """
        if waveform.dim() != 2:
            raise ModelError(
                f"{type(self).__name__}: expected a zero-padded batch (B, T), got shape "
                f"{tuple(waveform.shape)}; add a batch axis with waveform[None]"
            )
        if not waveform.is_floating_point():
            waveform = waveform.float()
        if lengths is None:
            lengths = torch.full((waveform.shape[0],), waveform.shape[1], dtype=torch.long)
        lengths = torch.as_tensor(lengths, device=waveform.device).reshape(-1).long()
        if lengths.numel() != waveform.shape[0]:
            raise ModelError(
                f"{type(self).__name__}: {lengths.numel()} lengths for a batch of "
                f"{waveform.shape[0]}; give one length in samples per item"
            )
        return waveform, lengths

    def extra_repr(self) -> str:
        """The encoder's sizes, shown by ``repr``."""
        return (
            f"sample_rate={self.sample_rate}, num_layers={self.num_layers}, "
            f"hidden_size={self.hidden_size}, frame_shift={self.frame_shift}"
        )


#: Registered encoder classes, by name; each has ``from_pretrained(source, **kwargs)``.
ENCODERS: Registry[type[PretrainedEncoder]] = Registry("encoder")


def load_encoder(name: str, source: str | None = None, **kwargs: object) -> PretrainedEncoder:
    """The registered encoder ``name`` with its pretrained weights, in eval mode.

    Args:
        name: registry key (``ge2e``, ``hf``, or your own).
        source: where the weights are (a file, a folder or a cached model id; the
            encoder's default when None).
        **kwargs: passed to the encoder's ``from_pretrained``.

    Raises:
        ConfigError: unknown name, or weights not found.
    """
    import vocalis.encoders.ge2e  # registers the built-ins (and so does the next line)
    import vocalis.encoders.hf  # noqa: F401  (transformers is imported only on load)

    return ENCODERS.get(name).from_pretrained(source, **kwargs)
