"""/api/v1/variables as Airflow 2.10: list (keys and descriptions), get, create, update with
`update_mask`, delete, each audited as the caller's (services/variables.py). A secret-looking
key's value is answered as `***`."""

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
from slipstream.authoring.secrets import MASK, is_sensitive
from slipstream.core.secrets import StoredVariable
from slipstream.errors import InvalidInputError, VariableNotFound

VariableCreator = Annotated[Principal, Depends(authorized(Action.VARIABLES_CREATE))]
VariableEditor = Annotated[Principal, Depends(authorized(Action.VARIABLES_EDIT))]
VariableDeleter = Annotated[Principal, Depends(authorized(Action.VARIABLES_DELETE))]


class VariableCollectionItem(BaseModel):
    key: str
    description: str | None


class VariableCollection(BaseModel):
    variables: list[VariableCollectionItem]
    total_entries: int


class VariableBody(BaseModel):
    key: str
    value: str
    description: str | None


ORDER_BY = {"key": "key", "id": "id"}
WRITABLE = ("key", "value", "description")


def variable_body(variable: StoredVariable) -> VariableBody:
    value = MASK if is_sensitive(variable.key) else variable.val
    return VariableBody(key=variable.key, value=value, description=variable.description)


def not_found() -> ApiError:
    return ApiError(404, "Variable does not exist")


def get_variables(
    services: ServicesDep,
    limit: Annotated[int, Query()] = 100,
    offset: Annotated[int, Query()] = 0,
    order: Annotated[str | None, Query(alias="order_by")] = None,
) -> VariableCollection:
    page = page_of(limit, offset, services.settings.api_max_page_limit)
    column, descending = order_by(order, ORDER_BY, "key")
    found, total = services.variables.list_page(
        page.limit, page.offset, order_by=column, descending=descending
    )
    return VariableCollection(
        variables=[VariableCollectionItem(key=v.key, description=v.description) for v in found],
        total_entries=total,
    )


def get_variable(services: ServicesDep, variable_key: str) -> VariableBody:
    try:
        return variable_body(services.variables.get(variable_key))
    except VariableNotFound:
        raise not_found() from None


def post_variables(
    principal: VariableCreator, services: ServicesDep, data: Annotated[dict[str, Any], Body()]
) -> VariableBody:
    """Create the variable, or overwrite it (Airflow's Variable.set)."""
    fields.check_fields(data, writable=WRITABLE, required=("key", "value"))
    key = fields.string(data, "key", min_length=1) or ""
    value = fields.string(data, "value") or ""
    description = _description(data)
    return variable_body(
        services.variables.set(key, value, description, by=principal.user.username)
    )


def patch_variable(
    principal: VariableEditor,
    services: ServicesDep,
    variable_key: str,
    data: Annotated[dict[str, Any], Body()],
    mask: Annotated[list[str] | None, Query(alias="update_mask")] = None,
) -> VariableBody:
    """Change the value and/or description (only the fields `update_mask` names, if given)."""
    fields.check_fields(data, writable=WRITABLE, required=("key", "value"))
    if fields.string(data, "key") != variable_key:
        raise InvalidInputError(
            "Invalid post body: key from request body doesn't match uri parameter", field="key"
        )
    fields.string(data, "value")
    updates: dict[str, Any] = {k: data[k] for k in ("value", "description") if k in data}
    masked = fields.update_mask(mask)
    if masked is not None:
        for name in masked:
            if name == "key":
                raise InvalidInputError("'key' is unknown or cannot be updated.", field="key")
            if name not in ("value", "description"):
                raise InvalidInputError(f"'{name}' is unknown or cannot be updated.", field=name)
        updates = {name: data.get(name) for name in masked}
    try:
        return variable_body(
            services.variables.update(
                variable_key,
                value=updates.get("value"),
                description=_description(updates),
                set_description="description" in updates,
                by=principal.user.username,
            )
        )
    except VariableNotFound:
        raise not_found() from None


def delete_variable(
    principal: VariableDeleter, services: ServicesDep, variable_key: str
) -> Response:
    try:
        services.variables.delete(variable_key, by=principal.user.username)
    except VariableNotFound:
        raise not_found() from None
    return Response(status_code=204)


def _description(data: dict[str, Any]) -> str | None:
    value = data.get("description")
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(
            f"{value!r} is not of type 'string' - 'description'", field="description"
        )
    return value


def router() -> APIRouter:
    api = APIRouter()
    tags: list[str | Any] = ["Variable"]

    def may(action: Action) -> list[Any]:
        return [Depends(authorized(action))]

    api.add_api_route(
        "/variables",
        get_variables,
        methods=["GET"],
        dependencies=may(Action.VARIABLES_READ),
        tags=tags,
    )
    api.add_api_route(
        "/variables",
        post_variables,
        methods=["POST"],
        tags=tags,
    )
    api.add_api_route(
        "/variables/{variable_key}",
        get_variable,
        methods=["GET"],
        dependencies=may(Action.VARIABLES_READ),
        tags=tags,
    )
    api.add_api_route(
        "/variables/{variable_key}",
        patch_variable,
        methods=["PATCH"],
        tags=tags,
    )
    api.add_api_route(
        "/variables/{variable_key}",
        delete_variable,
        methods=["DELETE"],
        status_code=204,
        tags=tags,
    )
    return api
