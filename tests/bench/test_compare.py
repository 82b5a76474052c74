"""Setting peers' figures beside Slipstream's: measured figures by key, a failed peer workload
shown as a failure (never a blank), Airflow's recorded figures only when its peer did not run,
and the Markdown keeping a failed peer's log excerpt."""

from __future__ import annotations

from bench.compare import join
from bench.figures import AIRFLOW_LABEL, Metric, PeerFigure, Target
from bench.model import WorkloadResult
from bench.peers.base import PeerResult
from bench.report import headline_markdown, markdown, table


def _w1() -> list[WorkloadResult]:
    result = WorkloadResult("W1", "chain")
    result.metrics = [
        Metric("W1", "chain of 20: end-to-end p50", 0.1, "s", "bench clock",
               Target("<", 0.4), "W1.chain20.e2e_p50"),
        Metric("W1", "chain of 20: per-hop lag p50", 5.0, "ms", "probe", key="W1.chain20.hop_p50"),
        Metric("W1", "unkeyed diagnostic", 1.0, "ms", "probe", detail=True),
    ]  # fmt: skip
    return [result]


def test_measured_figures_are_joined_by_key_with_ratios() -> None:
    results = _w1()
    peer = PeerResult(AIRFLOW_LABEL, "W1")
    peer.figures = {"W1.chain20.e2e_p50": PeerFigure(22.0), "W1.chain20.hop_p50": PeerFigure(900.0)}
    join(results, [peer], [AIRFLOW_LABEL])
    e2e, hop, diagnostic = results[0].metrics
    assert e2e.compare[AIRFLOW_LABEL].measured
    assert e2e.times_better(AIRFLOW_LABEL) == 220.0
    assert hop.times_better(AIRFLOW_LABEL) == 180.0
    assert diagnostic.compare == {}
    assert "x220" in table(results) and "(recorded)" not in table(results)


def test_a_failed_peer_workload_fills_its_cells_with_the_failure() -> None:
    results = _w1()
    peer = PeerResult(AIRFLOW_LABEL, "W1", error="the scheduler died\nTraceback ...")
    peer.figures = {"W1.chain20.hop_p50": PeerFigure(1000.0)}  # measured before it died
    peer.log_excerpt = ["ERROR scheduler: out of patience"]
    join(results, [peer], [AIRFLOW_LABEL])
    e2e, hop, _ = results[0].metrics
    assert e2e.compare[AIRFLOW_LABEL].failed
    assert e2e.compare[AIRFLOW_LABEL].text == "FAILED: the scheduler died"
    assert e2e.times_better(AIRFLOW_LABEL) is None
    assert hop.compare[AIRFLOW_LABEL].value == 1000.0
    about = {
        "date": "2026-11-26",
        "machine": {"hostname": "h", "cores": 2, "cpu_model": "c", "memory_mib": 1, "python": "3",
                    "sqlite": "3", "slipstream_commit": "abc", "src_uncommitted_changes": []},
        "options": {"db": "sqlite", "quick": True},
        "peers": [{"label": AIRFLOW_LABEL, "install": "apache-airflow==3.3.2"}],
    }  # fmt: skip
    text = markdown(results, [peer], about)
    assert "FAILED: the scheduler died" in text
    assert "ERROR scheduler: out of patience" in text


def test_recorded_airflow_figures_stand_in_only_without_the_airflow_peer() -> None:
    results = _w1()
    join(results, [], [])
    e2e = results[0].metrics[0]
    assert not e2e.compare[AIRFLOW_LABEL].measured
    assert "(recorded)" in table(results)
    other = PeerResult("Prefect 3.9.1", "W1", figures={"W1.chain20.e2e_p50": PeerFigure(4.0)})
    join(results, [other], [AIRFLOW_LABEL, "Prefect 3.9.1"])
    assert AIRFLOW_LABEL not in e2e.compare  # Airflow ran (no W1 result): no recorded stand-in
    assert e2e.times_better("Prefect 3.9.1") == 40.0


def test_the_headline_table_keeps_the_headline_order_and_the_peers_columns() -> None:
    results = _w1()
    peer = PeerResult(AIRFLOW_LABEL, "W1")
    peer.figures = {"W1.chain20.e2e_p50": PeerFigure(22.0), "W1.chain20.hop_p50": PeerFigure(900.0)}
    join(results, [peer], [AIRFLOW_LABEL])
    lines = headline_markdown(results)
    assert lines[0].startswith(
        "|  | metric | Slipstream | x floor | target |  | Airflow 3.3.2 | better by |"
    )
    assert "chain of 20: end-to-end p50" in lines[2] and "x220" in lines[2]
    assert "chain of 20: per-hop lag p50" in lines[3] and "x180" in lines[3]
    assert len(lines) == 4  # the unkeyed diagnostic is not a headline
