"""Date helpers that Airflow DAG files call: `days_ago` (airflow.utils.dates) and the
`airflow.utils.timezone` functions. They return pendulum datetimes, as Airflow's do.

Only DAG files that ask for these names import this module (and pendulum with it): `import
slipstream` stays light.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum

utc = pendulum.UTC


def _timezone(value: str | dt.tzinfo | None) -> dt.tzinfo:
    if value is None:
        return pendulum.UTC
    if isinstance(value, str):
        return pendulum.timezone(value)
    return value


def utcnow() -> pendulum.DateTime:
    """Now, timezone-aware in UTC."""
    return pendulum.now(pendulum.UTC)


def days_ago(
    n: int, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0
) -> pendulum.DateTime:
    """Today at the given time (midnight by default), in UTC, `n` days back (Airflow 1.10/2)."""
    today = utcnow().replace(hour=hour, minute=minute, second=second, microsecond=microsecond)
    return today - dt.timedelta(days=n)


def datetime(*args: Any, **kwargs: Any) -> pendulum.DateTime:
    """A datetime like datetime.datetime(...), in UTC unless `tzinfo` says otherwise."""
    kwargs.setdefault("tzinfo", pendulum.UTC)
    return pendulum.instance(dt.datetime(*args, **kwargs))


def is_localized(value: dt.datetime) -> bool:
    return value.utcoffset() is not None


def is_naive(value: dt.datetime) -> bool:
    return value.utcoffset() is None


def make_aware(value: dt.datetime, timezone: str | dt.tzinfo | None = None) -> pendulum.DateTime:
    """A naive datetime read in `timezone` (UTC by default); ValueError if already aware."""
    if is_localized(value):
        raise ValueError(f"make_aware expects a naive datetime, got {value}")
    return pendulum.instance(value.replace(tzinfo=_timezone(timezone)))


def make_naive(value: dt.datetime, timezone: str | dt.tzinfo | None = None) -> dt.datetime:
    """An aware datetime as the naive wall-clock time in `timezone` (UTC by default)."""
    if is_naive(value):
        raise ValueError("make_naive() cannot be applied to a naive datetime")
    local = value.astimezone(_timezone(timezone))
    return dt.datetime(
        local.year,
        local.month,
        local.day,
        local.hour,
        local.minute,
        local.second,
        local.microsecond,
    )


def convert_to_utc(value: dt.datetime | None) -> pendulum.DateTime | None:
    """The same instant in UTC; a naive value is taken to be UTC."""
    if value is None:
        return None
    if is_naive(value):
        value = value.replace(tzinfo=pendulum.UTC)
    return pendulum.instance(value.astimezone(pendulum.UTC))


def coerce_datetime(value: dt.datetime | None) -> pendulum.DateTime | None:
    return convert_to_utc(value)


def parse(string: str, timezone: str | dt.tzinfo | None = None) -> pendulum.DateTime:
    """An ISO-8601 (or similar) date string; naive ones are read in `timezone` (UTC)."""
    parsed = pendulum.parse(string, tz=_timezone(timezone), strict=False)
    if not isinstance(parsed, pendulum.DateTime):
        raise ValueError(f"{string!r} is not a date and time")
    return parsed
