"""How a schedule reads in words, from its stored spec (Timetable.to_spec()): Airflow's
`timetable_description`, shown by the API and the web UI."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any


def timetable_description(spec: Mapping[str, Any] | None) -> str | None:
    """Airflow's wording for the special cases; the expression itself for cron schedules
    (Airflow renders cron in English with cron-descriptor, which Slipstream does not ship)."""
    kind = (spec or {}).get("type")
    if kind == "once":
        return "Once, as soon as possible"
    if kind == "cron":
        assert spec is not None
        return str(spec.get("preset") or spec["expression"])
    if kind == "delta":
        assert spec is not None
        return str(timedelta(seconds=float(spec["seconds"])))
    if kind == "assets":
        return "Triggered by datasets"
    if kind == "asset_or_time":
        assert spec is not None
        return f"Triggered by datasets or {timetable_description(spec['timetable'])}"
    if spec is not None and kind in _TRIGGER_DESCRIPTIONS:
        return _TRIGGER_DESCRIPTIONS[str(kind)](spec)
    return "Never, external triggers only"


# The timetables that are not an interval (authoring/trigger_timetables.py), as Airflow's
# `description` of each puts them.
_TRIGGER_DESCRIPTIONS: Mapping[str, Callable[[Mapping[str, Any]], str]] = MappingProxyType(
    {
        "continuous": lambda spec: "As frequently as possible, but only one run at a time.",
        "cron_trigger": lambda spec: str(spec.get("label") or spec["expression"]),
        "multiple_cron_trigger": lambda spec: ", ".join(spec["expressions"]),
        "delta_trigger": lambda spec: str(timedelta(seconds=float(spec["seconds"]))),
        "events": lambda spec: str(spec.get("description") or f"{len(spec['events'])} events"),
    }
)
