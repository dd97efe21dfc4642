"""Lexer for one program message: `;`-separated units, each a header and its raw parameters.

The message arrives without its terminator and is decoded as Latin-1 (one char per byte), so
block data survives untouched and can be re-encoded exactly. Units are produced one at a time:
the personality executes a unit before the next is lexed, so a syntax error late in a message
leaves the earlier units executed (IEEE 488.2 §6.1.6: the parser stops at the error).

Parameters stay raw here: numbers and character data as stripped text, quoted strings as
`Quoted`, blocks as `Block`. Converting them is the declared parameter type's job.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from sim_backend.scpi.errors import ScpiError

# Header: a common command (*IDN) or a compound header (:SOUR1:VOLT), then an optional '?'.
_HEADER = re.compile(r"[ \t]*(\*[A-Za-z]+|:?[A-Za-z][A-Za-z0-9_]*(?::[A-Za-z][A-Za-z0-9_]*)*)(\?)?")
# Bytes that never belong in program text outside strings and blocks (IEEE 488.2 §7.4.1.2).
_INVALID = re.compile(r"[^\x20-\x7e\t]")
# Plain parameter text up to the next byte that ends or structures it.
_PLAIN = re.compile(r"[^,;\"'#()]*")
_WHITE = " \t"
_BLANK_TO_END = re.compile(r"[ \t]*\Z")  # matched in place: no copy of the rest per unit


@dataclass(frozen=True, slots=True)
class Quoted:
    """String program data, quotes removed and doubled quotes collapsed."""

    text: str


@dataclass(frozen=True, slots=True)
class Block:
    """Arbitrary block program data (definite or indefinite)."""

    data: bytes


Token = str | Quoted | Block


@dataclass(frozen=True, slots=True)
class Unit:
    """One program message unit: `header` as sent (case kept), query flag, raw parameters."""

    header: str
    query: bool
    params: tuple[Token, ...]


def units(message: str) -> Iterator[Unit]:
    """Yield the units of `message`; raise ScpiError at the first malformed one."""
    pos, size = 0, len(message)
    while True:
        match = _HEADER.match(message, pos)
        if match is None:
            rest = message[pos:].lstrip(_WHITE)
            if not rest and pos == 0:
                return  # an empty message is legal and does nothing
            raise ScpiError(-101 if rest and _INVALID.match(rest) else -102)
        header, query = match.group(1), match.group(2) is not None
        pos = match.end()
        params: list[Token] = []
        if pos < size and message[pos] in _WHITE:
            while pos < size and message[pos] in _WHITE:
                pos += 1
            if pos < size and message[pos] != ";":
                pos = _params(message, pos, params)
        if pos < size and message[pos] != ";":
            # Right after a header: a stray character in it (SETUP&); after parameters: structure.
            raise ScpiError(-101 if not params or _INVALID.match(message, pos) else -102)
        yield Unit(header, query, tuple(params))
        if pos >= size:
            return
        pos += 1  # past ';'
        if _BLANK_TO_END.match(message, pos):
            return  # a trailing ';' is tolerated


def _params(message: str, pos: int, out: list[Token]) -> int:
    """Lex comma-separated parameters from `pos`; return the index of ';' or the end."""
    size = len(message)
    while True:
        while pos < size and message[pos] in _WHITE:
            pos += 1
        if pos >= size or message[pos] in ",;":
            raise ScpiError(-102)  # empty parameter
        char = message[pos]
        if char in "\"'":
            token, pos = _quoted(message, pos)
        elif char == "#" and pos + 1 < size and message[pos + 1].isdigit():
            token, pos = _block(message, pos)
        else:
            token, pos = _plain(message, pos)
        out.append(token)
        while pos < size and message[pos] in _WHITE:
            pos += 1
        if pos >= size or message[pos] == ";":
            return pos
        if message[pos] != ",":
            raise ScpiError(-101 if _INVALID.match(message, pos) else -102)
        pos += 1


def _quoted(message: str, pos: int) -> tuple[Quoted, int]:
    quote = message[pos]
    parts: list[str] = []
    start = pos + 1
    while True:
        end = message.find(quote, start)
        if end == -1:
            raise ScpiError(-151)  # unterminated string
        parts.append(message[start:end])
        if message.startswith(quote, end + 1):  # a doubled quote stands for one
            parts.append(quote)
            start = end + 2
            continue
        return Quoted("".join(parts)), end + 1


def _block(message: str, pos: int) -> tuple[Block, int]:
    digits = int(message[pos + 1])
    if digits == 0:  # indefinite: everything to the end of the message
        return Block(message[pos + 2 :].encode("latin-1")), len(message)
    length_field = message[pos + 2 : pos + 2 + digits]
    if len(length_field) != digits or not length_field.isdigit():
        raise ScpiError(-161)
    start = pos + 2 + digits
    end = start + int(length_field)
    if end > len(message):
        raise ScpiError(-161)
    return Block(message[start:end].encode("latin-1")), end


def _plain(message: str, pos: int) -> tuple[str, int]:
    """Numeric, character or expression data, up to ',' or ';' outside parentheses."""
    start = pos
    if message[pos] == "#":
        pos += 1  # non-decimal numeric: #H1F, #B101, #Q17
    pos = _PLAIN.match(message, pos).end()  # type: ignore[union-attr]  # always matches
    depth = 0
    size = len(message)
    while pos < size:
        char = message[pos]
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                raise ScpiError(-102)
            depth -= 1
        elif depth == 0 and char in ",;":
            break
        elif char in "\"'#":
            raise ScpiError(-102)
        pos += 1
    if depth:
        raise ScpiError(-102)
    text = message[start:pos].rstrip(_WHITE)
    if _INVALID.search(text):
        raise ScpiError(-101)
    return text, pos
