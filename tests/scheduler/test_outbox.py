"""The outbox (`try_outcomes`) read by the scheduler, stepped pass by pass: outcomes a worker
host kept while no scheduler ran are applied once by the next one, whichever way they arrive.

The rows are written from a second process, as a worker host writes them; the scheduler is the
real one on a real database (SQLite and PostgreSQL), with the inline executor.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

import pytest

from slipstream.core.records import ExitReason, TaskEvent, TaskFinished, TaskKey, Workload
from slipstream.core.states import RunState, TaskState
from slipstream.scheduler.tick import Scheduler
from slipstream.services.run_changes import RunChangeService
from slipstream.store import outcomes as outcomes_store
from slipstream.store import xcoms as xcom_store
from slipstream.wakeup import Hint
from tests.scheduler.conftest import START, Harness
from tests.scheduler.test_tick import CHAIN

WRITER = """
import json, sys
from slipstream.core.records import TaskFinished
from slipstream.clock import SystemClock
from slipstream.store import outcomes
from slipstream.store.db import Database

db = Database(sys.argv[1])
with db.write() as conn:
    written = outcomes.record(
        conn,
        [TaskFinished.from_json(json.loads(sys.argv[2]))],
        worker_job_id=None,
        now=SystemClock().now(),
    )
db.dispose()
print(written)
"""


def record_elsewhere(harness: Harness, outcome: TaskFinished) -> int:
    """Write one outcome to the outbox from another process, as a worker host does; returns
    how many rows it added."""
    done = subprocess.run(
        [sys.executable, "-c", WRITER, harness.db.url, json.dumps(outcome.to_json())],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout.strip())


def pulled(harness: Harness, run_pk: int, task_id: str) -> str:
    with harness.db.read() as conn:
        return xcom_store.pull(conn, run_pk, [task_id], "return_value")[task_id]


def outbox_rows(harness: Harness) -> int:
    with harness.db.read() as conn:
        return outcomes_store.count(conn)


class _Unheard:
    """An executor that takes work and never reports: the host ran it while its scheduler died.
    `capacity` can be made to fail, inside a pass's transaction (a failed pass)."""

    def __init__(self) -> None:
        self.fail = False
        self.submitted: list[Workload] = []

    @property
    def capacity(self) -> int:
        if self.fail:
            raise RuntimeError("the pass fails here, after the outbox was read")
        return 32

    def start(self) -> None: ...

    def submit(self, workloads: Sequence[Workload]) -> None:
        self.submitted += workloads

    def events(self) -> list[TaskEvent]:
        return []

    def filenos(self) -> list[int]:
        return []

    def shutdown(self, *, graceful: bool = True) -> None: ...


def success(run_pk: int, task_id: str, try_number: int = 1, value: str = "1") -> TaskFinished:
    return TaskFinished(
        TaskKey(run_pk, task_id, try_number),
        TaskState.SUCCESS,
        ExitReason.SUCCESS,
        START,  # the frozen clock's time: what the try's process would have stamped
        xcoms=(("return_value", value),),
    )


def queue_first_task(harness: Harness) -> tuple[int, str]:
    """A scheduler that queues `one` and is never heard of again (its try ran on)."""
    harness.write_dag("chain", CHAIN)
    gone = Scheduler(harness.db, _Unheard(), clock=harness.clock, settings=harness.settings)  # type: ignore[arg-type]
    gone.start()
    run = harness.runs.trigger("chain").run
    gone.tick([Hint.queued_run("chain")])
    assert harness.states("chain", run.run_id)["one"] == "queued"
    return run.id, run.run_id


def test_an_outcome_kept_while_no_scheduler_ran_is_applied_once_by_the_next(
    harness: Harness,
) -> None:
    run_pk, run_id = queue_first_task(harness)
    outcome = success(run_pk, "one")
    assert record_elsewhere(harness, outcome) == 1
    assert record_elsewhere(harness, outcome) == 0  # a duplicate insert is ignored
    assert outbox_rows(harness) == 1
    revived = harness.new_scheduler()
    revived.start()  # reads the outbox before it recovers anything
    harness.scheduler = revived
    assert outbox_rows(harness) == 0
    harness.settle((Hint.queued_run("chain"),))
    assert harness.run("chain", run_id).state is RunState.SUCCESS
    # The try was not lost with its scheduler: it ran once, and its XCom flowed downstream.
    [only] = harness.tries("chain", run_id, "one")
    assert (only.try_number, only.exit_reason) == (1, ExitReason.SUCCESS)
    assert json.loads(pulled(harness, run_pk, "double"))["value"] == 22

    # The same outcome once more (socket and outbox both, say): it changes nothing.
    before = (harness.tis("chain", run_id), harness.tries("chain", run_id, "one"))
    assert record_elsewhere(harness, success(run_pk, "one", value="999")) == 1
    harness.clock.advance(10)  # the safety scan reads the outbox
    harness.settle()
    assert outbox_rows(harness) == 0
    assert (harness.tis("chain", run_id), harness.tries("chain", run_id, "one")) == before
    assert pulled(harness, run_pk, "one") == "1"


def test_a_failed_pass_keeps_the_rows_it_read(harness: Harness) -> None:
    harness.write_dag("chain", CHAIN)
    executor = _Unheard()
    scheduler = Scheduler(harness.db, executor, clock=harness.clock, settings=harness.settings)  # type: ignore[arg-type]
    scheduler.start()
    run = harness.runs.trigger("chain").run
    scheduler.tick([Hint.queued_run("chain")])
    assert harness.states("chain", run.run_id)["one"] == "queued"
    # Written while this scheduler runs (a host attached to nobody): the safety scan finds it.
    record_elsewhere(harness, success(run.id, "one"))
    harness.clock.advance(10)
    executor.fail = True
    with pytest.raises(RuntimeError, match="the pass fails here"):
        scheduler.tick()
    assert outbox_rows(harness) == 1
    assert harness.states("chain", run.run_id)["one"] == "queued"
    executor.fail = False
    harness.clock.advance(10)
    scheduler.tick()
    assert outbox_rows(harness) == 0
    assert harness.states("chain", run.run_id)["one"] == "success"


def test_an_outcome_for_a_cleared_try_changes_nothing(harness: Harness) -> None:
    run_pk, run_id = queue_first_task(harness)
    changes = RunChangeService(harness.db, clock=harness.clock, plans=harness.plans)
    changes.clear_task_instances(
        "chain", run_id=run_id, task_ids=["one"], only_failed=False, dry_run=False, by="bob"
    )
    # The cleared try's outcome, kept by its host: too late, a person wants it run again.
    record_elsewhere(harness, success(run_pk, "one", value="999"))
    revived = harness.new_scheduler()
    revived.start()
    harness.scheduler = revived
    assert outbox_rows(harness) == 0
    harness.settle((Hint.run_changed(run_pk),))
    assert harness.run("chain", run_id).state is RunState.SUCCESS
    one = harness.tis("chain", run_id)["one"]
    assert (one.state, one.try_number) == (TaskState.SUCCESS, 2)
    # The try's own history keeps how it ended; the task instance was not moved by it.
    tries = harness.tries("chain", run_id, "one")
    assert [(t.try_number, t.exit_reason) for t in tries] == [
        (1, ExitReason.SUCCESS),
        (2, ExitReason.SUCCESS),
    ]
    assert pulled(harness, run_pk, "one") == "1"
