"""`slipstream tasks states|logs|test` with mapped tasks: each instance by its map index."""

from __future__ import annotations

import json

from slipstream.bootstrap import dag_file_sync, xcom_reader_factory
from slipstream.clock import SystemClock
from slipstream.config import Settings
from slipstream.executors.inline import InlineExecutor
from slipstream.scheduler.tick import Scheduler
from slipstream.services.runs import RunService
from slipstream.store.db import Database
from slipstream.store.plans import PlanCache
from slipstream.wakeup import Hint
from tests.cli.conftest import Cli

MAPPED = """
from datetime import datetime
from slipstream import DAG, task

with DAG("mapped_cli", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def letters():
        return ["a", "b"]

    @task
    def shout(letter, **context):
        print(f"shouting {letter} at {context['ti'].map_index}")
        return letter.upper()

    shout.expand(letter=letters())
    shout.override(task_id="literal").expand(letter=["x", "y", "z"])
"""


def run_once(slipstream: Cli, dag_id: str) -> str:
    """Trigger `dag_id` and run it to its end with an in-process scheduler on the CLI's home."""
    settings = Settings.from_env(slipstream.env)
    db = Database(settings.database_url)
    try:
        clock = SystemClock()
        dag_file_sync(settings, db, clock, None).sync_now()
        plans = PlanCache()
        executor = InlineExecutor(xcom_reader_factory=xcom_reader_factory(settings))
        scheduler = Scheduler(db, executor, clock=clock, settings=settings, plans=plans)
        scheduler.start()
        runs = RunService(db, clock=clock, plans=plans)
        run = runs.trigger(dag_id).run
        for _ in range(100):
            scheduler.tick([Hint.queued_run(dag_id)])
            if runs.get(dag_id, run.run_id).state.is_finished:
                break
        scheduler.stop()
        assert runs.get(dag_id, run.run_id).state.value == "success"
        return run.run_id
    finally:
        db.dispose()


def test_states_logs_and_test_name_map_indexes(slipstream: Cli) -> None:
    slipstream.write_dag("mapped_cli", MAPPED)
    run_id = run_once(slipstream, "mapped_cli")

    states = slipstream("tasks", "states", "mapped_cli", run_id, "--output", "json")
    assert states.exit_code == 0, states.output
    rows = {(r["task_id"], r["map_index"]): r["state"] for r in json.loads(states.output)}
    assert rows == {
        ("letters", -1): "success",
        ("shout", 0): "success",
        ("shout", 1): "success",
        ("literal", 0): "success",
        ("literal", 1): "success",
        ("literal", 2): "success",
    }

    log = slipstream("tasks", "logs", "mapped_cli", run_id, "shout", "--map-index", "1")
    assert log.exit_code == 0 and "shouting b at 1" in log.output
    missing = slipstream("tasks", "logs", "mapped_cli", run_id, "shout", "--map-index", "5")
    assert missing.exit_code == 3 and "map index 5" in missing.output

    # The run's upstream XComs feed the tested instance; nothing is recorded.
    tested = slipstream("tasks", "test", "mapped_cli", "shout", run_id, "--map-index", "0")
    assert tested.exit_code == 0, tested.output
    assert "shouting a at 0" in tested.output and "ended success" in tested.output
    literal = slipstream("tasks", "test", "mapped_cli", "literal", "--map-index", "2")
    assert literal.exit_code == 0 and "shouting z at 2" in literal.output
    unindexed = slipstream("tasks", "test", "mapped_cli", "literal")
    assert unindexed.exit_code == 2 and "--map-index" in unindexed.output
    after = slipstream("tasks", "states", "mapped_cli", run_id, "--output", "json")
    assert json.loads(after.output) == json.loads(states.output)


def test_dags_test_shows_each_mapped_instance_s_log(slipstream: Cli) -> None:
    slipstream.write_dag("mapped_cli", MAPPED)
    result = slipstream("dags", "test", "mapped_cli")
    assert result.exit_code == 0, result.output
    assert "--- shout[1] (try 1) ---" in result.output
    assert "shouting b at 1" in result.output
    assert "--- literal[2] (try 1) ---" in result.output


MAPPED_GROUP = """
from datetime import datetime
from slipstream import DAG, task, task_group

with DAG("group_cli", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def letters():
        return ["a", "b"]

    @task_group
    def words(letter):
        @task
        def shout(letter):
            return letter.upper()

        @task
        def show(text, **context):
            print(f"showing {text} at {context['ti'].map_index}")
            return text

        return show(shout(letter))

    words.expand(letter=letters())
"""


def test_a_mapped_group_s_tasks_by_map_index(slipstream: Cli) -> None:
    slipstream.write_dag("group_cli", MAPPED_GROUP)
    run_id = run_once(slipstream, "group_cli")
    states = slipstream("tasks", "states", "group_cli", run_id, "--output", "json")
    assert states.exit_code == 0, states.output
    rows = {(r["task_id"], r["map_index"]): r["state"] for r in json.loads(states.output)}
    assert rows == {
        ("letters", -1): "success",
        ("words.shout", 0): "success",
        ("words.shout", 1): "success",
        ("words.show", 0): "success",
        ("words.show", 1): "success",
    }
    log = slipstream("tasks", "logs", "group_cli", run_id, "words.show", "--map-index", "1")
    assert log.exit_code == 0 and "showing B at 1" in log.output
    # A test of one instance reads what its group's upstream task pushed at the same index.
    tested = slipstream("tasks", "test", "group_cli", "words.show", run_id, "--map-index", "0")
    assert tested.exit_code == 0, tested.output
    assert "showing A at 0" in tested.output and "ended success" in tested.output
    unindexed = slipstream("tasks", "test", "group_cli", "words.show", run_id)
    assert unindexed.exit_code == 2 and "--map-index" in unindexed.output
