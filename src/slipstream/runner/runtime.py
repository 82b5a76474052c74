"""What task code sees of its own try and run: the concrete `ti` and `dag_run` of the context.

XComs travel as JSON text. Pulls look in this try's own pushes, then the upstream values the
scheduler prefetched into the Workload, and only then ask an XComReader (a database round trip).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from slipstream.core.records import RunType, Workload

RETURN_VALUE_KEY = "return_value"


class XComReader(Protocol):
    """Reads XComs the Workload did not carry (JSON text), for one run."""

    def pull(self, run_pk: int, task_ids: Sequence[str], key: str) -> dict[str, str]:
        """task_id -> JSON text for those of `task_ids` that pushed `key`; others are absent."""
        ...


XComReaderFactory = Callable[[], XComReader]


class XComNotSerializable(TypeError):
    """A pushed value has no JSON form; the try fails with this."""

    def __init__(self, key: str, task_id: str, reason: str) -> None:
        super().__init__(
            f"XCom {key!r} pushed by task {task_id!r} is not JSON-serializable: {reason}"
        )
        self.key = key
        self.task_id = task_id


@dataclass(frozen=True, slots=True)
class RuntimeDagRun:
    """The run a try belongs to, as Airflow's `dag_run` in the context."""

    dag_id: str
    run_id: str
    conf: Mapping[str, Any]
    logical_date: datetime | None
    run_type: RunType
    external_trigger: bool
    data_interval_start: datetime | None
    data_interval_end: datetime | None

    @classmethod
    def from_workload(cls, workload: Workload) -> RuntimeDagRun:
        return cls(
            dag_id=workload.dag_id,
            run_id=workload.run_id,
            conf=dict(workload.conf),
            logical_date=workload.logical_date,
            run_type=workload.run_type,
            external_trigger=workload.run_type == RunType.MANUAL,
            data_interval_start=workload.data_interval_start,
            data_interval_end=workload.data_interval_end,
        )


class RuntimeTaskInstance:
    """One running try, as Airflow's `ti`: identity plus xcom_push / xcom_pull."""

    def __init__(
        self, workload: Workload, xcom_reader_factory: XComReaderFactory | None = None
    ) -> None:
        self.dag_id = workload.dag_id
        self.run_id = workload.run_id
        self.task_id = workload.task_id
        self.try_number = workload.try_number
        self.max_tries = workload.max_tries
        self.map_index = -1
        self._run_pk = workload.run_pk
        self._upstream = workload.upstream_xcoms
        self._reader_factory = xcom_reader_factory
        self._reader: XComReader | None = None
        self._pushed: dict[str, str] = {}
        # Values fetched through the reader, so a task pulling twice asks the database once.
        self._fetched: dict[tuple[str, str], str | None] = {}

    @property
    def pushed(self) -> tuple[tuple[str, str], ...]:
        """(key, JSON text) pairs pushed by this try, in first-push order; a re-push replaces."""
        return tuple(self._pushed.items())

    def xcom_push(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"XCom key must be a string, got {type(key).__name__}")
        try:
            self._pushed[key] = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise XComNotSerializable(key, self.task_id, str(exc)) from None

    def xcom_pull(
        self,
        task_ids: str | Sequence[str] | None = None,
        key: str = RETURN_VALUE_KEY,
        dag_id: str | None = None,
        include_prior_dates: bool = False,
    ) -> Any:
        """A value for one task id (None when nothing was pushed), a list for several.

        Only this run is searched: `include_prior_dates` finds nothing more, and another
        DAG's XComs cannot be pulled (that raises rather than silently returning None).
        """
        if dag_id is not None and dag_id != self.dag_id:
            raise NotImplementedError(
                f"xcom_pull from another DAG ({dag_id!r}) is not supported; "
                "only XComs of the same run can be pulled"
            )
        if task_ids is None:
            return self._pull_many([self.task_id], key)[0]
        if isinstance(task_ids, str):
            return self._pull_many([task_ids], key)[0]
        return self._pull_many(list(task_ids), key)

    def _pull_many(self, task_ids: list[str], key: str) -> list[Any]:
        texts: dict[str, str | None] = {}
        missing: list[str] = []
        for task_id in task_ids:
            text = self._local(task_id, key)
            if text is not None:
                texts[task_id] = text
            elif (task_id, key) in self._fetched:
                texts[task_id] = self._fetched[task_id, key]
            elif task_id not in missing:
                missing.append(task_id)
        if missing:
            found = self._read(missing, key)
            for task_id in missing:
                texts[task_id] = self._fetched[task_id, key] = found.get(task_id)
        return [_decode(texts[task_id]) for task_id in task_ids]

    def _local(self, task_id: str, key: str) -> str | None:
        if task_id == self.task_id and key in self._pushed:
            return self._pushed[key]
        return self._upstream.get(task_id, {}).get(key)

    def _read(self, task_ids: list[str], key: str) -> dict[str, str]:
        if self._reader_factory is None:
            return {}
        if self._reader is None:
            # Built on first need, in the try's own process: no connection is shared across fork.
            self._reader = self._reader_factory()
        return self._reader.pull(self._run_pk, task_ids, key)


def _decode(text: str | None) -> Any:
    return None if text is None else json.loads(text)
