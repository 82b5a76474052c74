"""Signing in and out: the sign-in form (the existing users and their argon2id passwords,
behind the same failed-login throttle as the API) and sign-out."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from slipstream.errors import SignInLocked
from slipstream.web.cookies import PRE_SESSION_COOKIE, PRE_SESSION_SECONDS, set_cookie
from slipstream.web.csrf import anchor_of
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.errors import SIGN_IN_PATH
from slipstream.web.forms import form_of
from slipstream.web.nav import NavItem
from slipstream.web.paths import local_path
from slipstream.web.sessions import end_session, start_session, visitor_or_none

SIGN_OUT_PATH = "/sign-out"
NAV: NavItem | None = None

WRONG = "Wrong username or password."
MISSING = "Enter your username and password."


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server, never the sign-in page."""
    path = local_path(target)
    return "/" if path.split("?", 1)[0] == SIGN_IN_PATH else path


def client_address(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


def _form(
    request: Request,
    parts: WebParts,
    target: str,
    *,
    username: str = "",
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    anchor = anchor_of(request)
    new_anchor = None
    if anchor is None:
        # A first visit: a pre-session id for this browser, which the form's token signs.
        anchor = new_anchor = secrets.token_urlsafe(32)
    response = parts.templates.render(
        request,
        "sign_in.html",
        {
            "title": "Sign in",
            "csrf_token": parts.csrf.token_for(anchor),
            "next": target,
            "username": username,
            "error": error,
            "signed_out": request.query_params.get("signed_out") == "1",
        },
        status=status,
        headers=headers,
    )
    if new_anchor is not None:
        set_cookie(request, response, PRE_SESSION_COOKIE, new_anchor, PRE_SESSION_SECONDS)
    return response


def sign_in_page(request: Request, parts: PartsDep, next: Annotated[str, Query()] = "") -> Response:
    target = safe_next(next)
    if visitor_or_none(request, parts) is not None:
        return RedirectResponse(target, status_code=303)
    return _form(request, parts, target)


async def sign_in(request: Request, parts: PartsDep) -> Response:
    form = await form_of(request)
    username = form.get("username", "").strip()
    password = form.get("password", "")
    target = safe_next(form.get("next"))
    if not username or not password:
        return _form(request, parts, target, username=username, error=MISSING, status=400)
    try:
        # argon2 is slow on purpose: never on the event loop.
        user = await run_in_threadpool(
            parts.gate.sign_in, username, password, client_address(request)
        )
    except SignInLocked as exc:
        wait = exc.retry_after
        return _form(
            request,
            parts,
            target,
            username=username,
            error=f"Too many failed sign-ins. Try again in {wait} seconds.",
            status=429,
            headers={"Retry-After": str(wait)},
        )
    if user is None:
        return _form(request, parts, target, username=username, error=WRONG, status=401)
    response = RedirectResponse(target, status_code=303)
    await run_in_threadpool(start_session, request, response, parts, user)
    return response


def sign_out(request: Request, parts: PartsDep) -> Response:
    response = RedirectResponse(f"{SIGN_IN_PATH}?signed_out=1", status_code=303)
    end_session(request, response, parts)
    return response


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(SIGN_IN_PATH, sign_in_page, methods=["GET"])
    pages.add_api_route(SIGN_IN_PATH, sign_in, methods=["POST"])
    pages.add_api_route(SIGN_OUT_PATH, sign_out, methods=["POST"])
    return pages
