"""The Security section's landing page, for visitors who may see users (Admins): what is
there (users, roles, API tokens) with a count of each, and links to their pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from slipstream.auth.roles import Action
from slipstream.web.deps import PartsDep
from slipstream.web.nav import NavItem
from slipstream.web.sessions import allowed
from slipstream.web.visitor import Visitor

PATH = "/security"
NAV: NavItem | None = NavItem("security", "Security", PATH, Action.USERS_READ)

UserReader = Annotated[Visitor, Depends(allowed(Action.USERS_READ))]


def security_page(request: Request, visitor: UserReader, parts: PartsDep) -> Response:
    services = parts.services
    _, users = services.users.list_users(0)
    roles = services.roles.list_roles()[1] if visitor.can(Action.ROLES_READ) else None
    tokens = [t for t in services.tokens.list_tokens() if t.kind == "api"]
    now = services.clock.now()
    context = {
        "title": "Security",
        "nav_key": "security",
        "security_tab": "index",
        "users": users,
        "roles": roles,
        "active_tokens": sum(1 for t in tokens if t.is_active(now)),
    }
    return parts.templates.render(request, "security.html", context)


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, security_page, methods=["GET"])
    return pages
