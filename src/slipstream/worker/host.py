"""The worker host's loop: the pool of warm workers (`executors.local.LocalExecutor`), the
listening socket, the attached scheduler's connection and a stop signal, served one `step()`
at a time; plus the host's job row and its outbox.

While a scheduler is attached, the pool's events are forwarded to it numbered, with no
database write on the way, and each outcome is kept until an `Applied` covers it. A scheduler
that vanishes without `Detach` (killed) leaves what it had not acknowledged, and what ends
while no scheduler is attached goes to the outbox (`worker/outbox.py`) for the next one:
a finished try is never lost with its scheduler, and never run twice because of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import time
from dataclasses import dataclass
from typing import Protocol

from slipstream.clock import Clock
from slipstream.core.records import (
    CallbackDone,
    CallbackRequest,
    ExitReason,
    TaskEvent,
    TaskFinished,
    TaskKey,
    TaskStarted,
    Workload,
)
from slipstream.core.states import TaskState
from slipstream.executors.local import LocalExecutor
from slipstream.executors.wire import Channel, RunCallbacks, RunTry, StopTry
from slipstream.lifeline import is_alive
from slipstream.store import jobs as jobs_store
from slipstream.store.db import Database
from slipstream.worker.intake import Intake, Peer
from slipstream.worker.link import (
    WIRE_VERSION,
    Applied,
    Attach,
    Attached,
    Detach,
    Forwarded,
    PoolWorkers,
    Refused,
)
from slipstream.worker.outbox import OutboxWriter

log = logging.getLogger(__name__)

# How long a refusal may take to reach a peer before its connection is closed anyway.
_REFUSAL_SECONDS = 1.0
# How long a stopping host keeps trying to write what it holds to the outbox.
_LAST_FLUSH_SECONDS = 10.0
# How long an autostarted host waits for the scheduler that started it to attach.
ATTACH_GRACE_SECONDS = 30.0


class StopSignal(Protocol):
    """SIGTERM/SIGINT as a flag and a readable descriptor (bootstrap's Stopper)."""

    stopping: bool

    def fileno(self) -> int: ...

    def drain(self) -> None: ...


@dataclass(frozen=True, slots=True)
class HostOptions:
    heartbeat_seconds: float
    # Started by a scheduler (`--autostarted`): the host exits once it is not needed. By hand,
    # it runs until stopped.
    autostarted: bool = False
    # An autostarted host that lost its scheduler to a crash while holding tries waits this
    # long, once they have ended, for the next one (it would adopt them); then exits.
    idle_exit_seconds: float = 60.0


class _Connection:
    """The scheduler's connection: attached once `Attached` went out."""

    def __init__(self, channel: Channel, peer: Peer) -> None:
        self.channel = channel
        self.peer = peer
        self.scheduler_job_id: int | None = None  # set by its Attach
        self.attached = False

    def describe(self) -> str:
        return f"scheduler job {self.scheduler_job_id} (pid {self.peer.pid})"


class WorkerHost:
    """Runs tries for whichever scheduler is attached. `step()` is one pass; `serve()` the
    process's life; `close()` the way out, which kills what still runs and records it."""

    def __init__(
        self,
        db: Database,
        pool: LocalExecutor,
        intake: Intake,
        stop: StopSignal,
        *,
        job_id: int,
        clock: Clock,
        options: HostOptions,
    ) -> None:
        self._db = db
        self._pool = pool
        self._intake = intake
        self._stop = stop
        self.job_id = job_id
        self._clock = clock
        self._options = options
        self._conn: _Connection | None = None
        # Tries received and not yet ended (by key), and those of them that have started.
        self._held: dict[TaskKey, Workload] = {}
        self._started: dict[TaskKey, TaskStarted] = {}
        self._callbacks: set[int] = set()
        self._seq = 0
        self._unacked: list[tuple[int, TaskFinished | CallbackDone]] = []
        self._outbox = OutboxWriter(db, host_job_id=job_id, clock=clock)
        self._worker_pids = tuple(pool.worker_pids)
        self._last_heartbeat = time.monotonic()
        # Detached: since when idle, and how long to linger then before an autostarted host
        # exits. At start: the scheduler that started it has this long to attach.
        self._idle_since = time.monotonic()
        self._linger = max(options.idle_exit_seconds, ATTACH_GRACE_SECONDS)
        self._done = False
        self._pool_touched = False  # this pass handed the pool work or asked it something

    @property
    def attached(self) -> bool:
        return self._conn is not None and self._conn.attached

    @property
    def held(self) -> set[TaskKey]:
        return set(self._held)

    # ----------------------------------------------------------------- the loop

    def serve(self) -> None:
        """Step until stopped, or until an autostarted host is no longer needed."""
        while self.step():
            pass

    def step(self, timeout: float | None = None) -> bool:
        """One pass; False once the host should exit (then call `close()`)."""
        if self._done:
            return False
        conn = self._conn
        pool_fds = self._pool.filenos()
        readers = [self._stop.fileno(), self._intake.fileno(), *pool_fds]
        writers: list[int] = []
        if conn is not None:
            readers.append(conn.channel.fileno())
            if conn.channel.wants_write:
                writers.append(conn.channel.fileno())
        readable, writable, _ = select.select(readers, writers, [], self._wait(timeout))
        if self._stop.fileno() in readable:
            self._stop.drain()
        if conn is not None and conn.channel.fileno() in writable:
            conn.channel.flush()
        self._pool_touched = False
        if conn is not None and conn.channel.fileno() in readable:
            self._on_scheduler(conn)  # a RunTry is handed to a worker at once
        # Its events are forwarded as soon as they are read; a look at the pool only when it
        # has something to say (or was just asked something), since this is every hop's path.
        if self._pool_touched or any(fd in readable for fd in pool_fds):
            self._drain_pool()
        if self._intake.fileno() in readable:
            self._accept()
        self._write_outbox()
        self._heartbeat_if_due()
        self._done = self._should_exit()
        return not self._done

    def _wait(self, timeout: float | None) -> float | None:
        now = time.monotonic()
        waits = [self._options.heartbeat_seconds - (now - self._last_heartbeat)]
        outbox = self._outbox.due_in()
        if outbox is not None:
            waits.append(outbox)
        if self._options.autostarted and self._conn is None and self._idle():
            waits.append(self._idle_since + self._linger - now)
        if timeout is not None:
            waits.append(timeout)
        return max(0.0, min(waits))

    # ----------------------------------------------------------------- the scheduler

    def _accept(self) -> None:
        accepted = self._intake.accept()
        if accepted is None:
            return
        sock, peer = accepted
        channel = Channel(sock)
        if peer.uid != os.getuid():
            log.warning(
                "worker host: refused a connection from uid %d (pid %d)", peer.uid, peer.pid
            )
            _refuse(channel, f"the worker host serves uid {os.getuid()} only")
            return
        current = self._conn
        if current is not None and not is_alive(current.peer.pid):
            # Its death has not reached us as an EOF yet: read what it sent (a RunTry is held
            # then, and named in the next Attached), then lose it all the same.
            self._on_scheduler(current)
            if self._conn is current:
                self._lose_scheduler(current, crashed=True)
            current = None
        if current is not None:
            _refuse(
                channel,
                f"the worker host (pid {os.getpid()}) is attached to {current.describe()};"
                " one scheduler at a time",
            )
            return
        self._conn = _Connection(channel, peer)

    def _on_scheduler(self, conn: _Connection) -> None:
        for message in conn.channel.receive():
            if self._conn is not conn:
                return  # refused or detached by an earlier message
            if conn.scheduler_job_id is None:
                self._on_attach(conn, message)
            elif isinstance(message, RunTry):
                self._run(message.workload)
            elif isinstance(message, Applied):
                self._unacked = [item for item in self._unacked if item[0] > message.up_to_seq]
            elif isinstance(message, StopTry):
                if message.key in self._held:
                    self._pool.kill([message.key])
                    self._pool_touched = True
            elif isinstance(message, RunCallbacks):
                self._run_callbacks(message.request)
                self._pool_touched = True
            elif isinstance(message, Detach):
                self._lose_scheduler(conn, crashed=False)
                return
            else:
                log.warning("worker host: unexpected message %r; ignored", type(message).__name__)
        if conn.channel.at_eof and self._conn is conn:
            self._lose_scheduler(conn, crashed=True)

    def _on_attach(self, conn: _Connection, message: object) -> None:
        if not isinstance(message, Attach):
            self._conn = None
            _refuse(conn.channel, f"the first message must be Attach, not {type(message).__name__}")
            return
        if message.wire_version != WIRE_VERSION:
            self._conn = None
            _refuse(
                conn.channel,
                f"this worker host (pid {os.getpid()}) speaks wire version {WIRE_VERSION}, the"
                f" scheduler {message.wire_version}: run the same Slipstream version",
            )
            return
        conn.scheduler_job_id = message.scheduler_job_id
        # `Attached` goes out once the outbox holds everything this host kept for nobody
        # (`_write_outbox`), so that the scheduler, reading the outbox next, misses nothing.

    def _send_attached(self, conn: _Connection) -> None:
        conn.attached = True
        conn.channel.send(
            Attached(
                host_job_id=self.job_id,
                capacity=self._pool.capacity,
                running=tuple(self._started.values()),
                queued=tuple(key for key in self._held if key not in self._started),
                callbacks=tuple(sorted(self._callbacks)),
                worker_pids=self._worker_pids,
                seq=self._seq,
            )
        )
        log.info(
            "worker host: %s attached; it finds %d tries held (%d running)",
            conn.describe(),
            len(self._held),
            len(self._started),
        )

    def _lose_scheduler(self, conn: _Connection, *, crashed: bool) -> None:
        """The scheduler detached (or vanished): what it did not acknowledge goes to the
        outbox, with whatever ends from now on, until the next one attaches."""
        if self._conn is conn:
            self._conn = None
        conn.channel.close()
        if not conn.attached:
            return
        self._outbox.add(item for _, item in self._unacked)
        self._unacked = []
        self._idle_since = time.monotonic()
        busy = bool(self._held or self._callbacks)
        # Stopped on purpose: not needed once idle. Killed: its tries, if any, wait for the
        # next scheduler (it adopts them); with none, there is nothing to hand over.
        self._linger = self._options.idle_exit_seconds if crashed and busy else 0.0
        how = "vanished without detaching" if crashed else "detached"
        log.info("worker host: %s %s; %d tries held", conn.describe(), how, len(self._held))

    # ----------------------------------------------------------------- the pool

    def _run(self, workload: Workload) -> None:
        self._pool_touched = True
        key = workload.key
        if key in self._held:
            log.warning("worker host: try %s is already held; the second RunTry is ignored", key)
            return
        try:
            self._pool.submit([workload])
        except (ValueError, RuntimeError) as exc:  # over capacity, or the pool is stopping
            self._held[key] = workload
            self._forward(
                TaskFinished(
                    key,
                    TaskState.FAILED,
                    ExitReason.WORKER_LOST,
                    self._clock.now(),
                    f"the worker host could not start the try: {exc}",
                )
            )
            return
        self._held[key] = workload

    def _run_callbacks(self, request: CallbackRequest) -> None:
        if request.id in self._callbacks:
            return
        self._callbacks.add(request.id)
        self._pool.run_callbacks([request])

    def _drain_pool(self) -> None:
        events, callbacks_done = self._pool.drain()
        for event in events:
            self._forward(event)
        for done in callbacks_done:
            self._callbacks.discard(done.id)
            self._forward(done)
        pids = tuple(self._pool.worker_pids)
        if pids != self._worker_pids:
            self._worker_pids = pids
            if self.attached:
                assert self._conn is not None
                self._conn.channel.send(PoolWorkers(pids))
        if not self.attached and (self._held or self._callbacks):
            self._idle_since = time.monotonic()

    def _forward(self, event: TaskEvent | CallbackDone) -> None:
        if isinstance(event, TaskStarted):
            if event.key in self._held:
                self._started[event.key] = event
        elif isinstance(event, TaskFinished):
            self._held.pop(event.key, None)
            self._started.pop(event.key, None)
        self._seq += 1
        conn = self._conn
        if conn is not None and conn.attached:
            conn.channel.send(Forwarded(self._seq, event))
            if not isinstance(event, TaskStarted):
                self._unacked.append((self._seq, event))
        elif not isinstance(event, TaskStarted):
            # A start needs no keeping: the next scheduler hears of it in `Attached`.
            self._outbox.add([event])

    # ----------------------------------------------------------------- chores

    def _write_outbox(self) -> None:
        flushed = self._outbox.flush()
        conn = self._conn
        if flushed and conn is not None and conn.scheduler_job_id is not None and not conn.attached:
            self._send_attached(conn)

    def _heartbeat_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat < self._options.heartbeat_seconds:
            return
        self._last_heartbeat = now
        try:
            with self._db.write() as conn:
                jobs_store.heartbeat(conn, self.job_id, self._clock.now())
        except Exception as exc:  # the database is away: the tries go on
            log.warning("worker host: heartbeat failed: %s", exc)

    def _should_exit(self) -> bool:
        if self._stop.stopping:
            log.info("worker host: asked to stop")
            return True
        if not self._options.autostarted or self._conn is not None or not self._idle():
            return False
        if time.monotonic() - self._idle_since < self._linger:
            return False
        log.info("worker host: no scheduler attached and nothing held; exiting")
        return True

    def _idle(self) -> bool:
        return not (self._held or self._callbacks) and self._outbox.empty

    # ----------------------------------------------------------------- the way out

    def close(self) -> None:
        """Stop the pool (killing what still runs), record each try it held as lost to the
        worker host, hand what the scheduler did not acknowledge to the outbox, and end the
        host's job row."""
        self._intake.close()  # no scheduler attaches to a host on its way out
        self._pool.shutdown(graceful=False)
        self._drain_pool()  # what ended before the pool stopped
        now = self._clock.now()
        lost = "the worker host stopped while the try ran"
        for key in list(self._held):
            self._forward(TaskFinished(key, TaskState.FAILED, ExitReason.WORKER_LOST, now, lost))
        for request_id in sorted(self._callbacks):
            self._forward(CallbackDone(request_id, "the worker host stopped while they ran"))
        self._callbacks.clear()
        conn = self._conn
        if conn is not None:
            conn.channel.send_remaining(_REFUSAL_SECONDS)
        # Written even if the scheduler may have heard them: applying an outcome twice changes
        # nothing (the end of a try is a compare-and-set on its try number and state).
        self._outbox.add(item for _, item in self._unacked)
        self._unacked = []
        deadline = time.monotonic() + _LAST_FLUSH_SECONDS
        while not self._outbox.flush() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not self._outbox.empty:
            log.error("worker host: outcomes could not be written before exiting; they are lost")
        if conn is not None:
            conn.channel.close()
            self._conn = None
        with contextlib.suppress(Exception), self._db.write() as db_conn:
            jobs_store.end_job(db_conn, self.job_id, self._clock.now())


def _refuse(channel: Channel, reason: str) -> None:
    channel.send(Refused(reason))
    channel.send_remaining(_REFUSAL_SECONDS)
    channel.close()
