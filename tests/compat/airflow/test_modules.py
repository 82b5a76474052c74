"""Every name the table serves resolves to a real Slipstream object (no fakes, no strings)."""

from __future__ import annotations

import importlib

import pytest

from slipstream.compat.airflow import install_airflow_hook
from slipstream.compat.airflow.modules import MODULES, advice_for


def _cases() -> list[object]:
    return [
        pytest.param(module, name, target, id=f"{module}:{name}")
        for module, names in sorted(MODULES.items())
        for name, target in sorted(names.items())
    ]


@pytest.mark.parametrize(("module", "name", "target"), _cases())
def test_every_served_name_imports_as_its_target(module: str, name: str, target: str) -> None:
    install_airflow_hook()
    owner, _, attribute = target.partition(":")
    expected = getattr(importlib.import_module(owner), attribute)
    assert getattr(importlib.import_module(module), name) is expected


def test_every_parent_of_a_served_module_imports() -> None:
    install_airflow_hook()
    for module in MODULES:
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):
            assert importlib.import_module(".".join(parts[:depth])).__path__ == []


def test_catchup_defaults_follow_the_airflow_version_of_the_import() -> None:
    install_airflow_hook()
    from airflow import DAG as Airflow2DAG
    from airflow.decorators import dag as airflow2_dag
    from airflow.models.dag import DAG as ModelsDAG
    from airflow.sdk import DAG as Airflow3DAG
    from airflow.sdk import dag as airflow3_dag

    from slipstream import DAG as SlipstreamDAG

    assert Airflow2DAG("two").catchup is True
    assert ModelsDAG("models").catchup is True
    assert Airflow2DAG("two_off", catchup=False).catchup is False
    assert Airflow3DAG("three").catchup is False
    assert SlipstreamDAG("own").catchup is False

    @airflow2_dag
    def decorated_two() -> None:
        pass

    @airflow3_dag(schedule="@daily")
    def decorated_three() -> None:
        pass

    assert decorated_two().catchup is True
    assert decorated_three().catchup is False


def test_airflow2_dags_without_a_schedule_run_daily_as_in_airflow2() -> None:
    install_airflow_hook()
    from datetime import timedelta

    from airflow import DAG as Airflow2DAG
    from airflow.sdk import DAG as Airflow3DAG

    assert Airflow2DAG("implicit").schedule == timedelta(days=1)
    assert Airflow2DAG("explicit_none", schedule_interval=None).schedule is None
    assert Airflow2DAG("explicit", schedule="@hourly").schedule == "@hourly"
    assert Airflow3DAG("three").schedule is None


def test_advice_names_the_provider_package() -> None:
    advice = advice_for("airflow.providers.amazon.aws.operators.s3", "S3CreateBucketOperator")
    assert "apache-airflow-providers-amazon-aws" in advice
    assert "offers only" in advice_for("airflow.operators.bash", "Nope")
