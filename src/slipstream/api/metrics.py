"""The API server's metrics: request latency by route template and status class, recorded by
an ASGI middleware, and `GET /metrics` serving them with the collectors the composition root
adds (the database's figures)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slipstream.api.deps import security_of

# Most answers take a few milliseconds; `?wait=` and live streams hold for up to minutes.
_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
# A request no route matched: its raw path would make a series per URL anyone cares to send.
UNMATCHED = "unmatched"


class ApiMetrics:
    """One per app. With several server processes (`--workers N`), `multiprocess_dir` is the
    folder prometheus_client's multiprocess mode shares (PROMETHEUS_MULTIPROC_DIR, set for the
    workers by the server), so any process answers for all of them."""

    def __init__(
        self, *, collectors: Sequence[Collector] = (), multiprocess_dir: str | None = None
    ) -> None:
        own = CollectorRegistry()
        self.latency = Histogram(
            "slipstream_api_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status class.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=own,
        )
        if multiprocess_dir is None:
            ProcessCollector(registry=own)
            self.registry = own
        else:
            # Each process writes its figures to files there; the exposed registry reads all.
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        for collector in collectors:
            self.registry.register(collector)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/api/v1/dags/{dag_id}`) with the prefixes of the
    routers and mounts it sits under. A route knows its own template but, in some FastAPI
    versions, not the prefixes it was included under: those are the part of the path before
    the route's own pattern matches, taken as short as possible, so that a prefix never holds
    a parameter's value (a label per value would make a series per URL)."""
    route = scope.get("route")
    pattern = getattr(route, "path_regex", None)
    template = getattr(route, "path_format", None)
    if pattern is None or not isinstance(template, str):
        return UNMATCHED
    path = str(scope.get("path", ""))
    for start, char in enumerate(path):
        if char == "/" and pattern.match(path[start:]):
            return path[:start] + template
    return template


class RequestTimer:
    """ASGI middleware: observes each HTTP request's latency once its response has ended (or
    failed: a 5xx)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, timed_send)
        finally:
            self._metrics.latency.labels(
                str(scope.get("method", "")), route_template(scope), f"{status // 100}xx"
            ).observe(time.perf_counter() - began)


async def metrics(request: Request) -> Response:
    """Prometheus's text format (or OpenMetrics when asked). Any signed-in user, unless
    SLIPSTREAM_METRICS_PUBLIC serves it without credentials."""
    found: ApiMetrics = request.app.state.metrics
    if not request.app.state.metrics_public:
        security = await security_of(request)
        await security.principal_async(request)
    # The database's figures are read by the collector: off the event loop.
    body, content_type = await run_in_threadpool(found.render, request.headers.get("accept"))
    return Response(body, media_type=content_type)


def router() -> APIRouter:
    api = APIRouter()
    api.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    return api
