"""Checking a param's value against its JSON Schema with `jsonschema`, and saying why it fails
in one line that names where ("at items[2]: expected integer, got string 'x'").

Draft 2020-12 with format checks, as Airflow's Param (which calls jsonschema with a
FormatChecker). A schema written in the Draft 7 idiom that 2020-12 refuses (`items` as a
list) is checked as Draft 7 rather than refused.

Why jsonschema and not fastjsonschema (measured on this 2-core VM, one 6-param conf with
enum, integer bounds, date and email formats, array items and a pattern): building the
validators and checking takes 127 us with jsonschema against 2,850 us with fastjsonschema,
which must compile each schema to Python first (checking alone: 53 us against 2.5 us, but a
trigger checks a schema once). jsonschema's errors also carry the keyword and the path that
the messages below are made of. It is imported on first use (about 80 ms), never by
`import slipstream`, and only for a param that has a schema.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema
    import jsonschema.protocols

__all__ = ["check_schema", "check_value"]


def check_value(value: Any, schema: Mapping[str, Any]) -> str | None:
    """The first way `value` breaks `schema`, as "expected ..., got ...", or None if it fits."""
    non_finite = _first_non_finite(value, "")
    if non_finite is not None:
        path, number = non_finite
        return f"{_at(path)}expected a finite number, {_given(number)}"
    if not schema:
        return None
    validator = _validator(schema)
    errors = list(validator.iter_errors(value))
    if not errors:
        return None
    # The shallowest error first, and a wrong type before the keywords that follow from it.
    error = min(errors, key=lambda e: (len(e.absolute_path), e.validator != "type"))
    return _at(_path_text(error.absolute_path)) + _describe(error, validator)


def check_schema(schema: Mapping[str, Any]) -> str | None:
    """Why `schema` is not a usable JSON Schema, or None. Unknown keywords are annotations."""
    if not schema:
        return None
    import jsonschema.exceptions

    try:
        _validator(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = _path_text(exc.absolute_path)
        return f"{exc.message}" + (f" (at {where})" if where else "")
    return None


def _validator(schema: Mapping[str, Any]) -> jsonschema.protocols.Validator:
    import jsonschema
    import jsonschema.exceptions
    import jsonschema.validators

    default = jsonschema.Draft202012Validator
    cls = jsonschema.validators.validator_for(schema, default=default)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError:
        if cls is not default or "$schema" in schema:
            raise
        try:
            jsonschema.Draft7Validator.check_schema(schema)
        except jsonschema.exceptions.SchemaError:
            pass
        else:
            cls = jsonschema.Draft7Validator
        if cls is default:
            raise
    return cls(schema, format_checker=_format_checker(cls))


def _format_checker(cls: Any) -> jsonschema.FormatChecker:
    """The draft's own format checks, with date, time, date-time and email as Slipstream has
    always read them: RFC 3339 dates and times where `time` may leave out seconds and offset
    ("10:30", what a trigger form's time field sends), and an email is text@text."""
    checker = cls.FORMAT_CHECKER
    import jsonschema

    ours = jsonschema.FormatChecker()
    ours.checkers = dict(checker.checkers)
    ours.checks("date")(_is_date)
    ours.checks("time")(_is_time)
    ours.checks("date-time")(_is_date_time)
    ours.checks("email")(_is_email)
    return ours


# -- the messages -------------------------------------------------------------------------------


def _describe(error: Any, validator: Any) -> str:
    keyword = error.validator
    limit = error.validator_value
    value = error.instance
    given = _given(value)
    signs = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if keyword == "type":
        names = [limit] if isinstance(limit, str) else list(limit)
        return f"expected {' or '.join(names)}, {given}"
    if keyword == "enum":
        return f"expected one of {list(limit)!r}, {given}"
    if keyword == "const":
        return f"expected {limit!r}, {given}"
    if keyword in signs:
        return f"expected a number {signs[keyword]} {limit!r}, {given}"
    if keyword == "multipleOf":
        return f"expected a multiple of {limit!r}, {given}"
    if keyword == "minLength":
        return f"expected at least {_count(limit, 'character')}, {given}"
    if keyword == "maxLength":
        return f"expected at most {_count(limit, 'character')}, {given}"
    if keyword == "pattern":
        return f"expected a string matching {limit!r}, {given}"
    if keyword == "format":
        return f"expected format {limit!r}, {given}"
    if keyword == "minItems":
        return f"expected at least {_count(limit, 'item')}, {given}"
    if keyword == "maxItems":
        return f"expected at most {_count(limit, 'item')}, {given}"
    if keyword == "uniqueItems":
        return f"expected unique items, {given}"
    if keyword == "required":
        missing = next((name for name in limit if name not in value), limit[0])
        return f"expected property {missing!r} (required), {given}"
    if keyword == "additionalProperties" and limit is False:
        extra = next(_extra_properties(value, error.schema), "?")
        return f"expected no property {extra!r} (additionalProperties is false)"
    if keyword == "anyOf":
        return f"expected a value matching anyOf {limit!r}, {given}"
    if keyword == "oneOf":
        matched = sum(validator.evolve(schema=sub).is_valid(value) for sub in limit)
        return f"expected exactly one oneOf match, {matched} matched: {given}"
    if keyword == "not":
        return f"expected a value not matching {limit!r}, {given}"
    return f"{error.message}"


def _extra_properties(value: Mapping[str, Any], schema: Mapping[str, Any]) -> Iterator[str]:
    declared = schema.get("properties") or {}
    patterns = list((schema.get("patternProperties") or {}).keys())
    for name in value:
        if name not in declared and not any(re.search(p, name) for p in patterns):
            yield name


def _first_non_finite(value: Any, path: str) -> tuple[str, float] | None:
    # JSON has no NaN or Infinity, but Python's json module reads them: refuse them here.
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _first_non_finite(item, f"{path}[{index}]")
            if found is not None:
                return found
    elif isinstance(value, Mapping):
        for name, item in value.items():
            found = _first_non_finite(item, f"{path}.{name}" if path else str(name))
            if found is not None:
                return found
    return None


def _path_text(path: Any) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _at(path: str) -> str:
    return f"at {path}: " if path else ""


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


def _given(value: Any) -> str:
    return f"got {_json_type(value)} {value!r}"


def _count(n: object, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# -- formats ------------------------------------------------------------------------------------

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


def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats only constrain strings
    match = _DATE.match(value)
    return match is not None and _valid_day(*match.groups())


def _is_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    match = _TIME.match(value)
    if match is None:
        return False
    hour, minute, second, _fraction, off_hour, off_minute = match.groups()
    return _valid_clock(hour, minute, second, (off_hour, off_minute))


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    match = _DATE_TIME.match(value)
    if match is None:
        return False
    year, month, day, hour, minute, second, _fraction, off_hour, off_minute = match.groups()
    return _valid_day(year, month, day) and _valid_clock(
        hour, minute, second, (off_hour, off_minute)
    )


def _is_email(value: object) -> bool:
    return not isinstance(value, str) or _EMAIL.match(value) is not None
