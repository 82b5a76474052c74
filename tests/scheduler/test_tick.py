"""Scheduler passes, stepped one at a time on a real database with the inline executor."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from slipstream.core.records import ExitReason, TaskEvent, Workload
from slipstream.errors import InvalidConf
from slipstream.store import jobs as jobs_store
from slipstream.store import xcoms as xcom_store
from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness

CHAIN = """
from datetime import datetime
from slipstream import DAG, task

with DAG("chain", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def one():
        return 1

    @task
    def add(x):
        return x + 10

    @task
    def double(x, **context):
        return {"value": x * 2, "conf": dict(context["dag_run"].conf)}

    double(add(one()))
"""


def test_a_chain_runs_to_success_and_values_flow_downstream(harness: Harness) -> None:
    harness.write_dag("chain", CHAIN)
    run = harness.runs.trigger("chain", conf={"k": "v"}).run
    harness.settle((Hint.queued_run("chain"),))
    assert harness.run("chain", run.run_id).state.value == "success"
    assert harness.states("chain", run.run_id) == {
        "one": "success",
        "add": "success",
        "double": "success",
    }
    with harness.db.read() as conn:
        values = xcom_store.for_tasks(conn, run.id, ["double"])
    assert json.loads(values["double"]["return_value"]) == {"value": 22, "conf": {"k": "v"}}
    # Starts reported in the same batch as their ends are recorded all the same.
    for ti in harness.tis("chain", run.run_id).values():
        assert ti.start_date is not None and ti.end_date is not None
        assert ti.pid == os.getpid() and ti.hostname
        [only] = harness.tries("chain", run.run_id, ti.task_id)
        assert (only.start_date, only.pid) == (ti.start_date, ti.pid)


def test_a_finished_task_readies_its_downstream_in_the_same_pass(harness: Harness) -> None:
    harness.write_dag("chain", CHAIN)
    run = harness.runs.trigger("chain").run
    # Pass 1 starts the run and submits `one`; the inline executor runs it during submit.
    harness.scheduler.tick([Hint.queued_run("chain")])
    assert harness.states("chain", run.run_id)["one"] == "queued"
    # Pass 2 records `one` and submits `add` in the same pass.
    report = harness.scheduler.tick()
    assert report.events == 2 and report.queued == 1
    assert harness.states("chain", run.run_id) == {
        "one": "success",
        "add": "queued",
        "double": "none",
    }


def test_bad_conf_is_refused_before_a_run_exists(harness: Harness) -> None:
    harness.write_dag(
        "typed",
        """
        from datetime import datetime
        from slipstream import DAG, EmptyOperator, Param

        with DAG("typed", schedule=None, start_date=datetime(2024, 1, 1),
                 params={"n": Param(1, type="integer", minimum=0)}) as dag:
            EmptyOperator(task_id="noop")
        """,
    )
    with pytest.raises(InvalidConf) as caught:
        harness.runs.trigger("typed", conf={"n": "lots"})
    assert caught.value.field == "n"
    assert harness.runs.list_runs("typed")[1] == 0


def test_retry_waits_out_its_delay_then_runs_again(harness: Harness, tmp_path: Path) -> None:
    marker = tmp_path / "attempts"
    harness.write_dag(
        "flaky",
        f"""
        from datetime import datetime, timedelta
        from pathlib import Path
        from slipstream import DAG, task

        with DAG("flaky", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            @task(retries=1, retry_delay=timedelta(seconds=60))
            def wobble():
                marker = Path({str(marker)!r})
                attempts = int(marker.read_text()) if marker.exists() else 0
                marker.write_text(str(attempts + 1))
                if attempts == 0:
                    raise RuntimeError("first try fails")
                return attempts

            wobble()
        """,
    )
    run = harness.runs.trigger("flaky").run
    harness.settle((Hint.queued_run("flaky"),))
    ti = harness.tis("flaky", run.run_id)["wobble"]
    assert ti.state.value == "up_for_retry"
    assert ti.next_retry_at == harness.clock.now() + timedelta(seconds=60)
    harness.clock.advance(30)
    harness.settle()
    assert harness.tis("flaky", run.run_id)["wobble"].state.value == "up_for_retry"
    harness.clock.advance(31)
    harness.settle()
    assert harness.run("flaky", run.run_id).state.value == "success"
    tries = harness.tries("flaky", run.run_id, "wobble")
    assert [(t.try_number, t.state.value) for t in tries] == [(1, "failed"), (2, "success")]
    assert tries[0].exit_reason is ExitReason.TASK_ERROR
    assert tries[0].error is not None and "first try fails" in tries[0].error


def test_a_failure_propagates_and_fails_the_run_with_a_reason(harness: Harness) -> None:
    harness.write_dag(
        "breaks",
        """
        from datetime import datetime
        from slipstream import DAG, task, EmptyOperator

        with DAG("breaks", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            @task
            def boom():
                raise ValueError("nope")

            after = EmptyOperator(task_id="after")
            cleanup = EmptyOperator(task_id="cleanup", trigger_rule="all_done")
            boom() >> after >> cleanup
        """,
    )
    run = harness.runs.trigger("breaks").run
    harness.settle((Hint.queued_run("breaks"),))
    assert harness.states("breaks", run.run_id) == {
        "boom": "failed",
        "after": "upstream_failed",
        "cleanup": "success",
    }
    # The only leaf succeeded, so, as in Airflow, the run succeeds.
    assert harness.run("breaks", run.run_id).state.value == "success"


def test_a_failed_leaf_fails_the_run(harness: Harness) -> None:
    harness.write_dag(
        "leaf_fails",
        """
        from datetime import datetime
        from slipstream import DAG, BashOperator

        with DAG("leaf_fails", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            BashOperator(task_id="exit3", bash_command="exit 3")
        """,
    )
    run = harness.runs.trigger("leaf_fails").run
    harness.settle((Hint.queued_run("leaf_fails"),))
    finished = harness.run("leaf_fails", run.run_id)
    assert finished.state.value == "failed"
    assert finished.state_reason is not None and "exit3" in finished.state_reason


def test_max_active_runs_holds_back_extra_runs(harness: Harness) -> None:
    harness.write_dag(
        "one_at_a_time",
        """
        from datetime import datetime
        from slipstream import DAG, EmptyOperator, task

        with DAG("one_at_a_time", schedule=None, start_date=datetime(2024, 1, 1),
                 max_active_runs=1) as dag:
            @task
            def work():
                return 1
            work()
        """,
    )
    ids = [harness.runs.trigger("one_at_a_time").run.run_id for _ in range(3)]
    harness.scheduler.tick([Hint.queued_run("one_at_a_time")])
    assert [harness.run("one_at_a_time", r).state.value for r in ids] == [
        "running",
        "queued",
        "queued",
    ]
    harness.settle()
    assert {harness.run("one_at_a_time", r).state.value for r in ids} == {"success"}


def test_a_paused_dag_keeps_its_triggered_run_queued_until_unpaused(harness: Harness) -> None:
    harness.write_dag("chain", CHAIN)
    harness.dags.set_paused("chain", True)
    result = harness.runs.trigger("chain")
    assert result.dag_is_paused and "unpaused" in result.message
    harness.settle((Hint.queued_run("chain"),))
    assert harness.run("chain", result.run.run_id).state.value == "queued"
    harness.dags.set_paused("chain", False)
    harness.settle((Hint.dag_changed("chain"),))
    assert harness.run("chain", result.run.run_id).state.value == "success"


@pytest.mark.parametrize(("catchup", "expected_runs"), [(True, 3), (False, 1)])
def test_schedules_create_runs_with_and_without_catchup(
    harness: Harness, catchup: bool, expected_runs: int
) -> None:
    start = (harness.clock.now() - timedelta(days=3)).replace(hour=0, minute=0)
    harness.write_dag(
        "daily",
        f"""
        from datetime import datetime, timezone
        from slipstream import DAG, EmptyOperator

        with DAG("daily", schedule="@daily", catchup={catchup},
                 start_date=datetime({start.year}, {start.month}, {start.day}, tzinfo=timezone.utc)
                 ) as dag:
            EmptyOperator(task_id="noop")
        """,
    )
    harness.settle((Hint.dag_changed("daily"),))
    runs, total = harness.runs.list_runs("daily", order_by="logical_date")
    assert total == expected_runs
    assert all(r.state.value == "success" and r.run_type.value == "scheduled" for r in runs)
    # The newest run covers the latest complete day.
    assert runs[-1].data_interval_end == harness.clock.now().replace(hour=0, minute=0)
    # A day later exactly one more run is due.
    harness.clock.advance(timedelta(days=1))
    harness.settle()
    assert harness.runs.list_runs("daily")[1] == expected_runs + 1


def test_backfill_queues_each_interval_once(harness: Harness) -> None:
    harness.write_dag(
        "hourly",
        """
        from datetime import datetime, timezone
        from slipstream import DAG, EmptyOperator

        with DAG("hourly", schedule="0 * * * *", catchup=False,
                 start_date=datetime(2030, 1, 1, tzinfo=timezone.utc)) as dag:
            EmptyOperator(task_id="noop")
        """,
    )
    start = harness.clock.now().replace(minute=0) - timedelta(hours=5)
    first = harness.runs.backfill("hourly", start, start + timedelta(hours=2))
    again = harness.runs.backfill("hourly", start, start + timedelta(hours=3))
    assert [r.logical_date for r in first] == [start + timedelta(hours=h) for h in range(3)]
    assert [r.logical_date for r in again] == [start + timedelta(hours=3)]
    harness.settle((Hint.queued_run("hourly"),))
    runs, total = harness.runs.list_runs("hourly")
    assert total == 4 and {r.state.value for r in runs} == {"success"}


def test_one_busy_dag_cannot_starve_another(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    h = Harness(db, tmp_path, parallelism=2)
    h.scheduler.start()
    h.write_dag(
        "busy",
        """
        from datetime import datetime
        from slipstream import DAG, task

        with DAG("busy", schedule=None, start_date=datetime(2024, 1, 1),
                 max_active_tasks=100) as dag:
            @task
            def work(i):
                return i
            for i in range(40):
                work.override(task_id=f"w{i}")(i)
        """,
    )
    h.write_dag(
        "small",
        """
        from datetime import datetime
        from slipstream import DAG, task

        with DAG("small", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            @task
            def only():
                return 1
            only()
        """,
    )
    busy = h.runs.trigger("busy").run
    small = h.runs.trigger("small").run
    h.scheduler.tick([Hint.anything()])
    # Two slots, two DAGs with ready work: each gets one in the first pass.
    assert h.states("small", small.run_id)["only"] == "queued"
    assert list(h.states("busy", busy.run_id).values()).count("queued") == 1
    h.settle()
    assert h.run("busy", busy.run_id).state.value == "success"


class _Blackhole:
    """An executor that accepts work and never reports: a scheduler that died mid-try."""

    capacity = 32

    def start(self) -> None: ...

    def submit(self, workloads: Sequence[Workload]) -> None:
        self.submitted = list(workloads)

    def events(self) -> list[TaskEvent]:
        return []

    def filenos(self) -> list[int]:
        return []

    def shutdown(self, *, graceful: bool = True) -> None: ...


def test_tries_of_a_dead_scheduler_are_retried_on_the_infrastructure_budget(
    harness: Harness,
) -> None:
    harness.write_dag("chain", CHAIN)
    from slipstream.scheduler.tick import Scheduler

    dead = Scheduler(harness.db, _Blackhole(), clock=harness.clock, settings=harness.settings)
    dead.start()
    run = harness.runs.trigger("chain").run
    dead.tick([Hint.queued_run("chain")])
    assert harness.states("chain", run.run_id)["one"] == "queued"
    # The dead scheduler's job row claims this very pid: a restart sees its pid as gone.
    with harness.db.write() as conn:
        jobs = jobs_store.running_jobs(conn)
        assert dead.job_id in {j.id for j in jobs}
    assert os.getpid() == next(j.pid for j in jobs if j.id == dead.job_id)
    revived = harness.new_scheduler()
    revived.start()
    harness.scheduler = revived
    harness.settle((Hint.queued_run("chain"),))
    assert harness.run("chain", run.run_id).state.value == "success"
    tries = harness.tries("chain", run.run_id, "one")
    assert [t.exit_reason for t in tries] == [ExitReason.SCHEDULER_LOST, ExitReason.SUCCESS]
    assert tries[0].error is not None and "scheduler stopped" in tries[0].error
    # The infrastructure loss did not use up the task's own retries (it has none).
    assert harness.tis("chain", run.run_id)["one"].infra_failures == 1


EVOLVING = """
from datetime import datetime
from slipstream import DAG, task

with DAG("evolving", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def first():
        return "{version}"

    @task
    def second(x):
        return f"second of {version} saw {{x}}"

    second(first()){extra}
"""


def test_a_run_keeps_the_code_and_shape_of_the_version_it_started_with(
    harness: Harness,
) -> None:
    harness.write_dag("evolving", EVOLVING.format(version="v1", extra=""))
    old = harness.runs.trigger("evolving").run
    harness.scheduler.tick([Hint.queued_run("evolving")])  # starts the run; `first` runs (inline)
    assert harness.states("evolving", old.run_id)["first"] == "queued"
    harness.write_dag(
        "evolving",
        EVOLVING.format(
            version="v2",
            extra="\n    @task\n    def third():\n        return 3\n    third()\n",
        ),
    )
    harness.settle((Hint.dag_changed("evolving"),))
    assert harness.states("evolving", old.run_id) == {"first": "success", "second": "success"}
    new = harness.runs.trigger("evolving").run
    harness.settle((Hint.queued_run("evolving"),))
    assert set(harness.states("evolving", new.run_id)) == {"first", "second", "third"}
    with harness.db.read() as conn:
        old_values = xcom_store.for_tasks(conn, old.id, ["second"])
        new_values = xcom_store.for_tasks(conn, new.id, ["second"])
    assert json.loads(old_values["second"]["return_value"]) == "second of v1 saw v1"
    assert json.loads(new_values["second"]["return_value"]) == "second of v2 saw v2"
