"""What keeps the service up under hostile or heavy load: limits, admission, timeouts.

The service's memory and connection use are bounded by one frozen
:class:`ServiceLimits`:

- **admission** (:class:`AdmissionMiddleware`): at most ``max_concurrency``
  predictions run at once and ``max_queue`` wait; beyond that, or after
  ``queue_timeout_s`` in the queue, a request gets ``503`` with a
  ``Retry-After`` header before its body is read;
- **body** (same middleware): the request body is counted while it streams
  (chunked uploads included) and refused with ``413`` as soon as it passes
  ``max_upload_mb`` plus the multipart envelope, so it is never held or
  spooled in full; a body that does not arrive within ``body_timeout_s`` gets
  ``408``;
- **headers** (:class:`vocalis.inference.server.TimedH11Protocol`, the
  uvicorn protocol ``vocalis serve`` runs): a connection that has not sent a complete request head
  within ``header_timeout_s`` (idle, half-open or slowloris) is closed;
- **decoding**: the duration is read from the header before decoding and
  the decode itself stops at ``max_duration_s`` (see
  :func:`vocalis.audio.io.decode_bytes`).

Memory bound, per worker process (see :meth:`ServiceLimits.memory_bound_mb`)::

    peak RSS <= model + C * (2 * U + 8 * D * R + 32 * D * 16000) + Q * 64 KiB

with C = ``max_concurrency``, Q = ``max_queue``, U = ``max_upload_mb`` in bytes
(the upload read into memory, and at most that much again in the multipart
spool), D = ``max_duration_s``, R = ``max_sample_rate`` (the decoded mono
float32 signal, twice while its blocks are joined), 16000 Hz x 32 bytes per
second for tier 0 and the features at the model's rate, and 64 KiB of socket
buffer per waiting request (uvicorn pauses reading above that). A deployment
with W workers multiplies it by W.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

from starlette.exceptions import HTTPException

from vocalis.errors import ConfigValueError

#: Bytes allowed around the file in a multipart body (boundaries, part headers).
MULTIPART_ENVELOPE = 64 * 1024


@dataclass(frozen=True)
class ServiceLimits:
    """Every bound the service enforces; ``vocalis serve`` options map onto its fields.

    Args:
        max_upload_mb: largest accepted upload in MiB (413 above).
        max_duration_s: longest accepted recording in seconds (413 above).
        max_sample_rate: highest accepted sample rate in Hz (400 above).
        max_concurrency: predictions running at once, per worker.
        max_queue: requests waiting for a slot, per worker (503 above).
        queue_timeout_s: longest wait for a slot (503 after it).
        header_timeout_s: time a connection has to send a full request head.
        body_timeout_s: time a request has to send its whole body (408 after it).
        retry_after_s: the ``Retry-After`` of a 503, in seconds.

    Example:
        >>> limits = ServiceLimits(max_upload_mb=1, max_duration_s=10)
        >>> limits.upload_bytes
        1048576
        >>> round(limits.memory_bound_mb(model_mb=100))
        122
    """

    max_upload_mb: float = 10
    max_duration_s: float = 60
    max_sample_rate: int = 192000
    max_concurrency: int = 1
    max_queue: int = 8
    queue_timeout_s: float = 30
    header_timeout_s: float = 10
    body_timeout_s: float = 30
    retry_after_s: int = 2

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = ok and math.isfinite(value) and value > 0
            if f.name == "max_queue":
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            elif f.name in ("max_concurrency", "max_sample_rate", "retry_after_s"):
                ok = ok and isinstance(value, int)
            if not ok:
                raise ConfigValueError(f.name, value, "a positive finite number (max_queue >= 0)")

    @property
    def upload_bytes(self) -> int:
        """``max_upload_mb`` in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    def request_bytes(self) -> int:
        """Upper bound of the memory one prediction in flight holds, in bytes."""
        d = self.max_duration_s
        return int(2 * self.upload_bytes + 8 * d * self.max_sample_rate + 32 * d * 16000)

    def memory_bound_mb(self, model_mb: float) -> float:
        """The formula of the module docstring, in MiB, for one worker.

        Args:
            model_mb: the worker's memory once the model is loaded (MiB).
        """
        total = self.max_concurrency * self.request_bytes() + self.max_queue * 64 * 1024
        return model_mb + total / 1024 / 1024

    def to_env(self) -> dict[str, str]:
        """The limits as ``VOCALIS_SERVE_<FIELD>`` variables (for worker processes)."""
        return {f"VOCALIS_SERVE_{k.upper()}": str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_env(cls, env: dict[str, str]) -> ServiceLimits:
        """Read the variables :meth:`to_env` writes; missing ones keep their default."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"VOCALIS_SERVE_{f.name.upper()}")
            if raw is not None:
                kind = int if f.type in ("int", int) else float
                values[f.name] = kind(raw)
        return cls(**values)


def _json_response(status: int, detail: str, headers: dict[str, str] | None = None):
    body = json.dumps({"detail": detail}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    head.append((b"connection", b"close"))
    return [
        {"type": "http.response.start", "status": status, "headers": head},
        {"type": "http.response.body", "body": body},
    ]


class BodyRefused(HTTPException):
    """The request body broke a limit while it was read (413 or 408).

    An ``HTTPException``, so that frameworks that parse the body (FastAPI's
    form reader) pass it on as the answer instead of a generic 400.
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(status_code=status, detail=detail, headers={"Connection": "close"})
        self.status = status


class AdmissionMiddleware:
    """ASGI middleware: bounded queue (503), streamed body cap (413), body timeout (408).

    Args:
        app: the ASGI app to guard.
        limits: the bounds.
        paths: request paths that are admitted through the queue (the others
            pass straight through, e.g. ``/health``).
    """

    def __init__(self, app: Any, limits: ServiceLimits, paths: tuple[str, ...]) -> None:
        self.app, self.limits, self.paths = app, limits, paths
        self.active = 0
        self.waiting = 0
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Admit, guard and forward one request."""
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        limits = self.limits
        if self._slots is None:
            self._slots = asyncio.Semaphore(limits.max_concurrency)
        size = dict(scope.get("headers") or []).get(b"content-length", b"")
        allowed = limits.upload_bytes + MULTIPART_ENVELOPE
        if size.isdigit() and int(size) > allowed:
            detail = too_large("upload", int(size), limits.max_upload_mb)
            return await _send_all(send, _json_response(413, detail))
        if self.active + self.waiting >= limits.max_concurrency + limits.max_queue:
            return await self._busy(send, "the request queue is full")
        self.waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), limits.queue_timeout_s)
        except asyncio.TimeoutError:
            return await self._busy(send, f"no slot freed within {limits.queue_timeout_s:g} s")
        finally:
            self.waiting -= 1
        self.active += 1
        try:
            await self._guarded(scope, receive, send, allowed)
        finally:
            self.active -= 1
            self._slots.release()

    async def _busy(self, send: Any, why: str) -> None:
        limits = self.limits
        detail = (
            f"server busy: {why} ({limits.max_concurrency} running, {limits.max_queue} "
            f"waiting at most); retry in {limits.retry_after_s} s"
        )
        headers = {"Retry-After": str(limits.retry_after_s)}
        await _send_all(send, _json_response(503, detail, headers))

    async def _guarded(self, scope: dict, receive: Any, send: Any, allowed: int) -> None:
        limits = self.limits
        deadline = time.monotonic() + limits.body_timeout_s
        state = {"read": 0, "done": False, "started": False}

        async def guarded_receive() -> dict:
            if state["done"]:
                return await receive()
            left = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), max(left, 0.001))
            except asyncio.TimeoutError:
                raise BodyRefused(
                    408,
                    f"the request body did not arrive within {limits.body_timeout_s:g} s; "
                    "send it faster or in one piece",
                ) from None
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > allowed:
                    detail = too_large("upload", state["read"], limits.max_upload_mb)
                    raise BodyRefused(413, detail + " (refused while streaming)")
                state["done"] = not message.get("more_body", False)
            else:
                state["done"] = True
            return message

        async def watched_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, watched_send)
        except Exception as err:
            refused = _find_refusal(err)
            if refused is None or state["started"]:
                raise
            await _send_all(send, _json_response(refused.status, refused.detail))


def _find_refusal(err: BaseException) -> BodyRefused | None:
    """The :class:`BodyRefused` behind ``err`` (frameworks wrap it in their own errors)."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, BodyRefused):
            return err
        for inner in getattr(err, "exceptions", ()):  # an exception group (3.11+)
            if isinstance(inner, BaseException):
                found = _find_refusal(inner)
                if found is not None:
                    return found
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
        seen += 1
    return None


async def _send_all(send: Any, messages: list[dict]) -> None:
    for message in messages:
        await send(message)


def too_large(name: str, size: int, limit_mb: float) -> str:
    """The one-line 413 message of an upload over ``limit_mb``."""
    return (
        f"{name}: upload is {size / 1024 / 1024:.1f} MiB, larger than the limit of "
        f"{limit_mb:g} MiB; send a shorter clip or compress it (FLAC)"
    )


__all__ = [
    "MULTIPART_ENVELOPE",
    "AdmissionMiddleware",
    "BodyRefused",
    "ServiceLimits",
    "too_large",
]
