"""The DAGs page: every DAG the visitor may see, with its owner, tags, schedule, next run,
last runs and run counts; search, filters and pages; the import errors banner; and pausing or
unpausing a DAG through the same service as the API's PATCH. The results refresh themselves
when a run of a DAG the visitor may see changes (live topic `dags`), keeping what they show."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from slipstream.auth.permissions import DagScope
from slipstream.auth.roles import Action
from slipstream.core.records import ImportErrorRecord
from slipstream.errors import DagNotFound
from slipstream.services.dag_overview import LAST_RUN_FILTERS, NO_RUN, DagsOverview
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.errors import PageError, is_htmx
from slipstream.web.forms import form_of
from slipstream.web.nav import NavItem
from slipstream.web.paging import page_number
from slipstream.web.paths import local_path
from slipstream.web.sessions import VisitorDep, allowed
from slipstream.web.visitor import Visitor

PATH = "/dags"
NAV: NavItem | None = NavItem("dags", "DAGs", PATH, Action.DAGS_READ)

PER_PAGE = 50
RECENT_RUNS = 10
IMPORT_ERRORS_SHOWN = 20
# The element htmx swaps when the filters change: the page answers it with that part alone.
RESULTS_ID = "dag-results"

STATUS_FILTERS = {"all": None, "active": False, "paused": True}
LAST_RUN_LABELS = {"any": "Any", **{s: s.replace("_", " ").capitalize() for s in LAST_RUN_FILTERS}}
LAST_RUN_LABELS[NO_RUN] = "No runs yet"

DagReader = Annotated[Visitor, Depends(allowed(Action.DAGS_READ))]


@dataclass(frozen=True, slots=True)
class DagsQuery:
    """The page's filters, as its URL carries them."""

    search: str = ""
    tags: tuple[str, ...] = ()
    status: str = "all"
    last_run: str = "any"
    page: int = 1

    @classmethod
    def parse(
        cls, search: str, tags: list[str] | None, status: str, last_run: str, page: str
    ) -> DagsQuery:
        """The filters, or 400 naming the one that is wrong."""
        if status not in STATUS_FILTERS:
            raise PageError(400, detail=f"status must be one of {', '.join(STATUS_FILTERS)}")
        if last_run not in LAST_RUN_LABELS:
            raise PageError(400, detail=f"last_run must be one of {', '.join(LAST_RUN_LABELS)}")
        number = page_number(page)
        chosen = tuple(dict.fromkeys(t for t in tags or () if t))
        return cls(search.strip(), chosen, status, last_run, number)

    def url(self, **changes: object) -> str:
        """This page's URL with some filters changed (the page number back to 1 unless given)."""
        changed = replace(self, **{"page": 1, **changes})  # type: ignore[arg-type]
        params: list[tuple[str, str | int]] = []
        if changed.search:
            params.append(("search", changed.search))
        params.extend(("tag", tag) for tag in changed.tags)
        if changed.status != "all":
            params.append(("status", changed.status))
        if changed.last_run != "any":
            params.append(("last_run", changed.last_run))
        if changed.page != 1:
            params.append(("page", changed.page))
        return f"{PATH}?{urlencode(params)}" if params else PATH

    @property
    def is_filtered(self) -> bool:
        return bool(self.search or self.tags or self.status != "all" or self.last_run != "any")


@dataclass(frozen=True, slots=True)
class ImportErrors:
    shown: list[ImportErrorRecord]
    total: int


def _overview(parts: WebParts, visitor: Visitor, query: DagsQuery) -> DagsOverview:
    return parts.services.dag_overview.overview(
        scope=visitor.scope(Action.DAGS_READ),
        limit=PER_PAGE,
        offset=(query.page - 1) * PER_PAGE,
        paused=STATUS_FILTERS[query.status],
        dag_id_pattern=query.search or None,
        tags=list(query.tags) or None,
        last_run_state=None if query.last_run == "any" else query.last_run,
        recent_runs=RECENT_RUNS,
    )


def _import_errors(parts: WebParts, visitor: Visitor) -> ImportErrors:
    """Files whose last parse failed, as the API lists them to this visitor (only files of
    DAGs they may see when they may not see all; tracebacks redacted where the file also
    defines DAGs hidden from them)."""
    if not visitor.can(Action.IMPORT_ERRORS_READ):
        return ImportErrors([], 0)
    errors, total = parts.services.dags.import_errors(
        limit=IMPORT_ERRORS_SHOWN, scope=visitor.scope(Action.DAGS_READ)
    )
    return ImportErrors(errors, total)


def dags_page(
    request: Request,
    visitor: DagReader,
    parts: PartsDep,
    search: Annotated[str, Query()] = "",
    tag: Annotated[list[str] | None, Query()] = None,
    status: Annotated[str, Query()] = "all",
    last_run: Annotated[str, Query()] = "any",
    page: Annotated[str, Query()] = "1",
) -> Response:
    query = DagsQuery.parse(search, tag, status, last_run, page)
    overview = _overview(parts, visitor, query)
    pages = max(1, -(-overview.total // PER_PAGE))
    context = {
        "title": "DAGs",
        "nav_key": "dags",
        "query": query,
        "overview": overview,
        "pages": pages,
        "first": (query.page - 1) * PER_PAGE + 1,
        "last": (query.page - 1) * PER_PAGE + len(overview.dags),
        "status_filters": STATUS_FILTERS,
        "last_run_labels": LAST_RUN_LABELS,
        "results_id": RESULTS_ID,
        "here": query.url(page=query.page),
    }
    partial = (
        is_htmx(request)
        and request.headers.get("HX-Target") == RESULTS_ID
        and request.headers.get("HX-History-Restore-Request") != "true"
    )
    if partial:
        return parts.templates.render(request, "dags/_results.html", context)
    context["import_errors"] = _import_errors(parts, visitor)
    return parts.templates.render(request, "dags.html", context)


async def set_paused(
    request: Request, dag_id: str, visitor: VisitorDep, parts: PartsDep
) -> Response:
    """Pause or unpause one DAG (the form's `is_paused`: true or false). 404 for a DAG the
    visitor may not see, 403 if they may see but not edit it. htmx gets the DAG's row back;
    a plain form post is sent back to the page it came from."""
    form = await form_of(request)
    raw = form.get("is_paused")
    if raw not in ("true", "false"):
        raise PageError(400, detail="is_paused must be true or false")
    is_paused = raw == "true"

    def change() -> DagsOverview:
        dag = parts.services.dags.get(dag_id)
        if not visitor.sees_dag(dag_id, dag.tags):
            raise DagNotFound(dag_id)
        if not visitor.can_on_dag(Action.DAGS_EDIT, dag_id, dag.tags):
            raise PageError(403, detail=f"Your roles do not allow pausing or unpausing {dag_id}.")
        parts.services.dags.set_paused(dag_id, is_paused, by=visitor.user.username)
        return parts.services.dag_overview.overview(
            scope=DagScope(dag_ids=frozenset({dag_id})), limit=1, recent_runs=RECENT_RUNS
        )

    overview = await run_in_threadpool(change)
    if not is_htmx(request):
        return RedirectResponse(local_path(form.get("next"), PATH), status_code=303)
    if not overview.dags:  # deleted in between
        raise DagNotFound(dag_id)
    return parts.templates.render(
        request,
        "dags/_row.html",
        {"summary": overview.dags[0], "here": local_path(form.get("next"), PATH)},
    )


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, dags_page, methods=["GET"])
    pages.add_api_route(f"{PATH}/{{dag_id}}/pause", set_paused, methods=["POST"])
    return pages
