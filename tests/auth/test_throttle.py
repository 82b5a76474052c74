"""auth.throttle with a FrozenClock: sliding windows per username and per address, lockouts
that end, and successes that forgive a username but not an address."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slipstream.auth.throttle import LoginThrottle
from slipstream.clock import FrozenClock

ADDRESS = "10.0.0.7"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))


def throttle(clock: FrozenClock, **limits: int) -> LoginThrottle:
    return LoginThrottle(
        clock=clock,
        max_per_user=limits.get("user", 3),
        max_per_address=limits.get("address", 5),
        window=60,
        lockout=120,
    )


def test_a_username_is_locked_at_its_limit_and_unlocked_after_the_lockout(
    clock: FrozenClock,
) -> None:
    policy = throttle(clock)
    for _ in range(2):
        policy.failed("ada", ADDRESS)
        assert policy.retry_after("ada", ADDRESS) is None
    policy.failed("ada", ADDRESS)
    assert policy.retry_after("ada", ADDRESS) == 120
    assert policy.retry_after("ada", "10.9.9.9") == 120  # the username, from anywhere
    assert policy.retry_after("bob", ADDRESS) is None  # the address is under its own limit
    clock.advance(119.5)
    assert policy.retry_after("ada", ADDRESS) == 1  # rounded up: never 0
    clock.advance(0.5)
    assert policy.retry_after("ada", ADDRESS) is None
    policy.failed("ada", ADDRESS)  # a fresh window after the lockout
    assert policy.retry_after("ada", ADDRESS) is None


def test_failures_older_than_the_window_do_not_count(clock: FrozenClock) -> None:
    policy = throttle(clock)
    policy.failed("ada", ADDRESS)
    policy.failed("ada", ADDRESS)
    clock.advance(60)
    policy.failed("ada", ADDRESS)
    assert policy.retry_after("ada", ADDRESS) is None
    clock.advance(30)
    policy.failed("ada", ADDRESS)
    assert policy.retry_after("ada", ADDRESS) is None
    policy.failed("ada", ADDRESS)  # three within the last 60 s
    assert policy.retry_after("ada", ADDRESS) == 120


def test_an_address_is_locked_for_every_username(clock: FrozenClock) -> None:
    policy = throttle(clock, user=100, address=5)
    for i in range(5):
        policy.failed(f"guess{i}", ADDRESS)
    assert policy.retry_after("ada", ADDRESS) == 120
    assert policy.retry_after("ada", "10.0.0.8") is None


def test_a_success_forgives_the_username_but_not_the_address(clock: FrozenClock) -> None:
    policy = throttle(clock, user=3, address=4)
    policy.failed("ada", ADDRESS)
    policy.failed("ada", ADDRESS)
    policy.succeeded("ada")
    policy.failed("ada", ADDRESS)
    policy.failed("ada", ADDRESS)
    assert policy.retry_after("ada", None) is None  # two since the success
    assert policy.retry_after(None, ADDRESS) == 120  # four from the address in all


def test_a_success_does_not_lift_a_lock(clock: FrozenClock) -> None:
    policy = throttle(clock)
    for _ in range(3):
        policy.failed("ada", ADDRESS)
    policy.succeeded("ada")
    assert policy.retry_after("ada", None) == 120


def test_unknown_addresses_count_only_the_username(clock: FrozenClock) -> None:
    policy = throttle(clock, user=3, address=1)
    policy.failed("ada", None)
    assert policy.retry_after("ada", None) is None
    policy.failed("ada", None)
    policy.failed("ada", None)
    assert policy.retry_after("ada", None) == 120


def test_remembers_at_most_max_keys(clock: FrozenClock) -> None:
    policy = LoginThrottle(clock=clock, max_per_user=1, max_per_address=1000, max_keys=10)
    for i in range(20):
        policy.failed(f"user{i}", None)
    assert policy.retry_after("user19", None) is not None
    assert policy.retry_after("user0", None) is None  # dropped, oldest first


def test_refuses_limits_that_cannot_work(clock: FrozenClock) -> None:
    with pytest.raises(ValueError):
        LoginThrottle(clock=clock, max_per_user=0)
    with pytest.raises(ValueError):
        LoginThrottle(clock=clock, lockout=0)
