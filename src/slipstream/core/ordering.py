"""The one check of a listing's `order_by`, with the message Airflow's API gives for a column
that is not offered."""

from __future__ import annotations

from collections.abc import Collection

from slipstream.errors import InvalidInputError


def check_order_by(order_by: str, allowed: Collection[str]) -> None:
    """400 naming `order_by` when it is not one of `allowed`."""
    if order_by not in allowed:
        raise InvalidInputError(
            f"Ordering with '{order_by}' is disallowed or the attribute does not exist"
            " on the model",
            field="order_by",
        )
