"""Input framing: split the controller's byte stream into whole program messages.

A program message ends at LF (a CR before it is dropped). LF bytes do not end a message while
they sit inside an IEEE 488.2 block or a quoted string:

* definite block ``#<d><len><bytes>``: the framer skips exactly <len> bytes;
* indefinite block ``#0<bytes>`` and strings ('…' or "…"): run to LF+END (IEEE 488.2 §7.5).
  A byte stream carries no END line, so a `write_bytes` call stands for one END-terminated
  transfer (as a VISA write is): an LF that is the last byte of a call ends the message, an LF
  in the middle of a call is data. So an unbalanced quote costs one message (the parser reports
  it), not every message after it.

The framer scans each byte once (it resumes where it stopped), jumping from one special byte
to the next with a compiled regex, so a multi-megabyte block costs a few slices, not a loop.
"""

from __future__ import annotations

import re

_SPECIAL = re.compile(rb"[\n\"'#]")
_QUOTE_END = {ord('"'): re.compile(rb'"'), ord("'"): re.compile(rb"'")}
_DIGITS = frozenset(b"0123456789")


class InputOverrun(Exception):
    """The pending input grew past the buffer limit without completing a message."""


class MessageFramer:
    """Accumulates bytes; `feed` returns the program messages completed by them."""

    def __init__(self, limit_bytes: int = 256 * 1024 * 1024) -> None:
        self._limit = limit_bytes
        self.clear()

    def clear(self) -> None:
        """Drop pending input (device clear)."""
        self._buf = bytearray()
        self._pos = 0  # scanning resumes here; bytes before it are inside the current message
        self._quote: int | None = None  # opening quote byte while inside a string
        self._indefinite = False  # inside a #0 block

    @property
    def needed_bytes(self) -> int:
        """Bytes pending input must reach before the current message can end: what is buffered,
        or more when a definite block header has declared a longer block. A transport compares it
        with its limit to refuse `#9999999999` at once instead of buffering toward it."""
        return max(len(self._buf), self._pos)

    def feed(self, data: bytes) -> list[bytes]:
        """Append `data`; return the messages it completed, without their terminators."""
        self._buf += data
        messages: list[bytes] = []
        while True:
            end = self._scan()
            if end is None:
                break
            message = bytes(self._buf[:end])
            del self._buf[: end + 1]
            self._pos = 0
            messages.append(message[:-1] if message.endswith(b"\r") else message)
        if len(self._buf) > self._limit:
            self.clear()
            raise InputOverrun
        return messages

    def _scan(self) -> int | None:
        """Index of the LF ending the current message, or None if it is not complete yet."""
        buf = self._buf
        size = len(buf)
        pos = self._pos
        while pos < size:
            if self._indefinite:
                end = buf.find(b"\n", pos)
                while end != -1 and end != size - 1:
                    end = buf.find(b"\n", end + 1)
                if end == -1:
                    self._pos = size
                    return None
                self._indefinite = False
                self._pos = end
                return end
            if self._quote is not None:
                found = _QUOTE_END[self._quote].search(buf, pos)
                if found is None:
                    if buf.endswith(b"\n"):  # LF+END ends even an unterminated string
                        self._quote = None
                        self._pos = size - 1
                        return size - 1
                    self._pos = size
                    return None
                self._quote = None
                pos = found.end()
                continue
            found = _SPECIAL.search(buf, pos)
            if found is None:
                self._pos = size
                return None
            pos = found.start()
            byte = buf[pos]
            if byte == 0x0A:
                self._pos = pos
                return pos
            if byte != 0x23:  # a quote opens a string
                self._quote = byte
                pos += 1
                continue
            # '#': a block header, or something else (#H1F, a stray '#') that the parser judges.
            if pos + 1 >= size:
                break  # wait for the byte after '#'
            digits = buf[pos + 1]
            if digits == 0x30:
                self._indefinite = True
                pos += 2
                continue
            if digits not in _DIGITS:
                pos += 1
                continue
            count = digits - 0x30
            if pos + 2 + count > size:
                break  # wait for the whole length field
            length_field = bytes(buf[pos + 2 : pos + 2 + count])
            if not length_field.isdigit():
                pos += 1
                continue
            pos += 2 + count + int(length_field)
        self._pos = pos
        return None
