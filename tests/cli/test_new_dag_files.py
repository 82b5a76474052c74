"""A DAG file written a moment ago, used from the CLI at once: with a scheduler running, the CLI
waits for its DAG processor instead of parsing; with none, it parses in forked children."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import wait_for

pytestmark = pytest.mark.slow

DAG = """\
from datetime import datetime
from slipstream import DAG, task

with DAG("{dag_id}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def hello() -> str:
        return "hi"

    hello()
"""


class Home:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "dags").mkdir(parents=True)
        self.env = {
            **os.environ,
            "SLIPSTREAM_HOME": str(root),
            "SLIPSTREAM_LOAD_EXAMPLES": "false",
            "SLIPSTREAM_WORKERS": "1",
        }
        self.env.pop("SLIPSTREAM_DATABASE_URL", None)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "slipstream.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def write(self, dag_id: str) -> None:
        (self.root / "dags" / f"{dag_id}.py").write_text(DAG.format(dag_id=dag_id))


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    home = Home(tmp_path / "home")
    assert home.cli("db", "migrate").returncode == 0
    yield home


def test_with_a_scheduler_running_the_cli_waits_for_its_processor(home: Home) -> None:
    out = (home.root / "scheduler.out").open("wb")
    with out:
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "slipstream.cli.main", "scheduler"],
            env=home.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "ready" in (home.root / "scheduler.out").read_text(), 60, "ready")
        # A hanging file in the folder: the CLI must neither parse it nor wait on it.
        (home.root / "dags" / "hangs.py").write_text("# dag\nimport time\ntime.sleep(600)\n")
        home.write("brand_new")
        triggered = home.cli("dags", "trigger", "brand_new", "--wait")
        assert triggered.returncode == 0, triggered.stdout + triggered.stderr
        assert "manual__" in triggered.stdout
        listed = home.cli("dags", "list", "--output", "json")
        assert listed.returncode == 0, listed.stderr
        assert "brand_new" in listed.stdout

        never = home.cli("dags", "trigger", "no_file_defines_this")
        assert never.returncode == 3
        assert "waiting up to 10 s for the DAG processor" in never.stderr
        assert "no_file_defines_this" in never.stderr
    finally:
        scheduler.terminate()
        scheduler.wait(30)


def test_without_a_processor_the_cli_parses_the_new_file(home: Home) -> None:
    home.write("parsed_here")
    triggered = home.cli("dags", "trigger", "parsed_here")
    assert triggered.returncode == 0, triggered.stdout + triggered.stderr
    assert "waiting" not in triggered.stderr
    shown = home.cli("runs", "list", "parsed_here", "--output", "json")
    assert "queued" in shown.stdout


def test_a_scheduler_can_leave_parsing_to_a_dag_processor_of_its_own(home: Home) -> None:
    home.env["SLIPSTREAM_STANDALONE_DAG_PROCESSOR"] = "true"
    home.write("parsed_elsewhere")
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(name: str) -> None:
        with (home.root / f"{name}.out").open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "slipstream.cli.main", name],
                    env=home.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )

    def said(name: str, text: str) -> bool:
        return text in (home.root / f"{name}.out").read_text()

    try:
        spawn("scheduler")
        wait_for(lambda: said("scheduler", "ready"), 60, "the scheduler")
        # The scheduler parses nothing and registers no DAG processor of its own.
        with sqlite3.connect(home.root / "slipstream.db") as conn:
            processors = conn.execute(
                "SELECT count(*) FROM scheduler_jobs"
                " WHERE job_type = 'dag_processor' AND state = 'running'"
            ).fetchone()[0]
            stored = conn.execute("SELECT count(*) FROM dags").fetchone()[0]
        assert (processors, stored) == (0, 0)
        spawn("dag-processor")
        wait_for(lambda: said("dag-processor", "dag-processor | ready"), 60, "the processor")
        triggered = home.cli("dags", "trigger", "parsed_elsewhere", "--wait")
        assert triggered.returncode == 0, triggered.stdout + triggered.stderr
        # The run went through the scheduler, which never imported the file.
        assert "parsed_elsewhere" not in (home.root / "scheduler.out").read_text()
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
    assert said("dag-processor", "dag-processor | stopped")
