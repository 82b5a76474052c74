"""/api/v1/connections as Airflow 2.10: list, get, create, update with `update_mask`, delete,
and test (403 unless SLIPSTREAM_TEST_CONNECTION=Enabled, as Airflow 2.7+); writes are audited
as the caller's (services/connections.py). A connection's
password is never answered; its extra comes with secret-looking fields masked."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from slipstream.api.deps import ServicesDep, authorized
from slipstream.api.errors import ApiError
from slipstream.api.routes.v1 import body as fields
from slipstream.api.routes.v1.common import order_by, page_of
from slipstream.api.security import Principal
from slipstream.auth.roles import Action
from slipstream.core.secrets import StoredConnection, redact_extra
from slipstream.errors import ConnectionAlreadyExists, ConnectionNotFound, InvalidInputError
from slipstream.services.connections import build

ConnectionCreator = Annotated[Principal, Depends(authorized(Action.CONNECTIONS_CREATE))]
ConnectionEditor = Annotated[Principal, Depends(authorized(Action.CONNECTIONS_EDIT))]
ConnectionDeleter = Annotated[Principal, Depends(authorized(Action.CONNECTIONS_DELETE))]


class ConnectionCollection(BaseModel):
    connections: list[dict[str, Any]]
    total_entries: int


class ConnectionBody(BaseModel):
    connection_id: str
    conn_type: str
    description: str | None
    host: str | None
    login: str | None
    # Airflow's field name, which would shadow BaseModel.schema as an attribute.
    schema_: str | None = Field(alias="schema")
    port: int | None
    extra: str | None

    model_config = ConfigDict(populate_by_name=True)


class ConnectionTest(BaseModel):
    status: bool
    message: str


ORDER_BY = {name: name for name in ("connection_id", "conn_type", "description", "host", "port")}
ORDER_BY["id"] = "id"
WRITABLE = (
    "connection_id",
    "conn_type",
    "description",
    "host",
    "login",
    "schema",
    "port",
    "password",
    "extra",
)
UPDATABLE = tuple(name for name in WRITABLE if name != "connection_id")
TEST_DISABLED = (
    "Testing connections is disabled in Slipstream configuration. Contact your deployment"
    " admin to enable it (SLIPSTREAM_TEST_CONNECTION=Enabled)."
)


def _item(connection: StoredConnection) -> dict[str, Any]:
    return {
        "connection_id": connection.conn_id,
        "conn_type": connection.conn_type,
        "description": connection.description,
        "host": connection.host,
        "login": connection.login,
        "schema": connection.schema,
        "port": connection.port,
    }


def connection_body(connection: StoredConnection) -> dict[str, Any]:
    return {**_item(connection), "extra": redact_extra(connection.extra)}


def not_found(conn_id: str) -> ApiError:
    return ApiError(404, f"The Connection with connection_id: `{conn_id}` was not found")


def get_connections(
    services: ServicesDep,
    limit: Annotated[int, Query()] = 100,
    offset: Annotated[int, Query()] = 0,
    order: Annotated[str | None, Query(alias="order_by")] = None,
) -> ConnectionCollection:
    page = page_of(limit, offset, services.settings.api_max_page_limit)
    column, descending = order_by(order, ORDER_BY, "id")
    found, total = services.connections.list_page(
        page.limit, page.offset, order_by=column, descending=descending
    )
    return ConnectionCollection(connections=[_item(c) for c in found], total_entries=total)


def get_connection(services: ServicesDep, connection_id: str) -> ConnectionBody:
    try:
        return ConnectionBody(**connection_body(services.connections.get(connection_id)))
    except ConnectionNotFound:
        raise not_found(connection_id) from None


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    """The body's connection fields, their types checked in Connexion's words."""
    checked: dict[str, Any] = {}
    for name in UPDATABLE:
        if name not in data:
            continue
        value = data[name]
        if name == "port":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidInputError(f"{value!r} is not of type 'integer' - 'port'", field=name)
        elif name == "conn_type":
            fields.string(data, name, min_length=1)
        elif value is not None and not isinstance(value, str):
            raise InvalidInputError(f"{value!r} is not of type 'string' - '{name}'", field=name)
        checked[name] = value
    return checked


def post_connection(
    principal: ConnectionCreator, services: ServicesDep, data: Annotated[dict[str, Any], Body()]
) -> ConnectionBody:
    fields.check_fields(data, writable=WRITABLE, required=("connection_id", "conn_type"))
    conn_id = fields.string(data, "connection_id", min_length=1) or ""
    connection = build(conn_id, _fields(data))
    try:
        services.connections.add(connection, by=principal.user.username)
    except ConnectionAlreadyExists:
        raise ApiError(409, f"Connection already exist. ID: {conn_id}") from None
    return ConnectionBody(**connection_body(connection))


def patch_connection(
    principal: ConnectionEditor,
    services: ServicesDep,
    connection_id: str,
    data: Annotated[dict[str, Any], Body()],
    mask: Annotated[list[str] | None, Query(alias="update_mask")] = None,
) -> ConnectionBody:
    """Replace the connection's fields (only those `update_mask` names, if given)."""
    fields.check_fields(data, writable=WRITABLE, required=("connection_id", "conn_type"))
    if fields.string(data, "connection_id") != connection_id:
        raise InvalidInputError("The connection_id cannot be updated.", field="connection_id")
    updates = _fields(data)
    masked = fields.update_mask(mask)
    if masked is not None:
        for name in masked:
            if name not in UPDATABLE:
                raise InvalidInputError(f"'{name}' is unknown or cannot be updated.", field=name)
        updates = {name: data.get(name) for name in masked}
    else:  # a PATCH without a mask replaces every field, as Airflow's does
        updates = {name: updates.get(name) for name in UPDATABLE}
    try:
        return ConnectionBody(
            **connection_body(
                services.connections.update(connection_id, updates, by=principal.user.username)
            )
        )
    except ConnectionNotFound:
        raise not_found(connection_id) from None


def delete_connection(
    principal: ConnectionDeleter, services: ServicesDep, connection_id: str
) -> Response:
    try:
        services.connections.delete(connection_id, by=principal.user.username)
    except ConnectionNotFound:
        raise not_found(connection_id) from None
    return Response(status_code=204)


def test_connection(
    services: ServicesDep, data: Annotated[dict[str, Any], Body()]
) -> ConnectionTest:
    """403 unless testing is enabled; then what testing the connection said."""
    if not services.connections.test_enabled:
        raise ApiError(403, TEST_DISABLED)
    fields.check_fields(data, writable=WRITABLE, required=("connection_id", "conn_type"))
    conn_id = fields.string(data, "connection_id", min_length=1) or ""
    outcome = services.connections.test(build(conn_id, _fields(data)))
    return ConnectionTest(status=outcome.status, message=outcome.message)


def router() -> APIRouter:
    api = APIRouter()
    tags: list[str | Any] = ["Connection"]

    def may(action: Action) -> list[Any]:
        return [Depends(authorized(action))]

    read, create = may(Action.CONNECTIONS_READ), may(Action.CONNECTIONS_CREATE)
    api.add_api_route(
        "/connections", get_connections, methods=["GET"], dependencies=read, tags=tags
    )
    api.add_api_route("/connections", post_connection, methods=["POST"], tags=tags)
    api.add_api_route(
        "/connections/test", test_connection, methods=["POST"], dependencies=create, tags=tags
    )
    api.add_api_route(
        "/connections/{connection_id}",
        get_connection,
        methods=["GET"],
        dependencies=read,
        tags=tags,
    )
    api.add_api_route(
        "/connections/{connection_id}",
        patch_connection,
        methods=["PATCH"],
        tags=tags,
    )
    api.add_api_route(
        "/connections/{connection_id}",
        delete_connection,
        methods=["DELETE"],
        status_code=204,
        tags=tags,
    )
    return api
