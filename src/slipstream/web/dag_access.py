"""A DAG's pages ask one question first: may this visitor do this on this DAG? The answer is
the API's: a DAG they may not see (or that does not exist) is not found (404), one they see
but may not act on is refused (403)."""

from __future__ import annotations

from slipstream.auth.roles import Action
from slipstream.core.records import DagRecord
from slipstream.errors import DagNotFound
from slipstream.web.deps import WebParts
from slipstream.web.errors import PageError
from slipstream.web.visitor import Visitor

# What each action is called when a page refuses it.
_DOING = {
    Action.RUNS_READ: "reading the runs of",
    Action.RUNS_CREATE: "triggering",
    Action.RUNS_EDIT: "changing the runs of",
    Action.RUNS_DELETE: "deleting the runs of",
}


def dag_for(parts: WebParts, visitor: Visitor, dag_id: str, action: Action) -> DagRecord:
    """The DAG, if `visitor` may do `action` on it (reads the database: call it from the
    threadpool)."""
    dag = parts.services.dags.get(dag_id)
    if not visitor.sees_dag(dag_id, dag.tags):
        raise DagNotFound(dag_id)
    if not visitor.can_on_dag(action, dag_id, dag.tags):
        doing = _DOING.get(action, action.value)
        raise PageError(403, detail=f"Your roles do not allow {doing} {dag_id}.")
    return dag
