"""The app factory: one FastAPI app per call, wired to the services it is given."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client.registry import Collector

from slipstream import __version__
from slipstream.api.body_limit import BodyLimit
from slipstream.api.deps import ApiServices, attach
from slipstream.api.errors import EXPERIMENTAL_PREFIX, install_error_handlers
from slipstream.api.metrics import ApiMetrics, RequestTimer
from slipstream.api.metrics import router as metrics_router
from slipstream.api.routes import auth_token, experimental, experimental_pools, v1
from slipstream.api.security import Security
from slipstream.auth.throttle import LoginThrottle


def create_app(
    services: ApiServices,
    *,
    on_shutdown: Callable[[], None] | None = None,
    throttle: LoginThrottle | None = None,
    metrics_collectors: Sequence[Collector] = (),
    metrics_dir: str | None = None,
) -> FastAPI:
    """Build the API app; `on_shutdown` runs when the server stops (to close services).
    `throttle` counts failed password sign-ins; pass the one the web UI in the same process
    uses, so that failures in either count for both (a new one otherwise).
    `metrics_collectors` join the request latencies on /metrics; `metrics_dir` is the folder
    several server processes share their metrics through (see ApiMetrics)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if on_shutdown is not None:
                on_shutdown()

    app = FastAPI(
        title="Slipstream",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/v1/ui",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    install_error_handlers(app)
    security = Security(
        services.sign_ins,
        tokens=services.tokens,
        throttle=throttle if throttle is not None else LoginThrottle(clock=services.clock),
        role_pairs=services.roles.role_pairs,
        peek_role_pairs=services.roles.peek_role_pairs,
    )
    attach(app, services, security)
    metrics = ApiMetrics(collectors=metrics_collectors, multiprocess_dir=metrics_dir)
    app.state.metrics = metrics
    app.state.metrics_public = services.settings.metrics_public
    app.include_router(v1.router(services.settings))
    app.include_router(experimental.router())
    app.include_router(experimental_pools.router())
    app.include_router(auth_token.router())
    app.include_router(metrics_router())
    app.add_middleware(
        BodyLimit,
        max_bytes=services.settings.api_max_body_bytes,
        experimental_prefix=EXPERIMENTAL_PREFIX,
    )
    # Outermost of ours: a body refused with 413 is timed too.
    app.add_middleware(RequestTimer, metrics=metrics)
    return app
