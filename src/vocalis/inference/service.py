"""The web service: a FastAPI app that classifies uploaded or recorded audio.

Routes:

- ``POST /predict``: multipart upload in the field ``file``; replies
  ``{"label", "confidence", "answer", "speech", "speech_detected", "probabilities":
  {class: p}, "duration_s", "segments", "filename"}``: ``speech`` is the share of
  the clip that VAD marks as speech; without speech ``label`` and ``confidence``
  are null and ``answer`` is "no speech detected"; ``segments`` is the emotion
  timeline (3 s windows every 1 s) of a clip longer than 3 s, else ``[]``.
  User errors are 4xx with ``{"detail": "<one line>"}``: 400 undecodable, empty
  or too short audio; 408 a body slower than ``body_timeout_s``; 413 a file
  larger than ``max_upload_mb`` (refused while it streams) or longer than
  ``max_duration_s`` (read from its header, before decoding); 422 no ``file``
  field; 503 with ``Retry-After`` when the queue is full. A user's input never
  causes a 500. The bounds are one :class:`~vocalis.inference.guards.ServiceLimits`.
- ``GET /health``: model name, classes, features, sample rate, Vocalis version,
  ``limits`` (the model card's limits in one line, or null) and ``model_card``.
- ``GET /model-card``: the bundled model's card (Markdown, as text/plain); 404 for
  other models.
- ``GET /``: a single self-contained page (no CDN) to upload a file or record a
  clip in the browser (encoded to 16-bit WAV in JavaScript) and see the
  probabilities as a bar chart.

Run it with ``vocalis serve --checkpoint runs/x [--workers N]`` (uvicorn, see
:mod:`vocalis.inference.server`), or under gunicorn with
``vocalis.inference.server.GunicornWorker`` and the factory :func:`app_from_env`.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoint
# annotations (UploadFile, imported inside create_app) at runtime.
import logging
import os
import threading
from collections.abc import Mapping
from importlib import resources
from typing import Any

from vocalis.errors import VocalisError

logger = logging.getLogger(__name__)

#: Files of the web page, served from ``vocalis/inference/static``.
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


def static_text(name: str) -> str:
    """Contents of one of the page's files."""
    return (resources.files("vocalis.inference") / "static" / name).read_text(encoding="utf-8")


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"detail": {"type": "string"}},
                    "required": ["detail"],
                }
            }
        },
    }


#: The error answers of ``POST /predict``, as listed in the OpenAPI schema.
PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("undecodable, empty, too short or non-finite audio, or a bad sample rate"),
    408: _error("the request body did not arrive within the body timeout"),
    413: _error("the upload is larger than max_upload_mb or longer than max_duration_s"),
    503: {
        **_error("the request queue is full; retry after Retry-After seconds"),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    },
}


def create_app(
    checkpoint: str | os.PathLike | None = None,
    max_upload_mb: float | None = None,
    max_duration_s: float | None = None,
    predictor: Any = None,
    limits: Any = None,
):
    """Build the FastAPI app.

    Args:
        checkpoint: model checkpoint; None = the bundled model.
        max_upload_mb: largest accepted upload in MiB (overrides ``limits``).
        max_duration_s: longest accepted recording in seconds (overrides ``limits``).
        predictor: an already loaded :class:`~vocalis.inference.Predictor`
            (``checkpoint`` is then ignored).
        limits: a :class:`~vocalis.inference.guards.ServiceLimits` (default: its defaults).

    Returns:
        A ``fastapi.FastAPI`` instance.

    Raises:
        ModelError: the checkpoint cannot be loaded (raised now, not per request).
    """
    from dataclasses import replace

    from fastapi import FastAPI, File, HTTPException, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    from vocalis import __version__
    from vocalis.audio.io import decode_bytes
    from vocalis.errors import AudioTooLongError
    from vocalis.inference.card import limits_line, model_card
    from vocalis.inference.guards import AdmissionMiddleware, ServiceLimits, too_large
    from vocalis.inference.predictor import Predictor
    from vocalis.inference.segments import timeline

    limits = limits or ServiceLimits()
    if max_upload_mb is not None:
        limits = replace(limits, max_upload_mb=max_upload_mb)
    if max_duration_s is not None:
        limits = replace(limits, max_duration_s=max_duration_s)
    predictor = predictor or Predictor.from_checkpoint(checkpoint)
    card = model_card(predictor.pipeline.source)
    limit_bytes = limits.upload_bytes
    lock = threading.Lock()
    app = FastAPI(
        title="Vocalis",
        version=__version__,
        description=f"{predictor.pipeline.model_name} speech classifier: "
        + ", ".join(predictor.classes),
    )
    app.state.predictor = predictor
    app.state.limits = limits
    app.add_middleware(AdmissionMiddleware, limits=limits, paths=("/predict",))
    page = {name: static_text(name) for name in STATIC_FILES}

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page["index.html"])

    @app.get("/static/{name}", responses={404: _error("no such static file")})
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(page[name], media_type=STATIC_FILES[name])

    @app.get("/health")
    def health() -> dict[str, Any]:
        info = predictor.info()
        info.update(
            status="ok",
            max_upload_mb=limits.max_upload_mb,
            max_duration_s=limits.max_duration_s,
            limits=limits_line(card) if card else None,
            model_card="/model-card" if card else None,
        )
        return info

    @app.get("/model-card")
    def model_card_page() -> Response:
        if card is None:
            raise HTTPException(404, "this model has no model card (only the bundled model has)")
        # text/plain: browsers show it in the tab instead of downloading it
        return Response(card, media_type="text/plain; charset=utf-8")

    @app.post("/predict", responses=PREDICT_ERRORS)
    def predict(file: UploadFile = File(...)) -> JSONResponse:  # noqa: B008
        name = os.path.basename(file.filename or "upload")
        declared = file.size
        if declared is not None and declared > limit_bytes:
            raise HTTPException(413, too_large(name, declared, limits.max_upload_mb))
        data = file.file.read(limit_bytes + 1)
        if len(data) > limit_bytes:
            raise HTTPException(413, too_large(name, len(data), limits.max_upload_mb))
        try:
            samples, sr = decode_bytes(
                data,
                name,
                max_seconds=limits.max_duration_s,
                max_sample_rate=limits.max_sample_rate,
            )
            del data
            with lock:
                pred = predictor.predict_waveform(samples, sr, name)
                segments = timeline(predictor, samples, sr)
        except AudioTooLongError as err:
            raise HTTPException(413, str(err)) from None
        except VocalisError as err:
            raise HTTPException(400, str(err)) from None
        except Exception as err:  # never a 500 for what a user uploads
            logger.exception("prediction failed for %s", name)
            raise HTTPException(
                400, f"{name}: cannot process this audio ({type(err).__name__}); send WAV or FLAC"
            ) from None
        return JSONResponse(
            {
                "filename": name,
                "label": pred.label,
                "confidence": pred.confidence,
                "answer": pred.answer,
                "speech": pred.speech,
                "speech_detected": pred.speech_detected,
                "probabilities": pred.probs,
                "duration_s": pred.duration_s,
                "segments": segments,
                "model": predictor.pipeline.model_name,
                **({"heads": pred.heads} if pred.heads is not None else {}),
            }
        )

    return app


#: Environment variable naming the checkpoint of :func:`app_from_env`.
CHECKPOINT_ENV = "VOCALIS_SERVE_CHECKPOINT"


def app_from_env(env: Mapping[str, str] | None = None):
    r"""The app of a worker process, configured from the environment.

    ``vocalis serve --workers N`` and gunicorn start one per worker:
    ``VOCALIS_SERVE_CHECKPOINT`` (empty: the bundled model) and the
    ``VOCALIS_SERVE_<LIMIT>`` variables of
    :meth:`~vocalis.inference.guards.ServiceLimits.to_env`.

    Example::

        VOCALIS_SERVE_CHECKPOINT=runs/x gunicorn -w 4 -k vocalis.inference.server.GunicornWorker \
            "vocalis.inference.service:app_from_env()"
    """
    from vocalis.inference.guards import ServiceLimits

    env = os.environ if env is None else env
    checkpoint = env.get(CHECKPOINT_ENV) or None
    return create_app(checkpoint, limits=ServiceLimits.from_env(dict(env)))


__all__ = ["PREDICT_ERRORS", "app_from_env", "create_app"]
