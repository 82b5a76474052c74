"""The DAG processor's figures: how long each file took to parse and which parses failed,
recorded as each result is applied (`ParseObserver`), in the process that parses (the
scheduler's, or `slipstream dag-processor`)."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# A DAG file parses in tens of milliseconds; a slow one in seconds, up to the import timeout.
_PARSE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class DagParseMetrics:
    """One series per DAG file for the last parse's duration (as Airflow's
    dag_processing.last_duration.<file>): bounded by the number of files, and dropped when
    the file goes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._duration = Histogram(
            "slipstream_dag_processing_duration_seconds",
            "Time to parse one DAG file in its child process.",
            buckets=_PARSE_BUCKETS,
            registry=registry,
        )
        self._last = Gauge(
            "slipstream_dag_processing_last_duration_seconds",
            "How long the last parse of each DAG file took.",
            ["file"],
            registry=registry,
        )
        self._parses = Counter(
            "slipstream_dag_processing_parses",
            "DAG file parses, by outcome: success, or error (failed to import, timed out,"
            " refused a DAG id another file owns).",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("success", "error"):
            self._parses.labels(outcome)

    def file_parsed(self, fileloc: str, seconds: float | None, *, failed: bool) -> None:
        self._parses.labels("error" if failed else "success").inc()
        if seconds is not None:
            self._duration.observe(seconds)
            self._last.labels(fileloc).set(seconds)

    def file_deleted(self, fileloc: str) -> None:
        with contextlib.suppress(KeyError):  # never parsed by this process
            self._last.remove(fileloc)
