"""Assets as DAG files build them: name/URI rules, conditions, schedules and outlets, and what
a DAG version records of them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from slipstream.authoring.asset_timetables import DatasetOrTimeSchedule
from slipstream.authoring.assets import (
    Asset,
    AssetAlias,
    AssetAll,
    Dataset,
    asset_uris,
    condition_spec,
    is_satisfied,
)
from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import EmptyOperator
from slipstream.authoring.schedules import DeltaTimetable, timetable_from_spec
from slipstream.authoring.serialize import serialize_dag
from slipstream.errors import DagDefinitionError, InvalidScheduleError, NotAvailableYet


def test_name_and_uri_each_default_to_the_other() -> None:
    assert (Asset("orders").name, Asset("orders").uri) == ("orders", "orders")
    only_uri = Asset(uri="S3://bucket/key")
    # The scheme is normalised to lower case, as Airflow does; the name keeps what was given.
    assert (only_uri.name, only_uri.uri, only_uri.group) == (
        "S3://bucket/key",
        "s3://bucket/key",
        "asset",
    )
    assert Dataset("s3://b/k", extra={"a": 1}).extra == {"a": 1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"uri": "airflow://dag/x"}, "scheme 'airflow' is reserved"),
        ({"uri": "postgres://user:secret@host/db"}, "auth info"),
        ({"uri": ""}, "cannot be empty"),
        ({"uri": "s3://bücket"}, "ASCII"),
        ({"uri": "x" * 1501}, "1500"),
        ({}, "needs a name or a uri"),
        ({"uri": "s3://b", "extra": {"x": object()}}, "JSON-serializable"),
    ],
)
def test_invalid_assets_are_refused_naming_the_problem(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(DagDefinitionError, match=message) as caught:
        Asset(**kwargs)  # type: ignore[arg-type]
    assert "secret" not in str(caught.value)


def test_conditions_nest_and_are_judged_from_updated_uris() -> None:
    a, b, c = Asset("a"), Asset("b"), Asset("c")
    spec = condition_spec(a & (b | c))
    assert asset_uris(spec) == {"a", "b", "c"}
    assert not is_satisfied(spec, {"a"})
    assert is_satisfied(spec, {"a", "c"})
    assert not is_satisfied(spec, {"b", "c"})
    assert isinstance(a & b, AssetAll)


def test_aliases_are_refused_clearly() -> None:
    with pytest.raises(NotAvailableYet, match="asset aliases are not supported"):
        AssetAlias("x")


def test_schedules_on_assets_are_stored_as_specs() -> None:
    with DAG("c", schedule=[Dataset("s3://a"), Dataset("s3://b")]) as listed:
        EmptyOperator(task_id="t")
    spec = serialize_dag(listed)["schedule"]
    assert spec["type"] == "assets"
    assert asset_uris(spec["condition"]) == {"s3://a", "s3://b"}
    assert not is_satisfied(spec["condition"], {"s3://a"})
    assert timetable_from_spec(spec) == listed.timetable

    either = DatasetOrTimeSchedule(
        timetable=DeltaTimetable(timedelta(hours=1)), datasets=[Asset("x")]
    )
    with DAG("d", schedule=either) as timed:
        EmptyOperator(task_id="t")
    stored = serialize_dag(timed)
    assert stored["schedule_summary"] == "Dataset or 1:00:00"
    assert timetable_from_spec(stored["schedule"]).next_interval(None, None) is None


def test_bad_asset_schedules_are_refused() -> None:
    with pytest.raises(InvalidScheduleError, match="names no asset"):
        DAG("e", schedule=[])
    with pytest.raises(InvalidScheduleError, match="assets/datasets only"):
        DAG("f", schedule=[Asset("a"), "@daily"])


def test_outlets_are_serialized_only_where_given() -> None:
    with DAG("p", schedule=None) as dag:
        EmptyOperator(task_id="plain")
        EmptyOperator(task_id="makes", outlets=[Asset("a"), Asset("a")], inlets=[Asset("b")])
    tasks = {t["task_id"]: t for t in serialize_dag(dag)["tasks"]}
    assert "outlets" not in tasks["plain"]
    assert tasks["makes"]["outlets"] == [{"uri": "a", "name": "a", "group": "asset", "extra": {}}]
    with pytest.raises(DagDefinitionError, match="outlets of task 'bad' must be assets"):
        EmptyOperator(task_id="bad", outlets=["s3://a"])


def test_asset_schedules_read_as_airflow_describes_them() -> None:
    from slipstream.authoring.timetable_description import timetable_description

    with DAG("g", schedule=Asset("a")) as dag:
        EmptyOperator(task_id="t")
    assert timetable_description(serialize_dag(dag)["schedule"]) == "Triggered by datasets"
    either = DatasetOrTimeSchedule(
        timetable=DeltaTimetable(timedelta(hours=1)), datasets=Asset("x")
    )
    assert timetable_description(either.to_spec()) == "Triggered by datasets or 1:00:00"


def test_metadata_takes_airflow_2_and_3_forms_and_refuses_aliases() -> None:
    from slipstream.authoring.asset_events import Metadata

    by_asset = Metadata(Asset("s3://b/k"), {"rows": 1})
    assert (by_asset.uri, by_asset.asset, by_asset.extra) == (
        "s3://b/k",
        Asset("s3://b/k"),
        {"rows": 1},
    )
    by_uri = Metadata("s3://b/k", extra={"rows": 2})  # Airflow 2.10's target may be a URI
    assert by_uri.asset == Asset("s3://b/k") and by_uri.extra == {"rows": 2}
    assert Metadata(Asset("x")).extra == {}  # Airflow 3: extra defaults to {}
    with pytest.raises(NotAvailableYet, match=r"Metadata\(alias='al'\) is not available"):
        Metadata(Asset("x"), {}, alias="al")
    with pytest.raises(TypeError, match="extra must be a dict, not list"):
        Metadata(Asset("x"), [1])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"takes an asset .* not int"):
        Metadata(3, {})  # type: ignore[arg-type]


def test_a_generator_task_adds_each_yielded_metadata_to_its_outlet() -> None:
    import logging
    from collections.abc import Generator

    from slipstream.authoring.asset_events import Metadata, OutletEventAccessors, drain_yielded

    a, b = Asset("s3://a"), Asset(name="bee", uri="s3://b")
    events = OutletEventAccessors([a, b])
    events[a].extra["kept"] = True

    def task_function() -> Generator[Metadata, None, str]:
        yield Metadata(a, {"rows": 1})
        yield Metadata("bee", {"by_name": True})  # an outlet's name finds it too
        yield Metadata(a, {"rows": 2})  # a later yield updates the same extra
        return "result"

    logger = logging.getLogger("test")
    assert drain_yielded(task_function(), events, logger) == "result"
    assert dict(events.extras()) == {
        "s3://a": '{"kept": true, "rows": 2}',
        "s3://b": '{"by_name": true}',
    }

    def stray() -> Generator[Metadata, None, None]:
        yield Metadata(Asset("s3://c"), {})

    with pytest.raises(KeyError, match="is not an outlet of this task"):
        drain_yielded(stray(), events, logger)


def test_asset_watchers_are_refused_naming_them() -> None:
    with pytest.raises(NotAvailableYet, match=r"Asset\(watchers=.*triggerer process"):
        Asset("queue", watchers=[object()])
