"""Cron fire times in a timezone, across DST changes, with Airflow's results; and timezones as
the names a serialized DAG carries.

croniter works on wall-clock times. As in Airflow, a schedule at a fixed time of day (its next
two fires share hour and minute: "0 2 * * *", @daily) is computed on the local wall clock and
then placed on the timeline: a time the spring change skips moves forward by the gap (02:30 ->
03:30) and a time the autumn change repeats is its first occurrence. Any other schedule
(hourly, "*/15") steps by the wall-clock distance to its next fire from the current instant, so
it runs every absolute hour across both changes: nothing lost, nothing doubled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import cached_property
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slipstream.errors import InvalidScheduleError

_ONE_MICROSECOND = timedelta(microseconds=1)
# More than any DST shift: a wall-clock fire this far behind an instant lands before it.
_SLACK = timedelta(hours=3)
_MAX_STEPS = 1000

# Airflow's cron presets ("@once" and "@continuous" are timetables of their own).
CRON_PRESETS: Mapping[str, str] = MappingProxyType(
    {
        "@hourly": "0 * * * *",
        "@daily": "0 0 * * *",
        "@weekly": "0 0 * * 0",
        "@monthly": "0 0 1 * *",
        "@quarterly": "0 0 1 */3 *",
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
    }
)


def timezone_name(zone: tzinfo | str | None) -> str:
    """The name a spec stores: an IANA key ("Europe/Amsterdam"), "UTC", or a fixed offset
    ("+02:00"). Refuses a tzinfo that has neither (it could not be rebuilt by the scheduler)."""
    if zone is None:
        return "UTC"
    if isinstance(zone, str):
        zone_for(zone)  # raises for an unknown name
        return zone
    key = getattr(zone, "key", None)  # zoneinfo.ZoneInfo and pendulum's Timezone
    if isinstance(key, str):
        return key
    name = getattr(zone, "name", None)  # pendulum's FixedTimezone: "+02:00"
    if isinstance(name, str) and _parse_offset(name) is not None:
        return name
    offset = zone.utcoffset(datetime(2000, 1, 1))
    if offset is not None and zone.utcoffset(datetime(2000, 7, 1)) == offset:
        if offset == timedelta(0):
            return "UTC"
        return _offset_text(offset)
    raise InvalidScheduleError(zone, "a timezone must be an IANA name or a fixed offset")


def zone_for(name: str) -> tzinfo:
    """The tzinfo for a name from timezone_name()."""
    if name in ("UTC", "utc", "Z"):
        return UTC
    offset = _parse_offset(name)
    if offset is not None:
        return timezone(offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidScheduleError(name, f"unknown timezone: {exc}") from None


def _offset_text(offset: timedelta) -> str:
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_offset(text: str) -> timedelta | None:
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    try:
        hours, minutes = int(text[1:3]), int(text[4:6])
    except ValueError:
        return None
    offset = timedelta(hours=hours, minutes=minutes)
    return -offset if text[0] == "-" else offset


def localize(naive: datetime, zone: tzinfo) -> datetime:
    """A wall-clock time placed in `zone`: skipped times move forward by the gap, repeated
    times are their first occurrence (what Airflow's pendulum gives)."""
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    before, after = first.utcoffset(), second.utcoffset()
    if before is not None and after is not None and before < after:
        # In a gap the two folds disagree the other way round from an overlap: the wall time
        # does not exist; move it forward by the size of the gap.
        return (naive + (after - before)).replace(tzinfo=zone, fold=0)
    return first


@dataclass(frozen=True)
class CronSchedule:
    """One cron expression evaluated in one timezone."""

    expression: str
    zone_name: str = "UTC"

    def __post_init__(self) -> None:
        from croniter import CroniterError, croniter  # deferred: ~70 ms, and imports are hot

        zone_for(self.zone_name)
        try:
            croniter(self.expression, datetime(2000, 1, 1))
        except (CroniterError, ValueError, KeyError) as exc:
            raise InvalidScheduleError(self.expression, str(exc)) from exc

    @cached_property
    def zone(self) -> tzinfo:
        return zone_for(self.zone_name)

    @cached_property
    def is_fixed_time(self) -> bool:
        from croniter import croniter

        it = croniter(self.expression, datetime(2001, 1, 1))
        first: datetime = it.get_next(datetime)
        second: datetime = it.get_next(datetime)
        return (first.hour, first.minute) == (second.hour, second.minute)

    def after(self, moment: datetime) -> datetime:
        """The first fire strictly after `moment` (aware), in UTC."""
        return self._step(moment, forward=True)

    def before(self, moment: datetime) -> datetime:
        """The last fire strictly before `moment` (aware), in UTC."""
        return self._step(moment, forward=False)

    def at_or_after(self, moment: datetime) -> datetime:
        return self.after(moment - _ONE_MICROSECOND)

    def at_or_before(self, moment: datetime) -> datetime:
        return self.before(moment + _ONE_MICROSECOND)

    def _step(self, moment: datetime, *, forward: bool) -> datetime:
        from croniter import croniter

        zone = self.zone
        moment = _aware(moment)
        naive = moment.astimezone(zone).replace(tzinfo=None)
        if not self.is_fixed_time:
            # Not a fixed time of day: keep the wall-clock distance, on the real timeline.
            it: Any = croniter(self.expression, naive)
            fire: datetime = it.get_next(datetime) if forward else it.get_prev(datetime)
            return (moment + (fire - naive)).astimezone(UTC)
        # Fixed: fires are wall-clock times placed by localize(), which may move one past a
        # gap; so walk the wall-clock fires from a little behind `moment` and compare instants.
        it = croniter(self.expression, naive - _SLACK if forward else naive + _SLACK)
        for _ in range(_MAX_STEPS):
            wall: datetime = it.get_next(datetime) if forward else it.get_prev(datetime)
            placed = localize(wall, zone).astimezone(UTC)
            if (placed > moment) if forward else (placed < moment):
                return placed
        raise InvalidScheduleError(self.expression, f"no fire time near {moment.isoformat()}")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
