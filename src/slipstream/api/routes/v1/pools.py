"""/api/v1 pools, as Airflow 2.10's stable API: list, get, create, update (with
`update_mask`) and delete, each pool with its slots in use counted from its task instances."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel

from slipstream.api.deps import ServicesDep, authorized
from slipstream.api.errors import ApiError
from slipstream.api.routes.v1 import body as fields
from slipstream.api.routes.v1.common import order_by, page_of
from slipstream.api.security import Principal
from slipstream.auth.roles import Action
from slipstream.core.pools import DEFAULT_POOL, Pool, PoolUsage
from slipstream.errors import ConflictError, InvalidInputError, PoolNotFound

PoolReader = Annotated[Principal, Depends(authorized(Action.POOLS_READ))]
PoolEditor = Annotated[Principal, Depends(authorized(Action.POOLS_EDIT))]


class PoolBody(BaseModel):
    name: str
    slots: int
    occupied_slots: int
    running_slots: int
    queued_slots: int
    scheduled_slots: int
    deferred_slots: int
    open_slots: int
    description: str | None
    include_deferred: bool


class PoolCollection(BaseModel):
    pools: list[PoolBody]
    total_entries: int


WRITABLE = ("name", "slots", "description", "include_deferred")
READ_ONLY = (
    "occupied_slots",
    "running_slots",
    "queued_slots",
    "scheduled_slots",
    "deferred_slots",
    "open_slots",
)
ORDER_BY = {"id": "id", "name": "name", "pool": "name", "slots": "slots"}
# What update_mask alone may change on default_pool (Airflow's rule).
DEFAULT_POOL_MASK = frozenset({"slots", "include_deferred"})


def pool_body(usage: PoolUsage) -> PoolBody:
    return PoolBody(
        name=usage.pool.name,
        slots=usage.pool.slots,
        occupied_slots=usage.occupied,
        running_slots=usage.running,
        queued_slots=usage.queued,
        scheduled_slots=usage.scheduled,
        deferred_slots=usage.deferred,
        open_slots=usage.open,
        description=usage.pool.description,
        include_deferred=usage.pool.include_deferred,
    )


def not_found(name: str) -> ApiError:
    return ApiError(404, f"Pool with name:'{name}' not found")


def get_pools(
    principal: PoolReader,
    services: ServicesDep,
    limit: Annotated[int, Query()] = 100,
    offset: Annotated[int, Query()] = 0,
    order: Annotated[str | None, Query(alias="order_by")] = None,
) -> PoolCollection:
    """Every pool, `order_by` id (default), name or slots (`-` for descending)."""
    page = page_of(limit, offset, services.settings.api_max_page_limit)
    column, descending = order_by(order, ORDER_BY, "id")
    found, total = services.pools.list_pools(
        page.limit, page.offset, order_by=column, descending=descending
    )
    return PoolCollection(pools=[pool_body(u) for u in found], total_entries=total)


def get_pool(pool_name: str, principal: PoolReader, services: ServicesDep) -> PoolBody:
    try:
        return pool_body(services.pools.get(pool_name))
    except PoolNotFound:
        raise not_found(pool_name) from None


def _values(data: dict[str, Any]) -> dict[str, Any]:
    fields.check_fields(data, writable=WRITABLE, read_only=READ_ONLY)
    return dict(data)


def post_pool(
    principal: PoolEditor, services: ServicesDep, data: Annotated[dict[str, Any], Body()]
) -> PoolBody:
    """Create a pool: `name` and `slots` are required; 409 if the name is taken."""
    values = _values(data)
    missing = sorted({"name", "slots"} - set(values))
    if missing:
        raise InvalidInputError(f"Missing required property(ies): {missing}", field=missing[0])
    pool = Pool(
        name=values["name"],
        slots=values["slots"],
        description=values.get("description"),
        include_deferred=values.get("include_deferred", False),
    )
    try:
        return pool_body(services.pools.create(pool, by=principal.user.username))
    except ConflictError:
        raise ApiError(409, f"Pool: {pool.name} already exists") from None


def patch_pool(
    pool_name: str,
    principal: PoolEditor,
    services: ServicesDep,
    data: Annotated[dict[str, Any], Body()],
    mask: Annotated[list[str] | None, Query(alias="update_mask")] = None,
) -> PoolBody:
    """Change a pool: the fields named by `update_mask`, or else the whole pool (`name` and
    `slots` required). default_pool may not be renamed."""
    values = _values(data)
    masked = fields.update_mask(mask)
    if (
        pool_name == DEFAULT_POOL
        and values.get("name") != DEFAULT_POOL
        and not (masked and set(masked) <= DEFAULT_POOL_MASK)
    ):
        raise InvalidInputError("Default Pool's name can't be modified", field="name")
    if masked is not None:
        for name in masked:
            if name not in WRITABLE:
                raise InvalidInputError(f"Invalid field: {name} in update mask", field=name)
            if name not in values:
                raise InvalidInputError(
                    f"'{name}' is in update_mask but not in the body", field=name
                )
        values = {name: values[name] for name in masked}
    else:
        missing = sorted({"name", "slots"} - set(values))
        if missing:
            raise InvalidInputError(f"Missing required property(ies): {missing}", field=missing[0])
    try:
        return pool_body(services.pools.update(pool_name, values, by=principal.user.username))
    except PoolNotFound:
        raise not_found(pool_name) from None
    except ConflictError:
        raise ApiError(409, f"Pool: {values.get('name')} already exists") from None


def delete_pool(pool_name: str, principal: PoolEditor, services: ServicesDep) -> Response:
    """Delete a pool (204); default_pool cannot be (400)."""
    try:
        services.pools.delete(pool_name, by=principal.user.username)
    except PoolNotFound:
        raise not_found(pool_name) from None
    return Response(status_code=204)


def router() -> APIRouter:
    api = APIRouter(tags=["Pool"])
    api.add_api_route("/pools", get_pools, methods=["GET"])
    api.add_api_route("/pools/{pool_name}", get_pool, methods=["GET"])
    api.add_api_route("/pools", post_pool, methods=["POST"])
    api.add_api_route("/pools/{pool_name}", patch_pool, methods=["PATCH"])
    api.add_api_route("/pools/{pool_name}", delete_pool, methods=["DELETE"], status_code=204)
    return api
