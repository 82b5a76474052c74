"""The browser's side of a web session: the session cookie in, the signed-in Visitor out (or a
trip to the sign-in page), and setting or clearing the cookie when a session starts or ends.
The sessions themselves live in the database (services/web_sessions.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Response

from slipstream.auth.permissions import grants_of
from slipstream.auth.roles import Action
from slipstream.core.records import User
from slipstream.web.cookies import PRE_SESSION_COOKIE, SESSION_COOKIE, clear_cookie, set_cookie
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.errors import PageError, SignInRequired
from slipstream.web.visitor import Visitor


def visitor_or_none(request: Request, parts: WebParts) -> Visitor | None:
    """The signed-in visitor, or None without a live session (reads the database: call it
    from the threadpool)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    session = parts.services.web_sessions.resolve(session_id)
    if session is None:
        return None
    grants = grants_of(session.user.roles, parts.services.roles.role_pairs())
    visitor = Visitor(session.user, grants, parts.csrf.token_for(session_id))
    # Error pages raised later in this request still show who is signed in.
    request.state.visitor = visitor
    return visitor


def signed_in(request: Request, parts: PartsDep) -> Visitor:
    """A page dependency: the signed-in visitor, else off to the sign-in page."""
    visitor = visitor_or_none(request, parts)
    if visitor is None:
        raise SignInRequired()
    return visitor


VisitorDep = Annotated[Visitor, Depends(signed_in)]


def allowed(action: Action) -> Callable[[Visitor], Visitor]:
    """A page dependency: a signed-in visitor whose roles allow `action`, else 403."""

    def check(visitor: VisitorDep) -> Visitor:
        if not visitor.can(action):
            raise PageError(403, detail=f"Your roles do not allow this ({action.value}).")
        return visitor

    return check


def start_session(request: Request, response: Response, parts: WebParts, user: User) -> None:
    """Sign `user` in on this browser: a new session (never one the browser brought, so a
    planted id is worth nothing) in the cookie, the pre-session cookie gone."""
    session_id, _ = parts.services.web_sessions.start(user)
    lifetime = parts.services.web_sessions.lifetime_seconds
    set_cookie(request, response, SESSION_COOKIE, session_id, lifetime)
    clear_cookie(request, response, PRE_SESSION_COOKIE)


def end_session(request: Request, response: Response, parts: WebParts) -> None:
    """Sign out: the session deleted, the cookie cleared."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        parts.services.web_sessions.end(session_id)
        parts.live.end_session(session_id)
    clear_cookie(request, response, SESSION_COOKIE)
