"""The database's figures, counted at scrape time (never kept as counters that could drift):
task instances and runs by state, each pool's slots, and DAG files failing to import."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from slipstream.core.pools import PoolUsage
from slipstream.core.states import RunState, TaskState
from slipstream.services.monitoring import MonitoringService


def _pool_figures(usage: PoolUsage) -> dict[str, int]:
    return {
        "slots": usage.pool.slots,
        "open_slots": usage.open,
        "occupied_slots": usage.occupied,
        "running_slots": usage.running,
        "queued_slots": usage.queued,
        "scheduled_slots": usage.scheduled,
        "deferred_slots": usage.deferred,
    }


_POOL_HELP = {
    "slots": "Slots of each pool.",
    "open_slots": "Slots of each pool no try holds.",
    "occupied_slots": "Slots held by running and queued tries (and deferred ones when the"
    " pool counts them).",
    "running_slots": "Slots held by running tries.",
    "queued_slots": "Slots held by queued tries.",
    "scheduled_slots": "Slots wanted by scheduled tries.",
    "deferred_slots": "Slots held by deferred tries (in pools that count them).",
}


class DatabaseCollector(Collector):
    """A custom collector: each scrape reads one snapshot through MonitoringService. Served by
    the API server alone, so that scraping every process does not count the database twice."""

    def __init__(self, monitoring: MonitoringService) -> None:
        self._monitoring = monitoring

    def describe(self) -> list[Metric]:
        return []  # no query when registering: families are only known from a scrape

    def collect(self) -> Iterator[Metric]:
        census = self._monitoring.census()
        up = GaugeMetricFamily(
            "slipstream_metadatabase_up", "1 when the metadata database could be read."
        )
        up.add_metric([], 0 if census is None else 1)
        yield up
        if census is None:
            return
        tries = GaugeMetricFamily(
            "slipstream_task_instances",
            "Task instances in each state (a try's state is its task instance's).",
            labels=["state"],
        )
        for task_state in TaskState:
            tries.add_metric([task_state.value], census.task_instances.get(task_state, 0))
        yield tries
        runs = GaugeMetricFamily("slipstream_dag_runs", "Runs in each state.", labels=["state"])
        for run_state in RunState:
            runs.add_metric([run_state.value], census.runs.get(run_state, 0))
        yield runs
        figures = [(usage.pool.name, _pool_figures(usage)) for usage in census.pools]
        for suffix, text in _POOL_HELP.items():
            family = GaugeMetricFamily(f"slipstream_pool_{suffix}", text, labels=["pool"])
            for name, values in figures:
                family.add_metric([name], values[suffix])
            yield family
        errors = GaugeMetricFamily(
            "slipstream_dag_import_errors", "DAG files whose last parse failed."
        )
        errors.add_metric([], census.import_errors)
        yield errors
