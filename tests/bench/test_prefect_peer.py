"""The Prefect peer's pieces that need no Prefect: the flow file it writes (valid Python, every
flow at module level under its served name, the probe path baked in) and the figure keys each
workload promises, so a failed run still fills every cell."""

from __future__ import annotations

import ast
from pathlib import Path

from bench.model import Options
from bench.peers import prefect_flows as flows
from bench.peers.prefect import PrefectPeer, _expected_keys


def _functions(source: str) -> set[str]:
    return {node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}


def test_the_flow_file_defines_every_served_flow_at_module_level(tmp_path: Path) -> None:
    probe = tmp_path / "probe.log"
    source, names = flows.flows_file(probe, chains=[3, 20], one_task=True, idle=2)
    assert names == [
        "bench_chain_3",
        "bench_chain_20",
        "bench_one_task",
        "bench_idle_000",
        "bench_idle_001",
    ]
    assert set(names) <= _functions(source)
    assert repr(str(probe)) in source
    assert f"FLOWS = [{', '.join(names)}]" in source


def test_every_workload_names_its_figure_keys(tmp_path: Path) -> None:
    quick = Options(root=tmp_path, db="sqlite", quick=True, repeat=1)
    full = Options(root=tmp_path, db="sqlite", quick=False, repeat=5)
    assert len(_expected_keys("W1", quick)) == 5
    assert "W1.chain100.hop_p50" in _expected_keys("W1", full)
    assert set(_expected_keys("W3", full)) >= {"W3.first_task_p99", "W3.success_p50"}
    assert "W4.drained_s" in _expected_keys("W4", full)
    for workload in sorted(PrefectPeer.workloads):
        assert _expected_keys(workload, full)


def test_the_peer_names_what_it_installs() -> None:
    peer = PrefectPeer()
    assert (peer.name, peer.install_spec) == ("prefect", "prefect==3.9.1")
