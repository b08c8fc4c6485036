"""``ecapa``: ECAPA-TDNN (Desplanques, Thienpondt and Demuynck, Interspeech 2020).

Written here from the paper and SpeechBrain's layout (SpeechBrain itself is not
a dependency)::

    features (B, F, T) -> TDNN (kernel 5)
      -> 3 x SE-Res2Net blocks (scale 8, SE bottleneck 128, dilations 2, 3, 4)
      -> multi-layer feature aggregation (concat of the blocks, 1x1 TDNN)
      -> attentive statistics pooling with global context -> BatchNorm
      -> Linear -> embedding (B, 192)  -> head (dense or cosine)

Channel presets: the default ``[1024, 1024, 1024, 1024, 3072]`` (the emotion
seed) and ``preset: c512`` = ``[512, 512, 512, 512, 1536]`` (about 6.2 M
parameters on 80 fbanks). With ``head: cosine`` the logits are cosine
similarities in [-1, 1]; an AAM-softmax loss applies the margin and the scale.

Differences from SpeechBrain: convolutions pad with zeros (not reflection) and
padded frames are zeroed before every convolution wider than one frame, so an
utterance gives the same output alone or in a padded batch (eval mode). When no
item of a batch is padded (fixed-length training crops) no mask is built. In
training mode BatchNorm's batch statistics do include the (zeroed) padded
frames, as in SpeechBrain; bucket batches by length to keep padding small. The
global-context attention is computed in factorised form (same result, a third of
the work; see :class:`~vocalis.models.pooling.AttentiveStatisticsPooling`).

Example:
    >>> import torch
    >>> from vocalis.models import build_model
    >>> cfg = {"channels": [32, 32, 32, 32, 96], "embedding_dim": 16, "se_channels": 8,
    ...        "attention_channels": 8}
    >>> model = build_model("ecapa", cfg, 80, 4).eval()
    >>> out = model(torch.randn(2, 80, 40), torch.tensor([40, 25]))
    >>> out.logits.shape, out.embedding.shape
    (torch.Size([2, 4]), torch.Size([2, 16]))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from vocalis.errors import ConfigValueError
from vocalis.models.base import SpeechClassifier
from vocalis.models.heads import HeadFields, MultiHead
from vocalis.models.masking import apply_mask, lengths_to_mask, masked_mean
from vocalis.models.pooling import AttentiveStatisticsPooling
from vocalis.models.registry import MODELS

#: Named channel presets.
PRESETS: dict[str, list[int]] = {
    "c512": [512, 512, 512, 512, 1536],
    "c1024": [1024, 1024, 1024, 1024, 3072],
}
_DEFAULT_CHANNELS = PRESETS["c1024"]


@dataclass(frozen=True)
class EcapaConfig(HeadFields):
    """Configuration of :class:`Ecapa`.

    Attributes:
        channels: first TDNN, the SE-Res2Net blocks, then the aggregation layer.
        preset: ``c512`` or ``c1024``; replaces ``channels`` (set one or the other).
        kernel_sizes: temporal kernels, one per entry of ``channels``.
        dilations: dilations, one per entry of ``channels``.
        res2net_scale: Res2Net splits (channels of the blocks must divide by it).
        se_channels: bottleneck of the squeeze-excitation blocks.
        attention_channels: bottleneck of the attentive statistics pooling.
        global_context: pooling attention also sees utterance mean and std.
        embedding_dim: size of the embedding (``embed(kind="pt")``).
        input_norm: built-in global mean-variance normalisation of the input.
        temperature: scale logits by a calibration temperature.
    """

    channels: list[int] = field(default_factory=lambda: list(_DEFAULT_CHANNELS))
    preset: str | None = None
    kernel_sizes: list[int] = field(default_factory=lambda: [5, 3, 3, 3, 1])
    dilations: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 1])
    res2net_scale: int = 8
    se_channels: int = 128
    attention_channels: int = 128
    global_context: bool = True
    embedding_dim: int = 192
    input_norm: bool = False
    temperature: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.preset is not None:
            if self.preset not in PRESETS:
                raise ConfigValueError("preset", self.preset, f"one of: {', '.join(PRESETS)}")
            chosen = PRESETS[self.preset]
            if list(self.channels) not in (_DEFAULT_CHANNELS, chosen):
                raise ConfigValueError(
                    "channels",
                    list(self.channels),
                    f"those of preset {self.preset!r} ({chosen}); preset and channels "
                    "disagree: set one or the other",
                )
        chans = self.resolved_channels
        n = len(chans)
        if n < 3 or len(self.kernel_sizes) != n or len(self.dilations) != n:
            raise ConfigValueError(
                "channels",
                chans,
                f"at least 3 entries, the same length as kernel_sizes "
                f"({len(self.kernel_sizes)}) and dilations ({len(self.dilations)})",
            )
        for c in chans[1:-1]:
            if c % self.res2net_scale:
                raise ConfigValueError(
                    "channels",
                    chans,
                    f"SE-Res2Net sizes (all but the first and last) divisible by "
                    f"res2net_scale={self.res2net_scale}",
                )
        if any(k < 1 or k % 2 == 0 for k in self.kernel_sizes):
            raise ConfigValueError("kernel_sizes", list(self.kernel_sizes), "positive odd numbers")

    @property
    def resolved_channels(self) -> list[int]:
        """``channels``, or those of ``preset`` when it is set."""
        return list(PRESETS[self.preset]) if self.preset else list(self.channels)


class TDNNBlock(nn.Module):
    """Conv1d ("same" zero padding, dilated) -> ReLU -> BatchNorm.

    Shape:
        x: (B, C_in, T) -> (B, C_out, T)
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 1, dilation: int = 1) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation, padding=pad)
        self.act = nn.ReLU(inplace=True)
        self.norm = nn.BatchNorm1d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        """Conv1d -> activation -> BatchNorm; (B, C_in, T) -> (B, C_out, T)."""
        return self.norm(self.act(self.conv(x)))


class Res2NetBlock(nn.Module):
    """Res2Net: channels split in ``scale`` groups, convolved as a hierarchy.

    Group i>0 is convolved after adding the previous group's output (a
    hierarchy of growing receptive fields).

    The dependency between groups is sequential by design, so a loop of
    ``scale - 1`` small convolutions remains.

    Shape:
        x: (B, C, T), mask: (B, T) or None -> (B, C, T)
    """

    def __init__(self, channels: int, scale: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.scale = scale
        width = channels // scale
        self.blocks = nn.ModuleList(
            TDNNBlock(width, width, kernel_size, dilation) for _ in range(scale - 1)
        )

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Hierarchical residual convolutions over channel groups; (B, C, T) -> (B, C, T)."""
        chunks = torch.chunk(x, self.scale, dim=1)
        outs = [chunks[0]]
        prev: Tensor | None = None
        for i, block in enumerate(self.blocks):
            inp = chunks[i + 1] if prev is None else chunks[i + 1] + prev
            prev = apply_mask(block(inp), mask)
            outs.append(prev)
        return torch.cat(outs, dim=1)


class SEBlock(nn.Module):
    """Squeeze-excitation: channel gates from the (masked) mean over time.

    Shape:
        x: (B, C, T), mask: (B, T) or None -> (B, C, T)
    """

    def __init__(self, channels: int, se_channels: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, se_channels),
            nn.ReLU(inplace=True),
            nn.Linear(se_channels, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Rescale channels by their masked mean's excitation; (B, C, T) -> (B, C, T)."""
        return x * self.fc(masked_mean(x, mask)).unsqueeze(2)


class SERes2NetBlock(nn.Module):
    """1x1 TDNN -> Res2Net -> 1x1 TDNN -> SE, plus a residual connection.

    Shape:
        x: (B, C_in, T), mask: (B, T) or None -> (B, C_out, T)
    """

    def __init__(
        self, c_in: int, c_out: int, scale: int, se_channels: int, kernel_size: int, dilation: int
    ) -> None:
        super().__init__()
        self.tdnn1 = TDNNBlock(c_in, c_out, 1)
        self.res2net = Res2NetBlock(c_out, scale, kernel_size, dilation)
        self.tdnn2 = TDNNBlock(c_out, c_out, 1)
        self.se = SEBlock(c_out, se_channels)
        self.shortcut = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """TDNN -> Res2Net -> TDNN -> SE with a residual; (B, C_in, T) -> (B, C_out, T)."""
        residual = x if self.shortcut is None else self.shortcut(x)
        # 1x1 convolutions never mix frames: only the input of the dilated convs is masked.
        y = apply_mask(self.tdnn1(x), mask)
        y = self.tdnn2(self.res2net(y, mask))
        return self.se(y, mask) + residual


@MODELS.register("ecapa")
class Ecapa(SpeechClassifier):
    """ECAPA-TDNN classifier.

    Args:
        config: :class:`EcapaConfig`.
        input_dim: features F (40 MFCC or 80 fbank, say).
        num_classes: classes, or one entry per head.
        feature_name: features the model is built for (error messages).

    Shape:
        features: (B, F, T), lengths: (B,) -> logits (B, classes), embedding (B, embedding_dim)
    """

    config_cls = EcapaConfig

    def __init__(
        self,
        config: EcapaConfig,
        input_dim: int,
        num_classes: int | list[int],
        feature_name: str | None = None,
    ) -> None:
        super().__init__(config, input_dim, num_classes, feature_name)
        c = config
        chans, ks, ds = c.resolved_channels, c.kernel_sizes, c.dilations
        self.first = TDNNBlock(input_dim, chans[0], ks[0], ds[0])
        self.blocks = nn.ModuleList(
            SERes2NetBlock(chans[i - 1], chans[i], c.res2net_scale, c.se_channels, ks[i], ds[i])
            for i in range(1, len(chans) - 1)
        )
        self.mfa = TDNNBlock(sum(chans[1:-1]), chans[-1], ks[-1], ds[-1])
        self.mfa_needs_mask = ks[-1] > 1
        self.pooling = AttentiveStatisticsPooling(
            chans[-1], c.attention_channels, global_context=c.global_context
        )
        self.pool_norm = nn.BatchNorm1d(2 * chans[-1])
        self.fc = nn.Linear(2 * chans[-1], c.embedding_dim)
        self.embedding_dim = c.embedding_dim
        self.head = MultiHead.from_config(c, c.embedding_dim, num_classes)

    def cpu_notice(self) -> str | None:
        """One line for a CPU user of a wide ECAPA: the 512-channel preset, and why.

        The trainer logs it when this model trains on a CPU (None: nothing to say).
        """
        chans = self.config.resolved_channels
        if chans[0] <= PRESETS["c512"][0]:
            return None
        n_params = sum(p.numel() for p in self.parameters())
        return (
            f"notice: ECAPA with {chans[0]} channels ({n_params / 1e6:.1f} M parameters) on a "
            "CPU: each epoch takes about 4x as long as with the 512-channel preset (6.2 M; "
            "bench/results/train_speed.json) and its checkpoints are 3x larger; for CPU runs "
            "use model=ecapa_c512 or model.params.preset=c512"
        )

    def encode(self, features: Tensor, lengths: Tensor) -> Tensor:
        """The utterance embedding of padded ``features`` (B, F, T) with frame ``lengths`` (B,)."""
        t = features.shape[2]
        short = self._mask_lengths(lengths, t)  # None when nothing is padding
        mask = None if short is None else lengths_to_mask(short, t)
        x = self.first(apply_mask(features, mask))
        outs = []
        for block in self.blocks:
            x = block(x, mask)
            outs.append(x)
        x = torch.cat(outs, dim=1)
        if self.mfa_needs_mask:
            x = apply_mask(x, mask)
        x = self.mfa(x)
        pooled = self.pool_norm(self.pooling.pool(x, mask))
        return self.fc(pooled)
