"""How the UI answers what goes wrong: an error page (or, to htmx, a fragment for the page's
message area) with a status and words a person can act on; a visitor who is not signed in is
sent to the sign-in page. The one table from Slipstream's errors to statuses for pages."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from slipstream.errors import (
    ConflictError,
    DatabaseUnavailable,
    InvalidInputError,
    InvalidStateTransition,
    NotFoundError,
    SlipstreamError,
)
from slipstream.web.templates import Templates

log = logging.getLogger(__name__)

SIGN_IN_PATH = "/sign-in"

_TITLES = {
    400: "Bad request",
    401: "Sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    429: "Too many sign-in attempts",
    500: "Something went wrong",
    503: "The database is unreachable",
}

# First match wins, so subclasses come before their bases.
_STATUS: list[tuple[type[SlipstreamError], int]] = [
    (DatabaseUnavailable, 503),
    (InvalidInputError, 400),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidStateTransition, 409),  # as the API answers it
    (SlipstreamError, 500),
]


class PageError(Exception):
    """A refusal to show as an error page: its status, a title and what to do about it."""

    def __init__(
        self,
        status: int,
        title: str | None = None,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title or "")
        self.status = status
        self.title = title or _TITLES.get(status, "Error")
        self.detail = detail
        self.headers = dict(headers or {})


class SignInRequired(Exception):
    """The page needs a signed-in visitor and this request has no live session."""


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def error_page(request: Request, error: PageError) -> Response:
    """The error as a whole page, or as a fragment for an htmx request's message area."""
    templates: Templates = request.app.state.web.templates
    name = "_flash.html" if is_htmx(request) else "error.html"
    return templates.render(
        request,
        name,
        {"error": error, "level": "error"},
        status=error.status,
        headers=error.headers,
    )


def unavailable_page(request: Request, error: DatabaseUnavailable) -> Response:
    """503 for a metadata database that cannot be reached: an outage to wait out, not a bug
    (one log line, no traceback; where the database is stays in the log)."""
    log.warning("%s %s: 503, %s", request.method, request.url.path, error)
    detail = (
        "The metadata database cannot be reached just now, so this page cannot be shown."
        " Try again in a few seconds."
    )
    headers = {"Retry-After": str(error.retry_after)}
    return error_page(request, PageError(503, detail=detail, headers=headers))


def sign_in_redirect(request: Request) -> Response:
    """To the sign-in page, coming back here afterwards (to the page, for an htmx request)."""
    url = urlsplit(request.headers.get("HX-Current-URL", "")) if is_htmx(request) else request.url
    back = (url.path or "/") + (f"?{url.query}" if url.query else "")
    target = f"{SIGN_IN_PATH}?next={quote(back, safe='/')}"
    if is_htmx(request):
        # htmx follows this header with a whole page load.
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def install_error_pages(app: FastAPI) -> None:
    async def on_page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return error_page(request, exc)

    async def on_sign_in_required(request: Request, exc: Exception) -> Response:
        return sign_in_redirect(request)

    async def on_slipstream_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SlipstreamError)
        if isinstance(exc, DatabaseUnavailable):
            return unavailable_page(request, exc)
        status = next(code for kind, code in _STATUS if isinstance(exc, kind))
        if status >= 500:
            log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
            return error_page(request, PageError(500, detail="The server log has details."))
        return error_page(request, PageError(status, detail=str(exc)))

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else error["msg"])
        return error_page(request, PageError(400, detail="; ".join(problems) or None))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = None if exc.status_code == 404 else str(exc.detail)
        if exc.status_code == 404:
            detail = f"There is no page at {request.url.path}."
        return error_page(request, PageError(exc.status_code, detail=detail, headers=exc.headers))

    app.add_exception_handler(PageError, on_page_error)
    app.add_exception_handler(SignInRequired, on_sign_in_required)
    app.add_exception_handler(SlipstreamError, on_slipstream_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
