"""The log page of one task try, `/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/log`
(`?map_index=N&try=K`): the try's log read through the logs service the API uses, a try
selector, wrapping and search (static/log.js), the raw file as a download, a link to the same
log through the API, and a live tail while the try runs (the page's live stream follows the
topic `log:...` from the offset the page shows up to). A log larger than SHOWN_BYTES shows
its end, with earlier parts loaded on demand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response

from slipstream.auth.roles import Action
from slipstream.core.records import DagRecord, TaskInstance, TaskTry
from slipstream.core.states import TaskState
from slipstream.errors import DagNotFound, TaskInstanceNotFound
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.errors import PageError
from slipstream.web.live import htmx_event, run_topic
from slipstream.web.log_tail import LogKey
from slipstream.web.nav import NavItem
from slipstream.web.sessions import allowed
from slipstream.web.visitor import Visitor

NAV: NavItem | None = None
PATH = "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/log"
# The end of a log shown at first; each "Load earlier" adds as much again before it.
SHOWN_BYTES = 512 * 1024
_STILL_GOING = frozenset({TaskState.QUEUED, TaskState.RUNNING})

LogReader = Annotated[Visitor, Depends(allowed(Action.LOGS_READ))]


@dataclass(frozen=True, slots=True)
class Piece:
    """Part of a log: its text, where it starts, and whether there is more before it."""

    text: str
    start: int
    end: int

    @property
    def has_earlier(self) -> bool:
        return self.start > 0


def _dag(parts: WebParts, visitor: Visitor, dag_id: str) -> DagRecord:
    """The DAG, if the visitor may read its logs: 404 if hidden (or unknown), 403 if they
    see it without the right to read logs."""
    dag = parts.services.dags.get(dag_id)
    if not visitor.sees_dag(dag_id, dag.tags):
        raise DagNotFound(dag_id)
    if not visitor.can_on_dag(Action.LOGS_READ, dag_id, dag.tags):
        raise PageError(403, detail=f"Your roles do not allow reading the logs of {dag_id}.")
    return dag


def _try_number(ti: TaskInstance, given: str | None) -> int:
    """The try asked for (default: the latest), or 400/404."""
    if given is None or given == "":
        return ti.try_number
    try:
        number = int(given)
    except ValueError:
        raise PageError(400, detail="try must be a whole number") from None
    if number < 1:
        raise PageError(400, detail="try must be 1 or more")
    if number > ti.try_number:
        raise PageError(
            404, detail=f"{ti.task_id} has no try {number} (its latest is {ti.try_number})."
        )
    return number


def _map_index(given: str) -> int:
    try:
        number = int(given)
    except ValueError:
        raise PageError(400, detail="map_index must be a whole number") from None
    if number < -1:
        raise PageError(400, detail="map_index must be -1 or more")
    return number


def _piece(parts: WebParts, key: LogKey, end: int | None) -> Piece | None:
    """Up to SHOWN_BYTES of the log ending at `end` (default: its current end), starting at
    a line; None while the log does not exist."""
    logs = parts.services.logs
    size = logs.size(key.dag_id, key.run_id, key.task_id, key.try_number, key.map_index)
    if size is None:
        return None
    stop = size if end is None else min(end, size)
    start = max(0, stop - SHOWN_BYTES)
    try:
        chunk = logs.read(
            key.dag_id,
            key.run_id,
            key.task_id,
            key.try_number,
            offset=start,
            map_index=key.map_index,
            limit=stop - start,
        )
    except TaskInstanceNotFound:
        return None
    text = chunk.text
    if start > 0:
        # Begin at a whole line: the part line goes with the earlier piece.
        cut = text.find("\n")
        if cut >= 0:
            start += len(text[: cut + 1].encode())
            text = text[cut + 1 :]
    return Piece(text, start, chunk.offset)


def _urls(
    dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int
) -> dict[str, str]:
    base = PATH.format(
        dag_id=quote(dag_id, safe=""),
        run_id=quote(run_id, safe=""),
        task_id=quote(task_id, safe=""),
    )
    query: dict[str, int] = {"try": try_number}
    if map_index >= 0:
        query = {"map_index": map_index, **query}
    api = (
        f"/api/v1/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
        f"/taskInstances/{quote(task_id, safe='')}/logs/{try_number}?full_content=true"
    )
    if map_index >= 0:
        api += f"&map_index={map_index}"
    return {
        "page": f"{base}?{urlencode(query)}",
        "base": base,
        "download": f"{base}/download?{urlencode(query)}",
        "earlier": f"{base}/earlier?{urlencode(query)}",
        "api": api,
        "task": (
            f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
            f"/tasks/{quote(task_id, safe='')}"
            + (f"?map_index={map_index}" if map_index >= 0 else "")
        ),
    }


def log_page(
    request: Request,
    dag_id: str,
    run_id: str,
    task_id: str,
    visitor: LogReader,
    parts: PartsDep,
    map_index: Annotated[str, Query()] = "-1",
    try_: Annotated[str | None, Query(alias="try")] = None,
) -> Response:
    dag = _dag(parts, visitor, dag_id)
    index = _map_index(map_index)
    ti, run = parts.services.runs.task_instance(dag_id, run_id, task_id, index)
    tries: list[TaskTry] = parts.services.runs.tries(dag_id, run_id, task_id, index)
    context: dict[str, object] = {
        "title": f"Log · {task_id}",
        "dag": dag,
        "active_tab": "grid",
        "run": run,
        "ti": ti,
        "tries": sorted(tries, key=lambda t: t.try_number),
        "map_index": index,
    }
    if ti.try_number == 0:
        context.update(try_number=0, urls=_urls(dag_id, run_id, task_id, index, 1), piece=None)
        topic = run_topic(dag_id, run_id)
        context.update(
            following=False, try_state=ti.state, run_topic=topic, run_trigger=htmx_event(topic)
        )
        return parts.templates.render(request, "logs.html", context)
    number = _try_number(ti, try_)
    key = LogKey(dag_id, run_id, task_id, index, number)
    try_state = next((t.state for t in tries if t.try_number == number), ti.state)
    if number == ti.try_number:
        try_state = ti.state
    following = number == ti.try_number and ti.state in _STILL_GOING
    context.update(
        try_number=number,
        urls=_urls(dag_id, run_id, task_id, index, number),
        piece=_piece(parts, key, None),
        following=following,
        try_state=try_state,
        log_topic=key.topic,
        run_topic=key.run_topic,
        run_trigger=htmx_event(key.run_topic),
    )
    return parts.templates.render(request, "logs.html", context)


def earlier(
    request: Request,
    dag_id: str,
    run_id: str,
    task_id: str,
    visitor: LogReader,
    parts: PartsDep,
    end: Annotated[int, Query(ge=0)],
    map_index: Annotated[str, Query()] = "-1",
    try_: Annotated[str | None, Query(alias="try")] = None,
) -> Response:
    """The part of the log before `end` (a fragment the page puts before what it shows)."""
    _dag(parts, visitor, dag_id)
    index = _map_index(map_index)
    ti, _ = parts.services.runs.task_instance(dag_id, run_id, task_id, index)
    number = _try_number(ti, try_)
    piece = _piece(parts, LogKey(dag_id, run_id, task_id, index, number), end)
    if piece is None:
        raise PageError(404, detail="This try has no log yet.")
    return parts.templates.render(
        request,
        "logs/_earlier.html",
        {"piece": piece, "urls": _urls(dag_id, run_id, task_id, index, number)},
    )


def download(
    dag_id: str,
    run_id: str,
    task_id: str,
    visitor: LogReader,
    parts: PartsDep,
    map_index: Annotated[str, Query()] = "-1",
    try_: Annotated[str | None, Query(alias="try")] = None,
) -> Response:
    """The try's log file as it is, as a text/plain attachment."""
    _dag(parts, visitor, dag_id)
    index = _map_index(map_index)
    ti, _ = parts.services.runs.task_instance(dag_id, run_id, task_id, index)
    number = _try_number(ti, try_)
    if number == 0:
        raise PageError(404, detail=f"{task_id} has not started a try yet.")
    path = parts.services.logs.path(dag_id, run_id, task_id, number, index)
    if not path.is_file():
        raise PageError(404, detail="This try has no log yet.")
    mapped = f"__{index}" if index >= 0 else ""
    name = f"{dag_id}__{run_id}__{task_id}{mapped}__{number}.log".replace(":", "_")
    return FileResponse(
        path,
        media_type="text/plain; charset=utf-8",
        filename=name,
        content_disposition_type="attachment",
    )


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, log_page, methods=["GET"])
    pages.add_api_route(f"{PATH}/earlier", earlier, methods=["GET"])
    pages.add_api_route(f"{PATH}/download", download, methods=["GET"])
    return pages
