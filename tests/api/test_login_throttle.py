"""The failed-login throttle over HTTP on a real server of its own (on SQLite): repeated failures
through /auth/token and HTTP Basic get 429 with Retry-After, right password or not, and the
server log names the user and address but never a password."""

from __future__ import annotations

import secrets

import pytest

from tests.api.conftest import ApiServer
from tests.api.test_tokens import WRONG, bearer, cli_token, new_token, trigger

# One backend: the throttle lives in the server process's memory, and the same requests on
# PostgreSQL ran the same code to the same answers (each guess costs an argon2id check).
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("fresh_api", ["sqlite"], indirect=True)]


def test_repeated_failures_lock_the_user_out_with_429(fresh_api: ApiServer) -> None:
    victim = f"victim_{secrets.token_hex(4)}"
    fresh_api.create_user(victim, "V1ctim-pass-word", "Op")
    token = cli_token(fresh_api, victim, "ci")
    fresh_api.sync_dags()  # the token then triggers my_dag
    fresh_api.start()
    base = fresh_api.base
    for i in range(10):
        # Both doors count against one throttle: /auth/token and Basic on the experimental API.
        if i % 2:
            assert new_token(base, victim, f"{WRONG}{i}").status_code == 401
        else:
            assert trigger(base, auth=(victim, f"{WRONG}{i}")).status_code == 403
    for response in (
        new_token(base, victim, "V1ctim-pass-word"),  # right, and refused all the same
        trigger(base, auth=(victim, "V1ctim-pass-word")),
    ):
        assert response.status_code == 429, response.text
        assert 0 < int(response.headers["Retry-After"]) <= 300
    assert new_token(base, victim, WRONG).json()["status"] == 429
    assert "try again" in trigger(base, auth=(victim, WRONG)).json()["error"]
    # A bearer token is not a password guess: it still works.
    assert trigger(base, headers=bearer(token)).status_code == 200
    fresh_api.stop()
    log = fresh_api.output("api")
    assert f"failed sign-in for user {victim!r} from 127.0.0.1" in log
    assert "V1ctim-pass-word" not in log and WRONG not in log


def test_many_failures_from_one_address_lock_every_username_from_it(
    fresh_api: ApiServer,
) -> None:
    known = f"known_{secrets.token_hex(4)}"
    fresh_api.create_user(known, "Kn0wn-pass-word", "Op")
    fresh_api.start()
    base = fresh_api.base
    assert new_token(base, known, "Kn0wn-pass-word").status_code == 201
    for i in range(50):  # a spray: one guess per made-up username
        assert new_token(base, f"spray{i}", WRONG).status_code == 401
    locked = new_token(base, known, "Kn0wn-pass-word")
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
