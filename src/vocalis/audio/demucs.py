"""Demucs speech enhancement (Defossez et al., Interspeech 2020), causal dns64 variant.

A re-implementation of the waveform U-Net of facebookresearch/denoiser whose
parameter names and shapes match the published checkpoints
(``dns48-11decc9d8e3f0998.th``, ``dns64-a7761ff99a7d5bb6.th``,
``master64-8a5dfb4bb92753dd.th``), so those weights load with
``load_state_dict``. Nothing is downloaded: put the file in the torch hub
cache (``~/.cache/torch/hub/checkpoints/``) or point ``$VOCALIS_DEMUCS_WEIGHTS``
at it.

Layout: the input is normalised by its standard deviation, zero-padded to a
valid length, upsampled 4x with windowed-sinc interpolation, passed through
``depth`` encoder blocks ``Conv1d(k, s) -> ReLU -> Conv1d(1x1) -> GLU``, an
LSTM over time, and ``depth`` decoder blocks ``Conv1d(1x1) -> GLU ->
ConvTranspose1d(k, s) [-> ReLU]`` with U-Net skip connections, then
downsampled 4x, cropped and rescaled.
"""

from __future__ import annotations

import glob
import math
import os
import threading
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from vocalis.errors import AudioError, ConfigError, ModelError

#: Environment variable naming the checkpoint file.
WEIGHTS_ENV = "VOCALIS_DEMUCS_WEIGHTS"
#: The rate the published models were trained at.
DEMUCS_SAMPLE_RATE = 16000
_SINC_ZEROS = 56


@dataclass(frozen=True)
class DemucsConfig:
    """Hyper-parameters; the defaults are those of the published dns64 model."""

    chin: int = 1
    chout: int = 1
    hidden: int = 64
    depth: int = 5
    kernel_size: int = 8
    stride: int = 4
    causal: bool = True
    resample: int = 4
    growth: float = 2.0
    max_hidden: int = 10_000
    normalize: bool = True
    glu: bool = True
    rescale: float = 0.1
    floor: float = 1e-3

    def __post_init__(self) -> None:
        if self.resample not in (1, 2, 4):
            raise ConfigError(f"demucs resample={self.resample}, expected 1, 2 or 4")
        if self.depth < 1 or self.hidden < 1 or self.kernel_size < self.stride:
            raise ConfigError("demucs: need depth >= 1, hidden >= 1 and kernel_size >= stride")


def _sinc_kernel(zeros: int = _SINC_ZEROS) -> torch.Tensor:
    """Hann-windowed sinc sampled at the half-integer offsets, shape (1, 1, 2 * zeros)."""
    window = torch.hann_window(4 * zeros + 1, periodic=False)[1::2]
    t = torch.linspace(-zeros + 0.5, zeros - 0.5, 2 * zeros, dtype=torch.float64) * math.pi
    sinc = torch.sin(t) / t  # t is never 0 at half-integer offsets
    return (sinc.float() * window).view(1, 1, -1)


def upsample2(x: torch.Tensor, zeros: int = _SINC_ZEROS) -> torch.Tensor:
    """Upsample by 2: keep the samples, interpolate the midpoints with a windowed sinc.

    Shape:
        x: (..., T). Returns (..., 2T).

    Example:
        >>> upsample2(torch.ones(1, 8)).shape
        torch.Size([1, 16])
    """
    *batch, time = x.shape
    kernel = _sinc_kernel(zeros).to(x)
    mid = F.conv1d(x.reshape(-1, 1, time), kernel, padding=zeros)[..., 1:]
    return torch.stack([x, mid.reshape(*batch, time)], dim=-1).reshape(*batch, 2 * time)


def downsample2(x: torch.Tensor, zeros: int = _SINC_ZEROS) -> torch.Tensor:
    """Downsample by 2: half-band low-pass with a windowed sinc, then decimate.

    Shape:
        x: (..., T). Returns (..., ceil(T / 2)).

    Example:
        >>> downsample2(torch.ones(1, 9)).shape
        torch.Size([1, 5])
    """
    if x.shape[-1] % 2:
        x = F.pad(x, (0, 1))
    even, odd = x[..., ::2], x[..., 1::2]
    *batch, time = odd.shape
    kernel = _sinc_kernel(zeros).to(x)
    mid = F.conv1d(odd.reshape(-1, 1, time), kernel, padding=zeros)[..., :-1]
    return (even + mid.reshape(*batch, time)) * 0.5


class _LSTM(nn.Module):
    """The bottleneck LSTM (2 layers); bidirectional plus a projection when not causal."""

    def __init__(self, dim: int, layers: int = 2, bidirectional: bool = False) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers=layers, bidirectional=bidirectional)
        self.linear = nn.Linear(2 * dim, dim) if bidirectional else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self.lstm(x)
        return self.linear(x) if self.linear is not None else x


def _rescale_(module: nn.Module, reference: float) -> None:
    """Weight rescaling at init (Defossez et al. 2019): divide by sqrt(std / reference)."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, (nn.Conv1d, nn.ConvTranspose1d)):
                scale = (sub.weight.std() / reference) ** 0.5
                sub.weight.div_(scale)
                if sub.bias is not None:
                    sub.bias.div_(scale)


class Demucs(nn.Module):
    """The Demucs denoiser.

    Args:
        config: hyper-parameters (dns64 by default).

    Shape:
        forward: (B, T), (B, C, T) or (T,) noisy waveform at 16 kHz -> same shape.

    Example:
        >>> model = Demucs(DemucsConfig(hidden=4, depth=2)).eval()
        >>> model(torch.randn(2, 1000)).shape
        torch.Size([2, 1000])
    """

    def __init__(self, config: DemucsConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or DemucsConfig()
        activation = nn.GLU(dim=1) if cfg.glu else nn.ReLU()
        scale = 2 if cfg.glu else 1
        self.encoder = nn.ModuleList()
        self.decoder = nn.ModuleList()
        chin, chout, hidden = cfg.chin, cfg.chout, cfg.hidden
        for index in range(cfg.depth):
            self.encoder.append(
                nn.Sequential(
                    nn.Conv1d(chin, hidden, cfg.kernel_size, cfg.stride),
                    nn.ReLU(),
                    nn.Conv1d(hidden, hidden * scale, 1),
                    activation,
                )
            )
            decode: list[nn.Module] = [
                nn.Conv1d(hidden, hidden * scale, 1),
                activation,
                nn.ConvTranspose1d(hidden, chout, cfg.kernel_size, cfg.stride),
            ]
            if index > 0:
                decode.append(nn.ReLU())
            self.decoder.insert(0, nn.Sequential(*decode))  # the deepest block decodes first
            chin = chout = hidden
            hidden = min(int(cfg.growth * hidden), cfg.max_hidden)
        self.lstm = _LSTM(chin, bidirectional=not cfg.causal)
        if cfg.rescale:
            _rescale_(self, cfg.rescale)

    def valid_length(self, length: int) -> int:
        """Smallest input length >= ``length`` that leaves no sample over in any conv.

        Example:
            >>> Demucs(DemucsConfig(hidden=4, depth=2)).valid_length(1000)
            1001
        """
        cfg = self.config
        n = length * cfg.resample
        for _ in range(cfg.depth):
            n = max(-(-(n - cfg.kernel_size) // cfg.stride) + 1, 1)
        for _ in range(cfg.depth):
            n = (n - 1) * cfg.stride + cfg.kernel_size
        return -(-n // cfg.resample)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Denoise a batch of waveforms; see the class docstring for shapes."""
        cfg = self.config
        shape = wav.shape
        x = wav.reshape(1, 1, -1) if wav.dim() == 1 else wav
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if cfg.normalize:
            mono = x.mean(dim=1, keepdim=True)
            std = mono.std(dim=-1, keepdim=True, correction=1 if mono.shape[-1] > 1 else 0)
            x = x / (cfg.floor + std)
        else:
            std = torch.ones(())
        length = x.shape[-1]
        x = F.pad(x, (0, self.valid_length(length) - length))
        for _ in range(int(math.log2(cfg.resample))):
            x = upsample2(x)
        skips = []
        for encode in self.encoder:
            x = encode(x)
            skips.append(x)
        x = self.lstm(x.permute(2, 0, 1)).permute(1, 2, 0)
        for decode in self.decoder:
            skip = skips.pop()
            x = decode(x + skip[..., : x.shape[-1]])
        for _ in range(int(math.log2(cfg.resample))):
            x = downsample2(x)
        out = x[..., :length] * std
        return out.reshape(shape) if wav.dim() < 3 else out


def default_weights() -> str | None:
    """The checkpoint :func:`load_demucs` uses when given no path, or None.

    ``$VOCALIS_DEMUCS_WEIGHTS`` if set, else the newest ``dns64-*.th`` in the
    torch hub cache (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch``).
    """
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return env
    hub = os.path.join(torch.hub.get_dir(), "checkpoints")
    found = sorted(glob.glob(os.path.join(hub, "dns64-*.th")), key=os.path.getmtime)
    return found[-1] if found else None


def _config_from_state(state: dict[str, torch.Tensor]) -> DemucsConfig:
    """Infer hidden, depth, kernel, channels and causality from a state dict's shapes."""
    depth = len({k.split(".")[1] for k in state if k.startswith("encoder.")})
    first = state["encoder.0.0.weight"]  # (hidden, chin, kernel)
    last = state[f"decoder.{depth - 1}.2.weight"]  # (hidden, chout, kernel)
    growth = 2.0
    if depth > 1:
        growth = state["encoder.1.0.weight"].shape[0] / first.shape[0]
    return DemucsConfig(
        chin=first.shape[1],
        chout=last.shape[1],
        hidden=first.shape[0],
        depth=depth,
        kernel_size=first.shape[2],
        causal="lstm.linear.weight" not in state,
        growth=growth,
        glu=state["encoder.0.2.weight"].shape[0] == 2 * first.shape[0],
    )


def load_demucs(weights: str | os.PathLike | None = None) -> Demucs:
    """Build a Demucs model from a published or saved checkpoint (eval mode, CPU).

    Args:
        weights: path to a state dict (``dns64-a7761ff99a7d5bb6.th`` or
            ``torch.save(model.state_dict(), path)``); a denoiser training
            checkpoint (a dict with ``"state"``) also works. Default:
            :func:`default_weights`. Hyper-parameters are read from the tensor shapes,
            so dns48 and master64 load as well.

    Raises:
        AudioError: no weights file found (the message says where to put it).
        ModelError: the file is not a Demucs checkpoint.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "tiny.th")
        >>> torch.save(Demucs(DemucsConfig(hidden=4, depth=2)).state_dict(), path)
        >>> load_demucs(path).config.hidden
        4
    """
    path = str(weights) if weights is not None else default_weights()
    if path is None or not os.path.isfile(path):
        where = f"{path}: no such file" if path else "no Demucs weights found"
        hub = os.path.join(torch.hub.get_dir(), "checkpoints")
        raise AudioError(
            f"{where}; download dns64-a7761ff99a7d5bb6.th from "
            "https://dl.fbaipublicfiles.com/adiyoss/denoiser/ and put it in "
            f"{hub}/ or set ${WEIGHTS_ENV} to its path, or use --denoise spectral"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelError(f"{path}: cannot read Demucs weights ({msg})") from None
    if isinstance(state, dict) and isinstance(state.get("state"), dict):
        state = state["state"]
    if not isinstance(state, dict) or "encoder.0.0.weight" not in state:
        raise ModelError(
            f"{path}: not a Demucs state dict (no 'encoder.0.0.weight'); expected a "
            "facebookresearch/denoiser checkpoint such as dns64-a7761ff99a7d5bb6.th"
        )
    try:
        model = Demucs(_config_from_state(state))
        model.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError, ConfigError) as err:
        msg = str(err).splitlines()[0]
        raise ModelError(f"{path}: weights do not fit the Demucs layout ({msg})") from None
    return model.eval()


_MODELS: dict[tuple[str, str], Demucs] = {}
_LOCK = threading.Lock()


def _cached_model(weights: str | os.PathLike | None, device: torch.device) -> Demucs:
    path = str(weights) if weights is not None else default_weights()
    key = (os.path.abspath(path) if path else "", str(device))
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_demucs(path).to(device)
        return _MODELS[key]


def demucs_enhance(
    wav: torch.Tensor,
    sample_rate: int,
    *,
    weights: str | os.PathLike | None = None,
    dry: float = 0.0,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Denoise with Demucs (the model is loaded once per process and weights file).

    The signal is resampled to 16 kHz for the model and back afterwards.

    Args:
        wav: noisy speech.
        sample_rate: its rate in Hz.
        weights: checkpoint path; default :func:`default_weights`.
        dry: fraction of the input mixed back in (0 = fully denoised); small values
            reduce artefacts.
        device: where the model runs (``"cuda"``); default CPU. The output is on
            ``wav``'s device.

    Shape:
        wav: (T,). Returns (T,).

    Raises:
        AudioError: no weights found.
    """
    from vocalis.audio.io import resample

    if not 0.0 <= dry <= 1.0:
        raise ConfigError(f"demucs dry={dry}, expected a value in [0, 1]")
    model = _cached_model(weights, torch.device(device or "cpu"))
    x = resample(wav.detach().cpu().float(), sample_rate, DEMUCS_SAMPLE_RATE)
    with torch.inference_mode():
        y = model(x.to(next(model.parameters()).device)).cpu()
    y = resample(y, DEMUCS_SAMPLE_RATE, sample_rate)
    n = wav.shape[0]
    y = F.pad(y[:n], (0, max(0, n - y.shape[0])))
    return (dry * wav.detach().cpu() + (1.0 - dry) * y).to(wav.device)
