"""The Security section's landing page, for visitors who may manage users (Admins): where the
users, roles and API tokens pages will live; until they do, it says how to manage each."""

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
    return parts.templates.render(
        request, "security.html", {"title": "Security", "nav_key": "security"}
    )


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, security_page, methods=["GET"])
    return pages
