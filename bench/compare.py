"""Setting the peers' figures beside Slipstream's: each Slipstream metric with a key gets, per
peer label, the figure that peer measured under the same key in this run, the failure that kept
it from measuring one, or (for Airflow, when its peer did not run) the figure recorded in
performance.md, marked as recorded.
"""

from __future__ import annotations

from bench.figures import AIRFLOW_LABEL, RECORDED_AIRFLOW, PeerFigure
from bench.model import WorkloadResult
from bench.peers.base import PeerResult

FAILURE_TEXT_CHARS = 60


def _short(error: str) -> str:
    first = error.strip().splitlines()[0] if error.strip() else "failed"
    return first if len(first) <= FAILURE_TEXT_CHARS else first[: FAILURE_TEXT_CHARS - 3] + "..."


def join(results: list[WorkloadResult], peer_results: list[PeerResult], labels: list[str]) -> None:
    """Fill `metric.compare` of every keyed metric in `results` (in place). `labels` are the
    peers that took part in this run, in column order."""
    by_run = {(peer.peer, peer.workload): peer for peer in peer_results}
    for result in results:
        for metric in result.metrics:
            if metric.key is None:
                continue
            metric.compare.clear()
            if AIRFLOW_LABEL not in labels and metric.key in RECORDED_AIRFLOW:
                metric.compare[AIRFLOW_LABEL] = RECORDED_AIRFLOW[metric.key]
            for label in labels:
                peer = by_run.get((label, result.workload))
                if peer is None:
                    continue  # the peer does not take this workload
                figure = peer.figures.get(metric.key)
                if figure is None and peer.error:
                    figure = PeerFigure.failure(_short(peer.error))
                if figure is not None:
                    metric.compare[label] = figure


def column_labels(results: list[WorkloadResult]) -> list[str]:
    """The peer columns the results carry, in the order they first appear."""
    labels: list[str] = []
    for result in results:
        for metric in result.metrics:
            for label in metric.compare:
                if label not in labels:
                    labels.append(label)
    return labels
