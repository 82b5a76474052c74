"""The trigger form's fields, made from a DAG's serialized params (their JSON Schemas), and the
conf read back from what a person typed into them.

Each param becomes one field of a kind its schema says: text, number or integer inputs with
their bounds as HTML attributes, a select for an enum, a checkbox for a boolean, a date or
date-and-time picker for `format: date` / `date-time`, and a JSON text area for arrays,
objects and schemas with no single type. Reading a form only turns text into JSON values
(and says which fields could not be read); whether the values fit the schemas is the trigger
service's question, answered by the same check the API's trigger makes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# HTML attributes a JSON Schema keyword maps to, per kind of input.
_NUMBER_ATTRS = {"minimum": "min", "maximum": "max", "multipleOf": "step"}
_TEXT_ATTRS = {"minLength": "minlength", "maxLength": "maxlength", "pattern": "pattern"}
# The date-and-time picker has no time zone: what it holds is read as UTC (the form says so).
_PICKER_FORMAT = "%Y-%m-%dT%H:%M"

KINDS = ("text", "number", "integer", "select", "checkbox", "date", "datetime", "json")


@dataclass(frozen=True, slots=True)
class ParamField:
    """One param as a form field."""

    name: str
    label: str
    description: str | None
    kind: str  # one of KINDS
    schema: Mapping[str, Any]
    has_default: bool
    default: Any
    nullable: bool  # the schema allows null: an empty field is sent as null
    attrs: dict[str, str] = field(default_factory=dict)
    # For a select: (the option's form value, its label).
    options: list[tuple[str, str]] = field(default_factory=list)

    @property
    def input_name(self) -> str:
        return f"param.{self.name}"

    @property
    def input_id(self) -> str:
        return "param-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in self.name)

    @property
    def required(self) -> bool:
        """A person must give a value: there is no default and null is no value."""
        return not self.has_default and not self.nullable

    def shown(self, value: Any) -> str:
        """`value` as this field's input holds it."""
        if value is None:
            return ""
        if self.kind == "select":
            return _option_value(value)
        if self.kind == "checkbox":
            return "true" if value is True else ""
        if self.kind == "datetime" and isinstance(value, str):
            return _picker_value(value)
        if self.kind == "json" or not isinstance(value, str | int | float):
            return json.dumps(value, indent=2)
        return str(value)

    @property
    def default_text(self) -> str:
        """The default as the form says it ("none" when a value is needed)."""
        if not self.has_default:
            return ""
        return json.dumps(self.default)


def fields_of(params: Mapping[str, Mapping[str, Any]]) -> list[ParamField]:
    """The form's fields, in the params' declared order."""
    return [_field(name, entry) for name, entry in params.items()]


def _field(name: str, entry: Mapping[str, Any]) -> ParamField:
    schema: Mapping[str, Any] = entry.get("schema") or {}
    types = schema.get("type")
    type_list = [types] if isinstance(types, str) else list(types or [])
    nullable = "null" in type_list or (None in (schema.get("enum") or ()))
    concrete = [t for t in type_list if t != "null"]
    kind_of = concrete[0] if len(concrete) == 1 else None
    attrs: dict[str, str] = {}
    options: list[tuple[str, str]] = []
    if "enum" in schema and isinstance(schema["enum"], list):
        kind = "select"
        display = schema.get("values_display") or {}
        for value in schema["enum"]:
            if value is None:
                continue  # the empty option stands for null
            shown = display.get(str(value), str(value)) if isinstance(display, dict) else value
            options.append((_option_value(value), str(shown)))
    elif kind_of == "boolean":
        kind = "checkbox"
    elif kind_of in ("integer", "number"):
        kind = kind_of
        attrs.update({html: str(schema[k]) for k, html in _NUMBER_ATTRS.items() if k in schema})
        if kind == "integer" and "step" not in attrs:
            attrs["step"] = "1"
        elif "step" not in attrs:
            attrs["step"] = "any"
        if "exclusiveMinimum" in schema and "min" not in attrs:
            attrs["min"] = str(schema["exclusiveMinimum"])
        if "exclusiveMaximum" in schema and "max" not in attrs:
            attrs["max"] = str(schema["exclusiveMaximum"])
    elif kind_of == "string" or (kind_of is None and schema.get("format") in ("date", "date-time")):
        fmt = schema.get("format")
        kind = {"date": "date", "date-time": "datetime"}.get(str(fmt), "text")
        if kind == "text":
            attrs.update({html: str(schema[k]) for k, html in _TEXT_ATTRS.items() if k in schema})
    elif kind_of is None and not schema:
        kind = "text"  # no schema: Airflow shows a text field and sends the text
    else:
        kind = "json"  # arrays, objects, several types
    title = schema.get("title")
    return ParamField(
        name=name,
        label=str(title) if title else name,
        description=entry.get("description") or schema.get("description_md") or None,
        kind=kind,
        schema=schema,
        has_default="default" in entry,
        default=entry.get("default"),
        nullable=nullable,
        attrs=attrs,
        options=options,
    )


@dataclass(frozen=True, slots=True)
class FormReading:
    """What a form's fields said: the conf they make, the text each field held (to show it
    again), and the fields that could not be read, with why."""

    conf: dict[str, Any]
    typed: dict[str, str]
    problems: dict[str, str]


def read_fields(fields: list[ParamField], form: Mapping[str, str]) -> FormReading:
    """The conf the fields make. An empty field sends null when its schema allows null,
    else nothing (so the param's default applies, or the trigger says a value is needed);
    an empty text field sends the empty string, which its schema then judges."""
    conf: dict[str, Any] = {}
    typed: dict[str, str] = {}
    problems: dict[str, str] = {}
    for spec in fields:
        raw = form.get(spec.input_name)
        if spec.kind == "checkbox":
            # An unticked box sends nothing: the marker says the box was on the form.
            if f"{spec.input_name}.present" in form:
                conf[spec.name] = raw == "true"
                typed[spec.name] = "true" if raw == "true" else ""
            continue
        if raw is None:
            continue
        typed[spec.name] = raw
        if raw.strip() == "" and spec.kind != "text":
            if spec.nullable:
                conf[spec.name] = None
            continue
        try:
            conf[spec.name] = _value(spec, raw)
        except ValueError as exc:
            problems[spec.name] = str(exc)
    return FormReading(conf, typed, problems)


def _value(spec: ParamField, raw: str) -> Any:
    text = raw.strip()
    if spec.kind == "text":
        if raw == "" and spec.nullable:
            return None
        return raw
    if spec.kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
    if spec.kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        # "3" stays the integer 3 (a schema of type integer|number takes it); "3.0" a float.
        written_whole = number.is_integer() and not any(c in text.lower() for c in ".e")
        return int(number) if written_whole else number
    if spec.kind == "select":
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(f"{raw!r} is not one of the choices") from None
    if spec.kind == "date":
        return text
    if spec.kind == "datetime":
        try:
            return parse_moment(text).isoformat()
        except ValueError:
            raise ValueError(f"expected a date and time, got {raw!r}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None


def parse_moment(raw: str) -> datetime:
    """A date-and-time picker's value (or an ISO 8601 moment) as an aware datetime: UTC
    unless it names its own zone. ValueError when it is neither."""
    text = raw.strip()
    try:
        moment = datetime.strptime(text, _PICKER_FORMAT)
    except ValueError:
        moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _option_value(value: Any) -> str:
    """An enum value as its option's form value: JSON, so 1, "1" and true stay apart."""
    return json.dumps(value)


def _picker_value(value: str) -> str:
    """An ISO moment as a date-and-time picker shows it (in UTC, to the minute)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime(_PICKER_FORMAT)
