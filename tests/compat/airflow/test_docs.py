"""docs/airflow-compatibility.md stays true: every module and name it lists imports through the
hook, it lists everything the hook serves, and each import error it quotes is what users see."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

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
