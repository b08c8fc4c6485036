"""GE2E speaker encoder (Wan et al., 2018): a frozen, pretrained :class:`PretrainedEncoder`.

The network is the one of ``resemblyzer`` (3 LSTM layers of 256 units on 40
mel bands, 10 ms frames, trained with the generalised end-to-end loss on
LibriSpeech + VoxCeleb 1 and 2). Its weights ship inside the ``resemblyzer``
wheel (``resemblyzer/pretrained.pt``, Apache-2.0), so they work offline; Vocalis
reads that file directly and never imports ``resemblyzer`` itself (its import
needs ``webrtcvad``). Layers 1 and 2, all that the emotion features use, are also
shipped with Vocalis (``resources/models/ge2e_layers12.pt``, 3.3 MB, the same
tensors), so those features work without ``resemblyzer``; layer 3 and the speaker
embedding need its wheel. Any checkpoint in the same format can be given by path.

Speaker encoders trained on thousands of voices keep much paralinguistic
information in their middle layers: the frame-level layer outputs are the
``ge2e`` features (:mod:`vocalis.features.pretrained`) and their per-utterance
statistics are strong emotion features (``ge2e_stats`` in
:mod:`vocalis.features.functionals`).

Front end, as the encoder was trained (``resemblyzer.audio``): 16 kHz audio,
level raised to -30 dBFS (never lowered), power mel spectrogram with a 25 ms
Hann window, 10 ms hop, 400-point FFT, 40 Slaney mel bands (librosa's defaults).
Frames are centred on multiples of 160 samples: ``1 + T // 160`` of them.

Example:
    >>> enc = GE2EEncoder().eval()  # random weights; GE2EEncoder.from_pretrained() loads real ones
    >>> out = enc(torch.randn(2, 16000), torch.tensor([16000, 8000]))
    >>> len(out.hidden_states), out.hidden_states[1].shape, out.lengths.tolist()
    (3, torch.Size([2, 101, 256]), [101, 51])
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vocalis import dsp
from vocalis.encoders.base import ENCODERS, EncoderOutput, PretrainedEncoder
from vocalis.errors import ConfigError

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 40
HIDDEN = 256
N_LAYERS = 3
TARGET_DBFS = -30.0

#: Environment variable naming a GE2E checkpoint (used when no path is given).
WEIGHTS_ENV = "VOCALIS_GE2E_WEIGHTS"


def normalize_volume(wav: torch.Tensor, target_dbfs: float = TARGET_DBFS) -> torch.Tensor:
    """Raise the level of ``wav`` to ``target_dbfs`` (mean power); louder audio is kept.

    Shape:
        (T,) -> (T,).

    Example:
        >>> w = normalize_volume(torch.full((100,), 1e-3))
        >>> round(10 * torch.log10((w**2).mean()).item(), 3)
        -30.0
    """
    return wav * _gains(wav[None], None, target_dbfs)[0].to(wav.dtype)


def _gains(
    wav: torch.Tensor, lengths: torch.Tensor | None, target_dbfs: float = TARGET_DBFS
) -> torch.Tensor:
    """Per-item gain that lifts the mean power of the valid samples to ``target_dbfs``.

    Shape:
        (B, T), (B,) -> (B,) float64; 1 for silent items and items already louder.
    """
    if lengths is None:
        power = wav.double().pow(2).mean(1)
    else:
        valid = torch.arange(wav.shape[1], device=wav.device)[None] < lengths[:, None]
        power = (wav.double().pow(2) * valid).sum(1) / lengths.clamp_min(1)
    db = 10.0 * torch.log10(power.clamp_min(1e-30))
    lift = 10.0 ** ((target_dbfs - db) / 20.0)
    return torch.where((power > 0) & (db < target_dbfs), lift, torch.ones_like(db))


def ge2e_mel(wav: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The encoder's input: power mel spectrogram, frame-major, after :func:`normalize_volume`.

    Matches ``librosa.feature.melspectrogram(y, sr=16000, n_fft=400,
    hop_length=160, n_mels=40)`` (what ``resemblyzer`` computes).

    Shape:
        (T,) 16 kHz samples -> (1 + T // 160, 40).
    """
    wav = torch.as_tensor(wav).float()
    return ge2e_mel_batch(wav[None])[0]


def ge2e_mel_batch(
    wav: torch.Tensor, lengths: torch.Tensor | None = None, *, dft_conv: bool = False
) -> torch.Tensor:
    """:func:`ge2e_mel` of a zero-padded batch; each item's level from its valid samples.

    Args:
        wav: ``(B, T)`` 16 kHz samples.
        lengths: ``(B,)`` valid samples (all ``T`` when None).
        dft_conv: compute the spectrum with a DFT convolution (ONNX export).

    Shape:
        (B, T), (B,) -> (B, 1 + T // 160, 40).
    """
    wav = wav * _gains(wav, lengths).to(wav.dtype)[:, None]
    spec = dsp.power_frames(wav, _WINDOW.to(wav), N_FFT, HOP, dft_conv=dft_conv)
    return spec @ _MEL.to(spec).T


#: The front end's window (25 ms Hann in a 400-point FFT) and mel matrix (40 Slaney bands).
_WINDOW = dsp.make_window("hann", N_FFT, N_FFT)
_MEL = dsp.mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS, 0.0, SAMPLE_RATE / 2, "slaney", "slaney")


@ENCODERS.register("ge2e")
class GE2EEncoder(PretrainedEncoder):
    """The GE2E network behind the encoder contract, layer by layer.

    :meth:`forward` takes waveforms (front end included) and returns every
    layer's output; :meth:`layer_outputs` and :meth:`embed` work on mel
    spectrograms (:func:`ge2e_mel`). In a padded batch each item's level is
    normalised on its own valid samples and the LSTMs run forward in time, so
    valid frames equal the item computed alone.

    Args:
        n_layers: LSTM layers to build (1-3). Features need only the layers up to
            the one they read; the speaker embedding (:meth:`embed`) needs all 3.

    Attributes:
        layers: single-layer LSTMs (40 -> 256 -> 256 -> 256).
        linear: the embedding projection (256 -> 256) of the last hidden state
            (only with 3 layers).
        export_friendly: compute the spectrum with a DFT convolution (ONNX export).
    """

    sample_rate = SAMPLE_RATE
    hidden_size = HIDDEN
    frame_shift = HOP / SAMPLE_RATE
    first_layer = 1

    def __init__(self, n_layers: int = N_LAYERS) -> None:
        super().__init__()
        if n_layers not in (1, 2, 3):
            raise ConfigError(f"GE2E: got n_layers={n_layers}, expected 1, 2 or 3")
        self.layers = nn.ModuleList(
            nn.LSTM(N_MELS if k == 0 else HIDDEN, HIDDEN, batch_first=True) for k in range(n_layers)
        )
        self.linear = nn.Linear(HIDDEN, HIDDEN) if n_layers == N_LAYERS else None
        self.export_friendly = False
        self.gradient_checkpointing = False
        self._weights_sha256 = ""

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike | None = None, n_layers: int = N_LAYERS
    ) -> GE2EEncoder:
        """Load the first ``n_layers`` layers of a checkpoint (see :func:`find_weights`).

        Raises:
            ConfigError: no checkpoint found, or it is not a GE2E checkpoint with
                that many layers.
        """
        weights = find_weights(path, n_layers)
        model = cls(n_layers)
        model.load_state_dict(_state_dict(str(weights), n_layers))
        model._weights_sha256 = weights_digest(str(weights))
        return model.eval()

    @staticmethod
    def depth_for(layers: Sequence[int]) -> int:
        """LSTM layers to load to read ``layers`` (1-3, or negative from the last: all 3).

        Raises:
            ConfigError: a layer GE2E does not have.

        Example:
            >>> GE2EEncoder.depth_for([1, 2]), GE2EEncoder.depth_for([-1])
            (2, 3)
        """
        for k in layers:
            if not (1 <= k <= N_LAYERS or -N_LAYERS <= k <= -1):
                raise ConfigError(
                    f"encoder layer {k}: GE2EEncoder has layers 1 to {N_LAYERS} "
                    "(or -1 for the last, -2 for the one before, ...)"
                )
        if not layers or any(k < 0 for k in layers):
            return N_LAYERS
        return max(layers)

    @classmethod
    def from_source(
        cls,
        source: str = "ge2e",
        layers: Sequence[int] = (-1,),
        weights: str = "",
        revision: str = "",
    ) -> GE2EEncoder:
        """Layers up to the deepest of ``layers`` from ``weights`` (:func:`find_weights`)."""
        return cls.from_pretrained(weights or None, cls.depth_for(layers))

    @classmethod
    def source_identity(
        cls,
        source: str = "ge2e",
        layers: Sequence[int] = (-1,),
        weights: str = "",
        revision: str = "",
    ) -> str:
        """SHA-256 of the checkpoint :meth:`from_source` reads (no model built)."""
        return weights_identity(weights or None, cls.depth_for(layers))

    @property
    def num_layers(self) -> int:  # type: ignore[override]
        """LSTM layers built (1-3)."""
        return len(self.layers)

    @property
    def identity(self) -> str:  # type: ignore[override]
        """SHA-256 of the weights file read by :meth:`from_pretrained`, else of the tensors."""
        if self._weights_sha256:
            return self._weights_sha256
        h = hashlib.sha256()
        for name, tensor in self.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Centred 10 ms frames: ``1 + lengths // 160``.

        Shape:
            (B,) samples -> (B,) int64 frames.

        Example:
            >>> GE2EEncoder(1).frame_lengths(torch.tensor([0, 159, 160, 16000])).tolist()
            [1, 1, 2, 101]
        """
        return dsp.centred_frame_lengths(lengths, HOP)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        """Every LSTM layer's output for a zero-padded 16 kHz batch.

        Args:
            waveform: ``(B, T)`` samples at 16 kHz.
            lengths: ``(B,)`` valid samples (all ``T`` when None).

        Returns:
            ``num_layers`` tensors ``(B, 1 + T // 160, 256)`` and the valid frames.

        Shape:
            (B, T), (B,) -> num_layers x (B, N, 256), (B,); N = 1 + T // 160.
        """
        checked, filled = self.check_input(waveform, lengths)
        mel = ge2e_mel_batch(checked, lengths, dft_conv=self.export_friendly)
        return EncoderOutput(tuple(self.layer_outputs(mel)), self.frame_lengths(filled))

    @property
    def blocks(self) -> list[nn.Module]:
        """The LSTM layers, first first (the mel front end has no weights)."""
        return list(self.layers)

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each LSTM layer's outputs in the backward pass (training only)."""
        self.gradient_checkpointing = bool(enabled)

    def layer_outputs(self, mel: torch.Tensor) -> list[torch.Tensor]:
        """Every LSTM layer's output sequence, from the mel front end's output.

        Shape:
            (B, N, 40) -> n_layers x (B, N, 256).
        """
        outs, x = [], mel
        checkpoint = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for layer in self.layers:
            if checkpoint:
                from torch.utils.checkpoint import checkpoint as recompute

                x = recompute(_lstm_output, layer, x, use_reentrant=False)
            else:
                x, _ = layer(x)
            outs.append(x)
        return outs

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """Speaker embedding: ReLU projection of the last state, L2-normalised.

        Shape:
            (B, N, 40) -> (B, 256).

        Raises:
            ConfigError: the encoder has fewer than 3 layers.
        """
        if self.linear is None:
            raise ConfigError("GE2E: the speaker embedding needs all 3 layers (n_layers=3)")
        last = self.layer_outputs(mel)[-1][:, -1]
        emb = torch.relu(self.linear(last))
        return emb / emb.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _lstm_output(layer: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    return layer(x)[0]


#: Layers 1-2 of resemblyzer's pretrained.pt, unchanged (Apache-2.0), shipped with Vocalis.
BUNDLED_WEIGHTS = "ge2e_layers12.pt"
BUNDLED_LAYERS = 2


def find_weights(path: str | os.PathLike | None = None, n_layers: int = N_LAYERS) -> Path:
    """Find the GE2E checkpoint.

    ``path``, else ``$VOCALIS_GE2E_WEIGHTS``, else (for up to 2 layers) the copy
    of layers 1-2 shipped in ``vocalis/resources/models``, else the full one
    inside the installed ``resemblyzer`` package.

    Raises:
        ConfigError: none of them exists.
    """
    if path is None or str(path) == "":
        path = os.environ.get(WEIGHTS_ENV) or None
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"GE2E weights: {p} does not exist; give an existing checkpoint")
        return p
    bundled = Path(__file__).resolve().parents[1] / "resources" / "models" / BUNDLED_WEIGHTS
    if n_layers <= BUNDLED_LAYERS and bundled.is_file():
        return bundled
    spec = importlib.util.find_spec("resemblyzer")
    if spec is not None and spec.origin is not None:
        p = Path(spec.origin).parent / "pretrained.pt"
        if p.is_file():
            return p
    raise ConfigError(
        f"GE2E weights: none found for {n_layers} layers; pip install --no-deps "
        f"resemblyzer==0.1.4 (its wheel ships pretrained.pt), or set {WEIGHTS_ENV} / "
        "functionals.weights / features.ge2e_weights to a checkpoint"
    )


@lru_cache(maxsize=4)
def weights_digest(path: str) -> str:
    """SHA-256 of a checkpoint file (cache keys change when the weights do)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_identity(path: str | os.PathLike | None = None, n_layers: int = N_LAYERS) -> str:
    """SHA-256 of the checkpoint :func:`find_weights` picks for ``path`` and ``n_layers``."""
    return weights_digest(str(find_weights(path or None, n_layers)))


def _state_dict(path: str, n_layers: int = N_LAYERS) -> dict[str, torch.Tensor]:
    """Map ``resemblyzer``'s keys (``lstm.weight_ih_l1``) to :class:`GE2EEncoder`'s."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        state = ckpt.get("model_state", ckpt)
        out = {
            f"layers.{k}.{n}_l0": state[f"lstm.{n}_l{k}"]
            for k in range(n_layers)
            for n in _LSTM_KEYS
        }
        if n_layers == N_LAYERS:
            out.update({f"linear.{n}": state[f"linear.{n}"] for n in ("weight", "bias")})
    except (KeyError, AttributeError, RuntimeError, OSError) as e:
        raise ConfigError(
            f"GE2E weights: {path} is not a GE2E checkpoint with {n_layers} layers "
            f"({type(e).__name__}: {e}); expected resemblyzer's pretrained.pt format"
        ) from None
    return out


_LSTM_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def save_weights(model: GE2EEncoder, path: str | os.PathLike) -> None:
    """Write ``model`` in ``resemblyzer``'s format (what :meth:`from_pretrained` reads)."""
    state = model.state_dict()
    out = {
        f"lstm.{n}_l{k}": state[f"layers.{k}.{n}_l0"]
        for k in range(len(model.layers))
        for n in _LSTM_KEYS
    }
    if model.linear is not None:
        out.update({f"linear.{n}": state[f"linear.{n}"] for n in ("weight", "bias")})
    from vocalis.io import atomic_open

    with atomic_open(path, "wb") as f:
        torch.save({"model_state": out}, f)
