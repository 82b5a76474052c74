"""Admin -> Connections: the stored connections (id, type, host, port, schema, login,
description) and a connection's page with its extra, read through the same ConnectionService
as the API. A password never reaches a page (only whether one is set), and the extra comes
with its secret-looking fields masked, as the API answers it. Changing connections stays with
`slipstream connections` and the REST API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from slipstream.auth.roles import Action
from slipstream.core.secrets import StoredConnection, redact_extra
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.nav import NavItem
from slipstream.web.paging import ListPage
from slipstream.web.sessions import allowed
from slipstream.web.visitor import Visitor

PATH = "/admin/connections"
NAV: NavItem | None = None  # the Admin entry (pages/admin.py) leads here

ConnectionReader = Annotated[Visitor, Depends(allowed(Action.CONNECTIONS_READ))]


def connection_url(conn_id: str) -> str:
    return f"{PATH}/{quote(conn_id, safe='')}"


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """A connection as a page may show it: no password (whether one is set), the extra
    masked. Pages get this, never the stored record."""

    conn_id: str
    conn_type: str
    description: str | None
    host: str | None
    schema: str | None
    login: str | None
    port: int | None
    has_password: bool
    extra: str | None

    @classmethod
    def of(cls, connection: StoredConnection) -> ConnectionView:
        return cls(
            conn_id=connection.conn_id,
            conn_type=connection.conn_type,
            description=connection.description,
            host=connection.host,
            schema=connection.schema,
            login=connection.login,
            port=connection.port,
            has_password=bool(connection.password),
            extra=redact_extra(connection.extra),
        )


def _render(request: Request, parts: WebParts, name: str, context: dict[str, Any]) -> Response:
    values = {
        "title": "Connections",
        "nav_key": "admin",
        "admin_tab": "connections",
        "connection_url": connection_url,
        **context,
    }
    return parts.templates.render(request, name, values)


def connections_page(
    request: Request, visitor: ConnectionReader, parts: PartsDep, page: str = ""
) -> Response:
    listing = ListPage.parse(PATH, page)
    found, total = parts.services.connections.list_page(listing.size, listing.offset)
    context = {
        "connections": [ConnectionView.of(c) for c in found],
        "total": total,
        "query": listing,
        "pages": listing.pages(total),
    }
    return _render(request, parts, "admin/connections.html", context)


def connection_page(
    request: Request, conn_id: str, visitor: ConnectionReader, parts: PartsDep
) -> Response:
    shown = ConnectionView.of(parts.services.connections.get(conn_id))
    context = {"title": f"Connection {shown.conn_id}", "connection": shown}
    return _render(request, parts, "admin/connection.html", context)


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, connections_page, methods=["GET"])
    pages.add_api_route(f"{PATH}/{{conn_id:path}}", connection_page, methods=["GET"])
    return pages
