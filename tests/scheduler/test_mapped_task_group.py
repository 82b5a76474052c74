"""Mapped task groups through scheduler passes, stepped on a real database (SQLite and
PostgreSQL) with the inline executor, and through a real scheduler with its local workers:
per-index values inside the group, the reduce step after it, depth-first progress, trigger
rules and branches per map index, retries and clears of one index, zero-length groups and
max_map_length."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipstream.services.run_changes import RunChangeService, Selection
from slipstream.store import xcoms as xcom_store
from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness
from tests.scheduler.test_loop import Deployment
from tests.scheduler.test_mapping import instances, run_to_end, values_of

EXPANSIONS = """
from datetime import datetime
from slipstream import DAG, task, task_group

with DAG("groups", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def named():
        return {"a": 1, "b": 2}

    @task
    def letters():
        return ["x", "y"]

    @task
    def settings():
        return [{"value": 5, "k": 1}, {"value": 6}]

    @task
    def add(x, k=0):
        return x + k

    @task
    def double(x, **context):
        ti = context["ti"]
        # What the task of the same group pushed at this map index, pulled by hand too.
        pulled = ti.xcom_pull(task_ids=context["task"].upstream_list[0].task_id)
        return {"value": x * 2, "index": ti.map_index, "pulled": pulled}

    @task
    def collect(values):
        return values

    @task_group
    def grow(value, k=0):
        return double(add(value, k))

    @task_group
    def label(pair):
        @task
        def show(p):
            return f"{p[0]}={p[1]}"

        return show(pair)

    collect.override(task_id="from_xcom")(grow.partial(k=1).expand(value=numbers()))
    collect.override(task_id="crossed")(grow.expand(value=[10, 20], k=[1, 2]))
    collect.override(task_id="from_kwargs")(grow.expand_kwargs(settings()))
    collect.override(task_id="mapped")(grow.expand(value=numbers().map(lambda n: n * 100)))
    collect.override(task_id="pairs")(label.expand(pair=named()))
    collect.override(task_id="zipped")(label.expand(pair=numbers().zip(letters())))
"""


def test_a_mapped_group_runs_each_index_and_its_downstream_gets_every_value(
    harness: Harness,
) -> None:
    harness.write_dag("groups", EXPANSIONS)
    run_pk, run_id = run_to_end(harness, "groups")
    assert harness.run("groups", run_id).state.value == "success"
    states = instances(harness, "groups", run_id)
    assert {k: v for k, v in states.items() if k[0].startswith("grow.")} == {
        (task_id, index): "success" for task_id in ("grow.add", "grow.double") for index in range(3)
    }

    def doubled(*values: int) -> list[dict[str, int]]:
        return [{"value": v * 2, "index": i, "pulled": v} for i, v in enumerate(values)]

    assert values_of(harness, run_pk, "grow.add") == [2, 3, 4]
    assert values_of(harness, run_pk, "from_xcom") == doubled(2, 3, 4)
    assert values_of(harness, run_pk, "crossed") == doubled(11, 12, 21, 22)
    assert values_of(harness, run_pk, "from_kwargs") == doubled(6, 6)
    assert values_of(harness, run_pk, "mapped") == doubled(100, 200, 300)
    assert values_of(harness, run_pk, "pairs") == ["a=1", "b=2"]
    assert values_of(harness, run_pk, "zipped") == ["1=x", "2=y"]


FLAKY = """
from datetime import datetime, timedelta
from pathlib import Path
from slipstream import DAG, task, task_group

MARKER = Path({marker!r})

with DAG("flaky_group", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def numbers():
        return [1, 2, 3]

    @task(retries={retries}, retry_delay=timedelta(seconds=10))
    def add(x):
        if x == 2 and not MARKER.exists():
            MARKER.write_text("failed once")
            raise RuntimeError("index 1 fails its first try")
        return x + 1

    @task
    def double(x):
        return x * 2

    @task(trigger_rule="all_done")
    def note(x, **context):
        return f"note {{context['ti'].map_index}}: {{x}}"

    @task
    def total(values):
        return sum(values)

    @task_group
    def grow(value):
        added = add(value)
        note(added)
        return double(added)

    total(grow.expand(value=numbers()))
"""


def test_each_index_goes_on_alone_and_a_retry_is_per_index(
    harness: Harness, tmp_path: Path
) -> None:
    harness.write_dag("flaky_group", FLAKY.format(marker=str(tmp_path / "marker"), retries=1))
    run_pk, run_id = run_to_end(harness, "flaky_group")
    # Depth-first: indexes 0 and 2 finish the group while index 1 waits for its retry.
    assert instances(harness, "flaky_group", run_id) == {
        ("numbers", -1): "success",
        ("grow.add", 0): "success",
        ("grow.add", 1): "up_for_retry",
        ("grow.add", 2): "success",
        ("grow.double", 0): "success",
        ("grow.double", 1): "none",
        ("grow.double", 2): "success",
        ("grow.note", 0): "success",
        ("grow.note", 1): "none",
        ("grow.note", 2): "success",
        ("total", -1): "none",
    }
    harness.clock.advance(11)
    harness.settle()
    assert harness.run("flaky_group", run_id).state.value == "success"
    assert values_of(harness, run_pk, "grow.double") == [4, 6, 8]
    assert values_of(harness, run_pk, "total") == 18
    tries = [len(harness.runs.tries("flaky_group", run_id, "grow.add", i)) for i in range(3)]
    assert tries == [1, 2, 1]


def test_a_failed_index_fails_its_own_path_and_clearing_that_index_runs_it_again(
    harness: Harness, tmp_path: Path
) -> None:
    harness.write_dag("flaky_group", FLAKY.format(marker=str(tmp_path / "marker"), retries=0))
    run_pk, run_id = run_to_end(harness, "flaky_group")
    assert harness.run("flaky_group", run_id).state.value == "failed"
    states = instances(harness, "flaky_group", run_id)
    assert [states["grow.add", i] for i in range(3)] == ["success", "failed", "success"]
    assert [states["grow.double", i] for i in range(3)] == ["success", "upstream_failed", "success"]
    # all_done judges the instance of its own index: index 1 runs on its failed upstream.
    assert [states["grow.note", i] for i in range(3)] == ["success"] * 3
    assert values_of(harness, run_pk, "grow.note") == ["note 0: 2", "note 1: None", "note 2: 4"]
    assert states["total", -1] == "upstream_failed"
    changes = RunChangeService(harness.db, clock=harness.clock, plans=harness.plans)
    changes.clear_task_instances(
        "flaky_group",
        dry_run=False,
        by="ann",
        run_id=run_id,
        task_ids=["grow.add"],
        selection=Selection(downstream=True),
        map_indexes={"grow.add": [1]},
    )
    harness.settle((Hint.anything(),))
    assert harness.run("flaky_group", run_id).state.value == "success"
    assert values_of(harness, run_pk, "grow.double") == [4, 6, 8]
    assert values_of(harness, run_pk, "total") == 18
    assert [len(harness.runs.tries("flaky_group", run_id, "grow.add", i)) for i in range(3)] == [
        1,
        2,
        1,
    ]


BRANCHES = """
from datetime import datetime
from slipstream import DAG, task, task_group

with DAG("branchy", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task_group
    def route(item):
        @task.branch
        def pick(x):
            return "route.even" if x % 2 == 0 else "route.odd"

        @task
        def even(x):
            return f"even {x}"

        @task
        def odd(x):
            return f"odd {x}"

        @task(trigger_rule="none_failed_min_one_success")
        def join(**context):
            return context["ti"].map_index

        joined = join()
        pick(item) >> [even(item), odd(item)] >> joined
        return joined

    @task
    def after(values):
        return values

    after(route.expand(item=[1, 2, 3]))
"""


def test_a_branch_in_a_mapped_group_decides_for_its_own_index(harness: Harness) -> None:
    harness.write_dag("branchy", BRANCHES)
    run_pk, run_id = run_to_end(harness, "branchy")
    assert harness.run("branchy", run_id).state.value == "success"
    states = instances(harness, "branchy", run_id)
    assert [states["route.pick", i] for i in range(3)] == ["success"] * 3
    assert [states["route.odd", i] for i in range(3)] == ["success", "skipped", "success"]
    assert [states["route.even", i] for i in range(3)] == ["skipped", "success", "skipped"]
    assert [states["route.join", i] for i in range(3)] == ["success"] * 3
    assert values_of(harness, run_pk, "after") == [0, 1, 2]
    assert values_of(harness, run_pk, "route.odd") == ["odd 1", "odd 3"]


RESIZED = """
from datetime import datetime
from pathlib import Path
from slipstream import DAG, task, task_group

with DAG("resized_group", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def make():
        return list(range(int(Path({count!r}).read_text())))

    @task
    def add(n):
        return n + 1

    @task
    def double(x):
        return x * 2

    @task
    def total(values):
        return sum(values)

    @task_group
    def grow(n):
        return double(add(n))

    total(grow.expand(n=make()))
"""


def test_a_cleared_group_expands_again_to_its_new_length(harness: Harness, tmp_path: Path) -> None:
    count = tmp_path / "count"
    count.write_text("3")
    harness.write_dag("resized_group", RESIZED.format(count=str(count)))
    run_pk, run_id = run_to_end(harness, "resized_group")
    assert values_of(harness, run_pk, "total") == 12
    changes = RunChangeService(harness.db, clock=harness.clock, plans=harness.plans)

    def in_group() -> dict[tuple[str, int], str]:
        states = instances(harness, "resized_group", run_id)
        return {k: v for k, v in states.items() if k[0].startswith("grow.")}

    count.write_text("2")
    changes.clear_run("resized_group", run_id, dry_run=False, by="ann")
    harness.settle((Hint.anything(),))
    assert harness.run("resized_group", run_id).state.value == "success"
    assert in_group() == {
        (task_id, index): "success" for task_id in ("grow.add", "grow.double") for index in (0, 1)
    }
    assert values_of(harness, run_pk, "grow.double") == [2, 4]
    assert values_of(harness, run_pk, "total") == 6
    count.write_text("0")
    changes.clear_run("resized_group", run_id, dry_run=False, by="ann")
    harness.settle((Hint.anything(),))
    assert harness.run("resized_group", run_id).state.value == "success"
    assert set(in_group().values()) == {"skipped"}
    assert instances(harness, "resized_group", run_id)["total", -1] == "skipped"


EDGES = """
from datetime import datetime
from slipstream import DAG, task, task_group

with DAG("group_edges", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def nothing():
        return []

    @task
    def many():
        return [1, 2, 3]

    @task
    def add(x):
        return x + 1

    @task
    def double(x):
        return x * 2

    @task
    def after(values):
        return values

    @task(trigger_rule="all_done")
    def anyway():
        return "ran"

    @task_group
    def grow(value):
        return double(add(value))

    after(grow.expand(value=nothing())) >> anyway()
    grow.override(group_id="wide").expand(value=[1, 2, 3])
    grow.override(group_id="pushed").expand(value=many())
"""


def test_a_zero_length_group_skips_and_one_over_max_map_length_fails(harness: Harness) -> None:
    # max_map_length is 2: a literal of 3 fails the group's first task, a pushed list of 3
    # fails the task that pushed it.
    harness.settings = harness.settings.with_changes(max_map_length=2)
    harness.scheduler = harness.new_scheduler()
    harness.scheduler.start()
    harness.write_dag("group_edges", EDGES)
    _, run_id = run_to_end(harness, "group_edges")
    states = instances(harness, "group_edges", run_id)
    assert states == {
        ("nothing", -1): "success",
        ("grow.add", -1): "skipped",
        ("grow.double", -1): "skipped",
        ("after", -1): "skipped",
        ("anyway", -1): "success",
        ("wide.add", -1): "failed",
        ("wide.double", -1): "upstream_failed",
        # As for a mapped task, Airflow fails the task that pushed too many items.
        ("many", -1): "failed",
        ("pushed.add", -1): "upstream_failed",
        ("pushed.double", -1): "upstream_failed",
    }
    failed = harness.runs.task_instance("group_edges", run_id, "wide.add", -1)[0]
    assert failed.state_reason == "unmappable length: 3 > max_map_length (2)"
    error = harness.tries("group_edges", run_id, "many")[-1].error
    assert "unmappable return value length: 3 > 2" in str(error)
    assert harness.run("group_edges", run_id).state.value == "failed"


# ----------------------------------------------------------------- real scheduler, real workers

REAL = """
from datetime import datetime, timedelta
from pathlib import Path
from slipstream import DAG, task, task_group
from slipstream.authoring.operators import BashOperator

MARKER = Path(__file__).with_name("flaky-marker")

with DAG("mapped_group_real", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def words():
        return ["ann", "bo", "cyril"]

    @task(retries=1, retry_delay=timedelta(seconds=0))
    def shout(word, suffix):
        if word == "bo" and not MARKER.exists():
            MARKER.write_text("failed once")
            raise RuntimeError("index 1 fails its first try")
        return word.upper() + suffix

    @task.branch
    def pick(text):
        return "greet.long" if len(text) > 4 else "greet.short"

    @task
    def long(text):
        return f"long {text}"

    @task
    def short(text):
        return f"short {text}"

    @task(trigger_rule="none_failed_min_one_success")
    def done(**context):
        ti = context["ti"]
        said = ti.xcom_pull(task_ids=["greet.long", "greet.short"])
        return [ti.map_index, [s for s in said if s is not None]]

    @task
    def gather(values):
        return values

    @task_group
    def greet(word, suffix):
        loud = shout(word, suffix)
        echo = BashOperator(task_id="echo", bash_command="echo $WORD", env={"WORD": word})
        finished = done()
        pick(loud) >> [long(loud), short(loud)] >> finished
        echo >> finished
        return finished

    gather(greet.partial(suffix="!").expand(word=words()))
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    url = request.getfixturevalue("pg_db").url if request.param == "postgresql" else None
    d = Deployment(tmp_path / "home", url)
    yield d
    d.stop()
    d.wakeup.close()
    d.db.dispose()
    out = d.home / "scheduler.out"
    if out.exists():
        assert "Traceback" not in out.read_text(), out.read_text()


@pytest.mark.slow
def test_a_mapped_group_through_the_real_scheduler_and_local_workers(
    deployment: Deployment,
) -> None:
    deployment.write_dag("mapped_group_real", REAL)
    deployment.start()
    run = deployment.finished(deployment.trigger("mapped_group_real"), timeout=90)
    assert run.state.value == "success"
    tis = {
        (t.task_id, t.map_index): t
        for t in deployment.runs.task_instances("mapped_group_real", run.run_id)
    }
    assert [tis["greet.shout", i].try_number for i in range(3)] == [1, 2, 1]
    assert [tis["greet.long", i].state.value for i in range(3)] == ["skipped", "skipped", "success"]
    assert [tis["greet.short", i].state.value for i in range(3)] == [
        "success",
        "success",
        "skipped",
    ]
    with deployment.db.read() as conn:
        found = xcom_store.for_tasks(conn, run.id, ["gather", "greet.echo"])
    assert json.loads(found["greet.echo"]["return_value"]) == ["ann", "bo", "cyril"]
    assert json.loads(found["gather"]["return_value"]) == [
        [0, ["short ANN!"]],
        [1, ["short BO!"]],
        [2, ["long CYRIL!"]],
    ]
    log = deployment.settings.log_folder / "mapped_group_real" / run.run_id / "greet.shout"
    assert "index 1 fails" in (log / "map_index=1" / "1.log").read_text()
    assert (log / "map_index=1" / "2.log").exists()
