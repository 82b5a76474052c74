"""Airflow 3's `@asset(schedule=...)`: a function that materializes an asset becomes a DAG
(named as the function) of one task (named the same) whose outlet is the asset; the
decorated name stands for the asset itself, so other DAGs can be scheduled on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from slipstream.authoring.assets import Asset
from slipstream.authoring.context import Context
from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import PythonOperator


class AssetDefinition(Asset):
    """The asset an @asset function materializes, with the DAG that does it."""

    dag: DAG


class AssetMainOperator(PythonOperator):
    """The one task of an @asset DAG: calls the function with `self` (the asset), `context`
    and any context keys it names."""

    def execute(self, context: Context) -> Any:
        context["self"] = self.outlets[0]
        context["context"] = context
        return super().execute(context)


def asset(
    *,
    schedule: Any,
    name: str | None = None,
    uri: str | None = None,
    group: str | None = None,
    extra: Mapping[str, Any] | None = None,
    **dag_kwargs: Any,
) -> Callable[[Callable[..., Any]], AssetDefinition]:
    """@asset(schedule=..., uri=..., group=..., extra=...), and DAG arguments (tags...)."""

    def decorate(function: Callable[..., Any]) -> AssetDefinition:
        definition = AssetDefinition(
            name=name or function.__name__, uri=uri, group=group, extra=extra
        )
        code = getattr(function, "__code__", None)
        if code is not None:
            dag_kwargs.setdefault("fileloc", code.co_filename)
        with DAG(definition.name, schedule=schedule, **dag_kwargs) as dag:
            AssetMainOperator(
                task_id=definition.name, python_callable=function, outlets=[definition]
            )
        definition.dag = dag
        return definition

    return decorate
