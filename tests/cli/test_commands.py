"""The CLI's commands end to end (without a scheduler): output, exit codes, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import Cli

HELLO = """
from datetime import datetime
from slipstream import DAG, BashOperator, Param, task

with DAG("hello", schedule="@daily", start_date=datetime(2024, 1, 1),
         params={"name": Param("world", type="string", minLength=1)}, tags=["demo"]) as dag:
    greet = BashOperator(task_id="greet", bash_command='echo "hello {{ params.name }}"')

    @task
    def shout(**context):
        name = context["params"]["name"]
        print(f"HELLO {name.upper()}")
        return name.upper()

    greet >> shout()
"""


def test_db_migrate_is_idempotent(slipstream: Cli, tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    run = Cli(slipstream.home, {**slipstream.env, "SLIPSTREAM_DATABASE_URL": empty})
    first = run("db", "migrate")
    assert first.exit_code == 0, first.output
    assert "from empty" in first.output
    again = run("db", "migrate")
    assert again.exit_code == 0
    assert "already at the newest schema" in again.output


def test_dags_list_shows_parsed_dags_as_json(slipstream: Cli) -> None:
    slipstream.write_dag("hello", HELLO)
    result = slipstream("dags", "list", "--output", "json")
    assert result.exit_code == 0
    [row] = json.loads(result.output)
    assert row["dag_id"] == "hello" and row["schedule"] == "@daily" and row["tags"] == "demo"


def test_import_errors_are_listed_with_their_traceback(slipstream: Cli) -> None:
    slipstream.write_dag("hello", HELLO)
    slipstream.write_dag("broken", "from slipstream import DAG\nraise RuntimeError('kaput')\n")
    result = slipstream("dags", "list-import-errors", "-o", "json")
    assert result.exit_code == 0
    [error] = json.loads(result.output)
    assert error["filename"].endswith("broken.py") and "kaput" in error["error"]
    # The broken file does not stop the good one.
    assert "hello" in slipstream("dags", "list").output


def test_trigger_prints_the_run_id_and_refuses_bad_conf(slipstream: Cli) -> None:
    slipstream.write_dag("hello", HELLO)
    ok = slipstream("dags", "trigger", "hello", "--conf", '{"name": "ada"}')
    assert ok.exit_code == 0 and ok.output.strip().startswith("manual__")
    run_id = ok.output.strip()
    shown = json.loads(slipstream("runs", "show", "hello", run_id, "-o", "json").output)
    assert shown["state"] == "queued" and shown["conf"] == {"name": "ada"}
    for conf, needle in [
        ('{"name": ""}', "'name'"),
        ("[1, 2]", "JSON object"),
        ("{not json", "not valid JSON"),
    ]:
        refused = slipstream("dags", "trigger", "hello", "--conf", conf)
        assert refused.exit_code == 2 and needle in refused.output
    assert len(json.loads(slipstream("runs", "list", "hello", "-o", "json").output)) == 1


def test_trigger_of_unknown_dag_and_duplicate_run_id(slipstream: Cli) -> None:
    slipstream.write_dag("hello", HELLO)
    missing = slipstream("dags", "trigger", "nope")
    assert missing.exit_code == 3 and "'nope' not found" in missing.output
    assert slipstream("dags", "trigger", "hello", "--run-id", "mine").exit_code == 0
    again = slipstream("dags", "trigger", "hello", "--run-id", "mine")
    assert again.exit_code == 4 and "already exists" in again.output


def test_triggering_a_paused_dag_says_the_run_will_wait(slipstream: Cli) -> None:
    slipstream.write_dag("hello", HELLO)
    assert "paused: True" in slipstream("dags", "pause", "hello").output
    result = subprocess.run(
        [sys.executable, "-m", "slipstream.cli.main", "dags", "trigger", "hello"],
        env={**os.environ, **slipstream.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "paused" in result.stderr and "unpaused" in result.stderr
    assert "paused: False" in slipstream("dags", "unpause", "hello").output


def test_dags_test_runs_in_process_and_reports_failure(slipstream: Cli) -> None:
    slipstream.write_dag("hello", HELLO)
    passed = slipstream("dags", "test", "hello", "--conf", '{"name": "ada"}')
    assert passed.exit_code == 0, passed.output
    assert "hello ada" in passed.output and "HELLO ADA" in passed.output
    slipstream.write_dag(
        "sad",
        """
        from datetime import datetime
        from slipstream import DAG, task
        with DAG("sad", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            @task
            def oops():
                raise RuntimeError("sad path")
            oops()
        """,
    )
    failed = slipstream("dags", "test", "sad")
    assert failed.exit_code == 1 and "sad path" in failed.output
    # dags test leaves the real metadata database alone.
    assert json.loads(slipstream("runs", "list", "-o", "json").output) == []


def test_backfill_queues_runs_for_each_interval(slipstream: Cli) -> None:
    slipstream.write_dag("hello", HELLO)
    result = slipstream(
        "dags", "backfill", "hello", "-s", "2024-03-01", "-e", "2024-03-03", "-o", "json"
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["run_id"] for r in rows] == [
        f"backfill__2024-03-0{d}T00:00:00+00:00" for d in (1, 2, 3)
    ]
    bad = slipstream("dags", "backfill", "hello", "-s", "2024-03-05", "-e", "2024-03-01")
    assert bad.exit_code == 2 and "before" in bad.output


def test_tasks_list_and_show(slipstream: Cli) -> None:
    slipstream.write_dag("hello", HELLO)
    tasks = json.loads(slipstream("tasks", "list", "hello", "-o", "json").output)
    assert [t["task_id"] for t in tasks] == ["greet", "shout"]
    assert tasks[1]["upstream"] == "greet"
    assert "greet [BashOperator] >> shout" in slipstream("dags", "show", "hello").output


def test_help_and_version_import_nothing_heavy() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "slipstream.cli.main", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "standalone" in result.stdout and "dags" in result.stdout
    # Not a timing assertion: what makes it fast is that nothing heavy is imported.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, slipstream.cli.main as m; m.cli(['version'], standalone_mode=False);"
            "heavy = {'sqlalchemy', 'jinja2', 'alembic'};"
            "print(sorted({n.split('.')[0] for n in sys.modules} & heavy))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip().endswith("[]")


def test_an_unreachable_database_is_one_clear_line_without_the_password(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "SLIPSTREAM_HOME": str(tmp_path),
        "SLIPSTREAM_DATABASE_URL": "postgresql+psycopg://postgres:hunter2@127.0.0.1/no_such_db",
    }
    for command in (["dags", "list"], ["db", "migrate"]):
        result = subprocess.run(
            [sys.executable, "-m", "slipstream.cli.main", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 5, result.stderr
        assert "cannot connect to postgresql+psycopg://postgres:***@127.0.0.1/no_such_db" in (
            result.stderr
        )
        assert "hunter2" not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr


def test_dags_test_shows_the_callbacks_firing(slipstream: Cli) -> None:
    slipstream.write_dag(
        "alerts",
        """
        from datetime import datetime, timedelta
        from slipstream import DAG, task

        def say(what):
            def callback(context):
                exc = context.get("exception")
                print(f"CALLBACK {what} try={context['ti'].try_number} "
                      f"exception={exc!r} reason={context.get('reason')}")
            return callback

        with DAG("alerts", schedule=None, start_date=datetime(2024, 1, 1),
                 on_failure_callback=say("dag_failure")) as dag:
            @task(retries=1, retry_delay=timedelta(seconds=0),
                  on_execute_callback=say("execute"), on_retry_callback=say("retry"),
                  on_failure_callback=say("failure"), email="ops@example.com")
            def flaky():
                raise RuntimeError("flaky")
            flaky()
        """,
    )
    result = slipstream("dags", "test", "alerts")
    assert result.exit_code == 1
    fired = [line for line in result.output.splitlines() if line.startswith("CALLBACK")]
    # Printed as they run, and each try's again when its log is shown after it.
    assert list(dict.fromkeys(fired)) == [
        "CALLBACK execute try=1 exception=None reason=None",
        "CALLBACK retry try=1 exception=RuntimeError('flaky') reason=None",
        "CALLBACK execute try=2 exception=None reason=None",
        "CALLBACK failure try=2 exception=RuntimeError('flaky') reason=None",
        "CALLBACK dag_failure try=2 exception=None reason=task_failure",
    ]
    assert [fired.count(line) for line in dict.fromkeys(fired)] == [2, 2, 2, 2, 1]
    # Once per failed try (live and in the shown log).
    assert result.output.count("e-mail is not configured") == 2 * 2


def test_dags_test_runs_only_the_run_asked_for_not_a_catchup_backlog(slipstream: Cli) -> None:
    # Three days of hourly intervals are due; Airflow's `dags test` still runs one run.
    slipstream.write_dag(
        "backlog",
        """
        from datetime import datetime, timedelta, timezone
        from slipstream import DAG, task
        with DAG("backlog", schedule="@hourly", catchup=True,
                 start_date=datetime.now(timezone.utc) - timedelta(days=3)) as dag:
            @task
            def note(**context):
                print(f"RAN {context['run_id']}")
            note()
        """,
    )
    result = slipstream("dags", "test", "backlog")
    assert result.exit_code == 0, result.output
    ran = [line for line in result.output.splitlines() if "RAN " in line and "print" not in line]
    assert len({line.split("RAN ")[1] for line in ran}) == 1, result.output
    assert "RAN manual__" in result.output


def test_dags_test_enforces_execution_timeout(slipstream: Cli) -> None:
    slipstream.write_dag(
        "slow",
        """
        import time
        from datetime import datetime, timedelta
        from slipstream import DAG, task
        with DAG("slow", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            @task(execution_timeout=timedelta(seconds=0.5))
            def hang():
                time.sleep(60)
            hang()
        """,
    )
    result = slipstream("dags", "test", "slow")
    assert result.exit_code == 1
    assert "execution_timeout of 0.5s exceeded" in result.output


def test_airflow_task_decorators_slipstream_lacks_are_import_errors_naming_them(
    slipstream: Cli,
) -> None:
    decorators = [
        "docker",
        "virtualenv",
        "external_python",
        "branch_virtualenv",
        "kubernetes",
        "kubernetes_cmd",
        "pyspark",
        "run_if",
        "sql",
        "nonsense",
    ]
    for name in decorators:
        # Called with arguments, as DAG files do: the decorator itself is the error.
        slipstream.write_dag(
            name,
            f"""
            from airflow.decorators import dag, task

            @dag(schedule=None)
            def uses_{name}():
                @task.{name}(image="python:3.12")
                def work():
                    return 1

                work()

            uses_{name}()
            """,
        )
    result = slipstream("dags", "list-import-errors", "-o", "json")
    assert result.exit_code == 0
    errors = {Path(e["filename"]).stem: e["error"] for e in json.loads(result.output)}
    assert sorted(errors) == sorted(decorators)
    for name, error in errors.items():
        assert f"@task.{name} is not available in Slipstream" in error, error
