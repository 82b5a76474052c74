"""Length-prefixed pickle frames: how a try's result and worker messages cross pipes and sockets.

Both ends are processes forked from one Slipstream installation, so pickle is safe and cheapest.
"""

from __future__ import annotations

import pickle
import struct

FRAME_HEADER = struct.Struct("!I")
_HEADER = FRAME_HEADER


def encode_frame(message: object) -> bytes:
    """One message as bytes: a 4-byte big-endian length, then the pickle."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


class FrameDecoder:
    """Turns a byte stream, fed in arbitrary chunks, back into whole messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[object]:
        self._buffer += data
        messages: list[object] = []
        start = 0
        while len(self._buffer) - start >= _HEADER.size:
            (length,) = _HEADER.unpack_from(self._buffer, start)
            end = start + _HEADER.size + length
            if len(self._buffer) < end:
                break
            messages.append(pickle.loads(self._buffer[start + _HEADER.size : end]))
            start = end
        if start:
            del self._buffer[:start]
        return messages

    @property
    def has_partial(self) -> bool:
        """True when bytes of an unfinished message are waiting: the sender died mid-write."""
        return bool(self._buffer)
