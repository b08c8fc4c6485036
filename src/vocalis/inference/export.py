"""Export a trained model to TorchScript or ONNX, from waveform (or features) to probabilities.

The exported graph is the module the :class:`~vocalis.inference.Predictor` runs
(:meth:`~vocalis.inference.Pipeline.waveform_to_probs`), for a neural model:
level normalisation
(tier 0's last step), the feature front end (the STFT becomes a conv1d with a
DFT basis for ONNX, see :func:`vocalis.dsp.power_frames`), the feature
normalisation with its statistics, the model and its calibration temperature,
and the softmax.

Graph inputs and output (time and batch axes are dynamic):

- ``waveform`` float32 (B, T): mono audio at ``sample_rate`` Hz, decoded and
  resampled (``input="features"``: ``features`` float32 (B, F, N));
- ``lengths`` int64 (B,): valid samples (frames) per item;
- ``probs`` float32 (B, C): class probabilities, classes in metadata order; for a
  multi-head model (B, D), every head's outputs side by side, as the metadata's
  ``heads`` list says (:func:`export_heads`).

Denoising and VAD are not in the graph; when the checkpoint uses them,
:func:`export` warns and the caller must apply them before the graph. Metadata
(classes, sample rate, feature and tier-0 configs, whether padded batches are
exact) is stored in the ONNX ``metadata_props`` (key ``vocalis``) or the
TorchScript extra file ``vocalis.json``.

Example:
    >>> report = export("runs/x", "model.onnx")  # doctest: +SKIP
    >>> report.max_abs_diff < 1e-4  # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from vocalis.errors import ConfigError, ModelError
from vocalis.inference.pipeline import Pipeline, load_pipeline

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
INPUTS = ("waveform", "features")

#: Largest probability difference between PyTorch and the exported graph accepted.
TOLERANCE = 1e-4


@dataclass
class ExportReport:
    """What :func:`export` wrote and how closely it matches PyTorch.

    Attributes:
        path: the exported file.
        format: ``onnx`` or ``torchscript``.
        input: ``waveform`` or ``features``.
        max_abs_diff: largest probability difference to eager PyTorch over
            single clips of several lengths.
        padded_batches: whether a zero-padded batch with ``lengths`` gives each
            item's single-clip probabilities (False: feed one clip per call).
        metadata: the metadata stored with the graph.
    """

    path: str
    format: str
    input: str
    max_abs_diff: float
    padded_batches: bool
    metadata: dict[str, Any] = field(default_factory=dict)


def _example(pipe: Pipeline, seconds: float, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    n = round(seconds * pipe.sample_rate)
    t = torch.arange(n, dtype=torch.float32) / pipe.sample_rate
    tone = torch.sin(2 * torch.pi * (120.0 + 40 * seed) * t) * (0.5 + 0.5 * torch.sin(3 * t))
    return 0.3 * tone + 0.05 * torch.randn(n, generator=g)


def _inputs(pipe: Pipeline, graph_input: str, waves: list[Tensor]) -> tuple[Tensor, Tensor]:
    from vocalis.inference.predictor import pad_batch

    batch, lengths = pad_batch(waves)
    if graph_input == "waveform":
        return batch, lengths
    from vocalis.audio.level import normalize

    method = pipe.tier0.normalize
    rms = float(pipe.tier0.target_rms_db)
    levelled = [normalize(w, method, target_rms_db=rms) for w in waves]
    batch, lengths = pad_batch(levelled)
    with torch.no_grad():
        return pipe.neural.features(batch, lengths)


def _trace_torchscript(graph: nn.Module, example: tuple[Tensor, Tensor]) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(graph, example, check_trace=False)
        for param in traced.parameters():  # an inference graph: no autograd for users
            param.requires_grad_(False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
    return buf.getvalue()


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence file descriptor 1 (the ONNX exporter prints its IR graph there on failure)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _first_line(err: BaseException) -> str:
    """The first line of an exception's message, at most 300 characters (``""`` if none)."""
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else ""


def _trace_onnx(
    graph: nn.Module, example: tuple[Tensor, Tensor], graph_input: str, opset: int
) -> bytes:
    from vocalis.encoders.base import PretrainedEncoder
    from vocalis.features.base import FeatureExtractor

    for module in graph.modules():  # spectra as a DFT conv1d: no complex tensors in ONNX
        if isinstance(module, (FeatureExtractor, PretrainedEncoder)):  # also inside a model
            module.export_friendly = True
    names = [graph_input, "lengths"]
    axes = {
        names[0]: {0: "batch", 1: "time"}
        if graph_input == "waveform"
        else {0: "batch", 2: "frames"},
        "lengths": {0: "batch"},
        "probs": {0: "batch"},
    }
    buf = io.BytesIO()
    # the exporter prints the whole IR graph to stdout when it fails: keep it quiet
    with warnings.catch_warnings(), _quiet_stdout():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                graph,
                example,
                buf,
                dynamo=False,
                input_names=names,
                output_names=["probs"],
                dynamic_axes=axes,
                opset_version=opset,
                do_constant_folding=True,
            )
        except ModelError:  # the graph itself refuses export: its message is the answer
            raise
        except Exception as err:  # the exporter raises many types
            msg = _first_line(err)
            hint = (
                "; export with --input features (the feature front end then runs outside "
                "the graph) or --format torchscript"
                if graph_input == "waveform"
                else "; try --format torchscript"
            )
            raise ModelError(f"ONNX export failed ({type(err).__name__}: {msg}){hint}") from None
    return buf.getvalue()


def _require(module: str):
    """Import an optional package of the ``export`` extra, or explain how to get it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelError(
            f"ONNX export needs the '{module}' package: pip install 'vocalis[export]'"
        ) from None


class _Runner:
    """Runs an exported graph held in memory."""

    def __init__(self, data: bytes, fmt: str, graph_input: str) -> None:
        self.fmt = fmt
        self.graph_input = graph_input
        if fmt == "onnx":
            ort = _require("onnxruntime")

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.log_severity_level = 3
            self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = torch.jit.load(io.BytesIO(data))

    def __call__(self, x: Tensor, lengths: Tensor) -> np.ndarray:
        if self.fmt == "onnx":
            feed = {self.graph_input: x.numpy(), "lengths": lengths.numpy().astype(np.int64)}
            return self.session.run(["probs"], feed)[0]
        with torch.inference_mode():
            return self.module(x, lengths).numpy()


def verify(
    pipe: Pipeline, graph: nn.Module, runner: Any, graph_input: str, seconds=(0.5, 1.7, 3.1)
) -> tuple[float, bool]:
    """Compare an exported graph with eager PyTorch.

    Returns:
        ``(max_abs_diff over single clips, padded batches exact)``.
    """
    waves = [_example(pipe, s, i + 1) for i, s in enumerate(seconds)]
    worst = 0.0
    singles = []
    with torch.inference_mode():
        for w in waves:
            x, lengths = _inputs(pipe, graph_input, [w])
            ref = graph(x, lengths).numpy()
            got = runner(x, lengths)
            singles.append(ref)
            worst = max(worst, float(np.abs(ref - got).max()))
        x, lengths = _inputs(pipe, graph_input, waves)
        got = runner(x, lengths)
    padded = bool(np.abs(np.concatenate(singles, axis=0) - got).max() < TOLERANCE)
    return worst, padded


def export(
    checkpoint: str | os.PathLike | None,
    out: str | os.PathLike,
    format: Literal["onnx", "torchscript"] = "onnx",
    input: Literal["waveform", "features"] = "waveform",
    opset: int = 17,
    check: bool = True,
) -> ExportReport:
    """Export a checkpoint's pipeline as one graph from waveform (or features) to probabilities.

    Args:
        checkpoint: the checkpoint; None = the bundled model.
        out: file to write (``model.onnx``, ``model.pt``).
        format: ``onnx`` or ``torchscript``.
        input: ``waveform`` (features computed in the graph) or ``features``.
        opset: ONNX opset (>= 17).
        check: compare the exported graph with PyTorch on clips of several
            lengths and refuse (ModelError) when probabilities differ by more than
            :data:`TOLERANCE`.

    Returns:
        The report: path, parity, whether padded batches are exact, metadata.

    Raises:
        ConfigError: unknown format or input.
        ModelError: the model cannot be traced, or the export does not match PyTorch.
    """
    from vocalis import __version__
    from vocalis.config import to_dict
    from vocalis.io import atomic_open

    if format not in FORMATS:
        raise ConfigError(f"export format {format!r}: expected one of {', '.join(FORMATS)}")
    if input not in INPUTS:
        raise ConfigError(f"export input {input!r}: expected one of {', '.join(INPUTS)}")
    if format == "onnx" and opset < 17:
        raise ConfigError(f"export opset={opset}: expected >= 17")
    if format == "onnx":
        _require("onnx")
        _require("onnxruntime")
    pipe = load_pipeline(checkpoint)
    skipped = [
        name
        for name, on in (
            ("denoise", pipe.tier0.denoise != "none"),
            ("vad", pipe.tier0.vad),
            ("clip_seconds", pipe.tier0.clip_seconds is not None),
            ("channel", pipe.tier0.channel is not None),
        )
        if on
    ]
    if skipped:
        logger.warning(
            "the checkpoint's tier 0 uses %s, which the exported graph does not contain; "
            "apply it to the audio before the graph",
            " and ".join(skipped),
        )
    graph = pipe.waveform_to_probs(level=True) if input == "waveform" else pipe.features_to_probs()
    # A padded example makes the tracer record the masked code paths, so that the
    # graph is right for padded batches as well as for single clips.
    example = _inputs(pipe, input, [_example(pipe, 2.0, 0), _example(pipe, 1.3, 5)])
    with torch.inference_mode(False), torch.no_grad():
        data = (
            _trace_onnx(graph, example, input, opset)
            if format == "onnx"
            else _trace_torchscript(graph, example)
        )
    runner = _Runner(data, format, input)
    try:
        diff, padded = verify(pipe, graph, runner, input)
    except (RuntimeError, ValueError) as err:  # the graph runs, but not on other lengths
        raise ModelError(
            f"exported {format} graph fails on clips of other lengths ({type(err).__name__}: "
            f"{_first_line(err)}); the model has shape-dependent code the tracer cannot follow"
        ) from None
    if check and not diff < TOLERANCE:
        raise ModelError(
            f"exported {format} graph differs from PyTorch by {diff:.2e} (tolerance "
            f"{TOLERANCE:g}); the model has data-dependent code the tracer cannot follow"
        )
    if not padded:
        logger.warning(
            "exported graph is exact for one clip per call but not for zero-padded batches "
            "(the model's output depends on the padding, e.g. a group norm over the whole "
            "input); run one clip at a time"
        )
    meta = {
        "vocalis_version": __version__,
        "model": pipe.model_name,
        "classes": list(pipe.classes),
        "input": input,
        "inputs": [input, "lengths"],
        "output": "probs",
        "sample_rate": pipe.sample_rate,
        "kind": pipe.kind,
        "features": None if pipe.features is None else to_dict(pipe.features),
        "tier0": to_dict(pipe.tier0),
        "normalization": pipe.checkpoint.normalization.mode,
        "in_graph": ["level", "features", "normalization", "model", "temperature", "softmax"]
        if input == "waveform"
        else ["normalization", "model", "temperature", "softmax"],
        "not_in_graph": skipped,
        **({"heads": export_heads(pipe.heads)} if pipe.heads else {}),
        "padded_batches": padded,
        "max_abs_diff": diff,
    }
    if format == "onnx":
        onnx = _require("onnx")
        proto = onnx.load_from_string(data)
        entry = proto.metadata_props.add()
        entry.key, entry.value = "vocalis", json.dumps(meta)
        proto.doc_string = f"Vocalis {pipe.model_name}: {input} -> probs over {list(pipe.classes)}"
        data = proto.SerializeToString()
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(io.BytesIO(data))
            buf = io.BytesIO()
            torch.jit.save(module, buf, _extra_files={"vocalis.json": json.dumps(meta)})
        data = buf.getvalue()
    with atomic_open(out, "wb") as fh:
        fh.write(data)
    return ExportReport(str(out), format, input, diff, padded, meta)


def export_heads(heads: list) -> list[dict[str, Any]]:
    """Metadata of a multi-head graph: where each head's outputs sit in ``probs``.

    ``probs`` (B, D) then holds every head side by side: class probabilities,
    multi-label sigmoids (with their thresholds), regression values in the
    column's units.
    """
    out, start = [], 0
    for h in heads:
        entry = {
            "name": h.name,
            "kind": h.kind,
            "outputs": [start, start + h.size],
            "classes": list(h.classes),
        }
        if h.kind == "multilabel":
            entry["thresholds"] = list(h.thresholds)
        out.append(entry)
        start += h.size
    return out


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata :func:`export` stored in an ONNX or TorchScript file.

    Raises:
        ModelError: the file holds no Vocalis metadata.
    """
    text = str(path)
    if text.endswith(".onnx"):
        import onnx

        proto = onnx.load(text, load_external_data=False)
        for entry in proto.metadata_props:
            if entry.key == "vocalis":
                return json.loads(entry.value)
    else:
        extra = {"vocalis.json": ""}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.load(text, _extra_files=extra)
        if extra["vocalis.json"]:
            return json.loads(extra["vocalis.json"])
    raise ModelError(f"{path}: no Vocalis metadata; was it written by `vocalis export`?")
