"""/api/v1 roles and permissions, as Airflow 2.10's FAB endpoints: list, get, create, update
and delete roles (built-in ones are read-only); list the permissions a role may hold."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel

from slipstream.api.deps import ApiServices
from slipstream.api.errors import ApiError
from slipstream.api.routes.v1 import body as fields
from slipstream.api.routes.v1.common import order_by, page_maker
from slipstream.api.security import Security
from slipstream.auth.permissions import BUILTIN_ROLE_PAIRS, VERBS
from slipstream.auth.roles import ADMIN, Action
from slipstream.core.records import Role
from slipstream.errors import InvalidInputError, RoleAlreadyExists, RoleNotFound


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


def router(services: ApiServices, security: Security) -> APIRouter:
    api = APIRouter()
    # Called, not declared as a dependency: an annotation naming this local would not resolve.
    page_of = page_maker(services.settings.api_max_page_limit)
    roles = services.roles

    @api.get("/roles", tags=["Role"], dependencies=[Depends(security.authorize(Action.ROLES_READ))])
    def get_roles(
        limit: Annotated[int, Query()] = 100,
        offset: Annotated[int, Query()] = 0,
        order: Annotated[str | None, Query(alias="order_by")] = None,
    ) -> RoleCollection:
        """Built-in and custom roles, `order_by` name (default) or role_id."""
        page = page_of(limit, offset)
        field, descending = order_by(order, ORDER_BY, "name")
        found, total = roles.list_roles(
            page.limit, page.offset, order_by=field, descending=descending
        )
        return RoleCollection(roles=[role_item(r) for r in found], total_entries=total)

    @api.get(
        "/roles/{role_name}",
        tags=["Role"],
        dependencies=[Depends(security.authorize(Action.ROLES_READ))],
    )
    def get_role(role_name: str) -> RoleItem:
        try:
            return role_item(roles.get(role_name))
        except RoleNotFound:
            raise not_found(role_name) from None

    @api.post(
        "/roles", tags=["Role"], dependencies=[Depends(security.authorize(Action.ROLES_EDIT))]
    )
    def post_role(data: Annotated[dict[str, Any], Body()]) -> RoleItem:
        """Create a custom role with the permissions in `actions`."""
        fields.check_fields(data, writable=MASKABLE, required=("name",))
        name = fields.string(data, "name", min_length=1) or ""
        try:
            return role_item(roles.create(name, _pairs(data) or ()))
        except RoleAlreadyExists:
            raise ApiError(
                409,
                f"Role with name {name!r} already exists; please update with the PATCH endpoint",
            ) from None

    @api.patch(
        "/roles/{role_name}",
        tags=["Role"],
        dependencies=[Depends(security.authorize(Action.ROLES_EDIT))],
    )
    def patch_role(
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
                    raise InvalidInputError(
                        f"'{name}' in update_mask is unknown", field="update_mask"
                    )
            data = {name: data[name] for name in masked}
        new_name = fields.string(data, "name", min_length=1)
        try:
            return role_item(roles.update(role_name, new_name=new_name, pairs=_pairs(data)))
        except RoleNotFound:
            raise not_found(role_name) from None
        except RoleAlreadyExists as exc:
            raise ApiError(409, f"Role with name {exc.role!r} already exists") from None

    @api.delete(
        "/roles/{role_name}",
        status_code=204,
        tags=["Role"],
        dependencies=[Depends(security.authorize(Action.ROLES_EDIT))],
    )
    def delete_role(role_name: str) -> Response:
        """Delete a custom role; users holding it lose it."""
        try:
            roles.delete(role_name)
        except RoleNotFound:
            raise not_found(role_name) from None
        return Response(status_code=204)

    @api.get(
        "/permissions",
        tags=["Permission"],
        dependencies=[Depends(security.authorize(Action.ROLES_READ))],
    )
    def get_permissions(
        limit: Annotated[int, Query()] = 100, offset: Annotated[int, Query()] = 0
    ) -> ActionCollection:
        """The actions a role may be given, each with the resources it applies to."""
        page = page_of(limit, offset)
        every = _permission_actions()
        return ActionCollection(
            actions=every[page.offset : page.offset + page.limit], total_entries=len(every)
        )

    return api
