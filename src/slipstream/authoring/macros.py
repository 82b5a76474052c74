"""The `macros` namespace templates see (`{{ macros.ds_add(ds, 1) }}`), as in Airflow.

The module itself is the namespace: its public names are what templates can reach.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from random import random

__all__ = ["datetime", "ds_add", "ds_format", "json", "random", "time", "timedelta", "uuid"]


def ds_add(ds: str, days: int) -> str:
    """`ds` ("YYYY-MM-DD") moved by `days` (may be negative)."""
    if not days:
        return str(ds)
    moved = datetime.strptime(ds, "%Y-%m-%d") + timedelta(days=days)
    return moved.strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """Reformat a date string: ds_format("2015-01-05", "%Y-%m-%d", "%m-%d-%y") -> "01-05-15"."""
    return datetime.strptime(str(ds), input_format).strftime(output_format)
