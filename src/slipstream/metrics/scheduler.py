"""The scheduler process's figures: pass time and lag, what its passes did, and the load of
its executor and workers, recorded on the loop's thread after each pass (`PassObserver`)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from slipstream.scheduler.loop import PassSample

# A pass costs milliseconds; a few hundred when a burst lands on a slow database.
_PASS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SchedulerMetrics:
    """Registers its families in `registry`; `pass_done` is the loop's observer."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._duration = Histogram(
            "slipstream_scheduler_pass_duration_seconds",
            "Time one scheduler pass took (passes with nothing due are left out).",
            buckets=_PASS_BUCKETS,
            registry=registry,
        )
        self._lag = Histogram(
            "slipstream_scheduler_pass_lag_seconds",
            "How late a pass began after it was due: its timer, or the event that woke the"
            " loop, to the start of the pass (passes with nothing due are left out).",
            buckets=_PASS_BUCKETS,
            registry=registry,
        )
        self._passes = Counter(
            "slipstream_scheduler_passes",
            "Scheduler passes, by outcome: work, idle (nothing due) or failed.",
            ["outcome"],
            registry=registry,
        )
        self._last_pass = Gauge(
            "slipstream_scheduler_last_pass_timestamp_seconds",
            "When the last pass ended (Unix time): a loop that stops passing shows here.",
            registry=registry,
        )
        self._runs_started = Counter(
            "slipstream_scheduler_dag_runs_started",
            "Runs taken from queued to running: every triggered, scheduled or asset-triggered"
            " run once (the trigger rate).",
            registry=registry,
        )
        self._runs_finished = Counter(
            "slipstream_scheduler_dag_runs_finished",
            "Runs this scheduler saw finish.",
            registry=registry,
        )
        self._submitted = Counter(
            "slipstream_scheduler_tries_submitted",
            "Tries handed to the executor.",
            registry=registry,
        )
        self._events = Counter(
            "slipstream_scheduler_executor_events",
            "Try started and finished reports applied from the executor.",
            registry=registry,
        )
        self._in_flight = Gauge(
            "slipstream_scheduler_tries_in_flight",
            "Tries handed to the executor and not yet reported finished.",
            registry=registry,
        )
        self._capacity = Gauge(
            "slipstream_executor_capacity",
            "Tries the executor may hold at once (SLIPSTREAM_PARALLELISM).",
            registry=registry,
        )
        self._open = Gauge(
            "slipstream_executor_open_slots",
            "Tries the executor could take now.",
            registry=registry,
        )
        self._queued = Gauge(
            "slipstream_executor_queued_tries",
            "The executor's queue: tries handed to a worker that has not started them yet.",
            registry=registry,
        )
        self._running = Gauge(
            "slipstream_executor_running_tries",
            "Tries running in the executor's workers.",
            registry=registry,
        )
        self._workers = Gauge(
            "slipstream_executor_workers",
            "Warm worker processes alive.",
            registry=registry,
        )
        for outcome in ("work", "idle", "failed"):
            self._passes.labels(outcome)  # every series from the first scrape

    def pass_done(self, sample: PassSample) -> None:
        report = sample.report
        self._last_pass.set(time.time())
        self._in_flight.set(sample.in_flight)
        if sample.load is not None:
            load = sample.load
            self._capacity.set(load.capacity)
            self._open.set(max(0, load.capacity - sample.in_flight))
            self._queued.set(load.queued)
            self._running.set(load.running)
            self._workers.set(len(load.worker_pids))
        if report is None:
            self._passes.labels("failed").inc()
            self._duration.observe(sample.seconds)
            self._lag.observe(sample.lag_seconds)
            return
        if report.idle:
            self._passes.labels("idle").inc()
            return
        self._passes.labels("work").inc()
        self._duration.observe(sample.seconds)
        self._lag.observe(sample.lag_seconds)
        self._runs_started.inc(report.runs_started)
        self._runs_finished.inc(report.runs_finished)
        self._submitted.inc(report.queued)
        self._events.inc(report.events)
