"""A DAG's Grid: its last runs as columns and its tasks as rows (task groups collapsible,
mapped tasks as one row with their count and states), each cell linking to that task
instance; the grid region refreshes when the DAG's runs change (live topic `dag:<id>`).
`/dags/<id>` itself leads here."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from slipstream.auth.roles import Action
from slipstream.services.dag_view import MAX_GRID_RUNS
from slipstream.web.dag_pages import check_dag, dag_context
from slipstream.web.deps import PartsDep
from slipstream.web.errors import PageError, is_htmx
from slipstream.web.nav import NavItem
from slipstream.web.sessions import VisitorDep

NAV: NavItem | None = None
DEFAULT_RUNS = 25
RUN_CHOICES = (10, 25, 50, 100)
# The element htmx swaps on a live update: the page answers it with that part alone.
GRID_ID = "dag-grid"
PANEL_ID = "ti-panel"
STATES_SHOWN = (
    "success",
    "failed",
    "running",
    "queued",
    "scheduled",
    "up_for_retry",
    "upstream_failed",
    "skipped",
    "removed",
    "none",
)


def _runs(raw: str) -> int:
    """The number of runs asked for: a whole number of at least 1, capped at MAX_GRID_RUNS."""
    try:
        number = int(raw)
    except ValueError:
        raise PageError(400, detail=f"runs must be a whole number, not {raw!r}") from None
    if number < 1:
        raise PageError(400, detail="runs must be 1 or more")
    return min(number, MAX_GRID_RUNS)


async def dag_home(dag_id: str) -> RedirectResponse:
    return RedirectResponse(f"/dags/{quote(dag_id, safe='')}/grid", status_code=307)


def grid_page(
    request: Request,
    dag_id: str,
    visitor: VisitorDep,
    parts: PartsDep,
    runs: Annotated[str, Query()] = str(DEFAULT_RUNS),
) -> Response:
    count = _runs(runs)
    grid = parts.services.dag_view.grid(dag_id, runs=count)
    check_dag(visitor, grid.dag, Action.TASKS_READ)
    here = f"/dags/{quote(dag_id, safe='')}/grid"
    context = dag_context(
        grid.dag,
        "grid",
        grid=grid,
        run_count=count,
        run_choices=RUN_CHOICES,
        grid_id=GRID_ID,
        panel_id=PANEL_ID,
        grid_url=here if count == DEFAULT_RUNS else f"{here}?runs={count}",
        states_shown=STATES_SHOWN,
    )
    partial = (
        is_htmx(request)
        and request.headers.get("HX-Target") == GRID_ID
        and request.headers.get("HX-History-Restore-Request") != "true"
    )
    return parts.templates.render(request, "grid/_grid.html" if partial else "grid.html", context)


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route("/dags/{dag_id}", dag_home, methods=["GET"])
    pages.add_api_route("/dags/{dag_id}/grid", grid_page, methods=["GET"])
    return pages
