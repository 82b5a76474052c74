"""Trigger rules: the names a task may use to say when it runs, given its upstream states."""

from __future__ import annotations

from enum import StrEnum

from slipstream.errors import DagDefinitionError


class TriggerRule(StrEnum):
    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_SKIPPED = "all_skipped"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALWAYS = "always"
    # A teardown's rule (Airflow 2.7+): all upstream done and, if any are setups, one of them
    # succeeded.
    ALL_DONE_SETUP_SUCCESS = "all_done_setup_success"


# Names older Airflow 2 DAG files still use; normalised so the core only ever sees the above.
_DEPRECATED_ALIASES = {
    "dummy": TriggerRule.ALWAYS,
    "none_failed_or_skipped": TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
}


def parse_trigger_rule(value: object, *, task_id: str | None = None) -> TriggerRule:
    """The TriggerRule named by `value`, or DagDefinitionError naming the bad value."""
    text = str(value)
    if text in _DEPRECATED_ALIASES:
        return _DEPRECATED_ALIASES[text]
    try:
        return TriggerRule(text)
    except ValueError:
        allowed = ", ".join(rule.value for rule in TriggerRule)
        where = f" of task {task_id!r}" if task_id else ""
        raise DagDefinitionError(
            f"invalid trigger_rule {value!r}{where}; expected one of: {allowed}"
        ) from None
