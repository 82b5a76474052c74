"""The Admin section's entry in the navigation, and `/admin`, which sends the visitor to the
first of its pages (Pools, Variables, Connections) their roles allow."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from slipstream.auth.roles import Action
from slipstream.web.errors import PageError
from slipstream.web.nav import NavItem
from slipstream.web.sessions import VisitorDep

PATH = "/admin"
# Each page of the section, in the order of its tabs, with what reading it needs.
SECTIONS = (
    (Action.POOLS_READ, "/admin/pools"),
    (Action.VARIABLES_READ, "/admin/variables"),
    (Action.CONNECTIONS_READ, "/admin/connections"),
)
NAV: NavItem | None = NavItem(
    "admin",
    "Admin",
    PATH,
    SECTIONS[0][0],
    or_needs=tuple(action for action, _ in SECTIONS[1:]),
)


def admin_page(visitor: VisitorDep) -> RedirectResponse:
    for action, path in SECTIONS:
        if visitor.can(action):
            return RedirectResponse(path, status_code=307)
    raise PageError(403, detail="Your roles do not allow reading pools, variables or connections.")


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, admin_page, methods=["GET"])
    return pages
