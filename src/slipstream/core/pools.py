"""Pools as the core sees them: a named number of slots that queued and running tries hold
(each its task's pool_slots), the checks a pool's fields pass, and its slots in use."""

from __future__ import annotations

from dataclasses import dataclass

from slipstream.errors import InvalidInputError

DEFAULT_POOL = "default_pool"
# Airflow's size for default_pool, which migration 0009 creates it with.
DEFAULT_POOL_SLOTS = 128
# The pools table's name column.
MAX_NAME_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    slots: int
    description: str | None = None
    include_deferred: bool = False
    id: int | None = None


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """A pool's slots held by its task instances, by their state (Airflow's pool counts)."""

    pool: Pool
    running: int = 0
    queued: int = 0
    scheduled: int = 0
    deferred: int = 0  # held by deferred tasks, only when the pool includes them

    @property
    def occupied(self) -> int:
        held = self.running + self.queued
        return held + self.deferred if self.pool.include_deferred else held

    @property
    def open(self) -> int:
        return self.pool.slots - self.occupied


def check_name(name: object, field: str = "name") -> str:
    """A pool name as stored; 400 naming `field` when it is empty, too long or not text."""
    if not isinstance(name, str):
        raise InvalidInputError(f"{name!r} is not of type 'string' - '{field}'", field=field)
    if not name.strip():
        raise InvalidInputError("Pool name shouldn't be empty", field=field)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"Pool name must be at most {MAX_NAME_LENGTH} characters", field=field
        )
    if "\x00" in name:
        raise InvalidInputError("Pool name must not contain NUL characters", field=field)
    return name


def check_slots(slots: object, field: str = "slots") -> int:
    """A pool size: a whole number >= 0. Airflow's -1 (unlimited) is refused by name: an
    unlimited pool is default_pool made large, or no pool named on the task."""
    if isinstance(slots, bool) or not isinstance(slots, int):
        raise InvalidInputError(f"{slots!r} is not of type 'integer' - '{field}'", field=field)
    if slots == -1:
        raise InvalidInputError(
            "slots=-1 (an unlimited pool) is not supported by Slipstream; give a number of"
            " slots >= 0",
            field=field,
        )
    if slots < 0:
        raise InvalidInputError(f"slots must be >= 0, got {slots}", field=field)
    if slots > 2**31 - 1:
        raise InvalidInputError(f"slots must be at most {2**31 - 1}", field=field)
    return slots


def check_description(description: object, field: str = "description") -> str | None:
    if description is not None and not isinstance(description, str):
        raise InvalidInputError(f"{description!r} is not of type 'string' - '{field}'", field=field)
    if description is not None and "\x00" in description:
        raise InvalidInputError("description must not contain NUL characters", field=field)
    return description


def check_include_deferred(value: object, field: str = "include_deferred") -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(f"{value!r} is not of type 'boolean' - '{field}'", field=field)
    return value
