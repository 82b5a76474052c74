"""DAG params: Param declarations, their serialized spec, and checking a run's conf against it.

Validation is a small JSON-Schema subset written here (no jsonschema dependency); keywords it
does not know are annotations and are ignored, as JSON Schema says of unknown keywords.
"""

from __future__ import annotations

import copy
import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, Final

from slipstream.authoring.templating import Resolvable
from slipstream.errors import DagDefinitionError, InvalidConf, InvalidInputError


class ArgNotSet:
    """Type of NOTSET: "no value given", where None is a legitimate value."""

    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Final = ArgNotSet()

_JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")


class Param:
    """A declared DAG param: a default (or none: then a run must supply it) and a JSON schema
    given as keywords (type, enum, minimum, ...) or whole as `schema={...}`."""

    def __init__(self, default: Any = NOTSET, description: str | None = None, **schema: Any):
        self.default = default
        self.description = description
        self.schema: dict[str, Any] = dict(schema.pop("schema")) if "schema" in schema else schema

    @property
    def has_value(self) -> bool:
        return not isinstance(self.default, ArgNotSet)

    def __repr__(self) -> str:
        return f"Param({self.default!r}, description={self.description!r}, schema={self.schema!r})"

    def serialize(self, name: str) -> dict[str, Any]:
        """{"schema", "description"[, "default"]}; DagDefinitionError if unusable."""
        entry: dict[str, Any] = {
            "schema": _json_copy(self.schema, f"the schema of param {name!r}"),
            "description": self.description,
        }
        if self.has_value:
            entry["default"] = _json_copy(self.default, f"the default of param {name!r}")
            reason = check_value(entry["default"], self.schema)
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


def resolve_params(
    spec: Mapping[str, Mapping[str, Any]], conf: Mapping[str, Any]
) -> dict[str, Any]:
    """A run's params: declared defaults, overlaid with every key of `conf` (Airflow's
    dag_run_conf_overrides_params), then each declared param checked against its schema."""
    if not isinstance(conf, Mapping):
        raise InvalidInputError("conf must be a JSON object", field="conf")
    values = {
        name: copy.deepcopy(entry["default"]) for name, entry in spec.items() if "default" in entry
    }
    values.update(conf)
    for name, entry in spec.items():
        if name not in values:
            raise InvalidConf(name, "required: no value was given and the param has no default")
        reason = check_value(values[name], entry.get("schema") or {})
        if reason is not None:
            raise InvalidConf(name, reason)
    return values


# -- the validator --------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _is_type(value: Any, name: str) -> bool:
    kind = _json_type(value)
    if name == "number":
        return kind in ("integer", "number")
    if name == "integer":
        # JSON Schema counts 1.0 as an integer; bool is never a number.
        return kind == "integer" or (kind == "number" and float(value).is_integer())
    return kind == name


def _json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON sees it: true is not 1, and [1] equals (1,)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    return bool(left == right)


def _given(value: Any) -> str:
    return f"got {_json_type(value)} {value!r}"


_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(?:[Zz]|[+-](\d{2}):(\d{2}))?$")
_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _valid_clock(
    hour: str, minute: str, second: str | None, offset: tuple[str | None, ...]
) -> bool:
    # RFC 3339 allows a leap second (60).
    if int(hour) > 23 or int(minute) > 59 or (second is not None and int(second) > 60):
        return False
    off_hour, off_minute = offset
    return off_hour is None or (int(off_hour) <= 23 and int(off_minute or 0) <= 59)


def _valid_day(year: str, month: str, day: str) -> bool:
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def _format_ok(value: str, fmt: str) -> bool:
    if fmt == "date":
        match = _DATE.match(value)
        return match is not None and _valid_day(*match.groups())
    if fmt == "time":
        match = _TIME.match(value)
        if match is None:
            return False
        hour, minute, second, _fraction, off_hour, off_minute = match.groups()
        return _valid_clock(hour, minute, second, (off_hour, off_minute))
    if fmt == "date-time":
        match = _DATE_TIME.match(value)
        if match is None:
            return False
        year, month, day, hour, minute, second, _fraction, off_hour, off_minute = match.groups()
        return _valid_day(year, month, day) and _valid_clock(
            hour, minute, second, (off_hour, off_minute)
        )
    if fmt == "email":
        return _EMAIL.match(value) is not None
    return True  # unknown formats are annotations


def _at(path: str) -> str:
    return f"at {path}: " if path else ""


def check_value(value: Any, schema: Mapping[str, Any], path: str = "") -> str | None:
    """The first way `value` breaks `schema`, as "expected ..., got ...", or None if it fits."""
    prefix = _at(path)
    expected_types = schema.get("type")
    if expected_types is not None:
        names = [expected_types] if isinstance(expected_types, str) else list(expected_types)
        if not any(_is_type(value, name) for name in names):
            return f"{prefix}expected {' or '.join(names)}, {_given(value)}"
    if "enum" in schema and not any(_json_equal(value, option) for option in schema["enum"]):
        return f"{prefix}expected one of {list(schema['enum'])!r}, {_given(value)}"
    if "const" in schema and not _json_equal(value, schema["const"]):
        return f"{prefix}expected {schema['const']!r}, {_given(value)}"
    kind = _json_type(value)
    reason = None
    if kind in ("integer", "number"):
        reason = _check_number(value, schema)
    elif kind == "string":
        reason = _check_string(value, schema)
    if reason is not None:
        return prefix + reason
    # These two prefix their own reasons: a nested failure names the nested path instead.
    if kind == "array":
        reason = _check_array(value, schema, path)
    elif kind == "object":
        reason = _check_object(value, schema, path)
    return reason if reason is not None else _check_combinators(value, schema, path)


def _check_number(value: float, schema: Mapping[str, Any]) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"expected a finite number, {_given(value)}"
    bounds: tuple[tuple[str, str, Callable[[Any, Any], bool]], ...] = (
        ("minimum", ">=", operator.ge),
        ("maximum", "<=", operator.le),
        ("exclusiveMinimum", ">", operator.gt),
        ("exclusiveMaximum", "<", operator.lt),
    )
    for keyword, sign, holds in bounds:
        if keyword in schema and not holds(value, schema[keyword]):
            return f"expected a number {sign} {schema[keyword]!r}, {_given(value)}"
    step = schema.get("multipleOf")
    if step and not float(value / step).is_integer():
        return f"expected a multiple of {step!r}, {_given(value)}"
    return None


def _check_string(value: str, schema: Mapping[str, Any]) -> str | None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        return f"expected at least {_count(schema['minLength'], 'character')}, {_given(value)}"
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"expected at most {_count(schema['maxLength'], 'character')}, {_given(value)}"
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        return f"expected a string matching {schema['pattern']!r}, {_given(value)}"
    if "format" in schema and not _format_ok(value, str(schema["format"])):
        return f"expected format {schema['format']!r}, {_given(value)}"
    return None


def _check_array(value: list[Any], schema: Mapping[str, Any], path: str) -> str | None:
    prefix = _at(path)
    if "minItems" in schema and len(value) < schema["minItems"]:
        return f"{prefix}expected at least {_count(schema['minItems'], 'item')}, {_given(value)}"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return f"{prefix}expected at most {_count(schema['maxItems'], 'item')}, {_given(value)}"
    if schema.get("uniqueItems"):
        for index, item in enumerate(value):
            if any(_json_equal(item, other) for other in value[:index]):
                return f"{prefix}expected unique items, {_given(value)}"
    items = schema.get("items")
    if isinstance(items, Mapping):
        for index, item in enumerate(value):
            reason = check_value(item, items, f"{path}[{index}]")
            if reason is not None:
                return reason
    elif isinstance(items, list):  # draft 7 tuple form: one schema per position
        for index, (item, item_schema) in enumerate(zip(value, items, strict=False)):
            reason = check_value(item, item_schema, f"{path}[{index}]")
            if reason is not None:
                return reason
    return None


def _check_object(value: Mapping[str, Any], schema: Mapping[str, Any], path: str) -> str | None:
    prefix = _at(path)
    for name in schema.get("required", ()):
        if name not in value:
            return f"{prefix}expected property {name!r} (required), {_given(value)}"
    properties: Mapping[str, Any] = schema.get("properties") or {}
    for name, item in value.items():
        where = f"{path}.{name}" if path else str(name)
        if name in properties:
            reason = check_value(item, properties[name], where)
            if reason is not None:
                return reason
            continue
        extra = schema.get("additionalProperties", True)
        if extra is False:
            return f"{prefix}expected no property {name!r} (additionalProperties is false)"
        if isinstance(extra, Mapping):
            reason = check_value(item, extra, where)
            if reason is not None:
                return reason
    return None


def _check_combinators(value: Any, schema: Mapping[str, Any], path: str) -> str | None:
    prefix = _at(path)
    for sub in schema.get("allOf", ()):
        reason = check_value(value, sub, path)
        if reason is not None:
            return reason
    if "anyOf" in schema and all(check_value(value, s, path) for s in schema["anyOf"]):
        return f"{prefix}expected a value matching anyOf {schema['anyOf']!r}, {_given(value)}"
    if "oneOf" in schema:
        matches = sum(check_value(value, s, path) is None for s in schema["oneOf"])
        if matches != 1:
            return f"{prefix}expected exactly one oneOf match, {matches} matched: {_given(value)}"
    return None


def _count(n: object, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
