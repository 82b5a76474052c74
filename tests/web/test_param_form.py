"""The trigger form's fields from serialized params, and the conf read back from a form: each
kind of schema gets its input, bounds become HTML attributes, typed text becomes JSON values
and text that cannot be read is named."""

from __future__ import annotations

from typing import Any

import pytest

from slipstream.authoring.params import Param, serialize_params
from slipstream.web.param_form import fields_of, read_fields

SPEC = serialize_params(
    {
        "name": Param("ada", type="string", minLength=2, maxLength=10, pattern="^[a-z]+$"),
        "count": Param(3, type="integer", minimum=1, maximum=9, title="How many"),
        "ratio": Param(0.5, type="number", exclusiveMinimum=0, maximum=1),
        "colour": Param("red", enum=["red", "green"], values_display={"red": "Rouge"}),
        "level": Param(1, type="integer", enum=[1, 2, 3]),
        "dry": Param(False, type="boolean", description="Only pretend."),
        "day": Param("2024-01-31", type="string", format="date"),
        "at": Param("2024-01-31T09:30:00+00:00", type="string", format="date-time"),
        "tags": Param(["a"], type="array"),
        "extra": Param({"k": 1}, type="object"),
        "maybe": Param(None, type=["null", "integer"]),
        "needed": Param(type="string"),
        "plain": "just a value",
    }
)


def by_name() -> dict[str, Any]:
    return {f.name: f for f in fields_of(SPEC)}


def test_each_schema_gets_its_kind_of_field_with_its_bounds() -> None:
    fields = by_name()
    assert list(fields) == list(SPEC)
    kinds = {name: f.kind for name, f in fields.items()}
    assert kinds == {
        "name": "text",
        "count": "integer",
        "ratio": "number",
        "colour": "select",
        "level": "select",
        "dry": "checkbox",
        "day": "date",
        "at": "datetime",
        "tags": "json",
        "extra": "json",
        "maybe": "integer",
        "needed": "text",
        "plain": "text",
    }
    assert fields["name"].attrs == {"minlength": "2", "maxlength": "10", "pattern": "^[a-z]+$"}
    assert fields["count"].attrs == {"min": "1", "max": "9", "step": "1"}
    assert fields["count"].label == "How many" and fields["name"].label == "name"
    assert fields["ratio"].attrs == {"min": "0", "max": "1", "step": "any"}
    assert fields["colour"].options == [('"red"', "Rouge"), ('"green"', "green")]
    assert fields["level"].options == [("1", "1"), ("2", "2"), ("3", "3")]
    assert fields["dry"].description == "Only pretend."
    assert fields["maybe"].nullable and not fields["maybe"].required
    assert fields["needed"].required and not fields["needed"].has_default


def test_defaults_are_shown_as_each_input_holds_them() -> None:
    fields = by_name()
    shown = {name: f.shown(f.default) for name, f in fields.items()}
    assert shown["count"] == "3"
    assert shown["colour"] == '"red"'
    assert shown["dry"] == ""
    assert shown["at"] == "2024-01-31T09:30"
    assert shown["tags"] == '[\n  "a"\n]'
    assert shown["maybe"] == ""


def test_a_form_reads_back_as_typed_json_values() -> None:
    form = {
        "param.name": "grace",
        "param.count": "7",
        "param.ratio": "0.25",
        "param.colour": '"green"',
        "param.level": "2",
        "param.dry": "true",
        "param.dry.present": "1",
        "param.day": "2024-02-29",
        "param.at": "2024-02-29T10:15",
        "param.tags": '["x", "y"]',
        "param.extra": '{"a": {"b": null}}',
        "param.maybe": "",
        "param.needed": "",
        "param.plain": "text",
    }
    reading = read_fields(fields_of(SPEC), form)
    assert reading.problems == {}
    assert reading.conf == {
        "name": "grace",
        "count": 7,
        "ratio": 0.25,
        "colour": "green",
        "level": 2,
        "dry": True,
        "day": "2024-02-29",
        "at": "2024-02-29T10:15:00+00:00",
        "tags": ["x", "y"],
        "extra": {"a": {"b": None}},
        "maybe": None,
        "needed": "",
        "plain": "text",
    }
    assert reading.typed["count"] == "7" and reading.typed["dry"] == "true"


def test_an_unticked_box_is_false_and_an_empty_number_is_left_to_its_default() -> None:
    reading = read_fields(fields_of(SPEC), {"param.dry.present": "1", "param.count": " "})
    assert reading.conf == {"dry": False}


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("count", "seven", "expected a whole number, got 'seven'"),
        ("count", "1.5", "expected a whole number, got '1.5'"),
        ("ratio", "half", "expected a number, got 'half'"),
        ("tags", "[1,", "not valid JSON"),
        ("at", "tomorrow", "expected a date and time, got 'tomorrow'"),
        ("colour", "blue", "'blue' is not one of the choices"),
    ],
)
def test_text_that_cannot_be_read_is_named(name: str, text: str, problem: str) -> None:
    reading = read_fields(fields_of(SPEC), {f"param.{name}": text})
    assert problem in reading.problems[name]
    assert name not in reading.conf
    assert reading.typed[name] == text
