"""A DAG's Grid: its last runs as columns and its tasks as rows (task groups collapsible,
mapped tasks as one row with their count and states), each cell linking to that task
instance; the grid region refreshes when the DAG's runs change (live topic `dag:<id>`).
`/dags/<id>` itself leads here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup, escape

from slipstream.auth.roles import Action
from slipstream.services.dag_view import MAX_GRID_RUNS, Grid, GridRow
from slipstream.web.dag_pages import check_dag, dag_context
from slipstream.web.deps import PartsDep
from slipstream.web.errors import PageError, is_htmx
from slipstream.web.nav import NavItem
from slipstream.web.sessions import VisitorDep
from slipstream.web.templates import STATE_GLYPHS

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
    "up_for_reschedule",
    "deferred",
    "upstream_failed",
    "skipped",
    "removed",
    "none",
)


def cell_renderer(grid: Grid) -> Callable[[GridRow], Markup]:
    """A row's cells as HTML, built here rather than in the template: 100 tasks by 25 runs are
    2,500 cells, which Jinja took ten times as long to write. Each cell is its state's colour
    and glyph, its words in `title` (the link's accessible name; the glyph is hidden from
    screen readers), and for a task a link to that task instance (the table's hx-boost sends
    it into the side panel)."""
    base = f"/dags/{quote(grid.dag.dag_id, safe='')}/runs/"
    runs = [quote(run.run_id, safe="") for run in grid.runs]

    def render(row: GridRow) -> Markup:
        return Markup("".join(_cell_html(row, runs, base)))

    return render


def _cell_html(row: GridRow, runs: Sequence[str], base: str) -> list[str]:
    task = quote(row.id, safe="")
    name = escape(row.id)
    cells = []
    for cell, run in zip(row.cells, runs, strict=True):
        if cell is None:
            cells.append("<td></td>")
            continue
        state = cell.state.value
        glyph = STATE_GLYPHS.get(state, "?")
        words = state.replace("_", " ")
        if row.kind == "group":
            title = escape(f"{row.label}: {words} ({cell.summary})")
            cells.append(
                f'<td><span class="cell sq state-{state} is-group" role="img" title="{title}">'
                f'<span aria-hidden="true">{glyph}</span></span></td>'
            )
            continue
        if cell.mapped:
            title = escape(f"{cell.mapped} mapped: {cell.summary}")
            shown = str(cell.mapped) if cell.mapped < 100 else "99+"
            kind = " is-mapped"
        else:
            title = escape(f"{words}, try {cell.try_number}" if cell.try_number > 1 else words)
            shown, kind = glyph, ""
        cells.append(
            f'<td><a class="cell sq state-{state}{kind}" href="{base}{run}/tasks/{task}"'
            f' title="{name}: {title}"><span aria-hidden="true">{shown}</span></a></td>'
        )
    return cells


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
        cells_of=cell_renderer(grid),
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
