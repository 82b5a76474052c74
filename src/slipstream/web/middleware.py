"""The ASGI layer around every UI request: security headers on each response, a Server-Timing
header saying how long the server took (what the page timings are measured by), and, for a
bug, a 500 page instead of a bare error (the traceback goes to the log), or a 503 page for a
database that cannot be reached."""

from __future__ import annotations

import logging
import time

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slipstream.errors import DatabaseUnavailable
from slipstream.web.errors import PageError, error_page, unavailable_page

log = logging.getLogger(__name__)

# Scripts, styles and everything else come from this server only: nothing is fetched from
# anywhere else, and injected inline script cannot run.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self';"
    " frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class PageMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                elapsed = (time.perf_counter() - started) * 1000
                headers.append("Server-Timing", f"app;dur={elapsed:.1f}")
            await send(message)

        try:
            await self._app(scope, receive, send_with_headers)
        except Exception as exc:
            if response_started:
                log.error("%s %s failed", scope.get("method"), scope.get("path"), exc_info=exc)
                raise
            request = Request(scope)
            if isinstance(exc, DatabaseUnavailable):
                page = unavailable_page(request, exc)
            else:
                log.error("%s %s failed", scope.get("method"), scope.get("path"), exc_info=exc)
                page = error_page(request, PageError(500, detail="The server log has details."))
            await page(scope, receive, send_with_headers)
