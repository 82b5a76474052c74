from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from slipstream.core.records import RunType, Workload
from slipstream.runner.runtime import (
    RuntimeDagRun,
    RuntimeTaskInstance,
    XComNotSerializable,
    XComReader,
)


def _workload(**changes: object) -> Workload:
    fields: dict[str, object] = {
        "run_pk": 7,
        "dag_id": "d",
        "run_id": "manual__1",
        "task_id": "t",
        "try_number": 1,
        "max_tries": 0,
        "fileloc": "/nowhere.py",
        "version_hash": "h",
        "run_type": RunType.MANUAL,
        "logical_date": datetime(2024, 1, 1, tzinfo=UTC),
        "data_interval_start": None,
        "data_interval_end": None,
        "conf": {"a": 1},
        "log_path": "/dev/null",
    }
    fields.update(changes)
    return Workload(**fields)  # type: ignore[arg-type]


class _Reader:
    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        self.values = values
        self.calls: list[tuple[int, tuple[str, ...], str | None]] = []

    def pull(self, run_pk: int, task_ids: Sequence[str], key: str | None) -> dict[str, str]:
        self.calls.append((run_pk, tuple(task_ids), key))
        return {t: self.values[t, key] for t in task_ids if (t, key) in self.values}


def test_push_then_pull_own_value_and_record_pushes() -> None:
    ti = RuntimeTaskInstance(_workload())
    ti.xcom_push("k", {"x": [1, 2]})
    ti.xcom_push("other", 3)
    ti.xcom_push("k", "replaced")
    assert ti.xcom_pull(key="k") == "replaced"
    assert ti.xcom_pull(task_ids="t", key="other") == 3
    assert ti.pushed == (("k", '"replaced"'), ("other", "3"))


def test_unserializable_value_names_the_key() -> None:
    ti = RuntimeTaskInstance(_workload())
    with pytest.raises(XComNotSerializable, match=r"'when'.*not JSON-serializable"):
        ti.xcom_push("when", datetime.now(UTC))
    with pytest.raises(XComNotSerializable, match="'nan'"):
        ti.xcom_push("nan", float("nan"))
    assert ti.pushed == ()


def test_pull_prefers_prefetched_then_asks_the_reader_once() -> None:
    reader = _Reader({("far", "return_value"): "[1]", ("near", "return_value"): '"db"'})
    factory_calls: list[int] = []

    def factory() -> XComReader:
        factory_calls.append(1)
        return reader

    ti = RuntimeTaskInstance(
        _workload(upstream_xcoms={"near": {"return_value": '"prefetched"'}}), factory
    )
    assert ti.xcom_pull(task_ids="near") == "prefetched"
    assert factory_calls == []  # no round trip when the workload carried the value
    assert ti.xcom_pull(task_ids=["near", "far", "gone"]) == ["prefetched", [1], None]
    assert ti.xcom_pull(task_ids=["far", "gone"]) == [[1], None]
    assert reader.calls == [(7, ("far", "gone"), "return_value")]
    assert factory_calls == [1]


def test_key_none_pulls_each_task_s_newest_xcom_whatever_its_key() -> None:
    # Airflow 1.10/2: "to remove the key filter, pass None". The reader's None is any key.
    reader = _Reader({("far", None): '"by hand"'})
    ti = RuntimeTaskInstance(
        _workload(upstream_xcoms={"near": {"k": '"prefetched"'}}), lambda: reader
    )
    ti.xcom_push("mine", 1)
    ti.xcom_push("also_mine", 2)
    assert ti.xcom_pull(key=None, task_ids="far") == "by hand"
    assert ti.xcom_pull(key=None, task_ids=["t", "far", "near"]) == [2, "by hand", "prefetched"]
    assert reader.calls[0] == (7, ("far",), None)
    with pytest.raises(NotImplementedError, match="task_ids of this run only"):
        ti.xcom_pull(key=None)
    with pytest.raises(NotImplementedError, match="task_ids of this run only"):
        ti.xcom_pull(key=None, task_ids="far", include_prior_dates=True)


def test_without_a_reader_missing_values_are_none() -> None:
    ti = RuntimeTaskInstance(_workload())
    assert ti.xcom_pull(task_ids="up") is None
    assert ti.xcom_pull(task_ids=["up", "down"], key="k") == [None, None]


def test_pulling_from_another_dag_without_a_reader_finds_nothing() -> None:
    # With a database, another DAG's XComs are read (tests/services/test_xcoms.py).
    ti = RuntimeTaskInstance(_workload())
    assert ti.xcom_pull(task_ids="t", dag_id="d") is None
    assert ti.xcom_pull(task_ids="t", dag_id="other") is None
    assert ti.xcom_pull(task_ids="t", dag_id="other", default=0) == 0


def test_pulls_by_map_index_read_one_instance_each() -> None:
    # Mapped XComs are read per index through the reader (tests/scheduler/test_mapping.py runs
    # them against a database); without one, an index that pushed nothing reads as None.
    ti = RuntimeTaskInstance(_workload())
    assert ti.xcom_pull(task_ids="t", map_indexes=-1) is None
    assert ti.xcom_pull(task_ids="t", map_indexes=[0, 1]) == [None, None]
    assert ti.xcom_pull(task_ids="t", map_indexes=0) is None


class _IndexedReader:
    """Values by (task_id, map index): a mapped task's list when no index is asked for."""

    def __init__(self, values: dict[tuple[str, int], str]) -> None:
        self.values = values
        self.calls: list[tuple[tuple[str, ...], int | None]] = []

    def pull(
        self, run_pk: int, task_ids: Sequence[str], key: str | None, map_index: int | None = None
    ) -> dict[str, str]:
        self.calls.append((tuple(task_ids), map_index))
        found = {}
        for task_id in task_ids:
            texts = [v for (t, i), v in sorted(self.values.items()) if t == task_id]
            if map_index is not None:
                texts = (
                    [self.values[task_id, map_index]] if (task_id, map_index) in self.values else []
                )
                found.update({task_id: texts[0]} if texts else {})
            elif texts:
                found[task_id] = "[" + ",".join(texts) + "]"
        return found


def test_a_task_of_a_mapped_group_pulls_its_group_s_tasks_at_its_own_map_index() -> None:
    # The workload carries what g.a pushed at index 1; g.skipped pushed nothing there, so the
    # reader is asked for index 1 alone, never for the list across indexes.
    reader = _IndexedReader(
        {("g.a", 0): "10", ("g.a", 1): "11", ("g.skipped", 0): "5", ("out", 0): "7"}
    )
    ti = RuntimeTaskInstance(
        _workload(
            task_id="g.b",
            map_index=1,
            upstream_xcoms={"g.a": {"return_value": "11"}},
            same_index_upstream=("g.a", "g.skipped"),
        ),
        lambda: reader,
    )
    assert ti.xcom_pull(task_ids="g.a") == 11
    assert ti.xcom_pull(task_ids=["g.a", "g.skipped", "out"]) == [11, None, [7]]
    assert reader.calls == [(("out",), None), (("g.skipped",), 1)]
    assert ti.xcom_pull(task_ids="g.a", map_indexes=[0, 1]) == [10, 11]
    assert ti.xcom_pull(task_ids="g.a", key=None) == 11


def test_dag_run_from_workload() -> None:
    run = RuntimeDagRun.from_workload(_workload())
    assert run.run_id == "manual__1"
    assert run.conf == {"a": 1}
    assert run.external_trigger
    assert not RuntimeDagRun.from_workload(_workload(run_type=RunType.SCHEDULED)).external_trigger
    assert json.dumps(dict(run.conf))


def test_render_templates_renders_the_tasks_fields_again() -> None:
    from slipstream.authoring.context import Context, set_current_context
    from slipstream.authoring.dag import DAG
    from slipstream.authoring.operators import BashOperator

    with DAG("d") as dag:
        task = BashOperator(task_id="t", bash_command="echo {{ params.word }}")
    ti = RuntimeTaskInstance(_workload())
    with pytest.raises(RuntimeError, match="task"):
        ti.render_templates()
    ti.task = task
    context = Context(params={"word": "hi"}, ti=ti, dag=dag)
    with set_current_context(context):
        assert ti.get_template_context() is context
        assert ti.render_templates() is task
    assert task.bash_command == "echo hi"
    assert BashOperator.template_fields_renderers["bash_command"] == "bash"
