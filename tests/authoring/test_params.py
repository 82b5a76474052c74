from __future__ import annotations

from typing import Any

import pytest

from slipstream.authoring.params import (
    NOTSET,
    Param,
    check_value,
    resolve_params,
    serialize_params,
)
from slipstream.errors import DagDefinitionError, InvalidConf, InvalidInputError


def spec_of(**params: Any) -> dict[str, dict[str, Any]]:
    return serialize_params(params)


def refusal(schema: dict[str, Any], value: Any) -> str:
    with pytest.raises(InvalidConf) as info:
        resolve_params(spec_of(p=Param(**schema)), {"p": value})
    assert info.value.field == "p"
    return info.value.reason


def test_serialized_form() -> None:
    spec = spec_of(
        plain=5,
        typed=Param("a", description="A letter", type="string", maxLength=1),
        required=Param(type="integer"),
        whole=Param(1, schema={"type": "integer"}),
        tupled=Param((1, 2)),
    )
    assert spec == {
        "plain": {"schema": {}, "description": None, "default": 5},
        "typed": {
            "schema": {"type": "string", "maxLength": 1},
            "description": "A letter",
            "default": "a",
        },
        "required": {"schema": {"type": "integer"}, "description": None},
        "whole": {"schema": {"type": "integer"}, "description": None, "default": 1},
        "tupled": {"schema": {}, "description": None, "default": [1, 2]},
    }
    assert Param().default is NOTSET and not Param().has_value


def test_definition_errors() -> None:
    with pytest.raises(DagDefinitionError, match=r"'n'.*expected integer"):
        spec_of(n=Param("x", type="integer"))
    with pytest.raises(DagDefinitionError, match="JSON"):
        spec_of(s={1, 2})
    with pytest.raises(DagDefinitionError, match="JSON"):
        spec_of(nan=float("nan"))


def test_resolve_starts_from_defaults_and_overlays_every_conf_key() -> None:
    spec = spec_of(a=1, b=Param("x", type="string"))
    assert resolve_params(spec, {}) == {"a": 1, "b": "x"}
    assert resolve_params(spec, {"b": "y", "extra": [1]}) == {"a": 1, "b": "y", "extra": [1]}


def test_resolved_defaults_are_copies() -> None:
    spec = spec_of(items=[1])
    resolve_params(spec, {})["items"].append(2)
    assert resolve_params(spec, {})["items"] == [1]


def test_missing_required_param_names_the_field() -> None:
    with pytest.raises(InvalidConf) as info:
        resolve_params(spec_of(needed=Param(type="string")), {})
    assert info.value.field == "needed"
    assert info.value.reason.startswith("required")
    assert resolve_params(spec_of(needed=Param(type="string")), {"needed": "x"}) == {"needed": "x"}


def test_conf_must_be_an_object() -> None:
    with pytest.raises(InvalidInputError):
        resolve_params({}, ["not", "a", "dict"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("string", "s", 1),
        ("integer", 3, 3.5),
        ("integer", 2.0, True),
        ("number", 1.5, "1.5"),
        ("number", 2, False),
        ("boolean", True, 1),
        ("array", [1], "[1]"),
        ("object", {"a": 1}, [("a", 1)]),
        ("null", None, 0),
    ],
)
def test_types(kind: str, good: Any, bad: Any) -> None:
    assert check_value(good, {"type": kind}) is None
    reason = refusal({"type": kind}, bad)
    assert f"expected {kind}" in reason
    assert repr(bad) in reason


def test_type_lists() -> None:
    schema = {"type": ["null", "string"]}
    assert check_value(None, schema) is None
    assert check_value("a", schema) is None
    assert "expected null or string" in refusal(schema, 1)


def test_enum_and_const() -> None:
    assert "expected one of ['a', 'b'], got string 'c'" in refusal({"enum": ["a", "b"]}, "c")
    # JSON equality: true is not 1
    assert "expected one of" in refusal({"enum": [1, 2]}, True)
    assert check_value(1, {"enum": [1, 2]}) is None
    assert "expected 'x'" in refusal({"const": "x"}, "y")


@pytest.mark.parametrize(
    ("keyword", "limit", "good", "bad", "message"),
    [
        ("minimum", 1, 1, 0, ">= 1"),
        ("maximum", 5, 5, 6, "<= 5"),
        ("exclusiveMinimum", 1, 2, 1, "> 1"),
        ("exclusiveMaximum", 5, 4.9, 5, "< 5"),
        ("multipleOf", 3, 9, 10, "multiple of 3"),
    ],
)
def test_number_bounds(keyword: str, limit: float, good: float, bad: float, message: str) -> None:
    assert check_value(good, {keyword: limit}) is None
    reason = refusal({"type": "number", keyword: limit}, bad)
    assert message in reason and repr(bad) in reason


def test_string_keywords() -> None:
    assert "at least 2 characters" in refusal({"minLength": 2}, "a")
    assert "at most 2 characters" in refusal({"maxLength": 2}, "abc")
    assert "matching '^a'" in refusal({"pattern": "^a"}, "ba")
    assert check_value("abc", {"pattern": "b"}) is None  # patterns are not anchored


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date-time", "2024-02-29T10:00:00Z", "2024-02-30T10:00:00Z"),
        ("date-time", "2024-01-01T10:00:00.5+02:00", "2024-01-01T10:00:00"),
        ("date-time", "2024-01-01t23:59:60z", "2024-01-01 10:00:00Z"),
        ("date-time", "2024-01-01T10:00:00-05:30", "2024-01-01T24:00:00Z"),
        ("date", "2024-02-29", "2023-02-29"),
        ("date", "2024-12-31", "20241231"),
        ("time", "10:30", "25:00"),
        ("time", "10:30:15.25+01:00", "10:60"),
        ("email", "a@b.example", "no-at-sign"),
    ],
)
def test_formats(fmt: str, good: str, bad: str) -> None:
    assert check_value(good, {"format": fmt}) is None
    assert f"expected format '{fmt}'" in refusal({"format": fmt}, bad)


def test_unknown_formats_and_keywords_are_annotations() -> None:
    assert check_value("x", {"format": "hostname", "title": "T", "examples": []}) is None


def test_array_keywords() -> None:
    assert "at least 2 items" in refusal({"minItems": 2}, [1])
    assert "at most 1 item," in refusal({"maxItems": 1}, [1, 2])
    assert "unique" in refusal({"uniqueItems": True}, [1, 1])
    reason = refusal({"items": {"type": "integer"}}, [1, "two"])
    assert reason.startswith("at [1]: expected integer")
    assert "at [0]" in refusal({"items": [{"type": "string"}]}, [1])


def test_object_keywords() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "inner": {"properties": {"n": {"minimum": 0}}}},
        "required": ["name"],
        "additionalProperties": False,
    }
    assert check_value({"name": "x", "inner": {"n": 1}}, schema) is None
    assert "'name' (required)" in refusal(schema, {})
    assert refusal(schema, {"name": 1}).startswith("at name: expected string")
    assert refusal(schema, {"name": "x", "inner": {"n": -1}}).startswith("at inner.n: expected")
    assert "no property 'other'" in refusal(schema, {"name": "x", "other": 1})
    assert "expected integer" in refusal({"additionalProperties": {"type": "integer"}}, {"a": "b"})


def test_combinators() -> None:
    any_of = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert check_value(1, any_of) is None
    assert "anyOf" in refusal(any_of, 1.5)
    one_of = {"oneOf": [{"minimum": 0}, {"maximum": 10}]}
    assert "exactly one" in refusal(one_of, 5)
    assert "expected a number >= 0" in refusal({"allOf": [{"minimum": 0}]}, -1)


def test_schemas_beyond_the_old_subset_are_enforced() -> None:
    with_ref = {
        "$defs": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        "$ref": "#/$defs/code",
    }
    assert check_value("ABC", with_ref) is None
    assert "matching '^[A-Z]{3}$'" in refusal(with_ref, "abc")
    one_of = {"oneOf": [{"type": "string", "format": "date"}, {"type": "integer"}]}
    assert check_value("2024-02-29", one_of) is None and check_value(3, one_of) is None
    assert "0 matched" in refusal(one_of, "2023-02-29")
    assert "expected a value not matching" in refusal({"not": {"const": 0}}, 0)
    nested = {"type": "object", "properties": {"hosts": {"items": {"format": "ipv4"}}}}
    assert refusal(nested, {"hosts": ["10.0.0.1", "nope"]}).startswith(
        "at hosts[1]: expected format 'ipv4'"
    )
    assert "finite" in refusal({"type": "number"}, float("inf"))


def test_airflow_param_keywords_are_annotations() -> None:
    param = Param(
        "a",
        type="string",
        title="Letter",
        description="one letter",
        values_display={"a": "A"},
        section="Basics",
        enum=["a", "b"],
    )
    spec = spec_of(letter=param)
    assert spec["letter"]["schema"]["section"] == "Basics"
    assert resolve_params(spec, {"letter": "b"}) == {"letter": "b"}
    assert param.resolve() == "a" and param.resolve("c", suppress_exception=True) is None
    assert param.dump()["value"] == "a"


def test_a_broken_schema_is_a_definition_error_naming_the_param() -> None:
    with pytest.raises(DagDefinitionError, match=r"schema of param 'n' is invalid"):
        spec_of(n=Param(1, minimum="zero"))
