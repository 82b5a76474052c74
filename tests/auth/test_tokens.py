"""auth.tokens: token text, its hash, and the lifetimes the CLI takes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from slipstream.auth.tokens import (
    ApiToken,
    TokenKind,
    looks_like_token,
    new_token,
    parse_lifetime,
    token_hash,
)
from slipstream.errors import InvalidInputError


def test_new_tokens_are_prefixed_random_and_hashed_with_sha256() -> None:
    first, second = new_token(), new_token()
    assert first.startswith("slp_") and len(first) == 4 + 43
    assert first != second
    assert looks_like_token(first)
    assert token_hash(first) == hashlib.sha256(first.encode()).hexdigest()
    assert not looks_like_token("abc") and not looks_like_token("slp_short")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        (" 2D ", timedelta(days=2)),
        ("never", None),
        ("NEVER", None),
    ],
)
def test_lifetimes(raw: str, expected: timedelta | None) -> None:
    assert parse_lifetime(raw) == expected


@pytest.mark.parametrize("raw", ["", "30", "d", "1w", "-1d", "0h", "1.5h", "99999999999d"])
def test_bad_lifetimes_name_the_field(raw: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_lifetime(raw)
    assert caught.value.field == "expires"


def test_a_token_is_active_until_it_expires_or_is_revoked() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    token = ApiToken(1, "ada", "ci", TokenKind.API, now, now + timedelta(hours=1), None, None)
    assert token.is_active(now)
    assert not token.is_active(now + timedelta(hours=1))
    assert ApiToken(1, "ada", "ci", TokenKind.API, now, None, None, None).is_active(now)
    assert not ApiToken(1, "ada", "ci", TokenKind.API, now, None, None, now).is_active(now)
