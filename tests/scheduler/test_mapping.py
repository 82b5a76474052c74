"""Dynamic task mapping through scheduler passes, stepped on a real database with the inline
executor: expansion over literals and upstream XComs, the reduce step, zero-length maps,
max_map_length, and retries per map index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slipstream.core.states import TaskState
from slipstream.services.run_changes import RunChangeService
from slipstream.store import xcoms as xcom_store
from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness
from tests.scheduler.test_loop import Deployment


def instances(harness: Harness, dag_id: str, run_id: str) -> dict[tuple[str, int], str]:
    return {
        (t.task_id, t.map_index): t.state.value for t in harness.runs.task_instances(dag_id, run_id)
    }


def run_to_end(harness: Harness, dag_id: str) -> tuple[int, str]:
    run = harness.runs.trigger(dag_id).run
    harness.settle((Hint.queued_run(dag_id),))
    return run.id, run.run_id


def values_of(harness: Harness, run_pk: int, task_id: str) -> object:
    with harness.db.read() as conn:
        return json.loads(xcom_store.for_tasks(conn, run_pk, [task_id])[task_id]["return_value"])


MAP_AND_REDUCE = """
from datetime import datetime
from slipstream import DAG, task

with DAG("mapreduce", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def pairs():
        return {"a": 10, "b": 20}

    @task
    def add(x, y):
        return x + y

    @task
    def label(pair, **context):
        key, value = pair
        return f"{key}={value}@{context['ti'].map_index}"

    @task
    def total(values):
        return sum(values)

    @task
    def show(values):
        return list(values)

    added = add.partial(y=100).expand(x=numbers())
    total(added)
    show(label.expand(pair=pairs()))
    show.override(task_id="literal")(add.expand(x=[1, 2], y=[10, 20]))
    show.override(task_id="zipped")(
        add.override(task_id="zip_add").expand_kwargs(
            numbers().zip(numbers().map(lambda n: n * 1000)).map(lambda p: {"x": p[0], "y": p[1]})
        )
    )
"""


def test_mapped_tasks_expand_over_lists_dicts_and_literals_and_reduce(harness: Harness) -> None:
    harness.write_dag("mapreduce", MAP_AND_REDUCE)
    run_pk, run_id = run_to_end(harness, "mapreduce")
    assert harness.run("mapreduce", run_id).state.value == "success"
    states = instances(harness, "mapreduce", run_id)
    assert {k: v for k, v in states.items() if k[0] == "add"} == {
        ("add", 0): "success",
        ("add", 1): "success",
        ("add", 2): "success",
    }
    assert values_of(harness, run_pk, "add") == [101, 102, 103]
    assert values_of(harness, run_pk, "total") == 306
    assert values_of(harness, run_pk, "show") == ["a=10@0", "b=20@1"]
    assert values_of(harness, run_pk, "literal") == [11, 21, 12, 22]
    assert values_of(harness, run_pk, "zipped") == [1001, 2002, 3003]


ZERO_AND_TOO_MANY = """
from datetime import datetime
from slipstream import DAG, task

with DAG("edges", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def nothing():
        return []

    @task
    def many():
        return list(range(5))

    @task
    def scalar():
        return 7

    @task
    def silent():
        return None

    @task
    def each(x):
        return x

    @task
    def after(values):
        return values

    @task(trigger_rule="all_done")
    def anyway():
        return "ran"

    after(each.expand(x=nothing())) >> anyway()
    each.override(task_id="over_many").expand(x=many())
    each.override(task_id="over_scalar").expand(x=scalar())
    each.override(task_id="over_silent").expand(x=silent())
"""


def test_zero_length_skips_and_a_value_too_long_or_unmappable_fails_its_producer(
    harness: Harness,
) -> None:
    harness.settings = harness.settings.with_changes(max_map_length=3)
    harness.scheduler = harness.new_scheduler()
    harness.scheduler.start()
    harness.write_dag("edges", ZERO_AND_TOO_MANY)
    _, run_id = run_to_end(harness, "edges")
    states = instances(harness, "edges", run_id)
    assert states[("each", -1)] == "skipped"
    assert states[("after", -1)] == "skipped"
    assert states[("anyway", -1)] == "success"
    # Airflow fails the task that pushed what cannot be mapped, not the mapped task.
    assert states[("many", -1)] == "failed"
    assert states[("over_many", -1)] == "upstream_failed"
    assert states[("scalar", -1)] == "failed"
    assert states[("silent", -1)] == "failed"
    errors = {t: harness.tries("edges", run_id, t)[-1].error for t in ("many", "scalar", "silent")}
    assert "did not push XCom for task mapping" in str(errors["silent"])
    assert "unmappable return value length: 5 > 3" in str(errors["many"])
    assert "unmappable return type 'int'" in str(errors["scalar"])
    assert harness.run("edges", run_id).state.value == "failed"


def test_a_literal_over_max_map_length_fails_the_mapped_task(harness: Harness) -> None:
    harness.settings = harness.settings.with_changes(max_map_length=2)
    harness.scheduler = harness.new_scheduler()
    harness.scheduler.start()
    harness.write_dag(
        "wide",
        """
        from datetime import datetime
        from slipstream import DAG
        from slipstream.authoring.operators import BashOperator

        with DAG("wide", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            BashOperator.partial(task_id="echo").expand(bash_command=["true", "true", "true"])
        """,
    )
    _, run_id = run_to_end(harness, "wide")
    (echo,) = harness.runs.task_instances("wide", run_id)
    assert (echo.map_index, echo.state.value) == (-1, "failed")
    assert echo.state_reason == "unmappable length: 3 > max_map_length (2)"
    assert harness.run("wide", run_id).state.value == "failed"


def test_a_failing_index_is_retried_alone(harness: Harness, tmp_path: Path) -> None:
    marker = tmp_path / "attempts"
    harness.write_dag(
        "flaky_map",
        f"""
        from datetime import datetime, timedelta
        from pathlib import Path
        from slipstream import DAG, task

        with DAG("flaky_map", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            @task(retries=1, retry_delay=timedelta(seconds=10))
            def work(x):
                marker = Path({str(marker)!r})
                if x == "b" and not marker.exists():
                    marker.write_text("failed once")
                    raise RuntimeError("b fails its first try")
                return x.upper()

            work.expand(x=["a", "b", "c"])
        """,
    )
    run_pk, run_id = run_to_end(harness, "flaky_map")
    assert instances(harness, "flaky_map", run_id) == {
        ("work", 0): "success",
        ("work", 1): "up_for_retry",
        ("work", 2): "success",
    }
    harness.clock.advance(11)
    harness.settle()
    assert harness.run("flaky_map", run_id).state.value == "success"
    assert values_of(harness, run_pk, "work") == ["A", "B", "C"]
    tries = {i: harness.runs.tries("flaky_map", run_id, "work", i) for i in range(3)}
    assert [len(t) for t in tries.values()] == [1, 2, 1]
    assert [t.try_number for t in tries[1]] == [1, 2]


def test_clearing_reexpands_and_marking_reaches_one_index(harness: Harness, tmp_path: Path) -> None:
    count = tmp_path / "count"
    count.write_text("3")
    harness.write_dag(
        "resized",
        f"""
        from datetime import datetime
        from pathlib import Path
        from slipstream import DAG, task

        with DAG("resized", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            @task
            def make():
                return list(range(int(Path({str(count)!r}).read_text())))

            @task
            def each(n):
                return n * 10

            @task
            def total(values):
                return sum(values)

            total(each.expand(n=make()))
        """,
    )
    run_pk, run_id = run_to_end(harness, "resized")
    assert values_of(harness, run_pk, "total") == 30
    changes = RunChangeService(harness.db, clock=harness.clock, plans=harness.plans)
    count.write_text("2")
    changes.clear_run("resized", run_id, dry_run=False, by="ann")
    harness.settle((Hint.anything(),))
    assert harness.run("resized", run_id).state.value == "success"
    assert {k: v for k, v in instances(harness, "resized", run_id).items() if k[0] == "each"} == {
        ("each", 0): "success",
        ("each", 1): "success",
    }
    assert values_of(harness, run_pk, "total") == 10
    # The cleared instances kept their history: each ran a second try.
    one = harness.runs.task_instance("resized", run_id, "each", 1)[0]
    # Marking one index reaches that index alone.
    changes.mark_task_instances(
        "resized", run_id, "each", TaskState.FAILED, dry_run=False, by="bo", map_indexes=[1]
    )
    assert harness.runs.task_instance("resized", run_id, "each", 0)[0].state is TaskState.SUCCESS
    assert harness.runs.task_instance("resized", run_id, "each", 1)[0].state is TaskState.FAILED
    assert one.try_number == 2


# ----------------------------------------------------------------- real scheduler, real workers

REAL_DAG = """
from datetime import datetime, timedelta
from pathlib import Path
from slipstream import DAG, task
from slipstream.authoring.operators import BashOperator

MARKER = Path(__file__).with_name("flaky-marker")

with DAG("mapped_real", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def named():
        return {"x": 1, "y": 2}

    @task(retries=1, retry_delay=timedelta(seconds=0))
    def square(n):
        if n == 2 and not MARKER.exists():
            MARKER.write_text("failed once")
            raise RuntimeError("index 1 fails its first try")
        return n * n

    @task
    def pair(item):
        return f"{item[0]}:{item[1]}"

    @task
    def gather(squares, pairs, zipped, echoed):
        return {"squares": squares, "pairs": pairs, "zipped": zipped, "echoed": echoed}

    @task
    def too_long():
        return list(range(5))

    @task
    def pick(**context):
        ti = context["ti"]
        return [
            ti.xcom_pull(task_ids="square", map_indexes=2),
            ti.xcom_pull(task_ids="square", map_indexes=[0, 1]),
        ]

    squares = square.expand(n=numbers())
    pairs = pair.expand(item=named())
    zipped = pair.override(task_id="zipped").expand(item=numbers().zip(squares))
    echoed = BashOperator.partial(task_id="echo", do_xcom_push=True).expand_kwargs(
        [{"bash_command": "echo one"}, {"bash_command": "echo two"}]
    )
    gather(squares, pairs, zipped, echoed.output)
    squares >> pick()
    pair.override(task_id="never").expand(item=too_long())
"""


@pytest.mark.slow
def test_mapping_through_the_real_scheduler_and_local_workers(tmp_path: Path) -> None:
    deployment = Deployment(tmp_path / "home")
    deployment.env["SLIPSTREAM_MAX_MAP_LENGTH"] = "4"
    deployment.write_dag("mapped_real", REAL_DAG)
    try:
        deployment.start()
        run = deployment.finished(deployment.trigger("mapped_real"), timeout=60)
        tis = {
            (t.task_id, t.map_index): t
            for t in deployment.runs.task_instances("mapped_real", run.run_id)
        }
        assert run.state.value == "failed"  # "too_long" pushed more than max_map_length
        assert tis["too_long", -1].state.value == "failed"
        assert tis["never", -1].state.value == "upstream_failed"
        assert [tis["square", i].try_number for i in range(3)] == [1, 2, 1]
        with deployment.db.read() as conn:
            gathered = xcom_store.for_tasks(conn, run.id, ["gather"])["gather"]["return_value"]
            picked = xcom_store.for_tasks(conn, run.id, ["pick"])["pick"]["return_value"]
        assert json.loads(picked) == [9, [1, 4]]
        assert json.loads(gathered) == {
            "squares": [1, 4, 9],
            "pairs": ["x:1", "y:2"],
            "zipped": ["1:1", "2:4", "3:9"],
            "echoed": ["one", "two"],
        }
        log = deployment.settings.log_folder / "mapped_real" / run.run_id / "square"
        assert "index 1 fails" in (log / "map_index=1" / "1.log").read_text()
        assert (log / "map_index=1" / "2.log").exists()
        scheduler_output = (deployment.home / "scheduler.out").read_text()
        assert "Traceback" not in scheduler_output, scheduler_output
    finally:
        deployment.stop()
        deployment.wakeup.close()
        deployment.db.dispose()
