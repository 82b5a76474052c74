"""/api/v1 users: list, get, create, update and delete, as Airflow 2.10's FAB user endpoints
(fields, statuses and messages); the password is write-only and never returned."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel

from slipstream.api.deps import ServicesDep, authorized
from slipstream.api.errors import ApiError
from slipstream.api.routes.v1 import body as fields
from slipstream.api.routes.v1.common import iso, order_by, page_of
from slipstream.api.security import Principal
from slipstream.auth.roles import PUBLIC, Action
from slipstream.core.records import User
from slipstream.errors import InvalidInputError, UserAlreadyExists, UserNotFound

# Who makes a change, for the audit log (the router checks the permission itself too).
UserEditor = Annotated[Principal, Depends(authorized(Action.USERS_EDIT))]


class UserRole(BaseModel):
    name: str


class UserCollectionItem(BaseModel):
    first_name: str
    last_name: str
    username: str
    email: str
    active: bool | None
    last_login: str | None
    login_count: int | None
    failed_login_count: int | None
    roles: list[UserRole | None]
    created_on: str | None
    changed_on: str | None


class UserCollection(BaseModel):
    users: list[UserCollectionItem]
    total_entries: int


WRITABLE = ("first_name", "last_name", "username", "email", "roles", "password")
READ_ONLY = (
    "active",
    "last_login",
    "login_count",
    "failed_login_count",
    "created_on",
    "changed_on",
)
# API field -> column. Airflow's names plus the obvious ones (it lists `user_name`, and more).
ORDER_BY = {
    "id": "id",
    "user_id": "id",
    "username": "username",
    "user_name": "username",
    "email": "email",
    "first_name": "first_name",
    "last_name": "last_name",
    "active": "active",
    "is_active": "active",
    "created_on": "created_on",
    "changed_on": "changed_on",
}
# Airflow's default `AUTH_USER_REGISTRATION_ROLE`: who a user created without roles is.
DEFAULT_ROLE = PUBLIC


def user_item(user: User) -> UserCollectionItem:
    return UserCollectionItem(
        first_name=user.first_name,
        last_name=user.last_name,
        username=user.username,
        email=user.email,
        active=user.active,
        last_login=iso(user.last_login),
        login_count=user.login_count,
        failed_login_count=user.failed_login_count,
        roles=[UserRole(name=role) for role in user.roles],
        created_on=iso(user.created_on),
        changed_on=iso(user.changed_on),
    )


def not_found(username: str) -> ApiError:
    return ApiError(404, f"The User with username `{username}` was not found")


def _roles(data: dict[str, Any]) -> list[str] | None:
    items = fields.array(data, "roles")
    return None if items is None else [fields.name_of(item, "roles") for item in items]


def get_users(
    services: ServicesDep,
    limit: Annotated[int, Query()] = 100,
    offset: Annotated[int, Query()] = 0,
    order: Annotated[str | None, Query(alias="order_by")] = None,
) -> UserCollection:
    """A page of users, `order_by` any of id, username, email, first_name, last_name,
    active, created_on, changed_on (`-` for descending)."""
    page = page_of(limit, offset, services.settings.api_max_page_limit)
    column, descending = order_by(order, ORDER_BY, "id")
    found, total = services.users.list_users(
        page.limit, page.offset, order_by=column, descending=descending
    )
    return UserCollection(users=[user_item(u) for u in found], total_entries=total)


def get_user(services: ServicesDep, username: str) -> UserCollectionItem:
    try:
        return user_item(services.users.get(username))
    except UserNotFound:
        raise not_found(username) from None


def post_user(
    editor: UserEditor, services: ServicesDep, data: Annotated[dict[str, Any], Body()]
) -> UserCollectionItem:
    """Create a user; roles default to Public, as Airflow's registration role."""
    fields.check_fields(
        data,
        writable=WRITABLE,
        read_only=READ_ONLY,
        required=("username", "email", "first_name", "last_name", "password"),
    )
    username = fields.string(data, "username", min_length=1) or ""
    email = fields.string(data, "email", min_length=1) or ""
    first_name = fields.string(data, "first_name") or ""
    last_name = fields.string(data, "last_name") or ""
    password = fields.string(data, "password") or ""
    roles = _roles(data) or [DEFAULT_ROLE]
    try:
        user = services.users.create(
            username=username,
            email=email,
            first_name=first_name,
            last_name=last_name,
            password=password,
            roles=roles,
            by=editor.user.username,
        )
    except UserAlreadyExists as exc:
        if exc.email is None:
            detail = f"Username `{username}` already exists. Use PATCH to update."
            raise ApiError(409, detail) from None
        raise ApiError(409, f"The email `{email}` is already taken.") from None
    return user_item(user)


def patch_user(
    editor: UserEditor,
    services: ServicesDep,
    username: str,
    data: Annotated[dict[str, Any], Body()],
    mask: Annotated[list[str] | None, Query(alias="update_mask")] = None,
) -> UserCollectionItem:
    """Change the fields sent (only those named by `update_mask`, if given)."""
    fields.check_fields(data, writable=WRITABLE, read_only=READ_ONLY)
    masked = fields.update_mask(mask)
    if masked is not None:
        missing = [name for name in masked if name not in data]
        if missing:
            names = ", ".join(repr(n) for n in missing)
            raise InvalidInputError(f"Unknown update masks: {names}", field="update_mask")
        data = {name: data[name] for name in masked}
    new_username = fields.string(data, "username", min_length=1)
    email = fields.string(data, "email", min_length=1)
    try:
        user = services.users.update(
            username,
            new_username=new_username,
            email=email,
            first_name=fields.string(data, "first_name"),
            last_name=fields.string(data, "last_name"),
            password=fields.string(data, "password"),
            roles=_roles(data),
            by=editor.user.username,
        )
    except UserNotFound:
        raise not_found(username) from None
    except UserAlreadyExists as exc:
        if exc.email is None:
            raise ApiError(409, f"The username `{new_username}` already exists") from None
        raise ApiError(409, f"The email `{email}` already exists") from None
    return user_item(user)


def delete_user(services: ServicesDep, username: str, editor: UserEditor) -> Response:
    try:
        services.users.delete(username, by=editor.user.username)
    except UserNotFound:
        raise not_found(username) from None
    return Response(status_code=204)


def router() -> APIRouter:
    api = APIRouter(tags=["User"])
    may_read = [Depends(authorized(Action.USERS_READ))]
    may_edit = [Depends(authorized(Action.USERS_EDIT))]
    api.add_api_route("/users", get_users, methods=["GET"], dependencies=may_read)
    api.add_api_route("/users/{username}", get_user, methods=["GET"], dependencies=may_read)
    api.add_api_route("/users", post_user, methods=["POST"], dependencies=may_edit)
    api.add_api_route("/users/{username}", patch_user, methods=["PATCH"], dependencies=may_edit)
    api.add_api_route(
        "/users/{username}",
        delete_user,
        methods=["DELETE"],
        status_code=204,
        dependencies=may_edit,
    )
    return api
