"""Your account, for every signed-in user: who you are and your roles, changing your own
password (it asks for the current one, checked behind the same failed sign-in throttle as
the sign-in form), and your own API tokens: create one (shown once), see when each was last
used, revoke it. Through the same UserService and TokenService as the CLI and the API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from slipstream.auth.tokens import ApiToken, TokenKind, parse_lifetime
from slipstream.errors import InvalidInputError, SignInLocked, SlipstreamError
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.errors import PageError
from slipstream.web.form_errors import FormErrors
from slipstream.web.forms import form_of
from slipstream.web.nav import NavItem
from slipstream.web.sessions import VisitorDep, start_session
from slipstream.web.visitor import Visitor

PATH = "/account"
NAV: NavItem | None = None  # in the user menu, for everyone signed in

# Lifetimes the form suggests (any `30d`, `12h`, `90m`, `45s` or `never` is accepted).
EXPIRY_CHOICES = ("1d", "7d", "30d", "90d", "365d", "never")
DEFAULT_EXPIRY = "30d"
TOKEN_INPUTS = {"name": "token_name", "expires": "expires", "user": "form"}
NOTICES = {
    "password": "Password changed. Your other sessions were signed out.",
    "revoked": "Token revoked: it no longer works.",
}
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made: its text is on this one response only (only its hash is kept)."""

    label: str
    value: str
    record: ApiToken


def _page(
    request: Request,
    parts: WebParts,
    visitor: Visitor,
    *,
    notice: str = "",
    password_errors: FormErrors | None = None,
    token_errors: FormErrors | None = None,
    token_form: Mapping[str, str] | None = None,
    new_token: NewToken | None = None,
) -> Response:
    username = visitor.user.username
    user = parts.services.users.get(username)
    tokens = [t for t in parts.services.tokens.list_tokens(username) if t.kind == TokenKind.API]
    now = parts.services.clock.now()
    context: dict[str, Any] = {
        "title": "Your account",
        "nav_key": "account",
        "user": user,
        "rows": [(t, _status(t, now)) for t in reversed(tokens)],  # newest first
        "notice": NOTICES.get(notice),
        "password_errors": password_errors or FormErrors(),
        "token_errors": token_errors or FormErrors(),
        "token_form": dict(token_form or {}),
        "expiry_choices": EXPIRY_CHOICES,
        "default_expiry": DEFAULT_EXPIRY,
        "new_token": new_token,
    }
    errors = password_errors or token_errors
    status = errors.status if errors else 200
    headers = NO_STORE if new_token is not None else None
    return parts.templates.render(request, "account.html", context, status=status, headers=headers)


def _status(token: ApiToken, now: Any) -> str:
    if token.revoked_at is not None:
        return "revoked"
    return "active" if token.is_active(now) else "expired"


def account_page(
    request: Request,
    visitor: VisitorDep,
    parts: PartsDep,
    notice: Annotated[str, Query()] = "",
) -> Response:
    return _page(request, parts, visitor, notice=notice)


async def change_password(request: Request, visitor: VisitorDep, parts: PartsDep) -> Response:
    """Your own new password, after the current one. It signs out your other sessions (the
    service ends them all); this browser gets a new session and stays signed in."""
    form = await form_of(request)
    current = form.get("current_password", "")
    new = form.get("new_password", "")
    errors = FormErrors()
    if not current:
        errors.add("current_password", "Enter your current password.")
    if not new:
        errors.add("new_password", "Enter a new password.")
    elif new != form.get("new_password_confirm", ""):
        errors.add("new_password_confirm", "The two new passwords differ.")
    username = visitor.user.username
    address = request.client.host if request.client is not None else None

    def change() -> FormErrors | None:
        if errors:
            return errors
        try:
            # argon2 is slow on purpose, and a wrong password counts as a failed sign-in.
            user = parts.gate.sign_in(username, current, address)
        except SignInLocked as exc:
            wait = exc.retry_after
            message = f"Too many failed attempts. Try again in {wait} seconds."
            return FormErrors({"current_password": message}, 429)
        if user is None:
            return FormErrors({"current_password": "That is not your current password."}, 400)
        try:
            parts.services.users.reset_password(username, new, by=visitor.user.username)
        except InvalidInputError as refusal:
            return FormErrors.of(refusal, {"password": "new_password"})
        return None

    refused = await run_in_threadpool(change)
    if refused is not None:
        return await run_in_threadpool(
            lambda: _page(request, parts, visitor, password_errors=refused)
        )
    response = RedirectResponse(f"{PATH}?notice=password", status_code=303)
    await run_in_threadpool(start_session, request, response, parts, visitor.user)
    return response


async def create_token(request: Request, visitor: VisitorDep, parts: PartsDep) -> Response:
    """A new API token of yours, shown on this response only."""
    form = await form_of(request)
    name = form.get("token_name", "").strip()
    raw_expiry = form.get("expires", DEFAULT_EXPIRY).strip() or DEFAULT_EXPIRY
    errors = FormErrors()
    if not name:
        errors.add("token_name", "Enter a name for the token.")
    lifetime: timedelta | None = None
    try:
        lifetime = parse_lifetime(raw_expiry)
    except InvalidInputError as refusal:
        errors.add("expires", str(refusal))

    def create() -> FormErrors | tuple[str, ApiToken]:
        if errors:
            return errors
        try:
            return parts.services.tokens.create(
                visitor.user.username, name, lifetime, by=visitor.user.username
            )
        except SlipstreamError as refusal:
            return FormErrors.of(refusal, TOKEN_INPUTS, conflict="token_name")

    made = await run_in_threadpool(create)
    if isinstance(made, FormErrors):
        return await run_in_threadpool(
            lambda: _page(request, parts, visitor, token_errors=made, token_form=form)
        )
    token, record = made
    shown = NewToken(f"Your new token {record.name}", token, record)
    return await run_in_threadpool(lambda: _page(request, parts, visitor, new_token=shown))


async def revoke_token(request: Request, visitor: VisitorDep, parts: PartsDep) -> Response:
    form = await form_of(request)
    name = form.get("name", "")
    if not name:
        raise PageError(400, detail="name is required")
    username = visitor.user.username
    await run_in_threadpool(lambda: parts.services.tokens.revoke(username, name, by=username))
    return RedirectResponse(f"{PATH}?notice=revoked", status_code=303)


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, account_page, methods=["GET"])
    pages.add_api_route(f"{PATH}/password", change_password, methods=["POST"])
    pages.add_api_route(f"{PATH}/tokens", create_token, methods=["POST"])
    pages.add_api_route(f"{PATH}/tokens/revoke", revoke_token, methods=["POST"])
    return pages
