"""The one table from Slipstream's errors to HTTP statuses, and the handlers that apply it.

Errors under /api/experimental answer as Airflow 1.10 did, `{"error": "..."}`; elsewhere as
Airflow 2's problem JSON. Nothing, not even a bug, answers with an HTML page. A metadata
database that cannot be reached answers 503 with Retry-After, so clients wait and try again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException

from slipstream.errors import (
    ConfigError,
    ConflictError,
    DagNotFound,
    DatabaseUnavailable,
    InvalidInputError,
    InvalidStateTransition,
    NotFoundError,
    RunAlreadyExists,
    SlipstreamError,
)

log = logging.getLogger(__name__)

EXPERIMENTAL_PREFIX = "/api/experimental"

# First match wins, so subclasses come before their bases.
_STATUS: list[tuple[type[SlipstreamError], int]] = [
    (DatabaseUnavailable, 503),
    (InvalidInputError, 400),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidStateTransition, 409),
    (ConfigError, 500),
    (SlipstreamError, 500),
]

# Airflow 1.10 answered a duplicate run id with 400, and its clients may depend on that.
_EXPERIMENTAL_STATUS: list[tuple[type[SlipstreamError], int]] = [(RunAlreadyExists, 400)]


def status_for(error: SlipstreamError, *, experimental: bool = False) -> int:
    table = [*_EXPERIMENTAL_STATUS, *_STATUS] if experimental else _STATUS
    for kind, status in table:
        if isinstance(error, kind):
            return status
    return 500


# What a caller is told of an unreachable database: where it is (host, user, database name)
# is for the server's log, not for every client.
UNAVAILABLE_MESSAGE = "The metadata database cannot be reached; try again in a few seconds."


def experimental_message(error: SlipstreamError) -> str:
    """1.10's wording where its clients may match on it; our own message elsewhere."""
    if isinstance(error, DagNotFound):
        return f"Dag id {error.dag_id} not found in DagModel"
    if isinstance(error, RunAlreadyExists):
        return f"Run id {error.run_id} already exists for dag id {error.dag_id}"
    return str(error)


class ApiError(Exception):
    """A refusal made at the HTTP edge itself (authentication, a malformed request)."""

    def __init__(
        self,
        status: int,
        message: str | None,
        *,
        plain: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message or "")
        self.status = status
        self.message = message
        self.plain = plain  # 1.10's auth answers are a bare word, not JSON
        self.headers = dict(headers or {})


def _is_experimental(request: Request) -> bool:
    return request.url.path.startswith(EXPERIMENTAL_PREFIX)


# Airflow 2's problem `type` is a link to its docs' section for the error kind; clients that
# branch on the kind match the part after `Errors/`.
_PROBLEM_TYPE = "https://airflow.apache.org/docs/apache-airflow/2.10.5/stable-rest-api-ref.html"
_KINDS = {
    400: "BadRequest",
    401: "Unauthenticated",
    403: "PermissionDenied",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "AlreadyExists",
}


def problem(status: int, detail: str | None) -> dict[str, object]:
    """An RFC 7807 body in Airflow 2's shape: `detail` is always present, possibly null."""
    kind = _KINDS.get(status, "Unknown")
    return {
        "detail": detail,
        "status": status,
        "title": _title(status),
        "type": f"{_PROBLEM_TYPE}#section/Errors/{kind}",
    }


def error_response(
    request: Request, status: int, message: str | None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    if _is_experimental(request):
        return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))
    return JSONResponse(
        problem(status, message),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/problem+json",
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install_error_handlers(app: FastAPI) -> None:
    async def on_slipstream_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SlipstreamError)
        if isinstance(exc, DatabaseUnavailable):
            # An outage, not a bug: one line per request, no traceback.
            log.warning("%s %s: 503, %s", request.method, request.url.path, exc)
            retry = {"Retry-After": str(exc.retry_after)}
            return error_response(request, 503, UNAVAILABLE_MESSAGE, retry)
        experimental = _is_experimental(request)
        status = status_for(exc, experimental=experimental)
        if status >= 500:
            log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        message = experimental_message(exc) if experimental else str(exc)
        return error_response(request, status, message)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if exc.plain:
            return PlainTextResponse(exc.message or "", status_code=exc.status, headers=exc.headers)
        return error_response(request, exc.status, exc.message, exc.headers)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else error["msg"])
        return error_response(request, 400, "; ".join(problems) or "invalid request")

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(request, exc.status_code, str(exc.detail), exc.headers)

    async def on_bug(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(request, 500, "Internal server error; the server log has details")

    app.add_exception_handler(SlipstreamError, on_slipstream_error)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_bug)
