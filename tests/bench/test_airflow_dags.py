"""The Airflow DAG-file instrument on small DAG files of its own: a good file loads and its
`dags test` succeeds, a file failing to import is reported with the construct it names, a
failing task is named with its exception line, a hanging DAG is cut at the timeout, and the
figures count the runnable set from the manifest."""

from __future__ import annotations

import json
from pathlib import Path

from bench.airflow_dags import failing_try, main, run_corpus
from bench.airflow_dags_report import (
    FileResult,
    constructs,
    figures,
    headline,
    named_construct,
    read_manifest,
    top_causes,
)

GOOD = """\
from datetime import datetime

from slipstream import DAG, BashOperator, task

with DAG("good_dag", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    hello = BashOperator(task_id="hello", bash_command="echo hello")

    @task
    def add() -> int:
        return 1 + 1

    hello >> add()
"""

IMPORT_FAILS = """\
from datetime import datetime

from slipstream import DAG
from slipstream_bench_missing.operators import FancyOperator

with DAG("never_loaded", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    FancyOperator(task_id="fancy")
"""

TASK_FAILS = """\
from datetime import datetime

from slipstream import DAG, task

with DAG("task_fails", schedule=None, start_date=datetime(2024, 1, 1)) as dag:

    @task
    def boom() -> None:
        raise ValueError("kaboom from the bench test")

    boom()
"""

HANGS = """\
from datetime import datetime

from slipstream import DAG, BashOperator

with DAG("hangs", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    BashOperator(task_id="sleep", bash_command="sleep 120")
"""

MANIFEST = """\
path\torigin\tairflow\tneeds
good.py\tmine@0 good.py\t3\t-
nested/import_fails.py\tmine@0 import_fails.py\t2\tproviders:fancy
task_fails.py\tmine@0 task_fails.py\t2\t-
"""


def _corpus(tmp_path: Path, files: dict[str, str]) -> Path:
    corpus = tmp_path / "corpus"
    for name, text in files.items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_text(text)
    return corpus


def _by_path(results: list[FileResult]) -> dict[str, FileResult]:
    return {r.path: r for r in results}


def test_a_corpus_run_reports_loads_tests_and_import_errors(tmp_path: Path) -> None:
    corpus = _corpus(
        tmp_path,
        {"good.py": GOOD, "nested/import_fails.py": IMPORT_FAILS, "task_fails.py": TASK_FAILS},
    )
    (corpus / "MANIFEST.tsv").write_text(MANIFEST)
    out = tmp_path / "results.json"

    assert main([str(corpus), "--out", str(out), "--timeout", "60"]) == 0

    payload = json.loads(out.read_text())
    files = {f["path"]: f for f in payload["files"]}
    good = files["good.py"]
    assert good["loaded"] and good["succeeded"] and good["cause"] is None
    assert [(d["dag_id"], d["status"]) for d in good["dags"]] == [("good_dag", "success")]

    missing = files["nested/import_fails.py"]
    assert not missing["loaded"] and not missing["runnable"]
    assert missing["import_error"] == (
        "ModuleNotFoundError: No module named 'slipstream_bench_missing'"
    )
    assert missing["construct"] == "slipstream_bench_missing"
    assert "Traceback" in missing["import_error_text"]

    failing = files["task_fails.py"]
    assert failing["loaded"] and not failing["succeeded"]
    (dag,) = failing["dags"]
    assert dag["status"] == "failed"
    assert dag["failed_task"] == "boom"
    assert dag["error"] == "ValueError: kaboom from the bench test"

    assert payload["figures"] == {
        "files": 3,
        "runnable": 2,
        "loaded": 2,
        "succeeded": 1,
        "runnable_dags": 2,
        "runnable_dags_succeeded": 1,
        "runnable_unloaded": 0,
        "runnable_unloaded_named": 0,
        "needing": 1,
        "needing_import_error": 1,
        "needing_named": 1,
    }


def test_a_dag_test_that_outlives_the_timeout_is_cut_and_reported(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {"hangs.py": HANGS})

    (result,) = run_corpus(corpus, {}, timeout=3.0)

    assert result.loaded and result.airflow == "?" and result.runnable
    (dag,) = result.dags
    assert dag.status == "timeout"
    assert dag.error is not None and dag.error.startswith("no result after 3 s")
    assert dag.seconds < 60


def test_the_manifest_is_read_and_a_malformed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "MANIFEST.tsv"
    path.write_text(MANIFEST)
    rows = read_manifest(path)
    assert rows["nested/import_fails.py"].needs == "providers:fancy"
    assert rows["good.py"].airflow == "3"

    path.write_text(MANIFEST + "broken line without tabs\n")
    try:
        read_manifest(path)
    except ValueError as exc:
        assert "MANIFEST.tsv:5" in str(exc)
    else:
        raise AssertionError("a malformed manifest line was accepted")


def test_an_error_names_a_construct_only_when_it_names_one_of_the_files() -> None:
    source = (
        "from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator\n"
        "from airflow.decorators import task\n"
        "import airflow\n"
        "airflow.utils.dates.days_ago(2)\n"
        "KubernetesPodOperator(task_id='x', is_delete_operator_pod=True)\n"
        "task.docker(image='python')\n"
    )
    names = constructs(source)
    assert "airflow" not in names
    generic = "ModuleNotFoundError: No module named 'airflow'"
    assert named_construct(generic, names) is None
    specific = "ImportError: KubernetesPodOperator is not available in Slipstream"
    assert named_construct(specific, names) == "KubernetesPodOperator"
    module = "No module named 'airflow.providers.cncf'"
    assert named_construct(module, names) == "airflow.providers.cncf"
    assert named_construct("task.docker is not supported", names) == "task.docker"
    hook = "NotAvailableInSlipstream: utils (from airflow) is not available; airflow offers DAG"
    assert named_construct(hook, names) == "airflow.utils"
    first = "ImportError: KubernetesPodOperator (from airflow.providers.cncf.kubernetes)"
    assert named_construct(first, names) == "KubernetesPodOperator"
    keyword = "TypeError: unexpected argument 'is_delete_operator_pod'"
    assert named_construct(keyword, names) == "is_delete_operator_pod"


def test_the_failing_try_and_headline_are_read_from_real_output_shapes() -> None:
    stdout = (
        "--- ok (try 1) ---\n"
        "[t] {task_runner.py:82} INFO - Marking try as SUCCESS (success).\n"
        "--- bad (try 1) ---\n"
        "printed output\n"
        "[t] {task_runner.py:80} ERROR - Task failed with exception\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "    raise KeyError('k')\n"
        "KeyError: 'k'\n"
        "[t] {task_runner.py:82} INFO - Marking try as UP_FOR_RETRY (task_error).\n"
        "--- bash (try 1) ---\n"
        "[t] {bash.py:9} ERROR - Bash command failed with exit code 3\n"
        "[t] {task_runner.py:82} INFO - Marking try as FAILED (task_error).\n"
    )
    assert failing_try(stdout) == ("bad", "KeyError: 'k'")
    before_bash, after_bash = stdout.split("--- bash", maxsplit=1)
    assert failing_try(before_bash.replace("UP_FOR_RETRY", "SUCCESS")) == (None, None)
    bash_only = "--- bash" + after_bash
    assert failing_try(bash_only) == ("bash", "Bash command failed with exit code 3")
    assert headline("ImportError: Foo is not available\nmore detail") == (
        "ImportError: Foo is not available"
    )


def test_causes_are_ranked_by_how_many_files_share_them() -> None:
    def unloaded(path: str, error: str) -> FileResult:
        return FileResult(path, "o", "2", "-", loaded=False, import_error=error)

    results = [
        unloaded("a.py", "E: one"),
        unloaded("b.py", "E: two"),
        unloaded("c.py", "E: two"),
        FileResult("d.py", "o", "2", "-", loaded=False),
    ]
    assert top_causes(results) == [
        ("E: two", ["b.py", "c.py"]),
        ("E: one", ["a.py"]),
        ("no DAG defined", ["d.py"]),
    ]
    assert figures(results).runnable_unloaded == 4
