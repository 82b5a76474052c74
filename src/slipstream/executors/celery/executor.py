"""The scheduler's side of the Celery executor: `CeleryExecutor` publishes one message per try
(`slipstream.run_try`, routed by the task's `queue=`), callback requests, and stop requests
(a remote-control broadcast the workers act on). It never waits on the broker: a publisher
thread with its own connection sends everything, so a broker that is down never blocks the
scheduler's loop, which must go on applying outcomes and heartbeating. Publishes that fail
wait in order and are retried with backoff; the outage is logged once.

Outcomes do not come back through the broker: the worker that ran a try writes it to the
outbox (`try_outcomes`) and hints the scheduler, so `events()` is always empty.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Celery

from slipstream.clock import Clock
from slipstream.core.records import CallbackDone, CallbackRequest, TaskEvent, TaskKey, Workload
from slipstream.executors.base import ExecutorLoad
from slipstream.executors.celery.app import (
    DEFAULT_QUEUE,
    MESSAGE_VERSION,
    RUN_CALLBACKS,
    RUN_TRY,
    STOP_TRIES,
    task_id_for,
)

log = logging.getLogger(__name__)

_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 5.0
_SHUTDOWN_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class _Publish:
    name: str
    body: dict[str, Any]
    queue: str
    task_id: str
    key: TaskKey | None = None  # a try's message: when it went out is noted


@dataclass(frozen=True, slots=True)
class _Broadcast:
    command: str
    arguments: dict[str, Any]


_Item = _Publish | _Broadcast


def run_try_body(workload: Workload) -> dict[str, Any]:
    return {"v": MESSAGE_VERSION, "workload": workload.to_json()}


def run_callbacks_body(request: CallbackRequest) -> dict[str, Any]:
    return {"v": MESSAGE_VERSION, "request": request.to_json()}


class CeleryExecutor:
    """`Executor`, `Killable`, `CallbackRunner`, `Measurable` and `Publishing` over a Celery
    broker."""

    def __init__(
        self,
        app: Celery,
        *,
        capacity: int,
        clock: Clock,
        republish_after: float = 30.0,
        queued_timeout: float = 600.0,
    ) -> None:
        self._app = app
        self.republish_after = republish_after
        self.queued_timeout = queued_timeout
        self._capacity = capacity
        self._clock = clock
        self._items: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._published: dict[TaskKey, datetime] = {}
        self._waiting = 0  # items handed to the thread and not yet sent
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._broker_down_since: float | None = None

    # ----------------------------------------------------------------- Executor

    @property
    def capacity(self) -> int:
        return self._capacity

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._publish_forever, name="celery-publisher", daemon=True
            )
            self._thread.start()

    def submit(self, workloads: Sequence[Workload]) -> None:
        for workload in workloads:
            self._put(
                _Publish(
                    RUN_TRY,
                    run_try_body(workload),
                    workload.queue or DEFAULT_QUEUE,
                    task_id_for(workload.key),
                    workload.key,
                )
            )

    def events(self) -> list[TaskEvent]:
        """Always empty: a try's outcome reaches the scheduler through the outbox."""
        return []

    def filenos(self) -> list[int]:
        return []

    def shutdown(self, *, graceful: bool = True) -> None:
        """Stop the publisher; gracefully, after sending what waits (for a few seconds). The
        tries keep running on their workers either way."""
        thread = self._thread
        if thread is None:
            return
        if not graceful:
            self._stopping.set()
        self._items.put(None)
        thread.join(_SHUTDOWN_SECONDS)
        self._stopping.set()
        thread.join(_SHUTDOWN_SECONDS)
        self._thread = None
        with self._lock:
            left = self._waiting
        if left:
            log.warning(
                "celery executor: %d messages were not published before stopping; their tries"
                " are published again by the next scheduler (unclaimed)",
                left,
            )

    # ----------------------------------------------------------------- Killable, callbacks

    def kill(self, keys: Sequence[TaskKey]) -> None:
        """Ask every worker to stop these tries (the one running each does). Workers also
        check the database for the tries they run at each heartbeat, should this be lost."""
        if keys:
            self._put(
                _Broadcast(
                    STOP_TRIES,
                    {"keys": [[k.run_pk, k.task_id, k.try_number, k.map_index] for k in keys]},
                )
            )

    def run_callbacks(self, requests: Sequence[CallbackRequest]) -> None:
        for request in requests:
            self._put(
                _Publish(
                    RUN_CALLBACKS,
                    run_callbacks_body(request),
                    DEFAULT_QUEUE,
                    f"callbacks:{request.id}",
                )
            )

    def callbacks_done(self) -> list[CallbackDone]:
        """Always empty: the worker that ran a request deletes its row."""
        return []

    def load(self) -> ExecutorLoad:
        with self._lock:
            waiting = self._waiting
        return ExecutorLoad(self._capacity, waiting, 0)

    # ----------------------------------------------------------------- what the scheduler asks

    def published_at(self) -> dict[TaskKey, datetime]:
        """When each try's message last went out (for publishing an unclaimed one again)."""
        with self._lock:
            return dict(self._published)

    def forget(self, keys: Sequence[TaskKey]) -> None:
        """These tries are claimed or over: nothing to publish again."""
        with self._lock:
            for key in keys:
                self._published.pop(key, None)

    @property
    def broker_reachable(self) -> bool:
        return self._broker_down_since is None

    # ----------------------------------------------------------------- the publisher thread

    def _put(self, item: _Item) -> None:
        if self._thread is None:
            raise RuntimeError("the Celery executor is not started")
        with self._lock:
            self._waiting += 1
        self._items.put(item)

    def _publish_forever(self) -> None:
        while True:
            item = self._items.get()
            if item is None:
                return
            backoff = _FIRST_BACKOFF
            while not self._send(item):
                if self._stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, _MAX_BACKOFF)
            with self._lock:
                self._waiting -= 1
                if isinstance(item, _Publish) and item.key is not None:
                    self._published[item.key] = self._clock.now()

    def _send(self, item: _Item) -> bool:
        try:
            if isinstance(item, _Publish):
                self._app.send_task(
                    item.name,
                    args=[item.body],
                    queue=item.queue,
                    task_id=item.task_id,
                    retry=False,
                )
            else:
                self._app.control.broadcast(item.command, arguments=item.arguments)
        except Exception as exc:  # kombu's connection errors, and anything else on the way
            if self._broker_down_since is None:
                self._broker_down_since = time.monotonic()
                log.warning(
                    "celery executor: cannot publish to the broker (%s); retrying with backoff"
                    " until it answers; tries wait queued",
                    exc,
                )
            return False
        if self._broker_down_since is not None:
            log.info(
                "celery executor: the broker answers again after %.1f s",
                time.monotonic() - self._broker_down_since,
            )
            self._broker_down_since = None
        return True
