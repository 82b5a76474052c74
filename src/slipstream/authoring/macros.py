"""The `macros` namespace templates see (`{{ macros.ds_add(ds, 1) }}`), as in Airflow.

The module itself is the namespace: its public names are what templates can reach.
`macros.dateutil` is imported on first use (it costs ~30 ms and most tries never touch it).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from random import random
from typing import Any

# As in Airflow, macros.random is the function random.random; macros.dateutil (the package)
# comes through __getattr__ below.
__all__ = [
    "datetime",
    "datetime_diff_for_humans",
    "ds_add",
    "ds_format",
    "json",
    "random",
    "time",
    "timedelta",
    "uuid",
]


def __getattr__(name: str) -> Any:
    if name == "dateutil":
        import dateutil
        import dateutil.parser
        import dateutil.relativedelta
        import dateutil.tz

        return dateutil
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def ds_add(ds: str, days: int) -> str:
    """`ds` ("YYYY-MM-DD") moved by `days` (may be negative)."""
    if not days:
        return str(ds)
    moved = datetime.strptime(str(ds), "%Y-%m-%d") + timedelta(days=days)
    return moved.strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """Reformat a date string: ds_format("2015-01-05", "%Y-%m-%d", "%m-%d-%y") -> "01-05-15"."""
    return datetime.strptime(str(ds), input_format).strftime(output_format)


def datetime_diff_for_humans(dt: datetime, since: datetime | None = None) -> str:
    """How long ago (or until) `dt` is, from `since` or now: "2 hours ago", as Airflow."""
    import pendulum

    moment = pendulum.instance(dt)
    return moment.diff_for_humans(pendulum.instance(since) if since is not None else None)
