"""POST /auth/token: a username and password in, a short-lived bearer token out, in the shape
Airflow 3's auth managers use (201 `{"access_token": ...}`, plus `token_type` and `expires_in`).
Public; password sign-ins here share the failed-login throttle with HTTP Basic."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from slipstream.api.deps import SecurityDep, ServicesDep
from slipstream.api.errors import ApiError
from slipstream.api.security import client_address
from slipstream.errors import InvalidInputError

PATHS = ("/auth/token", "/auth/token/cli")  # Airflow's CLI asks the second; same answer here
_FIELDS = ("username", "password")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int  # seconds


_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {
                "schema": {
                    "type": "object",
                    "required": list(_FIELDS),
                    "properties": {name: {"type": "string"} for name in _FIELDS},
                    "additionalProperties": False,
                }
            }
            for media in ("application/json", "application/x-www-form-urlencoded")
        },
    }
}


def _fields(content_type: str, raw: bytes) -> Mapping[str, object]:
    """The body as named fields: JSON, or a form (as Airflow's login takes both)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise InvalidInputError("the form body is not UTF-8", field="body") from None
        return {key: values[-1] for key, values in form.items()}
    if media not in ("", "application/json") and not media.endswith("+json"):
        raise ApiError(415, f"unsupported Content-Type {media!r}; send application/json or a form")
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}", field="body") from None
    if not isinstance(body, dict):
        raise InvalidInputError(
            'request body must be a JSON object {"username": ..., "password": ...}', field="body"
        )
    return body


def credentials(content_type: str, raw: bytes) -> tuple[str, str]:
    """The username and password of a token request; 400 naming the field that is wrong."""
    fields = _fields(content_type, raw)
    for name in fields:
        if name not in _FIELDS:
            raise InvalidInputError(f"unknown field {name!r}", field=name)
    values = []
    for name in _FIELDS:
        value = fields.get(name)
        if value is None:
            raise InvalidInputError(f"{name} is required", field=name)
        if not isinstance(value, str):
            raise InvalidInputError(f"{name} must be a string", field=name)
        if not value:
            raise InvalidInputError(f"{name} must not be empty", field=name)
        values.append(value)
    return values[0], values[1]


async def create_token(
    request: Request, services: ServicesDep, security: SecurityDep
) -> JSONResponse:
    """Sign in with a username and password; get a bearer token for the API."""
    username, password = credentials(request.headers.get("Content-Type", ""), await request.body())
    address = client_address(request)
    user = await run_in_threadpool(security.sign_in, username, password, address)
    if user is None:
        raise ApiError(401, "Invalid credentials")
    token, expires_at = await run_in_threadpool(services.tokens.issue_session, user)
    expires_in = max(0, round((expires_at - services.clock.now()).total_seconds()))
    body = TokenResponse(access_token=token, expires_in=expires_in)
    # A token is a credential: no cache along the way may keep it.
    return JSONResponse(body.model_dump(), status_code=201, headers={"Cache-Control": "no-store"})


def router() -> APIRouter:
    api = APIRouter(tags=["Authentication"])
    for path in PATHS:
        api.add_api_route(
            path,
            create_token,
            methods=["POST"],
            status_code=201,
            response_model=TokenResponse,
            openapi_extra=_REQUEST_BODY,
            name=f"create_token{path.removeprefix('/auth/token').replace('/', '_')}",
        )
    return api
