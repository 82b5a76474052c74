"""Password sign-ins behind the failed-login throttle: the one door that HTTP Basic, POST
/auth/token and the web UI's sign-in form share, so failures anywhere count everywhere and a
lock holds for all of them (in one server process: the throttle's counts are its memory)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slipstream.auth.throttle import LoginThrottle
from slipstream.core.records import User
from slipstream.errors import SignInLocked

log = logging.getLogger(__name__)


class SignInGate:
    def __init__(
        self,
        authenticate: Callable[[str, str], User | None],
        throttle: LoginThrottle | None,
    ) -> None:
        self._authenticate = authenticate
        self._throttle = throttle

    def retry_after(self, username: str | None, address: str | None) -> int | None:
        """Seconds until this username and address may try again, or None if not locked."""
        if self._throttle is None:
            return None
        return self._throttle.retry_after(username, address)

    def sign_in(self, username: str, password: str, address: str | None) -> User | None:
        """The active user with these credentials, or None (counted as a failure and logged,
        without the password). SignInLocked while the username or the address is locked,
        before the password is checked: right or wrong, it is not looked at."""
        wait = self.retry_after(username, address)
        if wait is not None:
            log.warning(
                "sign-in refused for user %r from %s: locked after repeated failures"
                " for %d more seconds",
                username,
                address,
                wait,
            )
            raise SignInLocked(username, wait)
        user = self._authenticate(username, password)
        if user is None or not user.active:
            log.warning("failed sign-in for user %r from %s", username, address)
            if self._throttle is not None:
                self._throttle.failed(username, address)
            return None
        if self._throttle is not None:
            self._throttle.succeeded(username)
        return user
