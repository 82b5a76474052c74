"""Web UI sessions on a real server (SQLite and PostgreSQL): a session ends when it expires,
when its user is disabled (however that happens) or gets a new password."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from slipstream.store.tables import users, web_sessions
from tests.api.conftest import ApiServer
from tests.web.conftest import PASSWORD, SignIn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def accounts(api: ApiServer) -> None:
    for name in ("expiring", "disabled", "reset", "other"):
        api.create_user(f"session_{name}", PASSWORD, "Viewer")


def user_id(api: ApiServer, username: str) -> int:
    with api.db.read() as conn:
        found: int = conn.execute(
            users.select().with_only_columns(users.c.id).where(users.c.username == username)
        ).scalar_one()
    return found


def test_an_expired_session_sends_the_browser_back_to_sign_in(
    api: ApiServer, sign_in: SignIn
) -> None:
    client = sign_in("session_expiring")
    other = sign_in("session_other")
    with api.db.write() as conn:
        conn.execute(
            update(web_sessions)
            .where(web_sessions.c.user_id == user_id(api, "session_expiring"))
            .values(expires_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    answer = client.get("/dags")
    assert (answer.status_code, answer.headers["location"]) == (303, "/sign-in?next=/dags")
    assert other.get("/dags").status_code == 200
    # Signing in again starts a new session.
    assert client.sign_in("session_expiring").status_code == 303
    assert client.get("/dags").status_code == 200


def test_a_user_disabled_in_the_database_is_signed_out_at_once(
    api: ApiServer, sign_in: SignIn
) -> None:
    client = sign_in("session_disabled")
    with api.db.write() as conn:  # as another tool might: no service call, rows left behind
        conn.execute(
            update(users).where(users.c.username == "session_disabled").values(active=False)
        )
    assert client.get("/dags").status_code == 303
    # Even a sign-in the password cache still accepts (for up to 5 s after a change made
    # outside this server) leads to no page: the new session's user is read as disabled.
    client.sign_in("session_disabled")
    assert client.get("/dags").status_code == 303


def test_a_password_reset_ends_every_session_of_the_user(api: ApiServer, sign_in: SignIn) -> None:
    first = sign_in("session_reset")
    second = sign_in("session_reset")
    other = sign_in("session_other")
    reset = api.slipstream(
        "users", "reset-password", "--username", "session_reset", "--password", "New-pass-w0rd"
    )
    assert reset.returncode == 0, reset.stderr
    assert first.get("/dags").status_code == 303
    assert second.get("/dags").status_code == 303
    assert other.get("/dags").status_code == 200
    assert first.sign_in("session_reset", "New-pass-w0rd").status_code == 303
