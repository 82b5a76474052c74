"""The Celery side of `slipstream celery worker`: the app's tasks and its stop command bound to
a `TryRunner` (the worker host's Celery intake), and the Celery worker itself (threads pool).

A task body only hands its try to the runner and waits: the try runs in the runner's pool of
warm workers, with the local executor's isolation, and the body returns (so Celery
acknowledges the message) once the try's outcome is committed to the database, or once the
claim has shown this delivery is a duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from celery import Celery
from celery.worker.control import control_command

from slipstream.config import CelerySettings
from slipstream.core.records import CallbackRequest, TaskKey, Workload
from slipstream.executors.celery.app import (
    MESSAGE_VERSION,
    RUN_CALLBACKS,
    RUN_TRY,
    STOP_TRIES,
    make_app,
)

log = logging.getLogger(__name__)


class TryRunner(Protocol):
    """Where the Celery worker's task threads hand their work (thread-safe)."""

    def run_try(self, workload: Workload) -> None:
        """Run the try if this delivery wins its claim; return once its outcome is committed
        (or at once, for a delivery that lost the claim)."""
        ...

    def run_callbacks(self, request: CallbackRequest) -> None:
        """Run a callback request; return once it has run and its row is gone."""
        ...

    def stop_tries(self, keys: Sequence[TaskKey]) -> None:
        """Stop these tries if this worker runs them (never blocks)."""
        ...


def workload_of(body: Any) -> Workload:
    """The workload of a `slipstream.run_try` message; ValueError names what is wrong."""
    _check_version(body, "slipstream.run_try")
    return Workload.from_json(body["workload"])


def request_of(body: Any) -> CallbackRequest:
    _check_version(body, "slipstream.run_callbacks")
    return CallbackRequest.from_json(body["request"])


def _check_version(body: Any, task: str) -> None:
    version = body.get("v") if isinstance(body, dict) else None
    if version != MESSAGE_VERSION:
        raise ValueError(
            f"{task} message version {version!r} is not {MESSAGE_VERSION} (sent by another"
            " Slipstream version); the message is dropped"
        )


def keys_of(raw: Any) -> list[TaskKey]:
    """The tries a stop command names: [[run_pk, task_id, try_number, map_index], ...]."""
    if not isinstance(raw, list):
        raise ValueError(f"keys must be a list, not {type(raw).__name__}")
    return [TaskKey(int(k[0]), str(k[1]), int(k[2]), int(k[3])) for k in raw]


def worker_app(settings: CelerySettings, runner: TryRunner) -> Celery:
    """The app with its tasks and stop command bound to `runner`. Nothing lives at module
    level: the tasks are closures over the runner (Celery's control panel is its own
    process-wide registry, so the command is registered here, once per worker process)."""
    app = make_app(settings)

    @app.task(name=RUN_TRY)  # type: ignore[untyped-decorator]
    def run_try(body: Any) -> None:
        runner.run_try(workload_of(body))

    @app.task(name=RUN_CALLBACKS)  # type: ignore[untyped-decorator]
    def run_callbacks(body: Any) -> None:
        runner.run_callbacks(request_of(body))

    @control_command(  # type: ignore[untyped-decorator]
        name=STOP_TRIES, args=[("keys", list)], signature="<keys>"
    )
    def stop_tries(state: Any, keys: Any = None) -> dict[str, str]:
        try:
            runner.stop_tries(keys_of(keys))
        except (ValueError, TypeError, IndexError) as exc:
            log.warning("celery worker: a stop request could not be read: %s", exc)
            return {"error": str(exc)}
        return {"ok": "stopping"}

    return app


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    queues: tuple[str, ...]
    concurrency: int
    hostname: str
    loglevel: str = "INFO"


def run_celery_worker(app: Celery, options: WorkerOptions) -> int:
    """Consume until a warm shutdown (SIGTERM) or a cold one (SIGQUIT); returns the exit code.
    Must run in the main thread (Celery installs its signal handlers)."""
    worker = app.Worker(
        pool="threads",
        concurrency=options.concurrency,
        queues=list(options.queues),
        hostname=options.hostname,
        loglevel=options.loglevel,
        # Tries announce themselves in the database and on Flower; the banner's task list is
        # noise in a service's log.
        quiet=True,
        without_mingle=True,
        without_gossip=True,
    )
    worker.start()
    return int(worker.exitcode or 0)
