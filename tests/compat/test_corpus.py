"""DAG files written in Airflow 1.10, 2.x and 3.x idiom (tests/compat/dags/), run end to end
through `slipstream dags test` and through a real scheduler with its local workers, and judged
by what they did: task states, tries, XComs, skipped branches and what bash printed. A mapped
task's instances are named `task_id[map_index]`, as `dags test` prints them."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from slipstream.cli.main import cli
from slipstream.services.logs import LogService
from tests.api.conftest import wait_for

pytestmark = pytest.mark.slow

CORPUS = Path(__file__).parent / "dags"
LOGICAL_DATE = "2024-05-06T00:00:00+00:00"
DS = "2024-05-06"
# What the DAG files read through Airflow's environment secrets backend.
SECRETS = {
    "AIRFLOW_VAR_SALES_SETTINGS": '{"factor": 2}',
    "AIRFLOW_VAR_SDK_MEASURE": "3",
    "AIRFLOW_CONN_REPORTING_DB": "postgres://rep:s%40cret@db.internal:6543/reports",
}


@dataclass(frozen=True)
class Expected:
    """The outcome of one manual run. `tries` defaults to 1 for a task that ran and 0 for a
    skipped one (skipped by a branch, never started); an EmptyOperator finishes without a try,
    as in Airflow. `logs` are lines a task's log contains."""

    dag_id: str
    run_state: str
    states: dict[str, str]
    conf: dict[str, Any] = field(default_factory=dict)
    tries: dict[str, int] = field(default_factory=dict)
    xcoms: dict[tuple[str, str], Any] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    def tries_of(self, task_id: str) -> int:
        default = 0 if self.states[task_id] == "skipped" else 1
        return self.tries.get(task_id, default)


EXPECTED = [
    Expected(
        "legacy_orders",
        "success",
        {
            "fetch_orders": "success",
            "pick_route": "success",
            "big_batch": "success",
            "small_batch": "skipped",
            "join": "success",
            "summarize": "success",
        },
        xcoms={
            ("fetch_orders", "orders"): [4, 7, 9],
            ("fetch_orders", "return_value"): "fetched",
            ("pick_route", "return_value"): "big_batch",
            ("big_batch", "return_value"): "big batch of 20",
            ("summarize", "return_value"): {
                "count": 3,
                "total": 20,
                "day": DS,
                "newest": ["fetched", "big batch of 20"],
            },
        },
        tries={"join": 0},
        logs={"big_batch": "big batch of 20", "pick_route": "Returned value was: 'big_batch'"},
    ),
    Expected(
        "legacy_skip_and_fail",
        "failed",
        {"skip_it": "skipped", "fail_now": "failed", "flaky": "failed"},
        # AirflowFailException ignores retries=2; a plain AirflowException uses its one retry.
        tries={"skip_it": 1, "fail_now": 1, "flaky": 2},
        logs={
            "skip_it": "nothing to do today",
            "fail_now": "AirflowFailException: bad input",
            "flaky": "AirflowException: try 2 failed",
        },
    ),
    Expected(
        "legacy_latest",
        "success",
        {"latest_only": "success", "publish": "success"},  # a manual run always proceeds
        xcoms={("publish", "return_value"): f"published {DS}"},
    ),
    Expected(
        "taskflow_sales",
        "success",
        {"extract": "success", "transform": "success", "load": "success"},
        xcoms={
            ("transform", "total"): 1236.7,
            ("transform", "count"): 3,
            ("load", "return_value"): "3 orders, 1236.7 into sales_default (emea, x2)",
        },
    ),
    Expected(
        "classic_branching",
        "success",
        {
            "start": "success",
            "greet": "success",
            "branch": "success",
            "weekday_path": "success",
            "weekend_path": "skipped",
            "merge": "success",
            "gate": "success",
            "never": "skipped",
            "cleanup": "success",
        },
        conf={"who": "ops"},
        tries={"start": 0, "merge": 0},
        xcoms={
            ("greet", "return_value"): "hello from classic_branching (ops)",
            ("branch", "return_value"): "weekday_path",
            ("weekday_path", "return_value"): "work",
        },
        logs={"greet": "hello from classic_branching (ops)", "cleanup": "cleaned"},
    ),
    Expected(
        "custom_operator",
        "success",
        {
            "greet": "success",
            "describe_connection": "success",
            "maybe_skip": "skipped",
            "templated_secrets": "success",
        },
        conf={"name": "Ada"},
        tries={"maybe_skip": 1},
        xcoms={
            ("greet", "return_value"): f"Hello Ada on {DS}",
            ("templated_secrets", "return_value"): "nobody x2 db.internal",
            ("describe_connection", "return_value"): {
                "host": "db.internal",
                "port": 6543,
                "schema": "reports",
                "login": "rep",
            },
        },
        logs={"greet": f"Hello Ada on {DS}", "maybe_skip": "no force flag given"},
    ),
    Expected(
        "grouped_callbacks",
        "success",
        {
            "extract.orders": "success",
            "extract.crm.customers": "success",
            "load.warehouse": "success",
        },
        xcoms={
            ("extract.orders", "return_value"): "orders extracted",
            ("extract.crm.customers", "return_value"): "customers extracted",
            ("load.warehouse", "return_value"): "loaded",
        },
        logs={
            "extract.orders": "callback: extract.orders succeeded",
            "extract.crm.customers": "callback: extract.crm.customers succeeded",
            "load.warehouse": "callback: load.warehouse succeeded",
        },
    ),
    Expected(
        "sdk_groups",
        "failed",
        {
            "start": "success",
            "score.double": "success",
            "score.label": "success",
            "publish": "success",
            "audit": "failed",
        },
        xcoms={
            ("score.double", "return_value"): 42,
            ("score.label", "return_value"): "score=42",
            ("publish", "return_value"): "SCORE=42",
        },
        logs={"audit": "alert: audit failed with ValueError('audit rejected SCORE=42')"},
    ),
    Expected(
        "mapped_groups",
        "success",
        {
            "list_files": "success",
            **{
                f"process.{task}[{i}]": "success"
                for task in ("copy", "route", "finish")
                for i in range(3)
            },
            "process.load_csv[0]": "success",
            "process.load_csv[1]": "skipped",
            "process.load_csv[2]": "success",
            "process.load_other[0]": "skipped",
            "process.load_other[1]": "success",
            "process.load_other[2]": "skipped",
            "summarize": "success",
        },
        xcoms={
            ("process.copy[1]", "return_value"): "copied b.json to archive",
            ("process.route[1]", "return_value"): "process.load_other",
            ("process.finish[0]", "return_value"): "csv <copied a.csv to archive>",
            ("process.finish[1]", "return_value"): "other <copied b.json to archive>",
            ("process.finish[2]", "return_value"): "csv <copied c.csv to archive>",
            ("summarize", "return_value"): [
                "csv <copied a.csv to archive>",
                "other <copied b.json to archive>",
                "csv <copied c.csv to archive>",
            ],
        },
        logs={"process.copy[2]": "copied c.csv to archive"},
    ),
    Expected(
        "sdk_mapped_groups",
        # Airflow judges a run by its leaves: the reports and the invoice all succeeded.
        "success",
        {
            "orders": "success",
            "fulfil.reserve[0]": "success",
            "fulfil.reserve[1]": "failed",
            "fulfil.reserve[2]": "success",
            **{f"fulfil.report[{i}]": "success" for i in range(3)},
            "fulfil.ship[0]": "success",
            "fulfil.ship[1]": "upstream_failed",
            "fulfil.ship[2]": "success",
            "invoice": "success",
        },
        tries={"fulfil.ship[1]": 0},
        xcoms={
            ("fulfil.reserve[2]", "return_value"): {"sku": "C", "reserved": 5, "at": "main"},
            ("fulfil.report[0]", "return_value"): "0: 2 at main",
            ("fulfil.report[1]", "return_value"): "1: failed",
            ("fulfil.ship[2]", "return_value"): "shipped 5 x C",
            ("invoice", "return_value"): ["shipped 2 x A", "shipped 5 x C"],
        },
        logs={"fulfil.reserve[1]": "ValueError: nothing to reserve for B"},
    ),
    Expected(
        "sdk_taskflow",
        "success",
        {
            "measure": "success",
            "route": "success",
            "high": "skipped",
            "low": "success",
            "keep_going": "success",
            "shout": "success",
        },
        xcoms={
            ("measure", "return_value"): 3,
            ("route", "return_value"): "low",
            ("low", "return_value"): "low:3",
            ("shout", "return_value"): f"measured 3 at {DS}",
        },
        logs={"shout": f"measured 3 at {DS}"},
    ),
    Expected(
        "sdk_classic",
        "success",
        {"latest_only": "success", "report": "success", "archive": "skipped", "done": "success"},
        tries={"archive": 1, "done": 0},
        xcoms={("report", "return_value"): f"report for {DS}"},
        logs={"archive": "manual runs do not archive"},
    ),
]


def _label(task_id: str, map_index: int) -> str:
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


def _instance(label: str) -> tuple[str, int]:
    """(task_id, map_index) of a label `task_id` or `task_id[map_index]`."""
    found = re.fullmatch(r"(.+)\[(\d+)\]", label)
    return (found[1], int(found[2])) if found else (label, -1)


def test_every_corpus_file_has_expectations() -> None:
    files = {p.stem for p in CORPUS.glob("airflow*/*.py")}
    assert files == {e.dag_id for e in EXPECTED}
    assert {p.parent.name for p in CORPUS.glob("airflow*/*.py")} == {
        "airflow1",
        "airflow2",
        "airflow3",
    }


@pytest.fixture
def corpus_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(CORPUS, home / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    return home


def _tries_in(output: str) -> dict[str, list[tuple[str, str]]]:
    """task_id -> [(state of the try, its log)] from `dags test` output, in try order."""
    found: dict[str, list[tuple[str, str]]] = {}
    parts = re.split(r"^--- (\S+) \(try \d+\) ---$", output, flags=re.MULTILINE)
    for label, text in zip(parts[1::2], parts[2::2], strict=True):
        # The try's log ends with its "Marking try as" line; the console output of later
        # tries (printed as they ran) follows it and belongs to them.
        task_id = re.escape(_instance(label)[0])
        end = re.search(rf"Marking try as (\w+) .*task_id={task_id},.*$", text, re.M)
        state, log = (end[1].lower(), text[: end.end()]) if end else ("?", text)
        found.setdefault(label, []).append((state, log))
    return found


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda e: e.dag_id)
def test_dags_test_runs_each_file_as_airflow_would(
    expected: Expected,
    corpus_home: Path,
    sqlite_template: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.conftest import copy_sqlite_template

    database = copy_sqlite_template(sqlite_template, corpus_home / "slipstream.db")
    env = {
        "SLIPSTREAM_HOME": str(corpus_home),
        "SLIPSTREAM_LOAD_EXAMPLES": "false",
        "SLIPSTREAM_DATABASE_URL": f"sqlite:///{database}",
        **SECRETS,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the inline executor runs the tasks in this process
    args = ["dags", "test", expected.dag_id, "--logical-date", LOGICAL_DATE]
    if expected.conf:
        args += ["--conf", json.dumps(expected.conf)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    output = result.output
    assert result.exit_code == (0 if expected.run_state == "success" else 1), output
    assert f"finished: {expected.run_state}" in output
    tries = _tries_in(output)
    assert set(tries) <= set(expected.states), output  # no other DAG's tasks ran here
    for task_id, state in expected.states.items():
        ran = tries.get(task_id, [])
        assert len(ran) == expected.tries_of(task_id), (task_id, output)
        if ran:
            assert ran[-1][0] == state, (task_id, ran[-1][1])
    for task_id, line in expected.logs.items():
        assert any(line in text for _, text in tries[task_id]), (task_id, line, output)
    for (task_id, key), value in expected.xcoms.items():
        if key == "return_value" and "Returned value was" in tries[task_id][-1][1]:
            assert f"Returned value was: {value!r}" in tries[task_id][-1][1], task_id


class Scheduler:
    """A real `slipstream scheduler` (local executor, worker processes) over the corpus."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {
            **os.environ,
            "SLIPSTREAM_HOME": str(home),
            "SLIPSTREAM_LOAD_EXAMPLES": "false",
            "SLIPSTREAM_WORKERS": "2",
            **SECRETS,
        }
        self.env.pop("SLIPSTREAM_DATABASE_URL", None)
        self.out = home / "scheduler.out"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "slipstream.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def trigger(self, *args: str) -> int:
        """`slipstream dags trigger ...` in this process (a subprocess each costs seconds on
        a loaded machine); the scheduler hears of the run through its wake-up socket."""
        env = {k: v for k, v in self.env.items() if k.startswith(("SLIPSTREAM_", "AIRFLOW_"))}
        result = CliRunner().invoke(cli, ["dags", "trigger", *args], env=env)
        return result.exit_code

    def log(self, dag_id: str, run_id: str, label: str, try_number: int) -> str:
        task_id, map_index = _instance(label)
        path = LogService(self.home / "logs").path(dag_id, run_id, task_id, try_number, map_index)
        return path.read_text(errors="replace")

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "slipstream.db", timeout=30) as conn:
            return conn.execute(sql, params).fetchall()

    def states(self, dag_id: str, run_id: str) -> dict[str, tuple[str, int]]:
        rows = self.query(
            "SELECT task_id, map_index, state, try_number FROM task_instances "
            "WHERE dag_id = ? AND run_id = ?",
            dag_id,
            run_id,
        )
        return {_label(task_id, index): (state, tries) for task_id, index, state, tries in rows}

    def xcoms(self, dag_id: str, run_id: str) -> dict[tuple[str, str], Any]:
        rows = self.query(
            "SELECT task_id, map_index, key, value FROM xcoms WHERE dag_id = ? AND run_id = ?",
            dag_id,
            run_id,
        )
        return {
            (_label(task_id, index), key): json.loads(value) for task_id, index, key, value in rows
        }

    def runs(self, dag_id: str, run_type: str) -> list[tuple[str, str, str]]:
        """(run_id, state, data_interval_end) of the DAG's runs of that type, oldest first."""
        return [
            (run_id, state, str(end))
            for run_id, state, end in self.query(
                "SELECT run_id, state, data_interval_end FROM runs WHERE dag_id = ? "
                "AND run_type = ? ORDER BY data_interval_end",
                dag_id,
                run_type,
            )
        ]


@pytest.fixture
def scheduler(corpus_home: Path) -> Iterator[Scheduler]:
    running = Scheduler(corpus_home)
    assert running.cli("db", "migrate").returncode == 0
    with running.out.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "slipstream.cli.main", "scheduler"],
            env=running.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "ready" in running.out.read_text(), 120, "scheduler ready")
        yield running
    finally:
        process.terminate()
        process.wait(30)


# Generous: a scheduler, its workers and eight DAGs on a machine other tests load too.
@pytest.mark.timeout(400)
def test_the_corpus_runs_through_the_scheduler(scheduler: Scheduler) -> None:
    assert scheduler.query("SELECT filename FROM import_errors") == []
    for expected in EXPECTED:
        args = [expected.dag_id, "--run-id", "corpus", "--logical-date", LOGICAL_DATE]
        if expected.conf:
            args += ["--conf", json.dumps(expected.conf)]
        assert scheduler.trigger(*args) == 0, expected.dag_id
    for expected in EXPECTED:
        dag_id = expected.dag_id
        wait_for(
            lambda dag_id=dag_id: (
                scheduler.query(  # type: ignore[misc]
                    "SELECT state FROM runs WHERE dag_id = ? AND run_id = 'corpus'", dag_id
                )[0][0]
                in ("success", "failed")
            ),
            180,
            f"{dag_id} finished",
        )
        [(run_state,)] = scheduler.query(
            "SELECT state FROM runs WHERE dag_id = ? AND run_id = 'corpus'", dag_id
        )
        assert run_state == expected.run_state, scheduler.out.read_text()[-3000:]
        states = scheduler.states(dag_id, "corpus")
        assert {t: s for t, (s, _) in states.items()} == expected.states, dag_id
        for task_id in expected.states:
            assert states[task_id][1] == expected.tries_of(task_id), (dag_id, task_id)
        xcoms = scheduler.xcoms(dag_id, "corpus")
        for key, value in expected.xcoms.items():
            assert xcoms.get(key) == value, (dag_id, key, xcoms)
        for task_id, line in expected.logs.items():
            log = scheduler.log(dag_id, "corpus", task_id, states[task_id][1])
            assert line in log, (dag_id, task_id, log)


@pytest.mark.timeout(400)
def test_scheduled_runs_follow_each_versions_catchup_default(scheduler: Scheduler) -> None:
    # legacy_latest (Airflow 1.10 names): catchup defaults to True, so each interval since
    # days_ago(3) gets a run, and LatestOnlyOperator lets only the newest one publish.
    def settled(dag_id: str, count: int) -> bool:
        runs = scheduler.runs(dag_id, "scheduled")
        return len(runs) >= count and all(s in ("success", "failed") for _, s, _ in runs)

    wait_for(lambda: settled("legacy_latest", 3), 180, "legacy_latest caught up")
    legacy = scheduler.runs("legacy_latest", "scheduled")
    publish = [scheduler.states("legacy_latest", run_id)["publish"][0] for run_id, _, _ in legacy]
    assert all(state == "success" for _, state, _ in legacy)
    assert publish[-1] == "success" and set(publish[:-1]) == {"skipped"}, publish
    newest = scheduler.xcoms("legacy_latest", legacy[-1][0])
    assert newest[("publish", "return_value")].startswith("published ")

    # sdk_classic (airflow.sdk): catchup defaults to False, so only the latest interval runs,
    # and as a scheduled run it archives.
    wait_for(lambda: settled("sdk_classic", 1), 180, "sdk_classic ran its latest interval")
    [(run_id, state, _)] = scheduler.runs("sdk_classic", "scheduled")
    assert state == "success"
    assert scheduler.states("sdk_classic", run_id) == {
        "latest_only": ("success", 1),
        "report": ("success", 1),
        "archive": ("success", 1),
        "done": ("success", 0),  # an EmptyOperator finishes without a try
    }
    assert scheduler.xcoms("sdk_classic", run_id)[("archive", "return_value")] == "archived"
