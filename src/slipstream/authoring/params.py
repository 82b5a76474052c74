"""DAG params: Param declarations, their serialized spec, and checking a run's conf against it.

Values are checked with `jsonschema` (Draft 2020-12, formats checked; see schema_check.py);
keywords JSON Schema does not know are annotations, as in Airflow (title, section...).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, Final

from slipstream.authoring.schema_check import check_schema, check_value
from slipstream.authoring.templating import Resolvable
from slipstream.errors import DagDefinitionError, InvalidConf, InvalidInputError


class ArgNotSet:
    """Type of NOTSET: "no value given", where None is a legitimate value."""

    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Final = ArgNotSet()

__all__ = [
    "NOTSET",
    "ArgNotSet",
    "DagParam",
    "Param",
    "check_value",
    "conf_problems",
    "resolve_params",
    "serialize_params",
    "task_params_spec",
]


class Param:
    """A declared DAG or task param: a default (or none: then a run must supply it) and a JSON
    schema given as keywords (type, enum, minimum, title, values_display, section...) or whole
    as `schema={...}`, as Airflow's Param takes them."""

    def __init__(self, default: Any = NOTSET, description: str | None = None, **schema: Any):
        self.default = default
        self.description = description
        self.schema: dict[str, Any] = dict(schema.pop("schema")) if "schema" in schema else schema

    @property
    def value(self) -> Any:
        """The default (Airflow's Param.value); None when there is none."""
        return None if isinstance(self.default, ArgNotSet) else self.default

    def resolve(self, value: Any = NOTSET, suppress_exception: bool = False) -> Any:
        """`value` (or the default) checked against the schema, as Airflow's Param.resolve."""
        final = self.default if isinstance(value, ArgNotSet) else value
        if isinstance(final, ArgNotSet):
            if suppress_exception:
                return None
            raise InvalidConf("param", "required: no value was given and the param has no default")
        reason = check_value(final, self.schema)
        if reason is not None:
            if suppress_exception:
                return None
            raise InvalidConf("param", reason)
        return final

    def dump(self) -> dict[str, Any]:
        """Airflow's dict form: value, description and schema."""
        return {"value": self.value, "description": self.description, "schema": self.schema}

    @property
    def has_value(self) -> bool:
        return not isinstance(self.default, ArgNotSet)

    def __repr__(self) -> str:
        return f"Param({self.default!r}, description={self.description!r}, schema={self.schema!r})"

    def serialize(self, name: str, *, check_default: bool = True) -> dict[str, Any]:
        """{"schema", "description"[, "default"]}; DagDefinitionError if unusable."""
        entry: dict[str, Any] = {
            "schema": _json_copy(self.schema, f"the schema of param {name!r}"),
            "description": self.description,
        }
        problem = check_schema(entry["schema"]) if check_default else None
        if problem is not None:
            raise DagDefinitionError(f"the schema of param {name!r} is invalid: {problem}")
        if self.has_value:
            entry["default"] = _json_copy(self.default, f"the default of param {name!r}")
            reason = check_value(entry["default"], self.schema) if check_default else None
            if reason is not None:
                raise DagDefinitionError(f"the default of param {name!r} is invalid: {reason}")
        return entry


class DagParam(Resolvable):
    """A @dag function's parameter as seen inside the function: the run's value of that param."""

    def __init__(self, name: str) -> None:
        self.name = name

    def resolve(self, context: Mapping[str, Any]) -> Any:
        return context["params"][self.name]

    def __repr__(self) -> str:
        return f"DagParam({self.name!r})"


def _json_copy(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise DagDefinitionError(f"{what} is not JSON-serializable: {exc}") from None


def serialize_params(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The JSON form of declared params: plain values count as Param(value) with no schema."""
    return {
        name: (value if isinstance(value, Param) else Param(value)).serialize(name)
        for name, value in params.items()
    }


def task_params_spec(
    dag_spec: Mapping[str, Mapping[str, Any]], task_params: Mapping[str, Any]
) -> Mapping[str, Mapping[str, Any]]:
    """The params a task sees: the DAG's spec with the task's own params over it. A task's
    defaults were checked when its DAG was serialized, so they are not checked again here."""
    if not task_params:
        return dag_spec
    merged = dict(dag_spec)
    for name, value in task_params.items():
        param = value if isinstance(value, Param) else Param(value)
        merged[name] = param.serialize(name, check_default=False)
    return merged


def conf_problems(spec: Mapping[str, Mapping[str, Any]], conf: Mapping[str, Any]) -> dict[str, str]:
    """Every declared param that `conf` breaks, with why, in the order they were declared:
    a value that does not fit its schema, or no value for a param without a default. A
    param left out takes its default, checked when the DAG was serialized (Param.serialize);
    keys that declare no param are the run's own and are not checked (as Airflow)."""
    problems: dict[str, str] = {}
    for name, entry in spec.items():
        if name not in conf:
            if "default" not in entry:
                problems[name] = "required: no value was given and the param has no default"
            continue
        reason = check_value(conf[name], entry.get("schema") or {})
        if reason is not None:
            problems[name] = reason
    return problems


def resolve_params(
    spec: Mapping[str, Mapping[str, Any]], conf: Mapping[str, Any]
) -> dict[str, Any]:
    """A run's params: declared defaults, overlaid with every key of `conf` (Airflow's
    dag_run_conf_overrides_params), each declared param checked against its schema
    (InvalidConf names the first that fails)."""
    if not isinstance(conf, Mapping):
        raise InvalidInputError("conf must be a JSON object", field="conf")
    for name, reason in conf_problems(spec, conf).items():
        raise InvalidConf(name, reason)
    values = {
        name: copy.deepcopy(entry["default"]) for name, entry in spec.items() if "default" in entry
    }
    values.update(conf)
    return values
