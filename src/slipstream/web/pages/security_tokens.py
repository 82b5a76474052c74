"""Every user's API tokens, for Admins: owner, name, created, last used, expiry and status,
and revoking one (it stops working at once in this process, within seconds in others).
Through the same TokenService as `slipstream tokens` and the API's bearer check; only
hashes are stored, so no token's text can be shown here."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from slipstream.auth.roles import Action
from slipstream.auth.tokens import ApiToken, TokenKind
from slipstream.web.deps import PartsDep
from slipstream.web.errors import PageError
from slipstream.web.forms import form_of
from slipstream.web.nav import NavItem
from slipstream.web.sessions import allowed
from slipstream.web.visitor import Visitor

PATH = "/security/tokens"
NAV: NavItem | None = None  # reached from the Security page

UserReader = Annotated[Visitor, Depends(allowed(Action.USERS_READ))]
UserEditor = Annotated[Visitor, Depends(allowed(Action.USERS_EDIT))]

# Which tokens the list shows: named API tokens by default; the short-lived ones POST
# /auth/token hands out on request.
KINDS = {"api": "API tokens", "session": "Session tokens (POST /auth/token)", "all": "All"}
NOTICES = {"revoked": "Token revoked: it no longer works."}


def tokens_page(
    request: Request,
    visitor: UserReader,
    parts: PartsDep,
    kind: Annotated[str, Query()] = "api",
    notice: Annotated[str, Query()] = "",
) -> Response:
    if kind not in KINDS:
        raise PageError(400, detail=f"kind must be one of {', '.join(KINDS)}")
    tokens = parts.services.tokens.list_tokens()
    if kind != "all":
        tokens = [t for t in tokens if t.kind == TokenKind(kind)]
    now = parts.services.clock.now()
    rows = [(t, _status(t, now)) for t in reversed(tokens)]  # newest first
    context = {
        "title": "API tokens",
        "nav_key": "security",
        "security_tab": "tokens",
        "rows": rows,
        "kind": kind,
        "kinds": KINDS,
        "can_edit": visitor.can(Action.USERS_EDIT),
        "notice": NOTICES.get(notice),
    }
    return parts.templates.render(request, "security/tokens.html", context)


def _status(token: ApiToken, now: datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    return "active" if token.is_active(now) else "expired"


async def revoke_token(request: Request, visitor: UserEditor, parts: PartsDep) -> Response:
    """Revoke a user's token by owner and name (every session token of theirs, for the name
    auth/token)."""
    form = await form_of(request)
    owner, name = form.get("owner", ""), form.get("name", "")
    if not owner or not name:
        raise PageError(400, detail="owner and name are required")
    await run_in_threadpool(parts.services.tokens.revoke, owner, name)
    back = form.get("kind", "api")
    back = back if back in KINDS else "api"
    return RedirectResponse(f"{PATH}?kind={back}&notice=revoked", status_code=303)


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, tokens_page, methods=["GET"])
    pages.add_api_route(f"{PATH}/revoke", revoke_token, methods=["POST"])
    return pages
