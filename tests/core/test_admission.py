"""core.admission: which ready tries get a slot, in what order, within which limits."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from slipstream.core.admission import DEFAULT_POOL, Candidate, admit, never_fits


def cand(
    run_pk: int,
    task_id: str,
    priority: int = 1,
    *,
    when: float = 0.0,
    seq: int = 0,
    slots: int = 1,
    per_dag: int | None = None,
    per_run: int | None = None,
) -> Candidate:
    return Candidate(
        run_pk,
        task_id,
        (-priority, when, seq),
        pool_slots=slots,
        max_per_dag=per_dag,
        max_per_run=per_run,
    )


def queues(ready: Mapping[str, Sequence[Candidate]]) -> dict[str, Iterator[Candidate]]:
    return {dag: iter(sorted(items, key=lambda c: c.rank)) for dag, items in ready.items()}


def taken(
    ready: Mapping[str, Sequence[Candidate]],
    *,
    free: int = 100,
    room: Mapping[str, int] | None = None,
    pool: int = 128,
    task_active: Mapping[tuple[str, str], int] | None = None,
    run_task_active: Mapping[tuple[int, str], int] | None = None,
) -> list[str]:
    result = admit(
        queues(ready),
        free=free,
        dag_room=room if room is not None else dict.fromkeys(ready, 100),
        pool_room={"default_pool": pool},
        task_active=task_active or {},
        run_task_active=run_task_active or {},
    )
    examined = {(c.run_pk, c.task_id) for _, c in (*result.taken, *result.passed_over)}
    everything = {(c.run_pk, c.task_id) for items in ready.values() for c in items}
    # Nothing drawn is lost: each candidate is taken, passed over, or still in its queue.
    assert len(result.taken) + len(result.passed_over) == len(examined)
    assert examined <= everything
    return [c.task_id for _, c in result.taken]


def test_higher_effective_priority_goes_first_across_dags() -> None:
    ready = {"a": [cand(1, "a_low", 1), cand(1, "a_high", 9)], "b": [cand(2, "b_mid", 5)]}
    assert taken(ready, free=2) == ["a_high", "b_mid"]
    assert taken(ready) == ["a_high", "b_mid", "a_low"]


def test_equal_priorities_take_turns_across_dags() -> None:
    ready = {
        "big": [cand(1, f"big{i}", seq=i) for i in range(5)],
        "small": [cand(2, "small0")],
        "tiny": [cand(3, "tiny0")],
    }
    assert taken(ready, free=4) == ["big0", "small0", "tiny0", "big1"]


def test_earlier_logical_date_first_where_priorities_tie_within_a_dag() -> None:
    ready = {"d": [cand(2, "late", when=200.0), cand(1, "early", when=100.0)]}
    assert taken(ready, free=1) == ["early"]


def test_pool_slots_are_counted_per_try_and_smaller_tries_may_pass_a_big_one() -> None:
    ready = {"d": [cand(1, "big", 9, slots=3), cand(1, "small", 1, slots=1)]}
    # Two slots open: the big try does not fit, the lower-priority small one does.
    assert taken(ready, pool=2) == ["small"]
    assert taken(ready, pool=4) == ["big", "small"]
    assert taken(ready, pool=0) == []


def test_the_pool_is_shared_by_every_dag() -> None:
    ready = {"a": [cand(1, f"a{i}", seq=i) for i in range(3)], "b": [cand(2, "b0")]}
    assert taken(ready, pool=3) == ["a0", "b0", "a1"]


def test_max_active_tis_per_dag_counts_tries_in_flight_across_runs() -> None:
    ready = {"d": [cand(run, "t", per_dag=2, seq=run) for run in (1, 2, 3)] + [cand(4, "u", seq=9)]}
    assert taken(ready) == ["t", "t", "u"]
    assert taken(ready, task_active={("d", "t"): 1}) == ["t", "u"]
    assert taken(ready, task_active={("d", "t"): 2}) == ["u"]


def test_max_active_tis_per_dagrun_counts_within_one_run() -> None:
    ready = {"d": [cand(1, "t", per_run=1), cand(2, "t", per_run=1)]}
    assert taken(ready) == ["t", "t"]  # two runs, one each
    assert taken(ready, run_task_active={(1, "t"): 1}) == ["t"]


def test_max_active_tasks_room_and_free_slots_bound_what_is_taken() -> None:
    ready = {"a": [cand(1, f"a{i}", seq=i) for i in range(5)], "b": [cand(2, "b0")]}
    assert taken(ready, room={"a": 1, "b": 1}) == ["a0", "b0"]
    assert taken(ready, room={"a": 0, "b": 1}) == ["b0"]
    assert taken(ready, free=0) == []


def test_a_full_dag_is_not_drawn_beyond_its_room() -> None:
    # A DAG at its limit costs nothing to look past: its queue is not drawn at all.
    drawn: list[str] = []

    def lazily() -> Iterator[Candidate]:
        for i in range(1000):
            drawn.append(f"t{i}")
            yield cand(1, f"t{i}", seq=i)

    result = admit(
        {"d": lazily()},
        free=32,
        dag_room={"d": 3},
        pool_room={"default_pool": 128},
        task_active={},
        run_task_active={},
    )
    assert [c.task_id for _, c in result.taken] == ["t0", "t1", "t2"]
    assert drawn == ["t0", "t1", "t2"]


def test_a_try_needing_more_slots_than_its_pool_has_can_never_fit() -> None:
    assert never_fits(128, DEFAULT_POOL, 128) is None
    assert never_fits(1, DEFAULT_POOL, 1) is None
    why = never_fits(129, DEFAULT_POOL, 128)
    assert why is not None
    assert "pool_slots=129" in why and "128 slots of pool 'default_pool'" in why
    assert "SLIPSTREAM_DEFAULT_POOL_SLOTS" in why
    other = never_fits(3, "gpu", 2)
    assert other is not None and "pool 'gpu'" in other and "SLIPSTREAM_" not in other
