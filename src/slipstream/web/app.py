"""The web UI's app factory, and how it is mounted beside the REST API on one port.

The UI is a FastAPI app of its own (its error pages, middleware and state apart from the
API's), mounted at "/" after the API's routes. It answers every path the API does not own:
paths under /api/ and /auth/ stay the API's, so an unknown API URL still gets the API's JSON
404, never an HTML page. Pages come from `pages.PAGES`, one router per module.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Match, Mount
from starlette.types import Scope

from slipstream.auth.throttle import LoginThrottle
from slipstream.services.sign_in_gate import SignInGate
from slipstream.web import pages
from slipstream.web.assets import STATIC_FOLDER, STATIC_PREFIX, Assets, CachedStaticFiles
from slipstream.web.csrf import CsrfSigner, csrf_guard
from slipstream.web.deps import WebParts, WebServices
from slipstream.web.errors import install_error_pages
from slipstream.web.graph_cache import GraphCache
from slipstream.web.live import LiveHub
from slipstream.web.middleware import PageMiddleware
from slipstream.web.templates import Templates

HOME_PATH = pages.dags.PATH
# Path prefixes the API owns; the UI never answers under them.
API_PREFIXES = ("/api/", "/auth/")


def create_web_app(
    services: WebServices, *, throttle: LoginThrottle | None, secret_key: bytes
) -> FastAPI:
    """The UI app; `throttle` is the API's failed-login count (shared, so a lock holds for
    both), `secret_key` signs the CSRF tokens."""
    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # No state-changing request reaches a page without the right CSRF token.
        dependencies=[Depends(csrf_guard)],
    )
    modules = pages.PAGES
    templates = Templates(Assets(), [m.NAV for m in modules if m.NAV is not None])
    app.state.web = WebParts(
        services=services,
        gate=SignInGate(services.sign_ins.authenticate, throttle),
        csrf=CsrfSigner(secret_key),
        templates=templates,
        graphs=GraphCache(),
        live=LiveHub(services.changes, services.web_sessions, services.clock),
    )
    install_error_pages(app)

    async def home() -> RedirectResponse:
        return RedirectResponse(HOME_PATH, status_code=307)

    app.add_api_route("/", home, methods=["GET"], include_in_schema=False)
    for module in modules:
        app.include_router(module.router())
    app.mount(STATIC_PREFIX, CachedStaticFiles(directory=STATIC_FOLDER), name="static")
    # Pages and static files go compressed to browsers that accept it (all do): the first
    # load stays far under its budget. Level 6, not Starlette's 9: a grid of 2,500 cells
    # (500 KB of HTML) compresses in a third of the time to 20 KB instead of 16.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    app.add_middleware(PageMiddleware)
    return app


def stop_streams(web: FastAPI) -> None:
    """The server is stopping: end the live streams of every open tab now (a stream never
    ends by itself, and uvicorn waits for open responses before it stops)."""
    parts: WebParts = web.state.web
    parts.live.close()


class _UiMount(Mount):
    """A mount at "/" that leaves the API's path prefixes alone."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = str(scope.get("path", ""))
        if scope["type"] == "http" and path.startswith(API_PREFIXES):
            return Match.NONE, {}
        return super().matches(scope)


def mount_web(api: FastAPI, web: FastAPI) -> None:
    """Serve `web` from `api`'s server: every path the API's routes do not match."""
    api.router.routes.append(_UiMount("/", app=web, name="web"))
