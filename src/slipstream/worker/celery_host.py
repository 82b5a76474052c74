"""The worker host of `slipstream celery worker`: one loop thread owning the pool of warm
workers (`executors.local.LocalExecutor`: the local executor's isolation, timeouts, log
capture and warm forks) and the host's database writes; Celery's task threads hand it tries
through a queue and a wake pipe, since the pool is not thread-safe.

For each try handed in, the loop first runs the claim (store/claims.py: queued -> running,
before any fork; one statement per wake-up). A delivery that loses it (a message delivered
again, a try cleared meanwhile) runs nothing: its task thread is released at once and Celery
acknowledges the message. A won try is forked in the pool; its end is written to the outbox
(`try_outcomes`) with an OUTCOMES hint for its DAG (NOTIFY in the same transaction on
PostgreSQL), and only then is its task thread released, so the message is acknowledged once
the outcome is in the database. A commit that fails is retried until it succeeds.

On each heartbeat the host also reads the rows of the tries it runs and stops any whose try
number moved on or whose state left queued/running: the backup of the stop broadcast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from slipstream.clock import Clock
from slipstream.core.records import (
    CallbackDone,
    CallbackRequest,
    ExitReason,
    TaskFinished,
    TaskKey,
    TaskStarted,
    Workload,
)
from slipstream.core.states import TaskState
from slipstream.executors.local import LocalExecutor
from slipstream.store import callbacks as callbacks_store
from slipstream.store import claims, transitions
from slipstream.store import jobs as jobs_store
from slipstream.store import outcomes as outcomes_store
from slipstream.store.db import Database
from slipstream.store.notify import notify_in
from slipstream.wakeup import Hint, HintSender

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # a failed claim or outbox commit is tried again after this long
_LAST_FLUSH_SECONDS = 10.0


@dataclass(slots=True)
class _Held:
    workload: Workload
    done: Future[None]


@dataclass(slots=True)
class _Intake:
    tries: list[tuple[Workload, Future[None]]] = field(default_factory=list)
    callbacks: list[tuple[CallbackRequest, Future[None]]] = field(default_factory=list)
    stops: list[TaskKey] = field(default_factory=list)


class CeleryHost:
    """`TryRunner` for the Celery worker's task threads; `serve()` runs the loop in its own
    thread until `stop()`, then `close()` ends what still runs and records it."""

    def __init__(
        self,
        db: Database,
        pool: LocalExecutor,
        *,
        job_id: int,
        hostname: str,
        clock: Clock,
        heartbeat_seconds: float,
        hints: HintSender | None = None,
    ) -> None:
        self._db = db
        self._pool = pool
        self.job_id = job_id
        self._hostname = hostname
        self._clock = clock
        self._heartbeat_seconds = heartbeat_seconds
        # On PostgreSQL the hint is a NOTIFY inside the outbox's transaction (it arrives
        # exactly when the rows are visible); elsewhere `hints` sends it after the commit.
        self._hints = hints
        self._inbox: queue.SimpleQueue[
            tuple[str, Workload | CallbackRequest | Sequence[TaskKey], Future[None] | None]
        ] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stopping = threading.Event()
        # The loop thread's own: tries waiting for their claim, tries held, what to write.
        self._to_claim: list[tuple[Workload, Future[None]]] = []
        self._callbacks_to_claim: list[tuple[CallbackRequest, Future[None]]] = []
        self._held: dict[TaskKey, _Held] = {}
        self._callbacks: dict[int, Future[None]] = {}
        self._starts: list[TaskStarted] = []
        self._ends: list[TaskFinished] = []
        self._done: list[CallbackDone] = []
        self._retry_at: float | None = None
        self._write_failing = False
        self._last_heartbeat = time.monotonic()
        self.duplicates_dropped = 0

    # ----------------------------------------------------------------- TryRunner (any thread)

    def run_try(self, workload: Workload) -> None:
        done: Future[None] = Future()
        self._hand("try", workload, done)
        done.result()

    def run_callbacks(self, request: CallbackRequest) -> None:
        done: Future[None] = Future()
        self._hand("callbacks", request, done)
        done.result()

    def stop_tries(self, keys: Sequence[TaskKey]) -> None:
        self._hand("stop", tuple(keys), None)

    def stop(self) -> None:
        """Ask the loop to end (from any thread)."""
        self._stopping.set()
        self._poke()

    def _hand(
        self,
        kind: str,
        item: Workload | CallbackRequest | Sequence[TaskKey],
        done: Future[None] | None,
    ) -> None:
        if self._stopping.is_set() and done is not None:
            raise RuntimeError("the worker is stopping; the message goes back to the broker")
        self._inbox.put((kind, item, done))
        self._poke()

    def _poke(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
            os.write(self._wake_w, b"x")

    # ----------------------------------------------------------------- the loop (one thread)

    @property
    def held(self) -> set[TaskKey]:
        return set(self._held)

    def serve(self) -> None:
        while not self._stopping.is_set():
            self.step()

    def step(self, timeout: float | None = None) -> None:
        waits = [self._heartbeat_seconds - (time.monotonic() - self._last_heartbeat)]
        if self._retry_at is not None:
            waits.append(self._retry_at - time.monotonic())
        if timeout is not None:
            waits.append(timeout)
        pool_fds = self._pool.filenos()
        readable, _, _ = select.select([self._wake_r, *pool_fds], [], [], max(0.0, min(waits)))
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_r, 4096):
                    pass
        intake = self._take_inbox()
        if intake.stops:
            self._stop_held(intake.stops, "a stop request")
        self._to_claim.extend(intake.tries)
        self._callbacks_to_claim.extend(intake.callbacks)
        retry_due = self._retry_at is None or time.monotonic() >= self._retry_at
        if (self._to_claim or self._callbacks_to_claim) and retry_due:
            self._claim()
        self._drain_pool()
        heartbeat_due = time.monotonic() - self._last_heartbeat >= self._heartbeat_seconds
        # A pid alone waits for the next outcome or the heartbeat: a transaction of its own
        # would sit on the path of the tries that end meanwhile.
        if (self._ends or self._done or (self._starts and heartbeat_due)) and retry_due:
            self._write()
        if heartbeat_due:
            self._heartbeat()

    def _take_inbox(self) -> _Intake:
        intake = _Intake()
        while True:
            try:
                kind, item, done = self._inbox.get_nowait()
            except queue.Empty:
                return intake
            if kind == "try" and isinstance(item, Workload) and done is not None:
                intake.tries.append((item, done))
            elif kind == "callbacks" and isinstance(item, CallbackRequest) and done is not None:
                intake.callbacks.append((item, done))
            elif kind == "stop" and isinstance(item, tuple):
                intake.stops.extend(item)

    def _claim(self) -> None:
        batch, self._to_claim = self._to_claim, []
        requests, self._callbacks_to_claim = self._callbacks_to_claim, []
        try:
            with self._db.write() as conn:
                won = transitions.claim(
                    conn,
                    [workload.key for workload, _ in batch],
                    worker_job_id=self.job_id,
                    hostname=self._hostname,
                    at=self._clock.now(),
                )
                won_requests = {
                    request.id
                    for request, _ in requests
                    if request.id not in self._callbacks
                    and callbacks_store.claim(conn, request.id, worker_job_id=self.job_id)
                }
        except Exception as exc:  # the database is away: claim again shortly
            self._to_claim = batch + self._to_claim
            self._callbacks_to_claim = requests + self._callbacks_to_claim
            self._failed("claiming tries", exc)
            return
        self._recovered()
        for request, done in requests:
            if request.id not in won_requests:
                self.duplicates_dropped += 1
                log.info(
                    "celery worker: callback request %d is run by another worker or has run:"
                    " not run again",
                    request.id,
                )
                done.set_result(None)
                continue
            self._callbacks[request.id] = done
            self._pool.run_callbacks([request])
        for workload, done in batch:
            key = workload.key
            if key not in won or key in self._held:
                self.duplicates_dropped += 1
                log.info(
                    "celery worker: try %s of %s is not queued for this delivery (a message"
                    " delivered again, or a task cleared or marked): not run",
                    key,
                    workload.dag_id,
                )
                done.set_result(None)
                continue
            self._held[key] = _Held(workload, done)
            try:
                self._pool.submit([workload])
            except (ValueError, RuntimeError) as exc:  # over capacity, or stopping
                self._ends.append(
                    TaskFinished(
                        key,
                        TaskState.FAILED,
                        ExitReason.WORKER_LOST,
                        self._clock.now(),
                        f"the worker could not start the try: {exc}",
                    )
                )

    def _drain_pool(self) -> None:
        for event in self._pool.events():
            if isinstance(event, TaskStarted):
                self._starts.append(event)
            elif event.key in self._held:
                self._ends.append(event)
        self._done.extend(self._pool.callbacks_done())

    def _write(self) -> None:
        starts, ends, done = self._starts, self._ends, self._done
        in_transaction = self._db.dialect == "postgresql"
        dag_ids = sorted({self._held[end.key].workload.dag_id for end in ends})
        try:
            with self._db.write() as conn:
                for started in starts:
                    claims.record_pid(conn, started.key, worker_job_id=self.job_id, pid=started.pid)
                outcomes_store.record(conn, ends, worker_job_id=self.job_id, now=self._clock.now())
                callbacks_store.remove(conn, [item.id for item in done])
                if in_transaction:
                    for dag_id in dag_ids:
                        notify_in(conn, Hint.outcomes(dag_id))
        except Exception as exc:
            self._failed(f"writing {len(ends)} outcomes", exc)
            return
        self._recovered()
        self._starts, self._ends, self._done = [], [], []
        if self._hints is not None and not in_transaction:
            for dag_id in dag_ids:
                self._hints.notify(Hint.outcomes(dag_id))
        # Committed: each task thread returns and Celery acknowledges its message.
        for end in ends:
            held = self._held.pop(end.key, None)
            if held is not None:
                held.done.set_result(None)
        for item in done:
            future = self._callbacks.pop(item.id, None)
            if future is not None:
                future.set_result(None)

    def _heartbeat(self) -> None:
        self._last_heartbeat = time.monotonic()
        try:
            with self._db.write() as conn:
                jobs_store.heartbeat(conn, self.job_id, self._clock.now())
                running = [key for key in self._held if key not in self._ending()]
                wanted = claims.still_wanted(conn, running)
        except Exception as exc:
            log.warning("celery worker: heartbeat failed: %s", exc)
            return
        unwanted = [key for key in running if key not in wanted]
        if unwanted:
            self._stop_held(unwanted, "its task instance moved on")

    def _ending(self) -> set[TaskKey]:
        return {end.key for end in self._ends}

    def _stop_held(self, keys: Sequence[TaskKey], why: str) -> None:
        mine = [key for key in keys if key in self._held and key not in self._ending()]
        if mine:
            log.info("celery worker: stopping %d tries (%s): %s", len(mine), why, mine)
            self._pool.kill(mine)

    def _failed(self, doing: str, exc: Exception) -> None:
        if not self._write_failing:
            log.warning(
                "celery worker: %s failed (%s); retrying every %g s until it succeeds",
                doing,
                exc,
                RETRY_SECONDS,
            )
        self._write_failing = True
        self._retry_at = time.monotonic() + RETRY_SECONDS

    def _recovered(self) -> None:
        if self._write_failing:
            log.info("celery worker: the database answers again")
        self._write_failing = False
        self._retry_at = None

    # ----------------------------------------------------------------- the way out

    def close(self) -> None:
        """Kill what still runs and record each as lost to its worker (retried on the
        infrastructure budget), release every task thread, and end the job row."""
        self._pool.shutdown(graceful=False)
        self._drain_pool()
        now = self._clock.now()
        ending = self._ending()
        for key in self._held:
            if key not in ending:
                self._ends.append(
                    TaskFinished(
                        key,
                        TaskState.FAILED,
                        ExitReason.WORKER_LOST,
                        now,
                        "the Celery worker stopped while the try ran",
                    )
                )
        deadline = time.monotonic() + _LAST_FLUSH_SECONDS
        self._retry_at = None
        while self._starts or self._ends or self._done:
            self._write()
            if not (self._starts or self._ends or self._done):
                break
            if time.monotonic() > deadline:
                log.error("celery worker: outcomes could not be written before exiting")
                break
            time.sleep(0.2)
            self._retry_at = None
        stopped = RuntimeError("the worker stopped before the try ran")
        for _, done in [*self._to_claim, *self._callbacks_to_claim]:
            done.set_exception(stopped)
        for held in self._held.values():
            if not held.done.done():
                held.done.set_exception(stopped)
        for future in self._callbacks.values():
            if not future.done():
                future.set_exception(stopped)
        with contextlib.suppress(Exception), self._db.write() as conn:
            jobs_store.end_job(conn, self.job_id, self._clock.now())
        os.close(self._wake_r)
        os.close(self._wake_w)
