"""core.leases: who a judge declares dead, and how many DAGs a scheduler claims or releases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slipstream.core.leases import Suspicion, Verdict, fair_share, judge, to_claim, to_release

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
LOST_AFTER = timedelta(seconds=30)


def verdict(
    *,
    unlocked: set[int],
    suspicion: Suspicion | None = None,
    now: datetime = T0,
    heartbeats: dict[int, datetime] | None = None,
    connected_for: timedelta = timedelta(minutes=5),
) -> Verdict:
    return judge(
        heartbeats=heartbeats if heartbeats is not None else {1: now, 2: now, 3: now},
        unlocked=unlocked,
        suspicion=suspicion or Suspicion(),
        now=now,
        connected_for=connected_for,
        check_interval=SECOND,
        settle=3 * SECOND,
        lost_after=LOST_AFTER,
    )


def test_one_look_at_a_missing_lock_only_makes_a_suspect() -> None:
    first = verdict(unlocked={2})
    assert first.dead == frozenset()
    assert first.suspicion.unlocked_since == {2: T0}


def test_a_lock_missing_at_two_checks_a_second_apart_is_a_death() -> None:
    first = verdict(unlocked={2})
    second = verdict(unlocked={2}, suspicion=first.suspicion, now=T0 + SECOND)
    assert second.dead == {2}
    assert second.suspicion.unlocked_since == {}  # declared: nothing left to remember


def test_two_checks_closer_than_the_interval_are_one_look() -> None:
    # A check on a hint may come right after the timed one: a terminated session's owner
    # needs a moment to lock again, so the second look must come a full interval later.
    first = verdict(unlocked={2})
    soon = verdict(unlocked={2}, suspicion=first.suspicion, now=T0 + SECOND / 10)
    assert soon.dead == frozenset()
    later = verdict(unlocked={2}, suspicion=soon.suspicion, now=T0 + SECOND)
    assert later.dead == {2}


def test_a_lock_taken_again_between_checks_forgives_the_suspect() -> None:
    first = verdict(unlocked={2})
    relocked = verdict(unlocked=set(), suspicion=first.suspicion, now=T0 + SECOND)
    assert relocked.dead == frozenset()
    again = verdict(unlocked={2}, suspicion=relocked.suspicion, now=T0 + 2 * SECOND)
    assert again.dead == frozenset()  # suspected anew, from this check
    assert again.suspicion.unlocked_since == {2: T0 + 2 * SECOND}


def test_a_judge_that_just_connected_judges_nobody_by_lock() -> None:
    # After a database restart every lock is gone until its owner reconnects (once a second).
    first = verdict(unlocked={1, 2, 3}, connected_for=timedelta(0))
    second = verdict(
        unlocked={1, 2, 3},
        suspicion=first.suspicion,
        now=T0 + SECOND,
        connected_for=SECOND,
    )
    assert second.dead == frozenset()
    settled = verdict(
        unlocked={2}, suspicion=second.suspicion, now=T0 + 3 * SECOND, connected_for=3 * SECOND
    )
    assert settled.dead == {2}  # unlocked ever since the first look


def test_a_stale_heartbeat_is_a_death_only_for_a_judge_connected_longer_than_lost_after() -> None:
    beats = {1: T0, 2: T0 - LOST_AFTER - SECOND}
    fresh_judge = verdict(unlocked=set(), heartbeats=beats, connected_for=LOST_AFTER)
    assert fresh_judge.dead == frozenset()
    old_judge = verdict(unlocked=set(), heartbeats=beats, connected_for=LOST_AFTER + SECOND)
    assert old_judge.dead == {2}


def test_a_heartbeat_exactly_lost_after_old_is_still_alive() -> None:
    beats = {2: T0 - LOST_AFTER}
    assert verdict(unlocked=set(), heartbeats=beats).dead == frozenset()


def test_jobs_that_stopped_running_are_forgotten() -> None:
    first = verdict(unlocked={2, 3})
    # Job 3 ended (or another judge declared it): it is no longer among the running.
    second = verdict(
        unlocked={3}, suspicion=first.suspicion, now=T0 + SECOND / 2, heartbeats={1: T0, 2: T0}
    )
    assert second.suspicion.unlocked_since == {}
    assert second.dead == frozenset()


@pytest.mark.parametrize(
    ("active", "live", "share"), [(10, 2, 5), (10, 3, 4), (9, 3, 3), (0, 2, 0), (1, 4, 1)]
)
def test_the_fair_share_rounds_up(active: int, live: int, share: int) -> None:
    assert fair_share(active, live) == share


def test_a_share_needs_a_live_scheduler() -> None:
    with pytest.raises(ValueError, match="live_schedulers must be at least 1"):
        fair_share(10, 0)


def test_claims_stop_at_the_share() -> None:
    assert to_claim(0, 4) == 4
    assert to_claim(3, 4) == 1
    assert to_claim(5, 4) == 0


def test_what_is_held_above_the_share_is_released() -> None:
    # 10 DAGs held 5/5 and a third scheduler joins: shares of 4, one each goes back.
    assert to_release(5, 4) == 1
    # A lone survivor of a failover hands back as peers join.
    assert to_release(10, 4) == 6
    assert to_release(4, 4) == 0
    assert to_release(2, 4) == 0


def test_claims_and_releases_settle_without_bouncing() -> None:
    # Any split of 10 DAGs over 3 schedulers, stepped as the keepers do (each takes free
    # DAGs up to its share, hands back above it), settles with all owned and nobody above 4.
    share = fair_share(10, 3)
    for start in ([10, 0, 0], [5, 5, 0], [0, 0, 0], [4, 4, 2], [6, 0, 3]):
        held = list(start)
        moves = 0
        for _ in range(5):
            for i in range(3):
                free = 10 - sum(held)
                back = to_release(held[i], share)
                take = min(free, to_claim(held[i], share))
                held[i] += take - back
                moves += take + back
        assert sum(held) == 10 and max(held) <= share, start
        # Settled: another round moves nothing.
        for i in range(3):
            assert to_release(held[i], share) == 0
            assert min(10 - sum(held), to_claim(held[i], share)) == 0
        assert moves <= 2 * 10
