"""/api/v1 roles and permissions, as Airflow 2.10's FAB endpoints: list, get, create, update
and delete roles (built-in ones are read-only); list the permissions a role may hold."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel

from slipstream.api.deps import ServicesDep, authorized
from slipstream.api.errors import ApiError
from slipstream.api.routes.v1 import body as fields
from slipstream.api.routes.v1.common import order_by, page_of
from slipstream.api.security import Principal
from slipstream.auth.permissions import BUILTIN_ROLE_PAIRS, VERBS
from slipstream.auth.roles import ADMIN, Action
from slipstream.core.records import Role
from slipstream.errors import InvalidInputError, RoleAlreadyExists, RoleNotFound

# Who makes a change, for the audit log (the router checks the permission itself too).
RoleEditor = Annotated[Principal, Depends(authorized(Action.ROLES_EDIT))]


class ActionName(BaseModel):
    name: str


class ResourceName(BaseModel):
    name: str


class ActionResource(BaseModel):
    action: ActionName
    resource: ResourceName


class RoleItem(BaseModel):
    name: str
    actions: list[ActionResource]


class RoleCollection(BaseModel):
    roles: list[RoleItem]
    total_entries: int


class PermissionAction(BaseModel):
    """Airflow's `Action` (`name`), plus the resources that action means something on."""

    name: str
    resources: list[ResourceName]


class ActionCollection(BaseModel):
    actions: list[PermissionAction]
    total_entries: int


ORDER_BY = {"name": "name", "role_id": "role_id"}
MASKABLE = ("name", "actions")


def role_item(role: Role) -> RoleItem:
    return RoleItem(
        name=role.name,
        actions=[
            ActionResource(action=ActionName(name=verb), resource=ResourceName(name=resource))
            for verb, resource in role.permissions
        ],
    )


def not_found(name: str) -> ApiError:
    return ApiError(404, f"Role with name {name!r} was not found")


def _pairs(data: dict[str, Any]) -> list[tuple[str, str]] | None:
    items = fields.array(data, "actions")
    if items is None:
        return None
    pairs = []
    for item in items:
        if not isinstance(item, dict):
            message = f"{item!r} is not of type 'object' - 'actions'"
            raise InvalidInputError(message, field="actions")
        pairs.append(
            (
                fields.name_of(item.get("action"), "actions.action"),
                fields.name_of(item.get("resource"), "actions.resource"),
            )
        )
    return pairs


def _permission_actions() -> list[PermissionAction]:
    """Every verb with the resources it is checked on (Admin holds each such pair). Any verb
    also applies to `DAG:<dag_id>` and `DAG tag:<tag>`, which stand for DAGs."""
    by_verb: dict[str, list[str]] = {verb: [] for verb in VERBS}
    for verb, resource in sorted(BUILTIN_ROLE_PAIRS[ADMIN]):
        by_verb[verb].append(resource)
    return [
        PermissionAction(name=verb, resources=[ResourceName(name=r) for r in resources])
        for verb, resources in by_verb.items()
    ]


def get_roles(
    services: ServicesDep,
    limit: Annotated[int, Query()] = 100,
    offset: Annotated[int, Query()] = 0,
    order: Annotated[str | None, Query(alias="order_by")] = None,
) -> RoleCollection:
    """Built-in and custom roles, `order_by` name (default) or role_id."""
    page = page_of(limit, offset, services.settings.api_max_page_limit)
    field, descending = order_by(order, ORDER_BY, "name")
    found, total = services.roles.list_roles(
        page.limit, page.offset, order_by=field, descending=descending
    )
    return RoleCollection(roles=[role_item(r) for r in found], total_entries=total)


def get_role(services: ServicesDep, role_name: str) -> RoleItem:
    try:
        return role_item(services.roles.get(role_name))
    except RoleNotFound:
        raise not_found(role_name) from None


def post_role(
    editor: RoleEditor, services: ServicesDep, data: Annotated[dict[str, Any], Body()]
) -> RoleItem:
    """Create a custom role with the permissions in `actions`."""
    fields.check_fields(data, writable=MASKABLE, required=("name",))
    name = fields.string(data, "name", min_length=1) or ""
    try:
        return role_item(services.roles.create(name, _pairs(data) or (), by=editor.user.username))
    except RoleAlreadyExists:
        raise ApiError(
            409,
            f"Role with name {name!r} already exists; please update with the PATCH endpoint",
        ) from None


def patch_role(
    editor: RoleEditor,
    services: ServicesDep,
    role_name: str,
    data: Annotated[dict[str, Any], Body()],
    mask: Annotated[list[str] | None, Query(alias="update_mask")] = None,
) -> RoleItem:
    """Rename a custom role and/or replace its permissions (only the fields named by
    `update_mask`, if given)."""
    fields.check_fields(data, writable=MASKABLE)
    masked = fields.update_mask(mask)
    if masked is not None:
        for name in masked:
            if name not in MASKABLE or name not in data:
                raise InvalidInputError(f"'{name}' in update_mask is unknown", field="update_mask")
        data = {name: data[name] for name in masked}
    new_name = fields.string(data, "name", min_length=1)
    try:
        return role_item(
            services.roles.update(
                role_name, new_name=new_name, pairs=_pairs(data), by=editor.user.username
            )
        )
    except RoleNotFound:
        raise not_found(role_name) from None
    except RoleAlreadyExists as exc:
        raise ApiError(409, f"Role with name {exc.role!r} already exists") from None


def delete_role(services: ServicesDep, role_name: str, editor: RoleEditor) -> Response:
    """Delete a custom role; users holding it lose it."""
    try:
        services.roles.delete(role_name, by=editor.user.username)
    except RoleNotFound:
        raise not_found(role_name) from None
    return Response(status_code=204)


def get_permissions(
    services: ServicesDep,
    limit: Annotated[int, Query()] = 100,
    offset: Annotated[int, Query()] = 0,
) -> ActionCollection:
    """The actions a role may be given, each with the resources it applies to."""
    page = page_of(limit, offset, services.settings.api_max_page_limit)
    every = _permission_actions()
    return ActionCollection(
        actions=every[page.offset : page.offset + page.limit], total_entries=len(every)
    )


def router() -> APIRouter:
    api = APIRouter()
    may_read = [Depends(authorized(Action.ROLES_READ))]
    may_edit = [Depends(authorized(Action.ROLES_EDIT))]
    api.add_api_route("/roles", get_roles, methods=["GET"], dependencies=may_read, tags=["Role"])
    api.add_api_route(
        "/roles/{role_name}", get_role, methods=["GET"], dependencies=may_read, tags=["Role"]
    )
    api.add_api_route("/roles", post_role, methods=["POST"], dependencies=may_edit, tags=["Role"])
    api.add_api_route(
        "/roles/{role_name}", patch_role, methods=["PATCH"], dependencies=may_edit, tags=["Role"]
    )
    api.add_api_route(
        "/roles/{role_name}",
        delete_role,
        methods=["DELETE"],
        status_code=204,
        dependencies=may_edit,
        tags=["Role"],
    )
    api.add_api_route(
        "/permissions",
        get_permissions,
        methods=["GET"],
        tags=["Permission"],
        dependencies=may_read,
    )
    return api
