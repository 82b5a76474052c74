"""Parsing one file in a real forked child: good files, every kind of failure, and timeouts."""

from __future__ import annotations

import select
import time
from pathlib import Path

from slipstream.parsing.child import FileParseResult, ParseChild, ParseLimits

HEADER = """\
from datetime import datetime
from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import EmptyOperator
"""


def dag_source(*dag_ids: str, extra: str = "") -> str:
    blocks = [
        f'with DAG("{dag_id}", schedule="@daily", start_date=datetime(2026, 1, 1)):\n'
        f'    EmptyOperator(task_id="start") >> EmptyOperator(task_id="end")\n'
        for dag_id in dag_ids
    ]
    return HEADER + extra + "\n".join(blocks)


def parse(path: Path, *, timeout: float = 30.0, sys_path: tuple[str, ...] = ()) -> FileParseResult:
    """Run a child and wait on its pipe, with a deadline, until it answers."""
    child = ParseChild(
        str(path), limits=ParseLimits(timeout), now=time.monotonic(), sys_path=sys_path
    )
    return wait_for(child, timeout)


def wait_for(child: ParseChild, timeout: float) -> FileParseResult:
    give_up = time.monotonic() + timeout + 30
    while time.monotonic() < give_up:
        result = child.poll(time.monotonic())
        if result is not None:
            assert child.fileno() == -1  # the pipe is closed and the child reaped
            return result
        select.select([child.fileno()], [], [], 0.05)
    child.kill()
    raise AssertionError("the parse child never answered")


def test_good_file_yields_each_dag(tmp_path: Path) -> None:
    path = tmp_path / "two.py"
    path.write_text(dag_source("first", "second"))
    result = parse(path)
    assert result.error is None
    assert not result.deleted
    assert result.fileloc == str(path)
    assert [d.structure["dag_id"] for d in result.dags] == ["first", "second"]
    first = result.dags[0]
    assert first.structure["fileloc"] == str(path)
    assert {t["task_id"] for t in first.structure["tasks"]} == {"start", "end"}
    assert first.source == path.read_text()
    assert len(first.version_hash) == 64
    assert result.dags[0].version_hash != result.dags[1].version_hash


def test_version_hash_covers_source_and_is_stable(tmp_path: Path) -> None:
    path = tmp_path / "d.py"
    path.write_text(dag_source("d"))
    once, again = parse(path), parse(path)
    assert once.dags[0].version_hash == again.dags[0].version_hash
    path.write_text(dag_source("d", extra="# a comment changes the code, not the shape\n"))
    commented = parse(path)
    assert commented.dags[0].structure == once.dags[0].structure
    assert commented.dags[0].version_hash != once.dags[0].version_hash


def test_file_without_dags_is_empty_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "nodag.py"
    path.write_text("# mentions a dag but defines none\nx = 1\n")
    assert parse(path) == FileParseResult(str(path), [], None)


def test_syntax_error_reports_traceback(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text(dag_source("broken") + "\ndef oops(:\n")
    result = parse(path)
    assert result.dags == []
    assert result.error is not None
    assert "SyntaxError" in result.error
    assert "broken.py" in result.error


def test_exception_at_import_reports_traceback(tmp_path: Path) -> None:
    path = tmp_path / "raises.py"
    path.write_text(dag_source("raises") + "\nraise RuntimeError('no database here')\n")
    result = parse(path)
    assert result.error is not None
    assert "Traceback" in result.error
    assert "RuntimeError: no database here" in result.error


def test_dag_definition_errors_are_import_errors(tmp_path: Path) -> None:
    path = tmp_path / "cycle.py"
    path.write_text(
        HEADER
        + 'with DAG("cyclic", schedule=None, start_date=datetime(2026, 1, 1)):\n'
        + '    a = EmptyOperator(task_id="a")\n'
        + '    b = EmptyOperator(task_id="b")\n'
        + "    a >> b >> a\n"
    )
    cycle = parse(path)
    assert cycle.error is not None and "CycleError" in cycle.error

    path.write_text(HEADER + 'DAG("bad", schedule="not a cron", start_date=datetime(2026, 1, 1))\n')
    bad_cron = parse(path)
    assert bad_cron.error is not None and "schedule" in bad_cron.error

    path.write_text(
        HEADER
        + 'with DAG("dup", schedule=None, start_date=datetime(2026, 1, 1)):\n'
        + '    EmptyOperator(task_id="same")\n'
        + '    EmptyOperator(task_id="same")\n'
    )
    duplicate_task = parse(path)
    assert duplicate_task.error is not None and "DuplicateTaskIdError" in duplicate_task.error


def test_same_dag_id_twice_in_one_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "twice.py"
    path.write_text(dag_source("twice", "twice"))
    result = parse(path)
    assert result.dags == []
    assert result.error is not None
    assert "'twice' is defined more than once" in result.error


def test_sys_exit_at_import_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "exits.py"
    path.write_text(dag_source("exits") + "\nimport sys\nsys.exit(3)\n")
    result = parse(path)
    assert result.error is not None and "SystemExit: 3" in result.error


def test_os_exit_at_import_names_the_exit_status(tmp_path: Path) -> None:
    path = tmp_path / "hard_exit.py"
    path.write_text(dag_source("hard_exit") + "\nimport os\nos._exit(1)\n")
    result = parse(path)
    assert result.dags == []
    assert result.error == ("DAG file import process exited with code 1 without reporting a result")


def test_killed_child_names_the_signal(tmp_path: Path) -> None:
    path = tmp_path / "killed.py"
    path.write_text("# dag\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    result = parse(path)
    assert result.error is not None and "killed by signal 9 (SIGKILL)" in result.error


def test_segfault_names_the_signal(tmp_path: Path) -> None:
    path = tmp_path / "segfault.py"
    path.write_text("# dag\nimport ctypes\nctypes.string_at(0)\n")
    result = parse(path)
    assert result.dags == []
    assert result.error is not None and "killed by signal 11 (SIGSEGV)" in result.error


def test_exit_code_is_named(tmp_path: Path) -> None:
    path = tmp_path / "exits.py"
    path.write_text("# dag\nimport os\nos._exit(3)\n")
    result = parse(path)
    assert result.error == "DAG file import process exited with code 3 without reporting a result"


def test_import_over_the_memory_limit_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "greedy.py"
    path.write_text("# dag\nhoard = []\nwhile True:\n    hoard.append(bytearray(16 << 20))\n")
    limits = ParseLimits(timeout=30, memory_bytes=512 << 20)
    child = ParseChild(str(path), limits=limits, now=time.monotonic())
    result = wait_for(child, 60)
    assert result.dags == []
    assert result.error is not None
    assert "over the memory limit of 512 MB (SLIPSTREAM_DAG_IMPORT_MEMORY_MB)" in result.error


def test_output_goes_to_its_own_file_and_is_capped(tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.py"
    quiet.write_text(dag_source("quiet", extra="print('hello from the import')\n"))
    limits = ParseLimits(timeout=30, output_bytes=1 << 20, output_folder=tmp_path / "out")
    child = ParseChild(str(quiet), limits=limits, now=time.monotonic())
    result = wait_for(child, 30)
    assert result.error is None and [d.structure["dag_id"] for d in result.dags] == ["quiet"]
    assert Path(child.output_path).read_text() == "hello from the import\n"

    loud = tmp_path / "loud.py"
    loud.write_text("# dag\nimport sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n")
    child = ParseChild(str(loud), limits=limits, now=time.monotonic())
    started = time.monotonic()
    result = wait_for(child, 30)
    assert result.error is not None and result.error.startswith(
        "DAG file import printed more than 1 MB (SLIPSTREAM_DAG_IMPORT_OUTPUT_MB)"
    )
    assert time.monotonic() - started < 25  # stopped by its output, not by its timeout


def test_hanging_import_times_out(tmp_path: Path) -> None:
    path = tmp_path / "hangs.py"
    path.write_text("# dag\nimport time\ntime.sleep(60)\n")
    started = time.monotonic()
    result = parse(path, timeout=0.5)
    assert result.error == "DAG file import timed out after 0.5 s (SLIPSTREAM_DAG_IMPORT_TIMEOUT)"
    assert time.monotonic() - started < 10


def test_unserializable_params_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "nan.py"
    path.write_text(
        HEADER
        + 'with DAG("nan", schedule=None, start_date=datetime(2026, 1, 1),'
        + ' params={"x": float("nan")}):\n'
        + '    EmptyOperator(task_id="t")\n'
    )
    result = parse(path)
    assert result.dags == []
    assert result.error is not None


def test_dag_files_can_import_helpers_from_the_dag_folder(tmp_path: Path) -> None:
    (tmp_path / "shared_helpers.py").write_text("DAG_ID = 'from_helper'\n")
    path = tmp_path / "uses_helper.py"
    path.write_text(HEADER + "from shared_helpers import DAG_ID\n" + "DAG(DAG_ID, schedule=None)\n")
    result = parse(path, sys_path=(str(tmp_path),))
    assert result.error is None, result.error
    assert [d.structure["dag_id"] for d in result.dags] == ["from_helper"]


def test_airflow_files_parse_and_missing_airflow_names_point_at_the_users_line(
    tmp_path: Path,
) -> None:
    good = tmp_path / "airflow_dag.py"
    good.write_text(
        "from airflow import DAG\n"
        "from airflow.operators.bash import BashOperator\n"
        "with DAG('from_airflow', schedule=None) as dag:\n"
        "    BashOperator(task_id='hi', bash_command='echo hi')\n"
    )
    [parsed] = parse(good).dags
    assert parsed.structure["dag_id"] == "from_airflow" and parsed.structure["catchup"] is True

    provider = tmp_path / "provider.py"
    provider.write_text(
        "from airflow import DAG\n"
        "from airflow.providers.docker.operators.docker import DockerOperator\n"
    )
    error = parse(provider).error
    assert error is not None
    assert error.startswith("Traceback (most recent call last):\n")
    assert f'File "{provider}", line 2, in <module>' in error
    assert "DockerOperator (from airflow.providers.docker.operators.docker)" in error
    assert "slipstream/" not in error and "importlib" not in error

    sensor = tmp_path / "sensor.py"
    sensor.write_text(
        "from airflow import DAG\n"
        "from airflow.sensors.filesystem import FileSensor\n"
        "with DAG('waits', schedule=None) as dag:\n"
        "    FileSensor(task_id='wait', filepath='/tmp/x', mode='sometimes')\n"
    )
    error = parse(sensor).error
    assert error is not None
    assert f'File "{sensor}", line 4, in <module>' in error
    assert "mode 'sometimes' of sensor 'wait' is not valid" in error
