from __future__ import annotations

from slipstream.runner.frames import FrameDecoder, encode_frame


def test_messages_survive_any_chunking() -> None:
    messages = [{"n": n, "text": "x" * n} for n in range(50)]
    stream = b"".join(encode_frame(m) for m in messages)
    for chunk in (1, 3, 64, len(stream)):
        decoder = FrameDecoder()
        out: list[object] = []
        for start in range(0, len(stream), chunk):
            out += decoder.feed(stream[start : start + chunk])
        assert out == messages
        assert not decoder.has_partial


def test_a_cut_message_is_partial() -> None:
    decoder = FrameDecoder()
    frame = encode_frame("hello")
    assert decoder.feed(frame[:-1]) == []
    assert decoder.has_partial
