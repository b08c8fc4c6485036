"""The web service: a FastAPI app that classifies uploaded or recorded audio.

Routes:

- ``POST /predict``: multipart upload in the field ``file``; replies
  ``{"label", "confidence", "probabilities": {class: p}, "duration_s", "filename"}``.
  User errors are 4xx with ``{"detail": "<one line>"}``: 400 undecodable, empty
  or too short audio; 413 a file larger than ``max_upload_mb`` or longer than
  ``max_duration_s``; 422 no ``file`` field. A user's input never causes a 500.
- ``GET /health``: model name, classes, features, sample rate, Vocalis version.
- ``GET /``: a single self-contained page (no CDN) to upload a file or record a
  clip in the browser (encoded to 16-bit WAV in JavaScript) and see the
  probabilities as a bar chart.

Run it with ``vocalis serve --checkpoint runs/x`` (uvicorn).
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoint
# annotations (UploadFile, imported inside create_app) at runtime.
import logging
import os
import threading
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


def create_app(
    checkpoint: str | os.PathLike | None = None,
    max_upload_mb: float = 10,
    max_duration_s: float = 60,
    predictor: Any = None,
):
    """Build the FastAPI app.

    Args:
        checkpoint: model checkpoint; None = the bundled model.
        max_upload_mb: largest accepted upload in MiB (413 above).
        max_duration_s: longest accepted recording in seconds (413 above).
        predictor: an already loaded :class:`~vocalis.inference.Predictor`
            (``checkpoint`` is then ignored).

    Returns:
        A ``fastapi.FastAPI`` instance.

    Raises:
        ModelError: the checkpoint cannot be loaded (raised now, not per request).
    """
    from fastapi import FastAPI, File, HTTPException, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    from vocalis import __version__
    from vocalis.inference.predictor import Predictor

    predictor = predictor or Predictor.from_checkpoint(checkpoint)
    limit_bytes = int(max_upload_mb * 1024 * 1024)
    lock = threading.Lock()
    app = FastAPI(
        title="Vocalis",
        version=__version__,
        description=f"{predictor.pipeline.model_name} speech classifier: "
        + ", ".join(predictor.classes),
    )
    app.state.predictor = predictor

    @app.middleware("http")
    async def refuse_huge_bodies(request, call_next):
        # Refuse before reading the body when the client announces its size.
        size = request.headers.get("content-length", "")
        envelope = 64 * 1024  # room for the multipart headers around the file
        too_big = size.isdigit() and int(size) > limit_bytes + envelope
        if request.url.path == "/predict" and too_big:
            return JSONResponse(
                {"detail": _too_large("upload", int(size), max_upload_mb)}, status_code=413
            )
        return await call_next(request)

    page = {name: static_text(name) for name in STATIC_FILES}

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page["index.html"])

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(page[name], media_type=STATIC_FILES[name])

    @app.get("/health")
    def health() -> dict[str, Any]:
        info = predictor.info()
        info.update(status="ok", max_upload_mb=max_upload_mb, max_duration_s=max_duration_s)
        return info

    @app.post("/predict")
    def predict(file: UploadFile = File(...)) -> JSONResponse:  # noqa: B008
        name = os.path.basename(file.filename or "upload")
        declared = file.size
        if declared is not None and declared > limit_bytes:
            raise HTTPException(413, _too_large(name, declared, max_upload_mb))
        data = file.file.read(limit_bytes + 1)
        if len(data) > limit_bytes:
            raise HTTPException(413, _too_large(name, len(data), max_upload_mb))
        try:
            from vocalis.audio.io import decode_bytes

            samples, sr = decode_bytes(data, name)
            seconds = samples.shape[0] / sr
            if seconds > max_duration_s:
                raise HTTPException(
                    413,
                    f"{name}: {seconds:.1f} s of audio, longer than the limit of "
                    f"{max_duration_s:g} s; trim it or use `vocalis predict --segments`",
                )
            with lock:
                pred = predictor.predict_waveform(samples, sr, name)
        except HTTPException:
            raise
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
                "probabilities": pred.probs,
                "duration_s": pred.duration_s,
                "model": predictor.pipeline.model_name,
            }
        )

    return app


def _too_large(name: str, size: int, limit_mb: float) -> str:
    return (
        f"{name}: upload is {size / 1024 / 1024:.1f} MiB, larger than the limit of "
        f"{limit_mb:g} MiB; send a shorter clip or compress it (FLAC)"
    )


def serve(
    checkpoint: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_upload_mb: float = 10,
    max_duration_s: float = 60,
    log_level: str = "info",
) -> None:
    """Run the service with uvicorn until interrupted."""
    import uvicorn

    app = create_app(checkpoint, max_upload_mb=max_upload_mb, max_duration_s=max_duration_s)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


__all__ = ["create_app", "serve"]
