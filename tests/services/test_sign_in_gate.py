"""services.sign_in_gate: password sign-ins behind the failed-login throttle, as the API and
the web UI share it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slipstream.auth.throttle import LoginThrottle
from slipstream.clock import FrozenClock
from slipstream.core.records import User
from slipstream.errors import SignInLocked
from slipstream.services.sign_in_gate import SignInGate

NOW = datetime(2026, 3, 1, tzinfo=UTC)
ADA = User(1, "ada", "ada@x", "Ada", "L", True, ("Admin",), NOW, NOW, None, 0, 0)


def authenticate(username: str, password: str) -> User | None:
    return ADA if (username, password) == ("ada", "right") else None


def test_failures_lock_the_name_before_the_password_is_looked_at() -> None:
    clock = FrozenClock(NOW)
    checked: list[str] = []

    def counting(username: str, password: str) -> User | None:
        checked.append(password)
        return authenticate(username, password)

    gate = SignInGate(counting, LoginThrottle(clock=clock, max_per_user=3))
    assert gate.sign_in("ada", "right", "10.0.0.1") == ADA
    for _ in range(3):
        assert gate.sign_in("ada", "wrong", "10.0.0.1") is None
    with pytest.raises(SignInLocked) as locked:
        gate.sign_in("ada", "right", "10.0.0.1")
    assert locked.value.retry_after == 300 and locked.value.username == "ada"
    assert checked == ["right", "wrong", "wrong", "wrong"]  # the locked try was not checked
    assert gate.retry_after("ada", None) == 300
    clock.advance(301)
    assert gate.retry_after("ada", None) is None
    assert gate.sign_in("ada", "right", "10.0.0.1") == ADA


def test_without_a_throttle_nothing_locks() -> None:
    gate = SignInGate(authenticate, None)
    for _ in range(20):
        assert gate.sign_in("ada", "wrong", None) is None
    assert gate.retry_after("ada", None) is None
    assert gate.sign_in("ada", "right", None) == ADA
