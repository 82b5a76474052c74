"""Failed-login limiting: a pure, clock-driven policy that says when a username or a client
address has failed too often and for how long it stays locked.

Failures are counted per username and per client address in a sliding window; reaching a limit
locks that key for `lockout` seconds, during which every attempt is refused before the password
is even checked, right or wrong (else guessing would simply go on). A success clears the
username's count but not the address's, so one known account cannot launder an address's
guesses. State is per process memory: with several API workers each counts on its own, so the
effective limit is at most the limit times the number of workers.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from slipstream.clock import Clock

MAX_PER_USER = 10
MAX_PER_ADDRESS = 50
WINDOW_SECONDS = 300.0
LOCKOUT_SECONDS = 300.0
MAX_KEYS = 10_000


@dataclass(slots=True)
class _Tally:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class LoginThrottle:
    """Counts failed sign-ins and answers how long a (username, address) must wait.

    Defaults: 10 failures per username or 50 per address within 5 minutes lock that key for
    5 minutes. At most `max_keys` keys are remembered, the least recently touched dropped first.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        max_per_user: int = MAX_PER_USER,
        max_per_address: int = MAX_PER_ADDRESS,
        window: float = WINDOW_SECONDS,
        lockout: float = LOCKOUT_SECONDS,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if min(max_per_user, max_per_address, max_keys) < 1 or window <= 0 or lockout <= 0:
            raise ValueError("throttle limits, window and lockout must be positive")
        self._clock = clock
        self._limits = {"user": max_per_user, "address": max_per_address}
        self._window = window
        self._lockout = lockout
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._tallies: OrderedDict[tuple[str, str], _Tally] = OrderedDict()

    @staticmethod
    def _keys(username: str | None, address: str | None) -> list[tuple[str, str]]:
        keys = []
        if username is not None:
            keys.append(("user", username))
        if address is not None:
            keys.append(("address", address))
        return keys

    def retry_after(self, username: str | None, address: str | None) -> int | None:
        """Whole seconds until this username and address may try again, or None if neither
        is locked now."""
        now = self._clock.monotonic()
        wait = 0.0
        with self._lock:
            for key in self._keys(username, address):
                tally = self._tallies.get(key)
                if tally is not None and tally.locked_until > now:
                    wait = max(wait, tally.locked_until - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, username: str | None, address: str | None) -> None:
        """Count one failed sign-in against both keys; lock a key that reaches its limit."""
        now = self._clock.monotonic()
        with self._lock:
            for key in self._keys(username, address):
                tally = self._tallies.pop(key, None) or _Tally()
                self._tallies[key] = tally  # most recently touched last
                self._expire(tally, now)
                tally.failures.append(now)
                if len(tally.failures) >= self._limits[key[0]]:
                    tally.locked_until = now + self._lockout
                    tally.failures.clear()
            while len(self._tallies) > self._max_keys:
                self._tallies.popitem(last=False)

    def succeeded(self, username: str) -> None:
        """A correct sign-in: the username's failures are forgiven (its lock, if any, stays)."""
        now = self._clock.monotonic()
        with self._lock:
            tally = self._tallies.get(("user", username))
            if tally is not None:
                tally.failures.clear()
                if tally.locked_until <= now:
                    del self._tallies[("user", username)]

    def _expire(self, tally: _Tally, now: float) -> None:
        while tally.failures and now - tally.failures[0] >= self._window:
            tally.failures.popleft()
