"""/api/v1 Import errors: the DAG files that failed to import, with their tracebacks."""

# No `from __future__ import annotations`: the routes' Annotated dependencies name values local
# to router(), which FastAPI could not resolve from strings.

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from slipstream.api.deps import ApiServices
from slipstream.api.routes.v1.common import Page, order_by, paging
from slipstream.api.routes.v1.dag_models import (
    ImportError,
    ImportErrorCollection,
    import_error_body,
)
from slipstream.api.security import Principal, Security
from slipstream.auth.roles import Action

_ORDERABLE = {
    "import_error_id": "import_error_id",
    "timestamp": "timestamp",
    "filename": "filename",
}


def router(services: ApiServices, security: Security) -> APIRouter:
    api = APIRouter(tags=["ImportError"])
    page_of = paging(services.settings.api_max_page_limit)

    @api.get("/importErrors")
    def get_import_errors(
        principal: Annotated[Principal, Depends(security.authorize(Action.IMPORT_ERRORS_READ))],
        page: Annotated[Page, Depends(page_of)],
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

    @api.get("/importErrors/{import_error_id}")
    def get_import_error(
        principal: Annotated[Principal, Depends(security.authorize(Action.IMPORT_ERRORS_READ))],
        import_error_id: int,
    ) -> ImportError:
        error = services.dags.import_error(
            import_error_id, scope=principal.scope_for(Action.DAGS_READ)
        )
        return import_error_body(error)

    return api
