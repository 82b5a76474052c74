"""auth.passwords: argon2id hashes that verify, refuse, and report when they are outdated."""

from __future__ import annotations

import string

from argon2 import PasswordHasher

from slipstream.auth.passwords import (
    hash_password,
    needs_rehash,
    random_password,
    verify_password,
)


def test_a_hash_is_argon2id_salted_and_never_the_password() -> None:
    first = hash_password("correct horse")
    second = hash_password("correct horse")
    assert first.startswith("$argon2id$")
    assert "correct horse" not in first
    assert first != second  # a fresh salt each time


def test_verify_accepts_the_password_and_refuses_others_without_raising() -> None:
    stored = hash_password("s3cret")
    assert verify_password(stored, "s3cret")
    assert not verify_password(stored, "S3cret")
    assert not verify_password(stored, "")
    assert not verify_password("not a hash", "s3cret")
    assert not verify_password("", "s3cret")


def test_needs_rehash_for_weaker_parameters_or_foreign_hashes() -> None:
    assert not needs_rehash(hash_password("x"))
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("x")
    assert verify_password(weak, "x")
    assert needs_rehash(weak)
    assert needs_rehash("plain text")


def test_random_passwords_are_16_letters_and_digits_and_differ() -> None:
    made = {random_password() for _ in range(50)}
    assert len(made) == 50
    for password in made:
        assert len(password) == 16
        assert set(password) <= set(string.ascii_letters + string.digits)
