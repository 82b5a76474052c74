"""Asset events as a try sees them: `outlet_events[asset].extra` and `yield Metadata(...)`
(what the try adds to the events its success records) and `triggering_asset_events` /
`triggering_dataset_events` (the events that started an asset-triggered run, read from the
database on first use).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slipstream.authoring.assets import Asset
from slipstream.errors import NotAvailableYet


class OutletEventAccessor:
    """One outlet's event-to-be: task code sets `extra` (a JSON object)."""

    def __init__(self, asset: Asset) -> None:
        self.asset = asset
        self.extra: dict[str, Any] = {}

    @property
    def key(self) -> Asset:
        return self.asset


class OutletEventAccessors(Mapping[Any, OutletEventAccessor]):
    """`outlet_events` in the context: indexed by an Asset (or its URI/name), as Airflow's."""

    def __init__(self, outlets: Sequence[Asset]) -> None:
        self._by_uri = {asset.uri: OutletEventAccessor(asset) for asset in outlets}
        self._names = {asset.name: asset.uri for asset in outlets}

    def _uri(self, key: object) -> str:
        if isinstance(key, Asset):
            return key.uri
        if isinstance(key, str):
            return key if key in self._by_uri else self._names.get(key, key)
        raise KeyError(key)

    def __getitem__(self, key: object) -> OutletEventAccessor:
        uri = self._uri(key)
        accessor = self._by_uri.get(uri)
        if accessor is None:
            # Airflow lets a task add an accessor for any asset, but only outlets get events.
            raise KeyError(f"{key!r} is not an outlet of this task: name it in outlets=")
        return accessor

    def __iter__(self) -> Iterator[Any]:
        return iter(accessor.asset for accessor in self._by_uri.values())

    def __len__(self) -> int:
        return len(self._by_uri)

    def extras(self) -> tuple[tuple[str, str], ...]:
        """(URI, JSON text) for each outlet whose extra the try set; refuses a value that is
        not a JSON object, naming the asset."""
        found = []
        for uri, accessor in self._by_uri.items():
            if not accessor.extra:
                continue
            if not isinstance(accessor.extra, Mapping):
                raise TypeError(f"outlet_events[{uri!r}].extra must be a dict")
            try:
                found.append((uri, json.dumps(dict(accessor.extra), allow_nan=False)))
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"outlet_events[{uri!r}].extra is not JSON-serializable: {exc}"
                ) from None
        return tuple(found)


class Metadata:
    """What a task function yields to add to an outlet's event: Airflow 2.10's
    `Metadata(target, extra, alias=None)` (airflow.datasets.metadata) and 3.x's
    `Metadata(asset, extra=None, alias=None)` (airflow.sdk). The target is an Asset, or its
    URI or name; `alias` (an asset alias) is refused, as aliases are."""

    def __init__(
        self, asset: Asset | str, extra: Mapping[str, Any] | None = None, alias: object = None
    ) -> None:
        if alias is not None:
            raise NotAvailableYet(
                f"Metadata(alias={alias!r})",
                "asset aliases are not supported; yield Metadata(asset, extra) for an asset "
                "named in the task's outlets",
            )
        if not isinstance(asset, (Asset, str)):
            raise TypeError(
                f"Metadata takes an asset (or its URI) first, not {type(asset).__name__}"
            )
        if extra is not None and not isinstance(extra, Mapping):
            raise TypeError(f"Metadata's extra must be a dict, not {type(extra).__name__}")
        self.target = asset
        self.extra: dict[str, Any] = dict(extra or {})

    @property
    def asset(self) -> Asset:  # Airflow 3's attribute
        return self.target if isinstance(self.target, Asset) else Asset(uri=self.target)

    @property
    def uri(self) -> str:  # Airflow 2.10's attribute
        return self.target.uri if isinstance(self.target, Asset) else self.target

    def __repr__(self) -> str:
        return f"Metadata({self.target!r}, {self.extra!r})"


def drain_yielded(
    results: Generator[Any, Any, Any],
    outlet_events: Mapping[Any, OutletEventAccessor] | None,
    logger: logging.Logger,
) -> Any:
    """Run a task function written as a generator, as Airflow does: each `Metadata` it
    yields adds its extra to that outlet's event (an asset not in the task's outlets is an
    error naming it), anything else is logged as ignored (Airflow's warning); the
    function's `return` value is the task's result."""
    while True:
        try:
            item = next(results)
        except StopIteration as stop:
            return stop.value
        if isinstance(item, Metadata):
            if outlet_events is None:
                raise TypeError(f"yield {item!r}: this task has no outlet_events in its context")
            outlet_events[item.target].extra.update(item.extra)
            continue
        logger.warning("Ignoring unknown data of %r received from task", type(item))


@dataclass(frozen=True)
class AssetEvent:
    """A recorded asset event, as Airflow's AssetEvent/DatasetEvent reads."""

    id: int
    uri: str
    extra: Mapping[str, Any]
    source_dag_id: str | None
    source_run_id: str | None
    source_task_id: str | None
    source_map_index: int
    timestamp: datetime

    @property
    def asset(self) -> Asset:
        return Asset(uri=self.uri)

    @property
    def dataset(self) -> Asset:  # Airflow 2's name
        return self.asset

    @property
    def dataset_uri(self) -> str:
        return self.uri


def event_from_mapping(raw: Mapping[str, Any]) -> AssetEvent:
    return AssetEvent(
        id=int(raw["id"]),
        uri=str(raw["uri"]),
        extra=dict(raw.get("extra") or {}),
        source_dag_id=raw.get("source_dag_id"),
        source_run_id=raw.get("source_run_id"),
        source_task_id=raw.get("source_task_id"),
        source_map_index=int(raw.get("source_map_index", -1)),
        timestamp=raw["timestamp"],
    )


class TriggeringEvents(Mapping[str, list[AssetEvent]]):
    """URI -> the events (oldest first) that triggered this run; read once, on first use."""

    def __init__(self, load: Callable[[], Sequence[Mapping[str, Any]]] | None) -> None:
        self._load = load
        self._events: dict[str, list[AssetEvent]] | None = None

    def _all(self) -> dict[str, list[AssetEvent]]:
        if self._events is None:
            events: dict[str, list[AssetEvent]] = {}
            for raw in self._load() if self._load is not None else ():
                event = event_from_mapping(raw)
                events.setdefault(event.uri, []).append(event)
            self._events = events
        return self._events

    def __getitem__(self, key: object) -> list[AssetEvent]:
        uri = key.uri if isinstance(key, Asset) else key
        return self._all()[str(uri)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return repr(self._all())
