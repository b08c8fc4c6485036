"""Hugging Face ``transformers`` speech encoders (wav2vec 2.0, HuBERT, WavLM, ...) as encoders.

Any ``transformers`` model that takes raw samples (``main_input_name ==
"input_values"``) and returns hidden states fits: :class:`HFEncoder` wraps it
behind the :class:`~vocalis.encoders.base.PretrainedEncoder` contract. Weights
are never downloaded: :meth:`HFEncoder.from_pretrained` reads a folder written
by ``save_pretrained`` or a model already in the Hugging Face cache
(``local_files_only=True``); get one on a connected machine with
``huggingface-cli download <id>``. ``transformers`` is an optional extra
(``pip install 'vocalis[ssl]'``), imported only when a model is loaded.

Frames: the convolutional feature encoder has no padding, so ``T`` samples give
``floor((L - kernel) / stride) + 1`` frames layer after layer (20 ms frames,
the first 25 ms after 400 samples for the usual 7-layer stack); the model's own
``_get_feat_extract_output_lengths`` answers when it has one.

Layers: ``hidden_states[0]`` is the transformer's input (the projected
convolutional features) and ``hidden_states[k]`` the output of transformer layer
``k``, as ``transformers`` returns them; ``num_layers = num_hidden_layers + 1``,
and layer numbers follow that order (``first_layer = 0``: layer 0 is the input,
layer ``num_hidden_layers`` the last).

Padding: with a per-frame ``layer`` norm in the feature encoder (the "large"
and WavLM checkpoints) the batch runs at once with an attention mask from
``lengths``; with ``group`` norm (wav2vec 2.0 / HuBERT base) the norm spans the
whole input, so each item runs alone on its valid samples. Either way a padded
item gives the frames it gives alone.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from vocalis.encoders.base import ENCODERS, EncoderOutput, PretrainedEncoder
from vocalis.errors import ConfigError, ModelError

#: Files whose bytes define a saved model (hashed into the identity of a folder).
_WEIGHT_FILES = ("config.json", "model.safetensors", "pytorch_model.bin")


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ConfigError(
            "hf encoder: the 'transformers' package is not installed; "
            "pip install 'vocalis[ssl]' (or pip install transformers)"
        ) from None
    return transformers


def resolve_folder(source: str | os.PathLike, revision: str | None = None) -> tuple[Path, str]:
    """The local folder of ``source`` and its identity, without touching the network.

    Args:
        source: a folder written by ``save_pretrained``, or a model id
            (``facebook/wav2vec2-base``) already in the Hugging Face cache.
        revision: branch, tag or commit of a cached model id (default ``main``).

    Returns:
        ``(folder, identity)``: ``sha256:<digest>`` of the folder's config and
        weights, or ``<id>@<commit>`` for a cached model.

    Raises:
        ConfigError: neither a folder nor a cached model; one line saying where it
            looked and how to get the model.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"hf encoder: {path} has no config.json; give a folder written by "
                "model.save_pretrained(folder)"
            )
        return path, "sha256:" + _folder_digest(path)
    if _looks_like_path(str(source)):
        raise ConfigError(
            f"hf encoder: no folder {path}; give a folder written by "
            "model.save_pretrained(folder), or a model id such as facebook/wav2vec2-base "
            "that is in the Hugging Face cache"
        )
    from huggingface_hub import constants, snapshot_download

    try:
        folder = Path(snapshot_download(str(source), revision=revision, local_files_only=True))
    except (OSError, ValueError):  # not cached, or not a valid model id
        folder = None
    if folder is None or not (folder / "config.json").is_file():
        at = f"@{revision}" if revision else ""
        raise ConfigError(
            f"hf encoder: {str(source) + at!r} is neither a folder nor a model in the Hugging Face "
            f"cache ({constants.HF_HUB_CACHE}); on a connected machine run "
            f"`huggingface-cli download {source}` (then copy the cache) or "
            "model.save_pretrained(folder), and give that folder"
        )
    return folder, f"{source}@{folder.name}"


def _looks_like_path(source: str) -> bool:
    """``source`` names a folder, not a hub id (``org/name`` never starts like a path).

    Example:
        >>> [_looks_like_path(s) for s in ("/models/w2v", "./w2v", "~/w2v", "facebook/w2v")]
        [True, True, True, False]
    """
    return source.startswith(("/", "./", "../", "~", ".\\")) or source.count("/") > 1


def _folder_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in _WEIGHT_FILES:
        file = folder / name
        if file.is_file():
            h.update(name.encode())
            with open(file, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def _preprocessor(folder: Path) -> dict:
    file = folder / "preprocessor_config.json"
    return json.loads(file.read_text()) if file.is_file() else {}


@ENCODERS.register("hf")
class HFEncoder(PretrainedEncoder):
    """A ``transformers`` audio encoder behind the encoder contract.

    Args:
        model: a loaded ``transformers`` model taking ``input_values`` (e.g.
            ``Wav2Vec2Model``, ``HubertModel``, ``WavLMModel``).
        identity: what the weights are, for cache keys.
        sample_rate: the rate the model was trained at, in Hz.
        normalize: scale each item to zero mean and unit variance over its valid
            samples first (``do_normalize`` of the model's feature extractor).

    LayerDrop and the model's own SpecAugment-style masking are switched off: layer
    weights need every layer's output at every step, and the masking would draw from
    numpy's global generator (a run would not replay); use ``augment.spec_mask``.

    Raises:
        ConfigError: the model does not take raw samples, or its frame rule is unknown.
    """

    def __init__(
        self,
        model: nn.Module,
        identity: str,
        sample_rate: int = 16000,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        config = model.config
        if getattr(model, "main_input_name", "") != "input_values":
            raise ConfigError(
                f"hf encoder: {type(model).__name__} takes {model.main_input_name!r}, expected "
                "raw samples ('input_values': wav2vec 2.0, HuBERT, WavLM, data2vec-audio)"
            )
        if not (hasattr(config, "conv_kernel") and hasattr(config, "conv_stride")):
            raise ConfigError(
                f"hf encoder: {type(model).__name__} has no conv_kernel/conv_stride in its "
                "config, so its frame count is unknown"
            )
        # LayerDrop skips a layer's hidden state in training, which would shift the
        # layer weights' inputs; the model's own time masking draws from numpy's global
        # generator, so a run would not replay: both off (augment.spec_mask masks instead)
        for key, off in (("layerdrop", 0.0), ("apply_spec_augment", False)):
            if hasattr(config, key):
                setattr(config, key, off)
        # An encoder has no loss. Tracing (export) reads every attribute, and reading the
        # ``loss_function`` property warns "loss_type=None ... unrecognized" unless it is set.
        model._loss_function = None
        self.model = model
        self.identity = identity
        self.sample_rate = int(sample_rate)
        self.normalize = bool(normalize)
        self.num_layers = int(config.num_hidden_layers) + 1
        self.hidden_size = int(config.hidden_size)
        #: (kernel, stride) of each convolution of the feature encoder.
        self.convs = [
            (int(k), int(s)) for k, s in zip(config.conv_kernel, config.conv_stride, strict=True)
        ]
        stride = 1
        for _, s in self.convs:
            stride *= s
        self.frame_shift = stride / self.sample_rate
        #: Samples the first frame needs (the convolutions' receptive field).
        self.min_samples = int(self._receptive_field())
        self.batched = getattr(config, "feat_extract_norm", "layer") != "group"

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike | None = None,
        revision: str | None = None,
        normalize: bool | None = None,
    ) -> HFEncoder:
        """Load a model from a ``save_pretrained`` folder or the Hugging Face cache, offline.

        Args:
            source: folder or cached model id (see :func:`resolve_folder`).
            revision: revision of a cached model id.
            normalize: per-item zero mean / unit variance input; ``None`` reads
                ``do_normalize`` from the folder's ``preprocessor_config.json``
                (off when there is none).

        Raises:
            ConfigError: no source, model not found, ``transformers`` missing, or
                a model that does not take raw samples.
        """
        if source is None or str(source) == "":
            raise ConfigError(
                "hf encoder: no model given; pass a save_pretrained folder or a model id "
                "from the Hugging Face cache (e.g. facebook/wav2vec2-base)"
            )
        transformers = _transformers()
        folder, identity = resolve_folder(source, revision)
        bars = transformers.utils.logging  # no "Loading weights" bar on every model build
        shown = bars.is_progress_bar_enabled()
        bars.disable_progress_bar()
        try:
            model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"hf encoder: cannot load {folder}: {first}") from None
        finally:
            if shown:
                bars.enable_progress_bar()
        pre = _preprocessor(folder)
        if normalize is None:
            normalize = bool(pre.get("do_normalize", False))
        rate = int(pre.get("sampling_rate", 16000))
        return cls(model, identity, rate, normalize).eval()

    @classmethod
    def from_source(
        cls, source: str, layers: Sequence[int] = (-1,), weights: str = "", revision: str = ""
    ) -> HFEncoder:
        """:meth:`from_pretrained` of ``source`` at ``revision``.

        ``weights`` is unused: the folder holds them.
        """
        return cls.from_pretrained(source, revision or None)

    @classmethod
    def source_identity(
        cls, source: str, layers: Sequence[int] = (-1,), weights: str = "", revision: str = ""
    ) -> str:
        """``sha256:<digest>`` of the folder's files, or ``<id>@<commit>`` (no model built)."""
        return resolve_folder(source, revision or None)[1]

    @property
    def feature_encoder(self) -> nn.Module | None:
        """The convolutional feature encoder (``model.feature_extractor``)."""
        return self._part("feature_extractor")

    @property
    def blocks(self) -> list[nn.Module]:
        """The transformer layers (``model.encoder.layers``), first first."""
        return list(self._part("encoder").layers)

    def _part(self, name: str) -> nn.Module:
        part = getattr(self.model, name, None)
        if part is None:
            raise ConfigError(
                f"hf encoder: {type(self.model).__name__} has no '{name}' (the layout of "
                "wav2vec 2.0 / HuBERT / WavLM), so it cannot be frozen in parts; use "
                "model.params.encoder.freeze_layers=0 and freeze_feature_encoder=false"
            )
        return part

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """``transformers``' gradient (activation) checkpointing of the transformer layers.

        Raises:
            ConfigError: the model does not support it.
        """
        if not getattr(self.model, "supports_gradient_checkpointing", False):
            super().set_gradient_checkpointing(enabled)
        model = self.model
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5
            on, off = model.activation_checkpointing_enable, model.activation_checkpointing_disable
        else:
            on, off = model.gradient_checkpointing_enable, model.gradient_checkpointing_disable
        if enabled:
            on({"use_reentrant": False})
        else:
            off()

    def _receptive_field(self) -> int:
        """Smallest input with one output frame."""
        n = 1
        for k, s in reversed(self.convs):
            n = (n - 1) * s + k
        return n

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames of the unpadded strided convolutions (0 below :attr:`min_samples`).

        Shape:
            (B,) samples -> (B,) int64 frames.
        """
        lengths = torch.as_tensor(lengths).long()
        get = getattr(self.model, "_get_feat_extract_output_lengths", None)
        if get is not None:
            out = get(lengths)
        else:
            out = lengths
            for k, s in self.convs:
                out = torch.div(out - k, s, rounding_mode="floor") + 1
        return torch.as_tensor(out).long().clamp_min(0)

    def _normalized(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Zero mean, unit variance over each item's valid samples; padding stays 0."""
        valid = (torch.arange(wav.shape[1], device=wav.device)[None] < lengths[:, None]).to(wav)
        n = lengths.clamp_min(1).to(wav)[:, None]
        mean = (wav * valid).sum(1, keepdim=True) / n
        var = ((wav - mean).square() * valid).sum(1, keepdim=True) / n
        return (wav - mean) / torch.sqrt(var + 1e-7) * valid

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        """Every hidden state of the model for a zero-padded batch.

        Args:
            waveform: ``(B, T)`` samples at :attr:`sample_rate`.
            lengths: ``(B,)`` valid samples (all ``T`` when None).

        Returns:
            ``num_layers`` tensors ``(B, T', H)`` with ``T' = frame_lengths(T)``, and
            ``frame_lengths(lengths)``.

        Shape:
            (B, T), (B,) -> num_layers x (B, T', H), (B,).

        Raises:
            ModelError: an item shorter than :attr:`min_samples`.
        """
        waveform, lengths = self.check_input(waveform, lengths)
        if bool((lengths < self.min_samples).any()):
            short = int(lengths.min())
            raise ModelError(
                f"hf encoder: an item has {short} samples, the model needs at least "
                f"{self.min_samples} ({1000 * self.min_samples / self.sample_rate:.0f} ms) "
                "for one frame; pad or drop shorter clips"
            )
        dtype = next(self.model.parameters()).dtype
        waveform = waveform.to(dtype)
        if self.normalize:
            waveform = self._normalized(waveform, lengths)
        frames = self.frame_lengths(lengths)
        if self.batched:
            mask = torch.arange(waveform.shape[1], device=waveform.device)[None] < lengths[:, None]
            out = self.model(waveform, attention_mask=mask.long(), output_hidden_states=True)
            return EncoderOutput(tuple(out.hidden_states), frames)
        if torch.jit.is_tracing():
            # A traced graph (ONNX, TorchScript) cannot keep the per-item loop below: it
            # would bake in the example's lengths. It runs the whole input instead, exact
            # for one clip per call; ``vocalis export`` finds padded batches inexact and
            # says so (metadata ``padded_batches: false``).
            out = self.model(waveform, output_hidden_states=True)
            return EncoderOutput(tuple(out.hidden_states), frames)
        width = int(self.frame_lengths(torch.tensor([waveform.shape[1]]))[0])
        per_item = [
            self.model(waveform[i : i + 1, : int(n)], output_hidden_states=True).hidden_states
            for i, n in enumerate(lengths)
        ]
        hidden = tuple(
            torch.cat([nn.functional.pad(h[k], (0, 0, 0, width - h[k].shape[1])) for h in per_item])
            for k in range(self.num_layers)
        )
        return EncoderOutput(hidden, frames)
