"""/api/v1 Import errors: the DAG files that failed to import, with their tracebacks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from slipstream.api.deps import ServicesDep, authorized
from slipstream.api.routes.v1.common import PageDep, order_by
from slipstream.api.routes.v1.dag_models import (
    ImportError,
    ImportErrorCollection,
    import_error_body,
)
from slipstream.api.security import Principal
from slipstream.auth.roles import Action

_ORDERABLE = {
    "import_error_id": "import_error_id",
    "timestamp": "timestamp",
    "filename": "filename",
}

ImportErrorReader = Annotated[Principal, Depends(authorized(Action.IMPORT_ERRORS_READ))]


def get_import_errors(
    principal: ImportErrorReader,
    page: PageDep,
    services: ServicesDep,
    order: Annotated[str | None, Query(alias="order_by")] = None,
) -> ImportErrorCollection:
    """Files whose last parse failed. A caller who cannot read every DAG sees only files
    defining a DAG they can read, and the traceback only if they can read all of them."""
    column, descending = order_by(order, _ORDERABLE, "import_error_id")
    errors, total = services.dags.import_errors(
        limit=page.limit,
        offset=page.offset,
        order_by=f"-{column}" if descending else column,
        scope=principal.scope_for(Action.DAGS_READ),
    )
    return ImportErrorCollection(
        import_errors=[import_error_body(e) for e in errors], total_entries=total
    )


def get_import_error(
    principal: ImportErrorReader, services: ServicesDep, import_error_id: int
) -> ImportError:
    error = services.dags.import_error(import_error_id, scope=principal.scope_for(Action.DAGS_READ))
    return import_error_body(error)


def router() -> APIRouter:
    api = APIRouter(tags=["ImportError"])
    api.add_api_route("/importErrors", get_import_errors, methods=["GET"])
    api.add_api_route("/importErrors/{import_error_id}", get_import_error, methods=["GET"])
    return api
