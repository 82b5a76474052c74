"""Password hashing with argon2id; the only module that touches plain passwords' hashes."""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults (RFC 9106's low-memory profile, argon2id). A constant: the hasher holds
# parameters only, no state. Raising them later makes needs_rehash() true for old hashes.
_HASHER = PasswordHasher()

_RANDOM_ALPHABET = string.ascii_letters + string.digits


def hash_password(plain: str) -> str:
    """An argon2id hash (`$argon2id$...`) with a fresh random salt."""
    return _HASHER.hash(plain)


def verify_password(stored_hash: str, plain: str) -> bool:
    """Whether `plain` matches `stored_hash`; False (never an exception) for a wrong password
    or a hash that is not argon2 at all."""
    try:
        return _HASHER.verify(stored_hash, plain)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (or is not argon2)."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def random_password(length: int = 16) -> str:
    """A password from the OS's secure random source: letters and digits, easy to paste."""
    return "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(length))
