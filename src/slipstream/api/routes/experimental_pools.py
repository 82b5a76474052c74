"""Airflow 1.10's experimental pool routes under /api/experimental/pools: list, get, create or
replace (POST is an upsert), delete; pools as `{"id", "pool", "slots", "description"}`."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from slipstream.api.basic_auth import requires
from slipstream.api.deps import ServicesDep
from slipstream.api.errors import ApiError
from slipstream.api.security import Principal
from slipstream.auth.roles import Action
from slipstream.core.pools import DEFAULT_POOL, Pool
from slipstream.errors import InvalidInputError, PoolNotFound

PREFIX = "/api/experimental"

MayReadPools = Annotated[Principal, Depends(requires(Action.POOLS_READ))]
MayEditPools = Annotated[Principal, Depends(requires(Action.POOLS_EDIT))]


def _shown(pool: Pool) -> dict[str, Any]:
    return {"id": pool.id, "pool": pool.name, "slots": pool.slots, "description": pool.description}


def _name(name: str) -> str:
    if not name.strip():
        raise InvalidInputError("Pool name shouldn't be empty", field="name")
    return name


def _missing(name: str) -> ApiError:
    return ApiError(404, f"Pool '{name}' doesn't exist")


def get_pools(principal: MayReadPools, services: ServicesDep) -> list[dict[str, Any]]:
    found, _ = services.pools.list_pools()
    return [_shown(usage.pool) for usage in found]


def get_pool(name: str, principal: MayReadPools, services: ServicesDep) -> dict[str, Any]:
    try:
        return _shown(services.pools.get(_name(name)).pool)
    except PoolNotFound:
        raise _missing(name) from None


async def create_pool(
    request: Request, principal: MayEditPools, services: ServicesDep
) -> dict[str, Any]:
    """Create the pool, or replace its slots and description (1.10's upsert). The body is
    read as JSON whatever its Content-Type; `name`, `slots` and `description` are required."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}", field="body") from None
    if not isinstance(body, dict):
        raise InvalidInputError("request body must be a JSON object", field="body")
    for key in ("name", "slots", "description"):
        if key not in body:
            raise InvalidInputError(f"{key} is required", field=key)
    unknown = sorted(set(body) - {"name", "slots", "description"})
    if unknown:
        raise InvalidInputError(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    name = body["name"]
    if not isinstance(name, str):
        raise InvalidInputError("name must be a string", field="name")
    slots = body["slots"]
    try:
        # 1.10 took anything int() takes: 5 or "5".
        slots = int(slots) if not isinstance(slots, bool | float) else None
    except (TypeError, ValueError):
        slots = None
    if slots is None:
        raise InvalidInputError(f"Bad value for `slots`: {body['slots']}", field="slots")
    pool = Pool(name=_name(name), slots=slots, description=body["description"])

    def upsert() -> dict[str, Any]:
        return _shown(services.pools.set(pool, by=principal.user.username).pool)

    return await run_in_threadpool(upsert)


def delete_pool(name: str, principal: MayEditPools, services: ServicesDep) -> dict[str, Any]:
    if name == DEFAULT_POOL:
        raise InvalidInputError("default_pool cannot be deleted", field="name")
    try:
        return _shown(services.pools.delete(_name(name), by=principal.user.username))
    except PoolNotFound:
        raise _missing(name) from None


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX)
    api.add_api_route("/pools", get_pools, methods=["GET"])
    api.add_api_route("/pools", create_pool, methods=["POST"])
    api.add_api_route("/pools/{name}", get_pool, methods=["GET"])
    api.add_api_route("/pools/{name}", delete_pool, methods=["DELETE"])
    return api
