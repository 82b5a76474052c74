"""The scheduler's executor for the local worker host: `HostExecutor` speaks the link
(`worker/link.py`) over the host's Unix socket, starting a host when none listens (if
allowed). It hands out the events the host forwards and acknowledges them once the scheduler
has committed them; it never runs or kills a try itself.

Its capacity is the host's while attached and 0 otherwise, so nothing is queued that no host
would run. When the host goes away, the tries it held are reported lost to it if its process
is gone (retried on the infrastructure budget); if it is alive, the next attachment tells.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import time
from collections.abc import Sequence
from pathlib import Path

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
from slipstream.errors import ConfigError
from slipstream.executors.base import Attachment, ExecutorLoad
from slipstream.executors.wire import Channel, RunCallbacks, RunTry, StopTry
from slipstream.lifeline import is_alive
from slipstream.worker.autostart import HostStarter
from slipstream.worker.intake import peer_of
from slipstream.worker.link import (
    Applied,
    Attach,
    Attached,
    Detach,
    Forwarded,
    PoolWorkers,
    Refused,
)

log = logging.getLogger(__name__)

# How `slipstream worker` exits when another host holds the home.
HOST_ALREADY_RUNNING_EXIT = 2
RETRY_SECONDS = 1.0  # between attempts to reach a host, when none listens
_STARTING_POLL_SECONDS = 0.05  # while a host it started comes up
_DEATH_WAIT_SECONDS = 1.0  # an EOF may come a moment before the process is gone
_LAST_WORDS_SECONDS = 5.0
_IDLE_HOST_EXIT_SECONDS = 10.0  # a detached autostarted host holding nothing exits within

# Events handed out, each with the host's number for it (0: not the current host's).
_Numbered = tuple[int, TaskEvent]


class HostExecutor:
    """`Executor`, `Killable`, `CallbackRunner`, `Measurable`, `Acknowledging` and `Attaching`
    over the link. Not thread-safe: the scheduler's loop is its only caller."""

    def __init__(
        self,
        socket_path: Path,
        *,
        clock: Clock,
        starter: HostStarter | None = None,
        attach_timeout: float = 60.0,
    ) -> None:
        self._path = socket_path
        self._clock = clock
        self._starter = starter
        self._attach_timeout = attach_timeout
        self._scheduler_job_id: int | None = None
        self._channel: Channel | None = None
        self._host_pid: int | None = None
        self._attached = False
        self._host_job_id: int | None = None
        self._capacity = 0
        self._worker_pids: tuple[int, ...] = ()
        # Tries sent to the host and not yet reported ended -> their pid once started.
        self._held: dict[TaskKey, int | None] = {}
        self._callbacks: set[int] = set()
        self._waiting_callbacks: list[CallbackRequest] = []  # to send once attached
        self._events: list[_Numbered] = []
        self._done: list[tuple[int, CallbackDone]] = []
        self._received = 0  # the number of the last event read from the current host
        self._acknowledged = 0
        self._ack_unsent = False  # `_acknowledged` not yet told to the host
        self._attachment: Attachment | None = None
        self._retry_at = 0.0  # monotonic
        self._said_no_host = False
        self._closed = False

    # ----------------------------------------------------------------- Executor

    @property
    def capacity(self) -> int:
        return self._capacity if self._attached else 0

    @property
    def attached(self) -> bool:
        return self._attached

    @property
    def host_pid(self) -> int | None:
        return self._host_pid if self._attached else None

    def start(self) -> None:
        """Nothing to start: `attach` connects, once the scheduler has its job."""

    def submit(self, workloads: Sequence[Workload]) -> None:
        if self._channel is None or not self._attached:
            # The host went away between the pass that queued these and now: they never
            # reached one, and are retried on the infrastructure budget.
            now = self._clock.now()
            for workload in workloads:
                error = "no worker host was attached when the try was sent"
                self._events.append(
                    (
                        0,
                        TaskFinished(
                            workload.key, TaskState.FAILED, ExitReason.WORKER_LOST, now, error
                        ),
                    )
                )
            return
        for workload in workloads:
            self._held[workload.key] = None
        self._send([RunTry(workload) for workload in workloads])

    def events(self) -> list[TaskEvent]:
        self._poll()
        events = [event for _, event in self._events]
        self._events = []
        return events

    def filenos(self) -> list[int]:
        """The host's socket; asked for just before the loop waits, so an acknowledgement
        not yet sent with other messages goes out now."""
        self._send([])
        return [self._channel.fileno()] if self._channel is not None else []

    def shutdown(self, *, graceful: bool = True) -> None:
        """The scheduler's way out: detach (the host keeps its tries), never kill."""
        self.detach()

    # ----------------------------------------------------------------- Killable, callbacks

    def kill(self, keys: Sequence[TaskKey]) -> None:
        """Ask the host to end these tries; while detached the next attachment's check with
        the database stops what is no longer wanted."""
        if self._channel is None or not self._attached:
            return
        self._send([StopTry(key) for key in keys if key in self._held])

    def run_callbacks(self, requests: Sequence[CallbackRequest]) -> None:
        if self._channel is None or not self._attached:
            self._waiting_callbacks.extend(requests)
            return
        for request in requests:
            self._callbacks.add(request.id)
        self._send([RunCallbacks(request) for request in requests])

    def callbacks_done(self) -> list[CallbackDone]:
        self._poll()
        done = [item for _, item in self._done]
        self._done = []
        return done

    def load(self) -> ExecutorLoad:
        queued = sum(1 for pid in self._held.values() if pid is None)
        return ExecutorLoad(self.capacity, queued, len(self._held) - queued, self._worker_pids)

    # ----------------------------------------------------------------- Acknowledging

    def acknowledge(self) -> None:
        """Everything handed out so far is committed: the host is told up to which number
        with the next messages sent to it (the tries a pass queues), or before the loop waits,
        so that it wakes once for both; always before anything sent after this call."""
        if self._channel is None or not self._attached:
            return
        waiting = [seq for seq, _ in self._events if seq] + [seq for seq, _ in self._done if seq]
        up_to = min(waiting) - 1 if waiting else self._received
        if up_to > self._acknowledged:
            self._acknowledged = up_to
            self._ack_unsent = True

    def _send(self, messages: list[object]) -> None:
        if self._channel is None:
            return
        if self._ack_unsent and self._attached:
            messages = [Applied(self._acknowledged), *messages]
        self._ack_unsent = False
        self._channel.send_all(messages)

    # ----------------------------------------------------------------- Attaching

    def attach(self, scheduler_job_id: int) -> None:
        """Connect and wait for the host's answer (starting a host first if none listens and
        that is allowed). With no host and autostart off, return detached and retry later.
        A refusal at start is an error: it names the host and why."""
        self._scheduler_job_id = scheduler_job_id
        deadline = time.monotonic() + self._attach_timeout
        while not self._attached:
            if self._channel is None:
                self._connect(refused_is_fatal=True)
                if self._channel is None:
                    if self._starter is None:
                        return  # said why in _connect; retried every second from events()
                    self._check_started_host()
                    if time.monotonic() > deadline:
                        raise ConfigError(
                            "worker",
                            f"no worker host answered at {self._path} within"
                            f" {self._attach_timeout:g} s; the one started for this scheduler"
                            f" logs to {self._starter.log_path}",
                        )
                    time.sleep(_STARTING_POLL_SECONDS)
                    continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConfigError(
                    "worker",
                    f"the worker host (pid {self._host_pid}) did not answer within"
                    f" {self._attach_timeout:g} s",
                )
            assert self._channel is not None
            select.select([self._channel.fileno()], [], [], min(remaining, 0.5))
            self._read(refused_is_fatal=True)

    def take_attachment(self) -> Attachment | None:
        attachment, self._attachment = self._attachment, None
        return attachment

    def detach(self) -> None:
        self._closed = True
        channel, self._channel = self._channel, None
        idle = not (self._held or self._callbacks)
        started_here = self._starter is not None and self._host_pid == self._starter.pid
        if channel is not None:
            if self._attached:
                messages: list[object] = [Detach()]
                if self._ack_unsent:
                    messages.insert(0, Applied(self._acknowledged))
                channel.send_all(messages)
            channel.send_remaining(_LAST_WORDS_SECONDS)
            channel.close()
        was_attached, self._attached = self._attached, False
        if self._starter is not None:
            if was_attached and idle and started_here:
                # It exits at once, holding nothing: this process reaps it, so that nothing
                # it started outlives a clean stop, and its CPU time is counted as ours.
                self._starter.wait(_IDLE_HOST_EXIT_SECONDS)
            self._starter.reap()

    def wake_in(self) -> float | None:
        if self._closed or self._channel is not None or self._scheduler_job_id is None:
            return None
        return max(0.0, self._retry_at - time.monotonic())

    # ----------------------------------------------------------------- the connection

    def _poll(self) -> None:
        if self._closed or self._scheduler_job_id is None:
            return
        if self._channel is None:
            if time.monotonic() < self._retry_at:
                return
            self._connect(refused_is_fatal=False)
            if self._channel is None:
                return
        self._read(refused_is_fatal=False)

    def _connect(self, *, refused_is_fatal: bool) -> None:
        """One attempt to reach the host; on success `Attach` is on its way."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self._path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            self._no_host()
            return
        except OSError as exc:
            sock.close()
            log.warning("cannot reach the worker host at %s: %s", self._path, exc)
            self._retry_at = time.monotonic() + RETRY_SECONDS
            return
        peer = peer_of(sock)
        if peer.uid != os.getuid():
            sock.close()
            message = (
                f"the process listening at {self._path} (pid {peer.pid}) runs as uid"
                f" {peer.uid}, not this scheduler's {os.getuid()}: not a worker host to trust"
            )
            if refused_is_fatal:
                raise ConfigError("worker", message)
            log.error("%s", message)
            self._retry_at = time.monotonic() + RETRY_SECONDS
            return
        self._channel = Channel(sock)
        self._host_pid = peer.pid
        assert self._scheduler_job_id is not None
        self._channel.send(Attach(self._scheduler_job_id))

    def _no_host(self) -> None:
        if self._starter is not None:
            if not self._starter.running():
                pid = self._starter.start()
                log.info("no worker host listens at %s: started one (pid %d)", self._path, pid)
            self._retry_at = time.monotonic() + _STARTING_POLL_SECONDS
            return
        if not self._said_no_host:
            self._said_no_host = True
            log.warning(
                "no worker host listens at %s and SLIPSTREAM_WORKER_AUTOSTART is false: no"
                " task runs until one is started with `slipstream worker` (tried every %g s)",
                self._path,
                RETRY_SECONDS,
            )
        self._retry_at = time.monotonic() + RETRY_SECONDS

    def _check_started_host(self) -> None:
        """At start: a host this scheduler started and that already exited will not answer,
        unless it found another holding the home (one that was exiting as we connected: the
        next attempt starts a host again once that one is gone)."""
        assert self._starter is not None
        code = self._starter.exit_code()
        if code is not None and code != HOST_ALREADY_RUNNING_EXIT:
            raise ConfigError(
                "worker",
                f"the worker host started for this scheduler exited with code {code} before"
                f" it listened; its output is in {self._starter.log_path}",
            )

    def _read(self, *, refused_is_fatal: bool) -> None:
        channel = self._channel
        assert channel is not None
        channel.flush()
        for message in channel.receive():
            if isinstance(message, Forwarded):
                self._on_forwarded(message)
            elif isinstance(message, Attached):
                self._on_attached(message)
            elif isinstance(message, PoolWorkers):
                self._worker_pids = message.pids
            elif isinstance(message, Refused):
                self._drop_connection()
                if refused_is_fatal:
                    raise ConfigError("worker", f"the worker host refused: {message.reason}")
                log.warning("the worker host refused this scheduler: %s", message.reason)
                self._retry_at = time.monotonic() + RETRY_SECONDS
                return
            else:
                log.warning("unexpected message from the worker host: %r", type(message).__name__)
        if channel.at_eof:
            self._lose_host()

    def _on_forwarded(self, message: Forwarded) -> None:
        self._received = message.seq
        event = message.event
        if isinstance(event, CallbackDone):
            self._callbacks.discard(event.id)
            self._done.append((message.seq, event))
            return
        if isinstance(event, TaskStarted):
            if event.key in self._held:
                self._held[event.key] = event.pid
        else:
            self._held.pop(event.key, None)
        self._events.append((message.seq, event))

    def _on_attached(self, message: Attached) -> None:
        self._attached = True
        self._said_no_host = False
        self._host_job_id = message.host_job_id
        self._capacity = message.capacity
        self._worker_pids = message.worker_pids
        self._received = self._acknowledged = message.seq
        self._ack_unsent = False
        self._held = {started.key: started.pid for started in message.running}
        self._held.update(dict.fromkeys(message.queued))
        self._callbacks = set(message.callbacks)
        self._attachment = Attachment(
            message.host_job_id, message.running, message.queued, message.callbacks
        )
        log.info(
            "attached to the worker host (pid %s, job %d): capacity %d, %d tries held",
            self._host_pid,
            message.host_job_id,
            message.capacity,
            len(self._held),
        )
        waiting, self._waiting_callbacks = self._waiting_callbacks, []
        self.run_callbacks([request for request in waiting if request.id not in self._callbacks])

    def _drop_connection(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
        self._attached = False
        # Events of this connection not handed out yet are no longer the host's to forget.
        self._events = [(0, event) for _, event in self._events]
        self._done = [(0, done) for _, done in self._done]

    def _lose_host(self) -> None:
        """The host's end closed. If its process is gone, every try it held ended with it."""
        was_attached = self._attached
        pid = self._host_pid
        self._drop_connection()
        self._retry_at = 0.0  # at once: another host may be started
        if not was_attached or pid is None:
            return
        deadline = time.monotonic() + _DEATH_WAIT_SECONDS
        while is_alive(pid) and time.monotonic() < deadline:
            if self._starter is not None:
                self._starter.reap()
            time.sleep(0.01)
        if is_alive(pid):
            log.warning(
                "the worker host (pid %d) closed its connection; attaching again (%d tries held)",
                pid,
                len(self._held),
            )
            return
        now = self._clock.now()
        error = f"the worker host (pid {pid}) died while the try was in flight"
        for key in self._held:
            self._events.append(
                (0, TaskFinished(key, TaskState.FAILED, ExitReason.WORKER_LOST, now, error))
            )
        for request_id in sorted(self._callbacks):
            self._done.append((0, CallbackDone(request_id, f"the worker host (pid {pid}) died")))
        log.warning(
            "the worker host (pid %d) died; %d tries it held are lost", pid, len(self._held)
        )
        self._held.clear()
        self._callbacks.clear()
