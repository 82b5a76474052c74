"""docs/airflow-compatibility.md stays true: every module and name it lists imports through the
hook, it lists everything the hook serves, and each import error it quotes is what users see."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import click
import pytest

from slipstream.compat.airflow import install_airflow_hook
from slipstream.compat.airflow.modules import MODULES
from slipstream.errors import DagDefinitionError, NotAvailableInSlipstream, NotAvailableYet

PAGE = Path(__file__).resolve().parents[3] / "docs" / "airflow-compatibility.md"
_ROW = re.compile(r"^\| `(airflow[\w.]*)` \| (.+) \|$")


def _listed() -> dict[str, list[str]]:
    listed: dict[str, list[str]] = {}
    for line in PAGE.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            listed[match[1]] = re.findall(r"`(\w+)`", match[2])
    return listed


def _cases() -> list[object]:
    return [
        pytest.param(module, name, id=f"{module}:{name}")
        for module, names in _listed().items()
        for name in names
    ]


def test_the_page_lists_exactly_what_the_hook_serves() -> None:
    listed = _listed()
    assert len(listed) > 50
    assert {m: sorted(n) for m, n in listed.items()} == {m: sorted(n) for m, n in MODULES.items()}


@pytest.mark.parametrize(("module", "name"), _cases())
def test_every_listed_name_imports_through_the_hook(module: str, name: str) -> None:
    install_airflow_hook()
    value = getattr(importlib.import_module(module), name)
    assert getattr(value, "__module__", "slipstream").startswith(("slipstream", "pendulum"))


def _quoted_errors() -> list[tuple[str, str]]:
    """(name, module or "", quoted prefix) from the import-error table's first column."""
    section = PAGE.read_text().split("## Import errors", 1)[1]
    quoted = re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)
    return [(q.split(" ", 1)[0], q.removesuffix("...").strip()) for q in quoted]


@pytest.mark.parametrize(("name", "prefix"), _quoted_errors())
def test_each_quoted_import_error_is_what_users_see(name: str, prefix: str) -> None:
    install_airflow_hook()
    if name.startswith("<"):  # the generic rows: checked through a real example of each
        statement = (
            "from airflow.operators.bash import Nope"
            if "offers only" in prefix
            else "from airflow.configuration import conf"
        )
        with pytest.raises(NotAvailableInSlipstream) as generic:
            exec(statement, {})
        tail = prefix.split(": ", 1)[1].split("<", 1)[0]
        assert tail in str(generic.value)
        return
    if name.startswith("@task."):
        from airflow.decorators import task

        # The generic row (any other name) is checked through a made-up one.
        attribute = name.removeprefix("@task.").replace("<name>", "made_up")
        with pytest.raises((NotAvailableYet, DagDefinitionError, AttributeError)) as decorator:
            getattr(task, attribute)
        assert str(decorator.value).startswith(prefix.replace("<name>", "made_up"))
        return
    module = re.search(r"\(from ([\w.]+)\)", prefix)
    if module is not None:
        with pytest.raises(NotAvailableInSlipstream) as missing:
            exec(f"from {module[1]} import {name}", {})
        assert str(missing.value).startswith(prefix)
        return
    raise AssertionError(f"the import-error table quotes {name!r}, which no check covers")


# -- the constructs of issue 12: each is listed (so the test above imports it), and each
# argument it takes, and each method DAG files call on it, is named on the page ---------------

ISSUE_12 = [
    ("airflow.sensors.base", "BaseSensorOperator"),
    ("airflow.sensors.base", "PokeReturnValue"),
    ("airflow.sensors.python", "PythonSensor"),
    ("airflow.sensors.bash", "BashSensor"),
    ("airflow.sensors.filesystem", "FileSensor"),
    ("airflow.sensors.external_task", "ExternalTaskSensor"),
    ("airflow.sensors.external_task", "ExternalTaskMarker"),
    ("airflow.sensors.time_sensor", "TimeSensor"),
    ("airflow.sensors.time_sensor", "TimeSensorAsync"),
    ("airflow.sensors.time_delta", "TimeDeltaSensor"),
    ("airflow.sensors.time_delta", "TimeDeltaSensorAsync"),
    ("airflow.sensors.date_time", "DateTimeSensor"),
    ("airflow.sensors.date_time", "DateTimeSensorAsync"),
    ("airflow.sensors.weekday", "DayOfWeekSensor"),
    ("airflow.triggers.temporal", "DateTimeTrigger"),
    ("airflow.triggers.temporal", "TimeDeltaTrigger"),
    ("airflow.triggers.base", "BaseTrigger"),
    ("airflow.exceptions", "TaskDeferred"),
    ("airflow.exceptions", "AirflowRescheduleException"),
    ("airflow.operators.trigger_dagrun", "TriggerDagRunOperator"),
    ("airflow.datasets", "Dataset"),
    ("airflow.datasets", "DatasetAll"),
    ("airflow.datasets", "DatasetAny"),
    ("airflow.datasets", "DatasetAlias"),
    ("airflow.datasets.metadata", "Metadata"),
    ("airflow.timetables.datasets", "DatasetOrTimeSchedule"),
    ("airflow.sdk", "Asset"),
    ("airflow.sdk", "AssetAll"),
    ("airflow.sdk", "AssetAny"),
    ("airflow.sdk", "AssetAlias"),
    ("airflow.sdk", "asset"),
    ("airflow.sdk", "Metadata"),
    ("airflow.timetables.assets", "AssetOrTimeSchedule"),
    ("airflow.models", "Variable"),
    ("airflow.models", "Connection"),
    ("airflow.hooks.base", "BaseHook"),
    ("airflow.sdk", "Variable"),
    ("airflow.sdk", "Connection"),
    ("airflow.sdk", "BaseHook"),
]
# Methods DAG files call on them (the arguments of each are checked as a constructor's are).
METHODS = {
    "Variable": ("get", "set", "update", "delete", "setdefault"),
    "Connection": ("get", "get_connection_from_secrets", "from_json", "get_uri"),
    "BaseHook": ("get_connection",),
    "BaseSensorOperator": ("poke", "defer"),
}
# Written as phrases, not names: TaskFlow's sensor and the CLI groups of issue 12.
PHRASES = ("@task.sensor(", "self.defer(", "yield Metadata(", "outlet_events[asset].extra")


def _code_words() -> set[str]:
    """Every identifier inside a code span of the page (``double`` spans first, so a
    backquote they hold does not pair with another span's)."""
    text = PAGE.read_text()
    spans = re.findall(r"``(.+?)``", text, flags=re.DOTALL)
    text = re.sub(r"``(.+?)``", " ", text, flags=re.DOTALL)
    spans += re.findall(r"`([^`]+)`", text)
    return {word for span in spans for word in re.findall(r"[A-Za-z_]\w*", span)}


def _arguments(target: object) -> list[str]:
    """The named parameters of a function, or of a class's __init__, beyond BaseOperator's
    (which the task-argument table describes)."""
    from slipstream.authoring.task import BaseOperator

    function = target if inspect.isfunction(target) or inspect.ismethod(target) else None
    if function is None:
        function = target.__init__  # type: ignore[misc]
    common = set(inspect.signature(BaseOperator.__init__).parameters)
    return [
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if name not in {"self", "cls"} | common
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]


@pytest.mark.parametrize(("module", "name"), ISSUE_12, ids=[f"{m}:{n}" for m, n in ISSUE_12])
def test_each_construct_of_issue_12_is_listed_and_its_arguments_described(
    module: str, name: str
) -> None:
    assert name in _listed().get(module, []), f"{module}.{name} is not in the tables"
    install_airflow_hook()
    construct = getattr(importlib.import_module(module), name)
    words = _code_words()
    assert name in words
    undescribed = [a for a in _arguments(construct) if a not in words]
    for method in METHODS.get(name, ()):
        assert method in words, f"{name}.{method} is not on the page"
        undescribed += [f"{method}({a})" for a in _arguments(getattr(construct, method))]
        undescribed = [a for a in undescribed if a.split("(")[-1].rstrip(")") not in words]
    assert undescribed == [], f"{name}: arguments the page does not name: {undescribed}"


def test_the_phrases_and_cli_commands_of_issue_12_are_on_the_page() -> None:
    from slipstream.cli.main import cli

    text = " ".join(PAGE.read_text().split())  # phrases may wrap across lines
    for phrase in PHRASES:
        assert phrase in text, phrase
    for group in ("pools", "assets", "variables", "connections"):
        command = cli.get_command(click.Context(cli), group)
        assert isinstance(command, click.Group)
        listed = re.search(rf"`slipstream {group} ([\w|-]+)`", text)
        assert listed is not None, group
        assert set(listed[1].split("|")) == set(command.commands), group
