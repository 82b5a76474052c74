"""/api/v1 datasets (Airflow 2.10's name for assets): listing and reading them, their events,
recording an event by hand, the events that triggered a run, and the queue of events waiting
for a DAG's next asset-triggered run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from slipstream.api.deps import ServicesDep, authorized
from slipstream.api.routes.v1.common import PageDep, iso, order_by
from slipstream.api.routes.v1.dag_runs import check_run_dag
from slipstream.api.routes.v1.run_shapes import Strict
from slipstream.api.security import Principal
from slipstream.auth.roles import Action
from slipstream.core.records import AssetEventRecord, AssetRecord

DatasetReader = Annotated[Principal, Depends(authorized(Action.DATASETS_READ))]
DatasetCreator = Annotated[Principal, Depends(authorized(Action.DATASETS_CREATE))]
DatasetDeleter = Annotated[Principal, Depends(authorized(Action.DATASETS_DELETE))]

_DATASET_ORDER = {"id": "id", "uri": "uri", "created_at": "created_at", "updated_at": "updated_at"}
_EVENT_ORDER = {
    "id": "id",
    "timestamp": "timestamp",
    "source_dag_id": "source_dag_id",
    "source_task_id": "source_task_id",
    "source_run_id": "source_run_id",
    "source_map_index": "source_map_index",
    "dataset_id": "dataset_id",
}


class DagScheduleDatasetReference(BaseModel):
    dag_id: str
    created_at: str
    updated_at: str


class TaskOutletDatasetReference(BaseModel):
    dag_id: str
    task_id: str
    created_at: str
    updated_at: str


class DatasetBody(BaseModel):
    id: int
    uri: str
    extra: dict[str, Any]
    created_at: str
    updated_at: str
    consuming_dags: list[DagScheduleDatasetReference]
    producing_tasks: list[TaskOutletDatasetReference]
    aliases: list[dict[str, Any]]


class DatasetCollection(BaseModel):
    datasets: list[DatasetBody]
    total_entries: int


class BasicDAGRun(BaseModel):
    run_id: str
    dag_id: str


class DatasetEventBody(BaseModel):
    id: int
    dataset_id: int
    dataset_uri: str
    extra: dict[str, Any]
    source_dag_id: str | None
    source_task_id: str | None
    source_run_id: str | None
    source_map_index: int
    created_dagruns: list[BasicDAGRun]
    timestamp: str


class DatasetEventCollection(BaseModel):
    dataset_events: list[DatasetEventBody]
    total_entries: int


class CreateDatasetEvent(Strict):
    dataset_uri: str
    extra: dict[str, Any] | None = None


class QueuedEvent(BaseModel):
    uri: str
    dag_id: str
    created_at: str


class QueuedEventCollection(BaseModel):
    queued_events: list[QueuedEvent]
    total_entries: int


def _dataset(record: AssetRecord) -> DatasetBody:
    created, updated = iso(record.created_at) or "", iso(record.updated_at) or ""
    return DatasetBody(
        id=record.id,
        uri=record.uri,
        extra=dict(record.extra),
        created_at=created,
        updated_at=updated,
        consuming_dags=[
            DagScheduleDatasetReference(dag_id=d, created_at=created, updated_at=updated)
            for d in record.consuming_dags
        ],
        producing_tasks=[
            TaskOutletDatasetReference(dag_id=d, task_id=t, created_at=created, updated_at=updated)
            for d, t in record.producing_tasks
        ],
        aliases=[],
    )


def _event(record: AssetEventRecord) -> DatasetEventBody:
    return DatasetEventBody(
        id=record.id,
        dataset_id=record.asset_id,
        dataset_uri=record.uri,
        extra=dict(record.extra),
        source_dag_id=record.source_dag_id,
        source_task_id=record.source_task_id,
        source_run_id=record.source_run_id,
        source_map_index=record.source_map_index,
        created_dagruns=[BasicDAGRun(dag_id=d, run_id=r) for d, r in record.created_runs],
        timestamp=iso(record.timestamp) or "",
    )


def get_datasets(
    principal: DatasetReader,
    page: PageDep,
    services: ServicesDep,
    uri_pattern: str | None = None,
    dag_ids: str | None = None,
    order_by_: Annotated[str | None, Query(alias="order_by")] = None,
) -> DatasetCollection:
    """Datasets whose URI contains `uri_pattern`, consumed or produced by one of `dag_ids`
    (comma-separated)."""
    column, descending = order_by(order_by_, _DATASET_ORDER, "id")
    ids = [d.strip() for d in dag_ids.split(",") if d.strip()] if dag_ids else None
    found, total = services.assets.list_assets(
        uri_pattern=uri_pattern,
        dag_ids=ids,
        order_by=column,
        descending=descending,
        limit=page.limit,
        offset=page.offset,
    )
    return DatasetCollection(datasets=[_dataset(r) for r in found], total_entries=total)


def get_dataset(uri: str, principal: DatasetReader, services: ServicesDep) -> DatasetBody:
    return _dataset(services.assets.get(uri))


def get_dataset_events(
    principal: DatasetReader,
    page: PageDep,
    services: ServicesDep,
    dataset_id: int | None = None,
    source_dag_id: str | None = None,
    source_task_id: str | None = None,
    source_run_id: str | None = None,
    source_map_index: int | None = None,
    order_by_: Annotated[str | None, Query(alias="order_by")] = None,
) -> DatasetEventCollection:
    column, descending = order_by(order_by_, _EVENT_ORDER, "timestamp")
    found, total = services.assets.events(
        asset_id=dataset_id,
        source_dag_id=source_dag_id,
        source_task_id=source_task_id,
        source_run_id=source_run_id,
        source_map_index=source_map_index,
        order_by=column,
        descending=descending,
        limit=page.limit,
        offset=page.offset,
    )
    return DatasetEventCollection(dataset_events=[_event(r) for r in found], total_entries=total)


def create_dataset_event(
    body: CreateDatasetEvent, principal: DatasetCreator, services: ServicesDep
) -> DatasetEventBody:
    """Record an event of a known dataset; DAGs scheduled on it may start a run."""
    return _event(services.assets.create_event(body.dataset_uri, body.extra))


def get_upstream_dataset_events(
    dag_id: str, dag_run_id: str, principal: DatasetReader, services: ServicesDep
) -> DatasetEventCollection:
    """The dataset events that triggered a run."""
    check_run_dag(services, principal, Action.RUNS_READ, dag_id)
    found = services.assets.events_of_run(dag_id, dag_run_id)
    return DatasetEventCollection(
        dataset_events=[_event(r) for r in found], total_entries=len(found)
    )


def _queued(found: list[tuple[str, str, Any]]) -> QueuedEventCollection:
    events = [QueuedEvent(dag_id=d, uri=u, created_at=iso(c) or "") for d, u, c in found]
    return QueuedEventCollection(queued_events=events, total_entries=len(events))


def get_dag_dataset_queued_event(
    dag_id: str, uri: str, principal: DatasetReader, services: ServicesDep
) -> QueuedEvent:
    check_run_dag(services, principal, Action.DAGS_READ, dag_id)
    ((found_dag, found_uri, created),) = services.assets.queued_events(dag_id=dag_id, uri=uri)
    return QueuedEvent(dag_id=found_dag, uri=found_uri, created_at=iso(created) or "")


def delete_dag_dataset_queued_event(
    dag_id: str, uri: str, principal: DatasetDeleter, services: ServicesDep
) -> Response:
    check_run_dag(services, principal, Action.DAGS_READ, dag_id)
    services.assets.delete_queued_events(dag_id=dag_id, uri=uri)
    return Response(status_code=204)


def get_dag_dataset_queued_events(
    dag_id: str, principal: DatasetReader, services: ServicesDep
) -> QueuedEventCollection:
    check_run_dag(services, principal, Action.DAGS_READ, dag_id)
    return _queued(services.assets.queued_events(dag_id=dag_id))


def delete_dag_dataset_queued_events(
    dag_id: str, principal: DatasetDeleter, services: ServicesDep
) -> Response:
    check_run_dag(services, principal, Action.DAGS_READ, dag_id)
    services.assets.delete_queued_events(dag_id=dag_id)
    return Response(status_code=204)


def get_dataset_queued_events(
    uri: str, principal: DatasetReader, services: ServicesDep
) -> QueuedEventCollection:
    return _queued(services.assets.queued_events(uri=uri))


def delete_dataset_queued_events(
    uri: str, principal: DatasetDeleter, services: ServicesDep
) -> Response:
    services.assets.delete_queued_events(uri=uri)
    return Response(status_code=204)


def router() -> APIRouter:
    api = APIRouter(tags=["Dataset"])
    api.add_api_route("/datasets", get_datasets, methods=["GET"])
    # The fixed paths first: `{uri:path}` would take "events" and "queuedEvent/..." as URIs.
    api.add_api_route("/datasets/events", get_dataset_events, methods=["GET"])
    api.add_api_route("/datasets/events", create_dataset_event, methods=["POST"])
    queued = "/datasets/queuedEvent/{uri:path}"
    api.add_api_route(queued, get_dataset_queued_events, methods=["GET"])
    api.add_api_route(queued, delete_dataset_queued_events, methods=["DELETE"], status_code=204)
    api.add_api_route("/datasets/{uri:path}", get_dataset, methods=["GET"])
    run = "/dags/{dag_id}/dagRuns/{dag_run_id}/upstreamDatasetEvents"
    api.add_api_route(run, get_upstream_dataset_events, methods=["GET"])
    dag_queue = "/dags/{dag_id}/datasets/queuedEvent"
    api.add_api_route(dag_queue, get_dag_dataset_queued_events, methods=["GET"])
    api.add_api_route(
        dag_queue, delete_dag_dataset_queued_events, methods=["DELETE"], status_code=204
    )
    api.add_api_route(f"{dag_queue}/{{uri:path}}", get_dag_dataset_queued_event, methods=["GET"])
    api.add_api_route(
        f"{dag_queue}/{{uri:path}}",
        delete_dag_dataset_queued_event,
        methods=["DELETE"],
        status_code=204,
    )
    return api
