"""Serving one process's registry over HTTP (`--metrics-port`), on a thread of its own so
that a scrape never waits on the scheduler's loop, nor the loop on a scrape."""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from slipstream.errors import ConfigError

log = logging.getLogger(__name__)


class MetricsServer:
    """`start` binds (port 0: any free port) and serves `/metrics`; `stop` closes it."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._registry = registry
        self._host = host
        self._port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._port if self._server is None else int(self._server.server_port)

    def start(self) -> None:
        try:
            self._server, self._thread = start_http_server(
                self._port, addr=self._host, registry=self._registry
            )
        except OSError as exc:
            raise ConfigError(
                "--metrics-port",
                f"cannot serve metrics on {self._host}:{self._port}: {exc.strerror or exc}",
            ) from None
        log.info("metrics at http://%s:%d/metrics", self._host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
