"""Following one try's log while it runs: what a live stream sends after the part of the log
its page already shows. The file is read from an offset on (through the logs service the API
uses) when its size grows; whether the try is still running is asked of the database only when
the change watcher says its run changed (and now and then, in case a change was missed)."""

from __future__ import annotations

from dataclasses import dataclass

from slipstream.core.states import TaskState
from slipstream.errors import RunNotFound, TaskInstanceNotFound
from slipstream.services.logs import LogService
from slipstream.services.runs import RunService
from slipstream.web.live import run_topic

# At most this much text per event, so a burst of output goes as several modest messages.
CHUNK_BYTES = 256 * 1024
_STILL_GOING = frozenset({TaskState.QUEUED, TaskState.RUNNING})


@dataclass(frozen=True, slots=True)
class LogKey:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int

    @property
    def topic(self) -> str:
        return f"log:{self.dag_id}/{self.run_id}/{self.task_id}/{self.map_index}/{self.try_number}"

    @property
    def run_topic(self) -> str:
        return run_topic(self.dag_id, self.run_id)

    @classmethod
    def parse(cls, topic: str) -> LogKey | None:
        """`log:<dag_id>/<run_id>/<task_id>/<map_index>/<try>`, or None if it is not one
        (a run id may hold no '/', nor a DAG or task id)."""
        if not topic.startswith("log:"):
            return None
        parts = topic[len("log:") :].split("/")
        if len(parts) != 5 or not all(parts[:3]):
            return None
        try:
            map_index, try_number = int(parts[3]), int(parts[4])
        except ValueError:
            return None
        if map_index < -1 or try_number < 1:
            return None
        return cls(parts[0], parts[1], parts[2], map_index, try_number)


class LogTail:
    """Reads a try's log on from `offset` (call from the threadpool: it reads the file and,
    in `is_finished`, the database)."""

    def __init__(self, key: LogKey, offset: int, logs: LogService, runs: RunService) -> None:
        self.key = key
        self.offset = offset
        self._logs = logs
        self._runs = runs

    @property
    def run_topic(self) -> str:
        return self.key.run_topic

    def has_more(self) -> bool:
        key = self.key
        # A local file's size, or a remote worker's answer; None while queued (nothing yet).
        size = self._logs.size(key.dag_id, key.run_id, key.task_id, key.try_number, key.map_index)
        return size is not None and size > self.offset

    def read(self) -> str:
        """What was written since the last read (up to CHUNK_BYTES of it)."""
        key = self.key
        try:
            chunk = self._logs.read(
                key.dag_id,
                key.run_id,
                key.task_id,
                key.try_number,
                offset=self.offset,
                map_index=key.map_index,
                limit=CHUNK_BYTES,
            )
        except TaskInstanceNotFound:
            return ""
        self.offset = chunk.offset
        return chunk.text

    def state(self) -> TaskState | None:
        """The try's state if it has finished, else None. A try is over once its task
        instance has moved on to a later try or out of queued and running (a cleared task
        keeps its try number but is back to no state)."""
        key = self.key
        try:
            ti, _ = self._runs.task_instance(key.dag_id, key.run_id, key.task_id, key.map_index)
        except (RunNotFound, TaskInstanceNotFound):
            return TaskState.REMOVED
        if ti.try_number > key.try_number:
            tries = self._runs.tries(key.dag_id, key.run_id, key.task_id, key.map_index)
            return next((t.state for t in tries if t.try_number == key.try_number), ti.state)
        if ti.try_number == key.try_number and ti.state in _STILL_GOING:
            return None
        return ti.state
