"""Using a trained model: prediction, sliding-window segments, embeddings, export, service.

Everything starts from a checkpoint (see :mod:`vocalis.checkpoint`), which
rebuilds the training pipeline (tier 0, features, normalisation, model,
labels; :mod:`~vocalis.inference.pipeline`) with the builder that
:data:`MODEL_KINDS` registers for the checkpoint's model kind; ``--checkpoint``
(a run folder, ``RUN/model`` or a file) is resolved by :func:`resolve_checkpoint`:

- :class:`Predictor` / :func:`predict`: classify files, folders, manifests;
- :func:`predict_segments`: sliding windows over long audio, VAD-gated;
- :func:`vocalis.inference.embed.embed`: embeddings to ``.npz``;
- :func:`vocalis.inference.export.export`: TorchScript / ONNX graphs;
- :func:`create_app`: the FastAPI web service and page.

Names are imported lazily, so ``import vocalis.inference`` stays cheap.
"""

from __future__ import annotations

from vocalis.lazy import lazy_exports

_EXPORTS = {
    "Prediction": "vocalis.inference.predictor",
    "Predictor": "vocalis.inference.predictor",
    "BatchPredictions": "vocalis.inference.predictor",
    "Failure": "vocalis.inference.predictor",
    "predict": "vocalis.inference.predictor",
    "Segment": "vocalis.inference.segments",
    "predict_segments": "vocalis.inference.segments",
    "Pipeline": "vocalis.inference.pipeline",
    "load_pipeline": "vocalis.inference.pipeline",
    "bundled_checkpoint": "vocalis.inference.locate",
    "resolve_checkpoint": "vocalis.inference.locate",
    "MODEL_KINDS": "vocalis.inference.kinds",
    "Embedder": "vocalis.inference.kinds",
    "Embeddings": "vocalis.inference.embed",
    "ExportReport": "vocalis.inference.export",
    "create_app": "vocalis.inference.service",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
