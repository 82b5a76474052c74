"""Service fixtures: the store's parsed-DAG fixture, to hang runs on."""

from tests.store.conftest import add_dag

__all__ = ["add_dag"]
