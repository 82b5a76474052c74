"""What every page of one DAG shares: the check that the visitor may see the DAG (else 404,
as the API answers a hidden DAG) and may do what the page does there (else 403), and the
context its layout (templates/dag/base.html) needs."""

from __future__ import annotations

from typing import Any

from slipstream.auth.roles import Action
from slipstream.core.records import DagRecord
from slipstream.errors import DagNotFound
from slipstream.web.errors import PageError
from slipstream.web.visitor import Visitor

TAB_LABELS = {
    "grid": "Grid",
    "graph": "Graph",
    "runs": "Runs",
    "code": "Code",
    "details": "Details",
}


def check_dag(visitor: Visitor, dag: DagRecord, action: Action) -> None:
    """404 for a DAG the visitor may not see, 403 if they may see it but not do `action`."""
    if not visitor.sees_dag(dag.dag_id, dag.tags):
        raise DagNotFound(dag.dag_id)
    if not visitor.can_on_dag(action, dag.dag_id, dag.tags):
        raise PageError(
            403, detail=f"Your roles do not allow this on {dag.dag_id} ({action.value})."
        )


def dag_context(dag: DagRecord, active_tab: str, **more: Any) -> dict[str, Any]:
    """The layout's context (`dag`, `active_tab`: all it reads, so any page can extend it)
    with a title and the navigation entry, plus the page's own."""
    label = TAB_LABELS.get(active_tab)
    return {
        "title": f"{dag.dag_id} · {label}" if label else dag.dag_id,
        "nav_key": "dags",
        "dag": dag,
        "active_tab": active_tab,
        **more,
    }
