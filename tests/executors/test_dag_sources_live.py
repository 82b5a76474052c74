"""A worker needs no DAG folder: end to end on SQLite and PostgreSQL, DAG files parsed by the
DAG processor's children, runs stepped by the real scheduler, tries run by the local
executor's worker processes. A worker imports its own file when it is the run's version (no
database read, its log says so), else reads that version's text from the database once; a DAG
file importing a module beside it needs the folder, and says so when it is gone."""

from __future__ import annotations

import hashlib
import select
import shutil
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from slipstream.clock import SystemClock
from slipstream.config import Settings
from slipstream.core.records import TaskTry
from slipstream.core.states import RunState
from slipstream.executors.local import LocalExecutor
from slipstream.parsing.processor import DagFileProcessor
from slipstream.scheduler.tick import Scheduler
from slipstream.services.dag_files import DagFileSync
from slipstream.services.dag_source_reader_factory import DagSourceReaderFactory
from slipstream.services.dags import DagService
from slipstream.services.logs import LogService
from slipstream.services.runs import RunService
from slipstream.store import dags as dags_store
from slipstream.store.db import Database
from slipstream.store.plans import PlanCache
from slipstream.wakeup import Hint

# Nothing listens on port 1: a worker given this reader fails any read it tries.
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


class Live:
    """A scheduler with a one-worker local executor given `reader_url` to read DAG sources."""

    def __init__(self, db: Database, home: Path, reader_url: str) -> None:
        self.db = db
        self.dags_folder = home / "dags"
        self.dags_folder.mkdir(parents=True)
        self.out = home / "out.txt"
        env = {"SLIPSTREAM_HOME": str(home), "SLIPSTREAM_LOAD_EXAMPLES": "false"}
        self.settings = Settings.from_env(env).with_changes(database_url=db.url)
        clock = SystemClock()
        self.executor = LocalExecutor(
            1,
            4,
            clock=clock,
            kill_grace_seconds=1.0,
            dag_source_reader=DagSourceReaderFactory(reader_url),
            dag_folders=[str(self.dags_folder)],
        )
        self.sync = DagFileSync(
            db,
            DagFileProcessor([self.dags_folder], interval=0.05, import_timeout=20),
            clock=clock,
            paused_at_creation=False,
            wakeup=None,
        )
        plans = PlanCache()
        self.runs = RunService(db, clock=clock, plans=plans)
        self.dags = DagService(db)
        self.logs = LogService(self.settings.log_folder)
        self.scheduler = Scheduler(
            db, self.executor, clock=clock, settings=self.settings, plans=plans
        )

    def write(self, name: str, source: str) -> Path:
        path = self.dags_folder / name
        path.write_text(textwrap.dedent(source))
        return path

    def parse(self) -> None:
        summary = self.sync.sync_now()
        assert summary.errors == 0, self.dags.import_errors()

    def trigger(self, dag_id: str) -> str:
        return self.runs.trigger(dag_id).run.run_id

    def finish(
        self, dag_id: str, run_id: str, hint: Hint | None = None, timeout: float = 60.0
    ) -> RunState:
        """Step the scheduler (woken by `hint` first) until the run ends; its state."""
        deadline = time.monotonic() + timeout
        hints = [hint or Hint.anything()]
        while not self.runs.get(dag_id, run_id).state.is_finished:
            assert time.monotonic() < deadline, "the run did not end in time"
            select.select(self.executor.filenos(), [], [], 0.1)
            self.scheduler.tick(hints)
            hints = []
        return self.runs.get(dag_id, run_id).state

    def version_id(self, dag_id: str, run_id: str) -> int:
        return self.runs.get(dag_id, run_id).version_id

    def try_of(self, dag_id: str, run_id: str, task_id: str) -> TaskTry:
        [only] = self.runs.tries(dag_id, run_id, task_id)
        return only

    def log(self, dag_id: str, run_id: str, task_id: str) -> list[str]:
        text = self.logs.path(dag_id, run_id, task_id, 1, -1).read_text()
        return text.splitlines()


StartLive = Callable[..., Live]  # (reader_url=None: the database's own) -> a started Live


@pytest.fixture
def start_live(db: Database, tmp_path: Path) -> Iterator[StartLive]:
    started: list[Live] = []

    def start(reader_url: str | None = None) -> Live:
        live = Live(db, tmp_path / "home", reader_url or db.url)
        live.executor.start()
        live.scheduler.start()
        started.append(live)
        return live

    yield start
    for live in started:
        live.scheduler.stop()
        live.executor.shutdown(graceful=False)


def dag_code(mark: str, out: Path) -> str:
    return f"""
    from datetime import datetime
    from slipstream import DAG, task

    with DAG("pinned", start_date=datetime(2024, 1, 1), schedule=None) as dag:

        @task
        def first():
            with open({str(out)!r}, "a") as out:
                out.write("first " + {mark!r} + "\\n")

        @task
        def second():
            with open({str(out)!r}, "a") as out:
                out.write("second " + {mark!r} + "\\n")

        first() >> second()
    """


def code_line(log: list[str]) -> str:
    """The try log's line saying which text of the DAG file ran (its second line)."""
    [line] = [line for line in log if "DAG code:" in line]
    assert log.index(line) == 1, log[:3]
    return line.split(" - ", 1)[1]


def test_a_run_keeps_its_version_when_the_file_changes_or_the_folder_goes(
    start_live: StartLive,
) -> None:
    live: Live = start_live()
    path = live.write("pinned.py", dag_code("v1", live.out))
    live.parse()
    with live.db.read() as conn:
        record = dags_store.get_dag(conn, "pinned")
        assert record is not None and record.version_id is not None
        version = dags_store.get_version(conn, record.version_id)
    assert version is not None
    assert version.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    # The run is pinned to version 1; the file then changes, and is not parsed again yet.
    run_id = live.trigger("pinned")
    live.write("pinned.py", dag_code("v2", live.out))
    assert live.finish("pinned", run_id) is RunState.SUCCESS
    assert live.out.read_text() == "first v1\nsecond v1\n"
    version_id = live.version_id("pinned", run_id)
    assert version_id == record.version_id
    assert code_line(live.log("pinned", run_id, "first")) == (
        f"DAG code: the text of DAG 'pinned' version {version_id}, read from the metadata "
        f"database (the file {path} here is not it)"
    )
    assert code_line(live.log("pinned", run_id, "second")) == (
        f"DAG code: the text of DAG 'pinned' version {version_id}, kept from an earlier read "
        f"of the metadata database (the file {path} here is not it)"
    )

    # The DAGs folder goes: the next run (version 1 still) runs from the database alone.
    shutil.rmtree(live.dags_folder)
    live.out.unlink()
    second_run = live.trigger("pinned")
    assert live.finish("pinned", second_run) is RunState.SUCCESS
    assert live.out.read_text() == "first v1\nsecond v1\n"
    assert code_line(live.log("pinned", second_run, "first")) == (
        f"DAG code: the text of DAG 'pinned' version {version_id}, kept from an earlier read "
        f"of the metadata database (no file {path} here)"
    )

    # The folder comes back with version 3, parsed: a run pinned to version 1 before that
    # gets version 1's text from the scheduler, as it always did.
    third_run = live.trigger("pinned")
    live.dags_folder.mkdir()
    live.write("pinned.py", dag_code("v3", live.out))
    live.parse()
    live.out.unlink()
    # (What the DAG processor tells the scheduler after a parse.)
    assert live.finish("pinned", third_run, Hint.dag_changed("pinned")) is RunState.SUCCESS
    assert live.out.read_text() == "first v1\nsecond v1\n"
    assert "sent with the try" in code_line(live.log("pinned", third_run, "first"))


def test_a_matching_file_is_imported_without_reading_the_database(start_live: StartLive) -> None:
    # The worker's reader cannot reach any database: a read would fail the try.
    live: Live = start_live(UNREACHABLE)
    path = live.write("pinned.py", dag_code("v1", live.out))
    live.parse()
    run_id = live.trigger("pinned")
    assert live.finish("pinned", run_id) is RunState.SUCCESS
    assert live.out.read_text() == "first v1\nsecond v1\n"
    version_id = live.version_id("pinned", run_id)
    for task_id in ("first", "second"):
        assert code_line(live.log("pinned", run_id, task_id)) == (
            f"DAG code: the file {path} (the SHA-256 of DAG 'pinned' version {version_id})"
        )
    # Without the file it must read, and cannot: the try fails saying why.
    path.unlink()
    failed_run = live.trigger("pinned")
    assert live.finish("pinned", failed_run) is RunState.FAILED
    error = live.try_of("pinned", failed_run, "first").error
    assert error is not None
    assert error.startswith(
        f"DagSourceUnavailable: could not read version {version_id}'s text from the metadata "
        "database: DatabaseUnavailable: database: cannot connect to "
    ), error


HELPER_DAG = """
from datetime import datetime
from slipstream import DAG, task
from team_helpers import GREETING

with DAG("uses_helper", start_date=datetime(2024, 1, 1), schedule=None) as dag:

    @task
    def greet():
        return GREETING

    greet()
"""


def test_a_shared_folder_serves_modules_beside_the_dag_file(start_live: StartLive) -> None:
    live: Live = start_live()
    live.write("team_helpers.py", "GREETING = 'hello from a helper'\n")
    path = live.write("uses_helper.py", HELPER_DAG)
    live.parse()
    run_id = live.trigger("uses_helper")
    assert live.finish("uses_helper", run_id) is RunState.SUCCESS
    assert f"DAG code: the file {path} (" in code_line(live.log("uses_helper", run_id, "greet"))


def test_a_module_beside_a_dag_file_that_is_not_here_fails_saying_why(
    start_live: StartLive, tmp_path: Path
) -> None:
    live: Live = start_live()
    live.write("team_helpers.py", "GREETING = 'hello from a helper'\n")
    path = live.write("uses_helper.py", HELPER_DAG)
    live.parse()
    live.dags_folder.rename(tmp_path / "moved_away")
    run_id = live.trigger("uses_helper")
    assert live.finish("uses_helper", run_id) is RunState.FAILED
    version_id = live.version_id("uses_helper", run_id)
    assert live.try_of("uses_helper", run_id, "greet").error == (
        "ModuleNotFoundError: No module named 'team_helpers': this try runs the text of DAG "
        f"'uses_helper' version {version_id} from the metadata database, which holds the DAG "
        f"file {path} alone. A DAG file that imports modules beside it needs its DAGs folder "
        "on the worker: share or sync SLIPSTREAM_DAGS_FOLDER with this worker (a package: "
        "install it here)"
    )
    log = live.log("uses_helper", run_id, "greet")
    assert "read from the metadata database (no file" in code_line(log)
