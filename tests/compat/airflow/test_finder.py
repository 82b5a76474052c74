"""The `airflow` import hook: names resolve to Slipstream's objects, unknown names fail where
the DAG file asks for them, and a real Airflow beside Slipstream changes nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from slipstream.authoring.operators import BashOperator
from slipstream.compat.airflow import AirflowFinder, install_airflow_hook
from slipstream.compat.airflow.finder import is_airflow_module
from slipstream.errors import NotAvailableInSlipstream


@pytest.fixture(autouse=True)
def hook() -> None:
    for name in [n for n in sys.modules if is_airflow_module(n)]:
        del sys.modules[name]  # each test imports the airflow modules afresh
    install_airflow_hook()


def test_names_resolve_to_slipstream_objects_lazily() -> None:
    import airflow.operators.bash as bash

    assert "BashOperator" not in vars(bash)  # nothing resolved until asked for
    from airflow.operators.bash import BashOperator as Resolved

    assert Resolved is BashOperator
    assert vars(bash)["BashOperator"] is BashOperator  # cached on the module
    assert "BashOperator" in dir(bash) and bash.__all__ == ["BashOperator"]


def test_installing_twice_keeps_one_finder_first() -> None:
    sys.meta_path.insert(0, sys.meta_path.pop())  # something else got in front
    finder = install_airflow_hook()
    assert install_airflow_hook() is finder
    assert sys.meta_path[0] is finder
    assert sum(isinstance(f, AirflowFinder) for f in sys.meta_path) == 1


def test_only_airflow_names_are_claimed() -> None:
    finder = install_airflow_hook()
    assert finder.find_spec("airflowish", None) is None
    assert finder.find_spec("json", None) is None
    assert finder.find_spec("airflow.anything.at.all", None) is not None


@pytest.mark.parametrize(
    ("statement", "needles"),
    [
        (
            "from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator",
            ["KubernetesPodOperator", "apache-airflow-providers-cncf-kubernetes"],
        ),
        (
            "from airflow.providers.snowflake.operators.snowflake import SnowflakeOperator",
            ["SnowflakeOperator", "apache-airflow-providers-snowflake"],
        ),
        (
            "from airflow.providers.docker.operators.docker import DockerOperator",
            ["DockerOperator", "apache-airflow-providers-docker"],
        ),
        ("from airflow.operators.subdag_operator import SubDagOperator", ["TaskGroup"]),
        ("from airflow.operators.subdag import SubDagOperator", ["SubDAGs"]),
        ("from airflow.contrib.operators.ssh_operator import SSHOperator", ["airflow.contrib"]),
        ("from airflow.operators.python import PythonVirtualenvOperator", ["another Python"]),
        ("from airflow.operators.bash import NotAThing", ["offers only BashOperator"]),
        ("from airflow.configuration import conf", ["docs/airflow-compatibility.md"]),
        # Served provider modules name what they offer rather than blame the provider.
        (
            "from airflow.providers.common.compat.sdk import ObjectStoragePath",
            ["offers only", "TriggerRule"],
        ),
        (
            "from airflow.sdk.api.datamodels._generated import DagRunState",
            ["offers only TriggerRule"],
        ),
    ],
)
def test_names_slipstream_lacks_fail_with_advice(statement: str, needles: list[str]) -> None:
    with pytest.raises(NotAvailableInSlipstream) as raised:
        exec(statement, {})
    message = str(raised.value)
    assert "is not available in Slipstream" in message
    for needle in needles:
        assert needle in message
    assert isinstance(raised.value, ImportError)  # `except ImportError` fallbacks still work


def test_a_missing_name_fails_on_attribute_access_too() -> None:
    import airflow.providers.docker.operators.docker as docker

    with pytest.raises(NotAvailableInSlipstream, match="DockerOperator"):
        docker.DockerOperator  # noqa: B018
    with pytest.raises(AttributeError):
        docker.__wrapped__  # noqa: B018  # dunder probes stay AttributeErrors


def _run(code: str, *, pythonpath: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def fake_airflow(tmp_path: Path) -> Path:
    """A stand-in for a real Airflow installed beside Slipstream."""
    root = tmp_path / "site"
    (root / "airflow" / "operators").mkdir(parents=True)
    (root / "airflow" / "__init__.py").write_text("class DAG:\n    REAL = True\n")
    (root / "airflow" / "operators" / "__init__.py").write_text("")
    (root / "airflow" / "operators" / "bash.py").write_text(
        "class BashOperator:\n    REAL = True\n"
    )
    return root


def test_a_real_airflow_beside_slipstream_changes_nothing(
    fake_airflow: Path, tmp_path: Path
) -> None:
    dag_file = tmp_path / "uses_airflow.py"
    dag_file.write_text(
        textwrap.dedent(
            """
            from datetime import datetime
            from airflow import DAG
            from airflow.operators.bash import BashOperator

            with DAG("beside", start_date=datetime(2024, 1, 1), schedule=None) as dag:
                BashOperator(task_id="hi", bash_command="echo hi")
            """
        )
    )
    pythonpath = Path(__file__).resolve().parents[3] / "src"
    probe = _run(
        f"""
        import sys
        import slipstream, slipstream.parsing.child, slipstream.runner.dag_cache
        assert "airflow" not in sys.modules, "importing slipstream imported airflow"
        assert not any("Airflow" in type(f).__name__ for f in sys.meta_path), sys.meta_path
        import airflow
        assert airflow.DAG.REAL  # the fake really is importable here
        from slipstream.runner.dag_cache import DagFileCache
        dag = DagFileCache().get_dag({str(dag_file)!r}, "beside")
        from slipstream.authoring.dag import DAG
        from slipstream.authoring.operators import BashOperator
        assert isinstance(dag, DAG), type(dag)
        assert type(dag.get_task("hi")) is BashOperator, type(dag.get_task("hi"))
        import airflow
        assert not hasattr(airflow.DAG, "REAL")
        print("slipstream classes")
        """,
        pythonpath=Path(f"{fake_airflow}:{pythonpath}"),
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "slipstream classes"


def test_the_parse_child_serves_airflow_names_over_a_real_airflow(
    fake_airflow: Path, tmp_path: Path
) -> None:
    dag_file = tmp_path / "child.py"
    dag_file.write_text(
        "from airflow.operators.bash import BashOperator\n"
        "from airflow.sdk import DAG\n"
        "with DAG('in_child', schedule=None) as dag:\n"
        "    BashOperator(task_id='t', bash_command='true')\n"
    )
    pythonpath = Path(__file__).resolve().parents[3] / "src"
    probe = _run(
        f"""
        import time
        from slipstream.parsing.child import ParseChild, ParseLimits
        child = ParseChild({str(dag_file)!r}, limits=ParseLimits(timeout=30), now=time.monotonic())
        deadline = time.monotonic() + 30
        result = None
        while result is None and time.monotonic() < deadline:
            result = child.poll(time.monotonic())
        assert result is not None and result.error is None, result
        [parsed] = result.dags
        print(parsed.structure["tasks"][0]["operator"] if "tasks" in parsed.structure else "")
        """,
        pythonpath=Path(f"{fake_airflow}:{pythonpath}"),
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    assert "BashOperator" in probe.stdout


def test_a_served_subpackage_is_reached_by_attribute_from_its_parent() -> None:
    # 1.10 style: `import airflow` then the full dotted path, with no import of the submodule.
    namespace: dict[str, object] = {}
    exec("import airflow\nvalue = airflow.utils.dates.days_ago(0)", namespace)
    from slipstream.authoring.dates import days_ago

    assert namespace["value"] == days_ago(0)
    assert sys.modules["airflow.utils.dates"].days_ago is days_ago


def test_an_unserved_subpackage_by_attribute_is_still_not_available() -> None:
    import airflow

    with pytest.raises(NotAvailableInSlipstream, match="contrib"):
        airflow.contrib  # noqa: B018


def test_trigger_rule_and_the_sdk_names_from_the_compat_and_generated_modules() -> None:
    from slipstream.authoring.dag import DAG
    from slipstream.authoring.taskflow import task
    from slipstream.authoring.trigger_rules import TriggerRule

    namespace: dict[str, object] = {}
    exec(
        "from airflow.providers.common.compat.sdk import DAG, TriggerRule, task\n"
        "from airflow.sdk.api.datamodels._generated import TriggerRule as Generated\n"
        "from airflow.sdk.exceptions import AirflowSkipException",
        namespace,
    )
    assert namespace["TriggerRule"] is TriggerRule and namespace["Generated"] is TriggerRule
    assert namespace["DAG"] is DAG and namespace["task"] is task
    from slipstream.authoring.exceptions import AirflowSkipException

    assert namespace["AirflowSkipException"] is AirflowSkipException
