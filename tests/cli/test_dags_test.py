"""`slipstream dags test` and the install's Variables and Connections, end to end through the
CLI as a separate process: a DAG file reads them when parsed and its tasks when they run, the
environment's AIRFLOW_VAR_*/AIRFLOW_CONN_* first, as in Airflow's `dags test`; the run itself
stays on the throwaway database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import Cli

# The DAG id comes from a Variable read at parse time: only a parse that sees it finds the DAG.
READS_SECRETS = """
from datetime import datetime
from airflow import DAG
from airflow.hooks.base import BaseHook
from airflow.models import Variable
from airflow.operators.python import PythonOperator

PREFIX = Variable.get("prefix")


def show():
    conn = BaseHook.get_connection("warehouse")
    print(f"PARSED {PREFIX} RAN {Variable.get('prefix')} HOST {conn.host} PASSWORD {conn.password}")
    Variable.set("written_by_test", f"from {PREFIX}")


with DAG(f"{PREFIX}_dag", schedule=None, start_date=datetime(2024, 1, 1)):
    PythonOperator(task_id="show", python_callable=show)
"""


def _run(cli: Cli, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slipstream.cli.main", *args],
        env={**os.environ, **cli.env, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dags_test_reads_the_installs_variables_and_connections(slipstream: Cli) -> None:
    slipstream.write_dag("reads_secrets", READS_SECRETS)
    assert slipstream("variables", "set", "prefix", "stored").exit_code == 0
    uri = "postgres://etl:s3cr3t-pw@dbhost:5432/dw"
    assert slipstream("connections", "add", "warehouse", "--conn-uri", uri).exit_code == 0

    stored = _run(slipstream, "dags", "test", "stored_dag")
    assert stored.returncode == 0, stored.stdout + stored.stderr
    # Read at parse time and at run time; the password masked in what the try prints.
    assert "PARSED stored RAN stored HOST dbhost PASSWORD ***" in stored.stdout, stored.stdout
    assert "s3cr3t-pw" not in stored.stdout + stored.stderr

    # The environment comes first, at parse time and at run time.
    env = {
        "AIRFLOW_VAR_PREFIX": "env",
        "AIRFLOW_CONN_WAREHOUSE": "postgres://etl:s3cr3t-pw@envhost:5432/dw",
    }
    from_env = _run(slipstream, "dags", "test", "env_dag", **env)
    assert from_env.returncode == 0, from_env.stdout + from_env.stderr
    assert "PARSED env RAN env HOST envhost" in from_env.stdout
    hidden = _run(slipstream, "dags", "test", "stored_dag", **env)
    assert hidden.returncode == 3 and "DAG 'stored_dag' not found" in hidden.stderr

    # A try's Variable.set is the install's, as in Airflow; its run is not: no run, try or
    # XCom of `dags test` reaches the metadata database.
    assert slipstream("variables", "get", "written_by_test").stdout == "from env\n"
    assert json.loads(slipstream("runs", "list", "-o", "json").stdout) == []


def test_dags_test_says_why_a_dag_reading_a_missing_variable_is_not_found(
    slipstream: Cli,
) -> None:
    slipstream.write_dag("reads_secrets", READS_SECRETS)
    missing = _run(slipstream, "dags", "test", "stored_dag")
    assert missing.returncode == 3
    reads = str(slipstream.home / "dags" / "reads_secrets.py")
    assert "DAG 'stored_dag' not found; 1 DAG file(s) failed to import:" in missing.stderr
    assert f"{reads}: KeyError: 'Variable prefix does not exist'" in missing.stderr
    assert "Traceback" not in missing.stderr
    # A DAG absent from every file that imported is plainly not found.
    slipstream.write_dag("reads_secrets", "")
    absent = _run(slipstream, "dags", "test", "stored_dag")
    assert absent.returncode == 3 and absent.stderr.strip().endswith("not found"), absent.stderr


def test_dags_test_without_a_migrated_database_reads_the_environment_alone(
    slipstream: Cli, tmp_path: Path
) -> None:
    slipstream.write_dag("reads_secrets", READS_SECRETS)
    fresh = f"sqlite:///{tmp_path / 'never-migrated.db'}"
    env = {
        "SLIPSTREAM_DATABASE_URL": fresh,
        "AIRFLOW_VAR_PREFIX": "env",
        "AIRFLOW_CONN_WAREHOUSE": "postgres://etl:pw@envhost:5432/dw",
    }
    result = _run(slipstream, "dags", "test", "env_dag", **env)
    assert "is not migrated: DAG files and tasks see only the environment's" in result.stderr
    assert "PARSED env RAN env HOST envhost" in result.stdout, result.stdout + result.stderr
    # Variable.set has nowhere to store: the task fails, saying why.
    assert result.returncode == 1
    assert (
        f"database: the metadata database at {fresh} is not migrated: "
        "Variable 'written_by_test' cannot be stored"
    ) in result.stdout


USES_HELPER = """
from datetime import datetime
from airflow import DAG
from airflow.operators.python import PythonOperator
from team_helpers import GREETING

with DAG("uses_helper", schedule=None, start_date=datetime(2024, 1, 1)):
    PythonOperator(task_id="greet", python_callable=lambda: print("GREETING", GREETING))
"""


def test_dags_test_runs_a_dag_file_that_imports_a_module_beside_it(slipstream: Cli) -> None:
    # As the parser (and Airflow) do, the DAGs folder is on sys.path where the tasks run too.
    slipstream.write_dag("team_helpers", "GREETING = 'hello from a helper'\n")
    slipstream.write_dag("uses_helper", USES_HELPER)
    result = _run(slipstream, "dags", "test", "uses_helper")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "GREETING hello from a helper" in result.stdout, result.stdout
