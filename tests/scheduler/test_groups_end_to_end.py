"""A DAG of task groups and a DAG of setup/teardown tasks through a real scheduler process
with the local executor's worker processes, to their final states."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scheduler.test_loop import Deployment
from tests.scheduler.test_setup_teardown_runs import GROUPED, TEARDOWN

pytestmark = pytest.mark.slow


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


def test_groups_and_teardowns_finish_with_airflow_s_states(
    deployment: Deployment, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    (marks / "fail").write_text("x")
    deployment.write_dag("grouped", GROUPED)
    deployment.write_dag("cluster", TEARDOWN.format(marks=str(marks)))
    deployment.start()
    grouped = deployment.finished(deployment.trigger("grouped"), timeout=60)
    cluster = deployment.finished(deployment.trigger("cluster"), timeout=60)

    def states(dag_id: str, run_id: str) -> dict[str, str]:
        found = deployment.runs.task_instances(dag_id, run_id)
        return {t.task_id: t.state.value for t in found}

    assert grouped.state.value == "success"
    assert states("grouped", grouped.run_id) == dict.fromkeys(
        ["start", "extract.pull", "number", "unused", "scale.times", "scale.times__1", "total"],
        "success",
    )
    assert cluster.state.value == "failed"
    assert states("cluster", cluster.run_id) == {
        "create": "success",
        "work": "failed",
        "report": "upstream_failed",
        "delete": "success",
    }
    assert (marks / "created").exists() and (marks / "deleted").read_text() == "x"
