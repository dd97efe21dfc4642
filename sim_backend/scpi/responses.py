"""Building answers: IEEE 488.2 blocks and number formats instruments commonly use."""

from __future__ import annotations

#: Keysight-style NR3 as the 33500B answers (`+1.000000000000000E-01`).
NR3_KEYSIGHT = "{:+.15E}"


def definite_block(data: bytes | bytearray | memoryview) -> bytes:
    """``#<d><len><data>`` (IEEE 488.2 §8.7.9). Raises ValueError past 999,999,999 bytes."""
    length = str(len(data))
    if len(length) > 9:
        raise ValueError("a definite block holds at most 999,999,999 bytes")
    return b"#" + str(len(length)).encode() + length.encode() + bytes(data)


def indefinite_block(data: bytes | bytearray | memoryview) -> bytes:
    """``#0<data>``: ended by the response terminator, so it must be a message's last answer."""
    return b"#0" + bytes(data)


def quoted(text: str) -> str:
    """String response data: double quotes, inner ones doubled."""
    return '"' + text.replace('"', '""') + '"'
