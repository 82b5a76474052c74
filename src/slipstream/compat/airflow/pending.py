"""Airflow constructs whose names import but whose behaviour comes with a later Slipstream
release (cross-DAG operators, Datasets/Assets): building one is a DAG definition error
naming it, so a DAG file never half-works. Subclassing them is allowed; instantiating is not.
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

from slipstream.errors import NotAvailableYet

_CROSS_DAG = (
    "cross-DAG operators come with a later Slipstream release; trigger the other DAG through "
    "the REST API or `slipstream dags trigger` meanwhile"
)
_ASSETS = (
    "data-aware scheduling (Datasets/Assets) comes with a later Slipstream release; "
    "use a time schedule or trigger the DAG meanwhile"
)


class Pending:
    """Base of the placeholders: any construction raises NotAvailableYet."""

    reason: ClassVar[str] = "it comes with a later Slipstream release"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._refuse()

    def _refuse(self) -> NoReturn:
        cls = type(self)
        # The placeholder the user's class derives from names the missing construct.
        placeholder: type[Pending] = next(
            c for c in cls.__mro__ if c.__module__ == __name__ and issubclass(c, Pending)
        )
        construct = placeholder.__name__
        if cls is not placeholder:
            construct = f"{cls.__name__} (a {placeholder.__name__})"
        raise NotAvailableYet(construct, placeholder.reason)


class ExternalTaskMarker(Pending):
    reason = _CROSS_DAG


class TriggerDagRunOperator(Pending):
    reason = _CROSS_DAG


class Dataset(Pending):
    reason = _ASSETS


class DatasetAlias(Pending):
    reason = _ASSETS


class Asset(Pending):
    reason = _ASSETS


class AssetAlias(Pending):
    reason = _ASSETS
