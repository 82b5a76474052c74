"""Secret keys kept in files of their own: made once (256 random bits, hex, mode 0600) by
whichever process needs one first, then read by every process of the install."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def load_or_create_key(path: Path) -> bytes:
    """The key stored at `path`, created now if the file is missing or empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        text = path.read_text().strip()
        if text:
            return bytes.fromhex(text)
    # Write a whole file under a temporary name, then link it into place: a process racing us
    # either wins (and we read its key) or loses; nobody reads a half-written key.
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    try:
        os.link(temporary, path)
    except FileExistsError:
        if not path.read_text().strip():
            # An empty file (made by hand, say) holds no key: ours takes its place.
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())
