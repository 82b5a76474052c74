"""Fernet encryption of the values stored at rest (Variables, Connection passwords and extras):
a MultiFernet over the keys in use, the first encrypting, every one decrypting.

The key comes from SLIPSTREAM_FERNET_KEY (validated in config), else from a key file made once
in $SLIPSTREAM_HOME. Nothing is resolved, and `cryptography` not imported, until a value is
encrypted or decrypted: processes that never touch a secret never pay for it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from slipstream.errors import UndecryptableSecret
from slipstream.keyfile import load_or_create_key

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet


class Cipher:
    """Encrypts with the first key, decrypts with any; `rotate` re-encrypts with the first."""

    def __init__(self, keys: Sequence[str], key_file: Path) -> None:
        self._keys = tuple(keys)
        self._key_file = key_file
        self._fernet: MultiFernet | None = None

    def _multi(self) -> MultiFernet:
        if self._fernet is None:
            from cryptography.fernet import Fernet, MultiFernet

            keys = self._keys or (
                base64.urlsafe_b64encode(load_or_create_key(self._key_file)).decode("ascii"),
            )
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        return self._fernet

    def encrypt(self, text: str) -> str:
        return self._multi().encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, *, kind: str, name: str) -> str:
        """The plain text; UndecryptableSecret naming the variable or connection when no key
        in use opens it (never the token, which says nothing useful)."""
        from cryptography.fernet import InvalidToken

        try:
            return self._multi().decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise UndecryptableSecret(kind, name) from None

    def rotate(self, token: str, *, kind: str, name: str) -> str:
        """The token re-encrypted with the first key."""
        from cryptography.fernet import InvalidToken

        try:
            return self._multi().rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError, ValueError):
            raise UndecryptableSecret(kind, name) from None
