"""Stored Variables and Connections read end to end: DAG files in Airflow 2 and 3 idiom, parsed
by the DAG processor's children and run by the local executor's workers under the real
scheduler, on SQLite and PostgreSQL; secrets masked in the real log file; bad input failing the
try with a clear message, and nothing else."""

from __future__ import annotations

import json
import select
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select as sql_select

from slipstream.bootstrap import fernet_cipher, secrets_factory
from slipstream.clock import SystemClock
from slipstream.config import Settings
from slipstream.core.secrets import StoredConnection
from slipstream.core.states import RunState
from slipstream.executors.local import LocalExecutor
from slipstream.parsing.processor import DagFileProcessor
from slipstream.scheduler.tick import Scheduler
from slipstream.services.connections import ConnectionService
from slipstream.services.dag_files import DagFileSync
from slipstream.services.dags import DagService
from slipstream.services.logs import LogService
from slipstream.services.runs import RunService
from slipstream.services.variables import VariableService
from slipstream.store.db import Database
from slipstream.store.plans import PlanCache
from slipstream.store.tables import connections, log, variables
from slipstream.wakeup import Hint

KEY = "k" * 43 + "="  # a valid Fernet key: 32 bytes of 0x92, url-safe base64


class Live:
    """A scheduler, its local executor and DAG parsing, all given the stored-secrets recipe."""

    def __init__(self, db: Database, home: Path, fernet_key: str | None = None) -> None:
        self.db = db
        self.dags_folder = home / "dags"
        self.dags_folder.mkdir(parents=True)
        env = {"SLIPSTREAM_HOME": str(home), "SLIPSTREAM_LOAD_EXAMPLES": "false"}
        if fernet_key:
            env["SLIPSTREAM_FERNET_KEY"] = fernet_key
        self.settings = Settings.from_env(env).with_changes(database_url=db.url)
        clock = SystemClock()
        self.executor = LocalExecutor(
            1, 4, clock=clock, kill_grace_seconds=1.0, secrets=secrets_factory(self.settings)
        )
        self.sync = DagFileSync(
            db,
            DagFileProcessor(
                [self.dags_folder],
                interval=0.05,
                import_timeout=20,
                secrets=secrets_factory(self.settings),
            ),
            clock=clock,
            paused_at_creation=False,
            wakeup=None,
        )
        plans = PlanCache()
        self.runs = RunService(db, clock=clock, plans=plans)
        self.dags = DagService(db)
        self.logs = LogService(self.settings.log_folder)
        cipher = fernet_cipher(self.settings)
        self.variables = VariableService(db, cipher)
        self.connections = ConnectionService(db, cipher)
        self.scheduler = Scheduler(
            db, self.executor, clock=clock, settings=self.settings, plans=plans
        )

    def write_dag(self, name: str, source: str) -> None:
        (self.dags_folder / f"{name}.py").write_text(textwrap.dedent(source))
        self.sync.sync_now()

    def run(self, dag_id: str, timeout: float = 60.0) -> tuple[RunState, str]:
        """Trigger the DAG, step the scheduler until the run ends; its state and run id."""
        run = self.runs.trigger(dag_id).run
        deadline = time.monotonic() + timeout
        hints = [Hint.anything()]
        while not self.runs.get(dag_id, run.run_id).state.is_finished:
            assert time.monotonic() < deadline, "the run did not end in time"
            select.select(self.executor.filenos(), [], [], 0.1)
            self.scheduler.tick(hints)
            hints = []
        return self.runs.get(dag_id, run.run_id).state, run.run_id

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        return self.logs.path(dag_id, run_id, task_id, try_number, -1).read_text()


@pytest.fixture
def live(db: Database, tmp_path: Path) -> Iterator[Live]:
    harness = Live(db, tmp_path / "home")
    harness.executor.start()
    harness.scheduler.start()
    yield harness
    harness.scheduler.stop()
    harness.executor.shutdown(graceful=False)


AIRFLOW2_DAG = """
import json
from datetime import datetime
from airflow import DAG
from airflow.models import Variable
from airflow.hooks.base import BaseHook
from airflow.operators.python import PythonOperator
from airflow.operators.bash import BashOperator

# Top-level code at parse time reads the stored variable too (the DAG id comes from it).
DAG_ID = Variable.get("dag_name", default_var="unnamed")

def use(out):
    conn = BaseHook.get_connection("warehouse")
    cfg = Variable.get("config", deserialize_json=True)
    with open(out, "w") as f:
        json.dump({"plain": Variable.get("plain"), "cfg": cfg, "host": conn.host,
                   "port": conn.port, "login": conn.login, "password": conn.password,
                   "extra": conn.extra_dejson}, f)
    print("the password is", conn.password)
    print("the token is", Variable.get("api_token"))

with DAG(DAG_ID, start_date=datetime(2024, 1, 1), schedule=None) as dag:
    PythonOperator(task_id="use", python_callable=use, op_args=[OUT])
    BashOperator(task_id="templated",
                 bash_command="echo value={{ var.value.plain }} "
                              "json={{ var.json.config.n }} host={{ conn.warehouse.host }}")
"""

AIRFLOW3_DAG = """
from airflow.sdk import dag, task, Variable
from datetime import datetime

@dag(schedule=None, start_date=datetime(2024, 1, 1))
def sdk_vars():
    @task
    def write():
        Variable.set("written_by_task", "from the task")
        return Variable.get("plain")

    @task
    def read(previous):
        assert Variable.get("written_by_task") == "from the task"
        assert previous == "stored plain"
        assert Variable.setdefault("made_default", "d") == "d"
        assert Variable.delete("made_default") == 1

    read(write())

sdk_vars()
"""


def _store(live: Live) -> None:
    live.variables.set("plain", "stored plain", "a description", by="tester")
    live.variables.set("config", json.dumps({"n": 7}), by="tester")
    live.variables.set("dag_name", "from_stored_variable", by="tester")
    live.variables.set("api_token", "tok-123456789", by="tester")
    live.connections.add(
        StoredConnection(
            conn_id="warehouse",
            conn_type="postgres",
            host="db.example",
            login="etl",
            password="s3cr3t-pass",
            port=5433,
            extra=json.dumps({"sslmode": "require", "client_secret": "cs-987654"}),
        ),
        by="tester",
    )


@pytest.mark.slow
def test_airflow2_dag_reads_stored_values_at_parse_and_run_time(live: Live, tmp_path: Path) -> None:
    _store(live)
    out = tmp_path / "seen.json"
    live.write_dag("airflow2", AIRFLOW2_DAG.replace("OUT", repr(str(out))))
    # The DAG id came from the stored variable, read by the parse child.
    assert live.dags.import_errors() == ([], 0)
    state, run_id = live.run("from_stored_variable")
    assert state is RunState.SUCCESS
    seen = json.loads(out.read_text())
    assert seen == {
        "plain": "stored plain",
        "cfg": {"n": 7},
        "host": "db.example",
        "port": 5433,
        "login": "etl",
        "password": "s3cr3t-pass",
        "extra": {"sslmode": "require", "client_secret": "cs-987654"},
    }
    log = live.log("from_stored_variable", run_id, "use")
    assert "the password is ***" in log
    assert "the token is ***" in log
    assert "s3cr3t-pass" not in log and "tok-123456789" not in log
    templated = live.log("from_stored_variable", run_id, "templated")
    assert "value=stored plain json=7 host=db.example" in templated


@pytest.mark.slow
def test_airflow3_sdk_dag_sets_gets_and_deletes(live: Live) -> None:
    _store(live)
    live.write_dag("airflow3", AIRFLOW3_DAG)
    assert live.dags.import_errors() == ([], 0)
    state, run_id = live.run("sdk_vars")
    assert state is RunState.SUCCESS
    assert live.variables.get("written_by_task").val == "from the task"
    with pytest.raises(Exception, match="made_default"):
        live.variables.get("made_default")
    # The try's writes are audited in their own transactions, naming the try and, as owner,
    # its task's owner; no value is in the log.
    with live.db.read() as conn:
        rows = conn.execute(
            sql_select(log)
            .where(log.c.dag_id == "sdk_vars", log.c.event.like("variable.%"))
            .order_by(log.c.id)
        ).all()
        everything = " ".join(str(v) for row in conn.execute(sql_select(log)) for v in row)
    written = [
        (r.event, json.loads(r.extra)["key"], r.task_id, r.run_id, r.owner, r.try_number)
        for r in rows
    ]
    assert written == [
        ("variable.create", "written_by_task", "write", run_id, "airflow", 1),
        ("variable.create", "made_default", "read", run_id, "airflow", 1),
        ("variable.delete", "made_default", "read", run_id, "airflow", 1),
    ]
    assert "from the task" not in everything and "tok-123456789" not in everything


def test_values_are_encrypted_at_rest(db: Database, tmp_path: Path) -> None:
    settings = Settings.from_env({"SLIPSTREAM_HOME": str(tmp_path)})
    cipher = fernet_cipher(settings)
    VariableService(db, cipher).set("plain", "visible-value", by="tester")
    ConnectionService(db, cipher).add(
        StoredConnection(conn_id="c", conn_type="http", password="pw-value", extra='{"a": 1}'),
        by="tester",
    )
    with db.read() as conn:
        val = conn.execute(sql_select(variables.c.val, variables.c.is_encrypted)).one()
        row = conn.execute(sql_select(connections.c.password, connections.c.extra)).one()
    assert val.is_encrypted and "visible-value" not in val.val and val.val.startswith("gAAAA")
    assert "pw-value" not in row.password and '"a"' not in row.extra
    # The key was made once, mode 0600, and read back alike by the next process.
    assert (tmp_path / ".fernet-key").stat().st_mode & 0o777 == 0o600
    assert VariableService(db, fernet_cipher(settings)).get("plain").val == "visible-value"


BAD_INPUT_DAG = """
from datetime import datetime
from airflow import DAG
from airflow.models import Variable
from airflow.hooks.base import BaseHook
from airflow.operators.python import PythonOperator

with DAG("bad_input", start_date=datetime(2024, 1, 1), schedule=None) as dag:
    PythonOperator(task_id="unknown_conn", python_callable=lambda: BaseHook.get_connection("nope"))
    PythonOperator(task_id="missing_var", python_callable=lambda: Variable.get("absent"))
    PythonOperator(task_id="not_json",
                   python_callable=lambda: Variable.get("plain", deserialize_json=True))
    PythonOperator(task_id="undecryptable", python_callable=lambda: Variable.get("locked"))
"""


@pytest.mark.slow
def test_bad_input_fails_the_try_with_a_clear_message(live: Live, tmp_path: Path) -> None:
    live.variables.set("plain", "not json at all", by="tester")
    # Stored under another key: the installation's key cannot open it.
    other = Settings.from_env({"SLIPSTREAM_HOME": str(tmp_path / "elsewhere")})
    VariableService(live.db, fernet_cipher(other)).set("locked", "sealed", by="tester")
    live.write_dag("bad_input", BAD_INPUT_DAG)
    state, run_id = live.run("bad_input")
    assert state is RunState.FAILED
    expected = {
        "unknown_conn": "AirflowNotFoundException: The conn_id `nope` isn't defined",
        "missing_var": "KeyError: 'Variable absent does not exist'",
        "not_json": "ValueError: Variable plain is not valid JSON",
        "undecryptable": "variable 'locked' cannot be decrypted: the Fernet key in use does not"
        " match",
    }
    for task_id, message in expected.items():
        assert message in live.log("bad_input", run_id, task_id), task_id
    # Nothing lost: the stored values are still there, and the scheduler keeps scheduling.
    assert live.variables.get("plain").val == "not json at all"
    live.write_dag("airflow3", AIRFLOW3_DAG)
    live.variables.set("plain", "stored plain", by="tester")
    assert live.run("sdk_vars")[0] is RunState.SUCCESS
