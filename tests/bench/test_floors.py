"""The floors of the machine and the figures read against them: a figure's multiple of its floor
(units converted, a rate as a fraction), targets judged on that multiple or against a peer of
the same run, the floors in the .md and the JSON, and the measuring plumbing (what each floor
hands back, not how fast it is)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from bench.figures import AIRFLOW_LABEL, FLOOR, Metric, PeerFigure, Target
from bench.floors import (
    FORK_WORKER,
    PYTHON_SITE,
    TRIVIAL_GET,
    Floor,
    Floors,
    apply,
    fork_exit_wait_ms,
    sqlite_commit_ms,
)
from bench.model import WorkloadResult
from bench.report import floors_markdown, markdown, table, write

from bench import floors as machine_floors


def _floors(fork_ms: float | None = 2.0, get_rate: float = 4000.0) -> Floors:
    floors = Floors()
    fork = Floor(FORK_WORKER, "fork + exit + wait, warm-worker-sized parent", "ms", "W1 hop lag")
    fork.value = fork_ms
    if fork_ms is None:
        fork.error = "RuntimeError: the parent exited 1"
    get = Floor(TRIVIAL_GET, "trivial GET", "/s", "W7")
    get.value = get_rate
    get.params = {"requests": 2000, "p50_ms": 0.2}
    get.summary = {"n": 2000, "p95": 0.4}
    site = Floor(PYTHON_SITE, "python -c pass", "ms", "W6")
    site.value = 50.0
    floors.figures = {f.key: f for f in (fork, get, site)}
    return floors


def _hop(value: float) -> Metric:
    return Metric("W1", "chain of 20: per-hop lag p50", value, "ms", "probe",
                  Target("<=", 2.0, FLOOR), "W1.chain20.hop_p50", floor=FORK_WORKER)  # fmt: skip


def _rate(value: float) -> Metric:
    return Metric("W7", "sequential, token: triggers/s", value, "/s", "bench clock",
                  Target(">=", 0.5, FLOOR), "W7.seq_token.rate", higher_is_better=True,
                  floor=TRIVIAL_GET, peer_target=Target(">=", 20.0, AIRFLOW_LABEL))  # fmt: skip


def _results(*metrics: Metric) -> list[WorkloadResult]:
    result = WorkloadResult("W1", "chain")
    result.metrics = list(metrics)
    return [result]


def test_a_figure_is_read_as_a_multiple_of_its_floor_of_this_run() -> None:
    hop, rate = _hop(3.0), _rate(1000.0)
    startup = Metric("W6", "healthy", 1.5, "s", "bench clock", floor=PYTHON_SITE)
    plain = Metric("W5", "processes", 4.0, "processes", "/proc", Target("<=", 5.0))
    apply(_results(hop, rate, startup, plain), _floors(fork_ms=2.0, get_rate=4000.0))
    assert hop.multiple == 1.5 and hop.status == "ok"
    assert rate.multiple == 0.25 and rate.status == "MISS"  # a quarter of the trivial GET's rate
    assert startup.multiple == 30.0  # 1.5 s over 50 ms: seconds converted to the floor's ms
    assert plain.multiple is None and plain.floor_value is None and plain.status == "ok"
    assert _hop(4.0).status == ""  # no floor applied yet: nothing to judge, not a pass
    apply(_results(over := _hop(4.1)), _floors(fork_ms=2.0))
    assert over.status == "MISS"


def test_a_failed_floor_leaves_its_figures_unjudged_and_says_so() -> None:
    hop = _hop(3.0)
    floors = _floors(fork_ms=None)
    apply(_results(hop), floors)
    assert hop.floor_value is None and hop.multiple is None and hop.status == ""
    assert floors.errors == ["fork_worker: RuntimeError: the parent exited 1"]
    assert any("FAILED: RuntimeError" in line for line in floors_markdown(floors))


def test_a_peer_target_is_judged_only_against_that_peer_measured_in_this_run() -> None:
    vs_airflow = Target(">=", 200.0, AIRFLOW_LABEL)
    chain = Metric("W1", "chain of 20: end-to-end p50", 0.5, "s", "bench clock",
                   key="W1.chain20.e2e_p50", peer_target=vs_airflow)  # fmt: skip
    chain.compare[AIRFLOW_LABEL] = PeerFigure.recorded(22.0, "21.1 s and 22.9 s")
    assert chain.judged(vs_airflow) is None and chain.status == ""
    chain.compare[AIRFLOW_LABEL] = PeerFigure(22.0)
    assert chain.judged(vs_airflow) == 44.0 and chain.status == "MISS"
    chain.value = 0.1
    assert chain.status == "ok"
    chain.compare[AIRFLOW_LABEL] = PeerFigure.failure("the scheduler died")
    assert chain.status == ""


def test_every_target_of_a_figure_counts_and_the_table_shows_both() -> None:
    rate = _rate(2500.0)  # 0.625x the floor: met
    apply(_results(rate), _floors(get_rate=4000.0))
    assert rate.status == "ok"  # the peer target is not judged without the peer
    rate.compare[AIRFLOW_LABEL] = PeerFigure(250.0)  # only 10x better: misses >= 20x
    assert rate.status == "MISS"
    text = table(_results(rate))
    assert "x0.62" in text or "x0.63" in text
    assert ">= 0.5x floor; >= 20x Airflow 3.3.2" in text


def test_the_tripwire_judges_relative_targets_on_the_multiple() -> None:
    from bench.__main__ import tripwire_breaches

    floors = _floors(fork_ms=2.0, get_rate=4000.0)
    # Within 5x: a hop of 10x the floor (target 2x) and a rate of 0.1x (target 0.5x) pass.
    ok = _results(_hop(20.0), _rate(400.0))
    apply(ok, floors)
    assert tripwire_breaches(ok, 5) == []
    bad = _results(_hop(20.2), _rate(399.0))
    apply(bad, floors)
    breaches = tripwire_breaches(bad, 5)
    assert len(breaches) == 2
    assert "per-hop lag p50" in breaches[0] and "10.1x floor (2 ms)" in breaches[0]
    assert "<= 2x floor" in breaches[0]
    assert "triggers/s" in breaches[1] and ">= 0.5x floor" in breaches[1]
    # Without its floor a relative target cannot trip the wire (the run fails on the floor).
    unjudged = _results(_hop(1000.0))
    apply(unjudged, _floors(fork_ms=None))
    assert tripwire_breaches(unjudged, 5) == []


def test_the_tripwire_judges_a_peer_target_only_with_the_peer_in_the_run() -> None:
    from bench.__main__ import tripwire_breaches

    chain = Metric("W1", "chain of 20: end-to-end p50", 1.0, "s", "bench clock",
                   peer_target=Target(">=", 200.0, AIRFLOW_LABEL))  # fmt: skip
    chain.compare[AIRFLOW_LABEL] = PeerFigure.recorded(22.0, "recorded")
    assert tripwire_breaches(_results(chain), 5) == []
    chain.compare[AIRFLOW_LABEL] = PeerFigure(22.0)  # 22x: below 200x / 5
    [breach] = tripwire_breaches(_results(chain), 5)
    assert "22x Airflow 3.3.2" in breach and ">= 200x Airflow 3.3.2" in breach
    chain.compare[AIRFLOW_LABEL] = PeerFigure(41.0)  # 41x: within 5x of 200x
    assert tripwire_breaches(_results(chain), 5) == []


def test_the_floors_are_in_the_markdown_and_the_json(tmp_path: Path) -> None:
    floors = _floors(fork_ms=2.0)
    hop = _hop(3.0)
    results = _results(hop)
    apply(results, floors)
    machine = {"hostname": "h", "cores": 2, "cpu_model": "c", "memory_mib": 1, "python": "3",
               "sqlite": "3", "slipstream_commit": "abc",
               "src_uncommitted_changes": []}  # fmt: skip
    options = {"db": "sqlite", "quick": True}
    json_path, md_path = write(results, [], tmp_path, peers=[], options=options, variant="-t",
                               machine_at_start=machine, floors=floors)  # fmt: skip
    text = md_path.read_text()
    assert "## Floors of this machine, this run" in text
    assert "| fork + exit + wait, warm-worker-sized parent | 2.00 ms |" in text
    assert "| trivial GET | 4,000/s | 400 µs a GET |" in text
    assert "| 3.00 ms | x1.5 | <= 2x floor | ok |" in text  # the headline's x floor column
    document = json.loads(json_path.read_text())
    assert document["floors"]["figures"]["fork_worker"]["value"] == 2.0
    [summary] = document["summary"]
    assert summary["floor"] == FORK_WORKER and summary["x_floor"] == 1.5
    about = {"date": "d", "machine": machine, "options": options, "peers": []}
    assert "Not measured in this run." in markdown(results, [], about)


def test_fork_exit_wait_times_each_child() -> None:
    samples = fork_exit_wait_ms(5)
    assert len(samples) == 5 and all(sample > 0 for sample in samples)


def test_the_sqlite_floor_commits_each_row_on_a_wal_database(tmp_path: Path) -> None:
    path = tmp_path / "floor.db"
    samples = sqlite_commit_ms(path, "NORMAL", 7)
    assert len(samples) == 7 and all(sample > 0 for sample in samples)
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert check.execute("SELECT count(*) FROM floor").fetchone() == (7,)


@pytest.mark.slow
def test_measure_hands_back_every_floor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("FORK_SAMPLES", 3), ("GET_SAMPLES", 20), ("GET_WARM_UP", 2),
                        ("INTERPRETER_SAMPLES", 1)):  # fmt: skip
        monkeypatch.setattr(machine_floors, name, value)
    monkeypatch.setattr(machine_floors, "SQLITE_SAMPLES", {"NORMAL": 5, "FULL": 2})
    floors = machine_floors.measure(tmp_path)
    assert floors.errors == []
    assert list(floors.figures) == [
        "fork_worker", "fork_small", "sqlite_commit", "sqlite_commit_full", "trivial_get",
        "python_bare", "python_site",
    ]  # fmt: skip
    assert all(f.value is not None and f.value > 0 for f in floors.figures.values())
    assert floors.figures["fork_worker"].summary["n"] == 3
    # The worker-shaped parent holds Slipstream and the DAG file: larger than the small one.
    worker_rss = floors.figures["fork_worker"].params["parent_rss_mb"]
    assert worker_rss > floors.figures["fork_small"].params["parent_rss_mb"]
    assert floors.figures["trivial_get"].params["requests"] == 20
    assert floors.figures["trivial_get"].unit == "/s"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing left behind
