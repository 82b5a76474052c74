"""/api/v1 eventLogs, as Airflow 2.10's stable API: the audit log, filtered and paged, and one
entry by id. Entries about a DAG the caller may not read are not shown (nor counted)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from slipstream.api.deps import ServicesDep, authorized
from slipstream.api.errors import ApiError
from slipstream.api.routes.v1.common import iso, optional_datetime, order_by, page_of
from slipstream.api.security import Principal
from slipstream.auth.roles import Action
from slipstream.core.event_log import EventFilter, EventLogEntry
from slipstream.errors import EventLogNotFound

AuditReader = Annotated[Principal, Depends(authorized(Action.AUDIT_LOGS_READ))]


class EventLogBody(BaseModel):
    event_log_id: int
    when: str
    dag_id: str | None
    task_id: str | None
    run_id: str | None
    map_index: int | None
    try_number: int | None
    event: str
    execution_date: str | None
    owner: str | None
    extra: str | None


class EventLogCollection(BaseModel):
    event_logs: list[EventLogBody]
    total_entries: int


ORDER_BY = {name: name for name in ("event_log_id", "when", "dag_id", "task_id", "run_id")}
ORDER_BY.update({"event": "event", "execution_date": "execution_date", "owner": "owner"})


def event_log_body(entry: EventLogEntry) -> EventLogBody:
    return EventLogBody(
        event_log_id=entry.id,
        when=iso(entry.dttm) or "",
        dag_id=entry.dag_id,
        task_id=entry.task_id,
        run_id=entry.run_id,
        map_index=entry.map_index,
        try_number=entry.try_number,
        event=entry.event,
        execution_date=iso(entry.logical_date),
        owner=entry.owner,
        extra=entry.extra,
    )


def _events(raw: str | None) -> list[str] | None:
    """A comma-separated list of event names (Airflow's form for included/excluded_events)."""
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def get_event_logs(
    principal: AuditReader,
    services: ServicesDep,
    limit: Annotated[int, Query()] = 100,
    offset: Annotated[int, Query()] = 0,
    order: Annotated[str | None, Query(alias="order_by")] = None,
    dag_id: str | None = None,
    task_id: str | None = None,
    run_id: str | None = None,
    event: str | None = None,
    owner: str | None = None,
    before: str | None = None,
    after: str | None = None,
    included_events: str | None = None,
    excluded_events: str | None = None,
) -> EventLogCollection:
    """Audit entries matching every filter given, `order_by` event_log_id by default."""
    page = page_of(limit, offset, services.settings.api_max_page_limit)
    column, descending = order_by(order, ORDER_BY, "event_log_id")
    where = EventFilter(
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        event=event,
        owner=owner,
        before=optional_datetime(before, "before"),
        after=optional_datetime(after, "after"),
        included_events=_events(included_events),
        excluded_events=_events(excluded_events),
    )
    found, total = services.event_logs.list_events(
        where,
        scope=principal.scope_for(Action.AUDIT_LOGS_READ),
        limit=page.limit,
        offset=page.offset,
        order_by=column,
        descending=descending,
    )
    return EventLogCollection(event_logs=[event_log_body(e) for e in found], total_entries=total)


def get_event_log(event_log_id: int, principal: AuditReader, services: ServicesDep) -> EventLogBody:
    try:
        entry = services.event_logs.get(
            event_log_id, scope=principal.scope_for(Action.AUDIT_LOGS_READ)
        )
    except EventLogNotFound:
        raise ApiError(404, f"Event Log with id: {event_log_id} not found") from None
    return event_log_body(entry)


def router() -> APIRouter:
    api = APIRouter(tags=["EventLog"])
    api.add_api_route("/eventLogs", get_event_logs, methods=["GET"])
    api.add_api_route("/eventLogs/{event_log_id}", get_event_log, methods=["GET"])
    return api
