r"""Running the service: uvicorn in one process or N workers, or gunicorn.

``vocalis serve`` binds its socket first (a bad or busy port is a one-line
error before the model loads), then runs uvicorn with
:class:`TimedH11Protocol` (closes connections that do not send a request head
in time). With ``--workers N`` uvicorn forks N processes sharing the socket,
each loading the model through :func:`vocalis.inference.service.app_from_env`;
each worker enforces the :class:`~vocalis.inference.guards.ServiceLimits` on
its own (memory bound = N x the per-worker formula).

Production behind gunicorn (the same limits, read from the environment)::

    export VOCALIS_SERVE_CHECKPOINT=runs/x VOCALIS_SERVE_MAX_CONCURRENCY=1
    gunicorn -w 4 -k vocalis.inference.server.GunicornWorker -b 0.0.0.0:8000 \
        --graceful-timeout 20 "vocalis.inference.service:app_from_env()"
"""

from __future__ import annotations

import errno
import inspect
import os
import socket
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

from vocalis.errors import ConfigError
from vocalis.inference.guards import ServiceLimits

#: Environment variable holding the request-head deadline of :class:`TimedH11Protocol`.
HEADER_TIMEOUT_ENV = "VOCALIS_SERVE_HEADER_TIMEOUT_S"


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for the request head.

    A connection is closed when no complete request head arrived within
    ``VOCALIS_SERVE_HEADER_TIMEOUT_S`` seconds (default 10) after it opened or
    after its previous response, so idle, half-open and slowloris connections
    do not pile up. The body has its own deadline in
    :class:`~vocalis.inference.guards.AdmissionMiddleware`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = float(os.environ.get(HEADER_TIMEOUT_ENV, "10"))
        self._head_timer: Any = None

    def _arm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(
            self.header_timeout_s, self._head_timeout, self.cycle
        )

    def _head_timeout(self, cycle_at_arm: Any) -> None:
        idle = self.cycle is cycle_at_arm and (self.cycle is None or self.cycle.response_complete)
        if idle and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: Any) -> None:
        """Start the request-head deadline of a new connection."""
        super().connection_made(transport)
        self._arm_head_timer()

    def on_response_complete(self) -> None:
        """Restart the deadline for the next request on a kept-alive connection."""
        super().on_response_complete()
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline of a closed connection."""
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` now, so a busy or bad port fails before loading.

    Raises:
        ConfigError: the port is out of range, in use, or not allowed.
    """
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: not a TCP port; expected 1..65535 (0 = any free one)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ConfigError(f"--host {host}: cannot resolve it ({err.strerror})") from None
    family = infos[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use; stop the other server or pick "
                "another with --port"
            ) from None
        raise ConfigError(f"cannot listen on {host}:{port} ({err.strerror})") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    checkpoint: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: ServiceLimits | None = None,
    workers: int = 1,
    log_level: str = "info",
    ready: Any = None,
) -> None:
    """Run the service until interrupted (SIGINT/SIGTERM: graceful shutdown).

    Args:
        checkpoint: model checkpoint; None = the bundled model.
        host: interface to listen on.
        port: TCP port (0: any free port).
        limits: the service bounds (default :class:`ServiceLimits` defaults).
        workers: uvicorn worker processes (each loads the model).
        log_level: uvicorn's log level.
        ready: called with the bound ``(host, port)`` before the model loads.

    Raises:
        ConfigError: bad or busy port, bad host (before the model loads).
        ModelError: the checkpoint cannot be loaded.
    """
    import uvicorn

    from vocalis.inference.service import CHECKPOINT_ENV, create_app

    limits = limits or ServiceLimits()
    if workers < 1:
        raise ConfigError(f"--workers {workers}: expected 1 or more worker processes")
    sock = bind_socket(host, port)
    if ready is not None:
        ready(sock.getsockname()[:2])
    os.environ.update(limits.to_env())
    os.environ[HEADER_TIMEOUT_ENV] = str(limits.header_timeout_s)
    common = dict(
        http=TimedH11Protocol,
        log_level=log_level,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        limit_concurrency=(limits.max_concurrency + limits.max_queue) * 8 + 64,
    )
    if workers == 1:
        app = create_app(checkpoint, limits=limits)
        server = uvicorn.Server(uvicorn.Config(app, **common))
        server.run(sockets=[sock])
        return
    os.environ[CHECKPOINT_ENV] = "" if checkpoint is None else str(checkpoint)
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "vocalis.inference.service:app_from_env", factory=True, workers=workers, **common
    )
    extra = {}  # uvicorn < 0.30 takes the worker's target, later ones build it
    if "target" in inspect.signature(Multiprocess).parameters:
        extra["target"] = uvicorn.Server(config).run
    Multiprocess(config, sockets=[sock], **extra).run()


try:  # gunicorn is optional: the worker class exists only where it is installed
    from uvicorn.workers import UvicornWorker as _UvicornWorker

    class GunicornWorker(_UvicornWorker):
        """gunicorn worker class: uvicorn with :class:`TimedH11Protocol`."""

        CONFIG_KWARGS: ClassVar[dict[str, str]] = {
            "loop": "auto",
            "http": "vocalis.inference.server:TimedH11Protocol",
        }

except ImportError:  # pragma: no cover - depends on gunicorn
    pass


__all__ = ["TimedH11Protocol", "bind_socket", "serve"]
