"""Declared parameter types: each turns one raw token into a Python value, or raises ScpiError.

A command lists its parameters once; the same object converts what the controller sends and
formats what a query answers. Errors follow SCPI-99 §21.8.4:

* wrong kind of data (a string where a number is due, …)   -104 Data type error
* number outside [min, max]                                -222 Data out of range
* character data that is not one of the choices            -224 Illegal parameter value
* unit suffix problems                                     -131 / -138 (see numbers.py)

`MIN`/`MAX`/`DEF` (or `MINimum`/`MAXimum`/`DEFault`) stand for the declared limits and default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.lexer import Block, Quoted, Token
from sim_backend.scpi.numbers import looks_numeric, parse_number

LIMIT_WORDS: Mapping[str, str] = {
    "MIN": "min", "MINIMUM": "min", "MAX": "max", "MAXIMUM": "max", "DEF": "default", "DEFAULT": "default",
}  # fmt: skip


def mnemonic_forms(name: str) -> tuple[str, str]:
    """Short and long form of a mnemonic written SCPI-style: 'SOURce' -> ('SOUR', 'SOURCE')."""
    return "".join(c for c in name if not c.islower()), name.upper()


@dataclass(frozen=True, kw_only=True)
class Param:
    """Base of all parameter types. `optional`: may be left out (the handler then gets None)."""

    optional: bool = False

    def convert(self, token: Token) -> object:
        raise NotImplementedError

    def format(self, value: object) -> str:
        return str(value)


class Numeric(Param):
    """Shared by Real and Integer: numbers, MIN/MAX/DEF, range check."""

    unit: str | None
    min: float | None
    max: float | None
    default: float | None
    fmt: str | None

    def number(self, token: Token) -> float:
        if not isinstance(token, str):
            raise ScpiError(-104)
        value = parse_number(token, self.unit) if looks_numeric(token) else self.limit(token)
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise ScpiError(-222)
        return value

    def limit(self, word: str) -> float:
        """The value MIN/MAX/DEF stands for; -224 if the command declares none, -104 for other text."""
        name = LIMIT_WORDS.get(word.upper())
        if name is None:
            raise ScpiError(-104)
        value = getattr(self, name)
        if value is None:
            raise ScpiError(-224)
        return value


@dataclass(frozen=True)
class Real(Numeric):
    """A real number in SI units of `unit` (None: no suffix allowed), e.g. ``Real("V", 0, 10)``.

    `fmt` formats query answers (a str.format pattern, e.g. ``"{:+.15E}"``); default repr().
    """

    unit: str | None = None
    min: float | None = None
    max: float | None = None
    default: float | None = None
    fmt: str | None = None

    def convert(self, token: Token) -> float:
        return self.number(token)

    def format(self, value: object) -> str:
        return self.fmt.format(value) if self.fmt else repr(float(value))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Integer(Numeric):
    """An integer, e.g. ``Integer(1, 1_000_000)``; decimals are rounded (IEEE 488.2 §7.7.2.5)."""

    min: float | None = None
    max: float | None = None
    default: float | None = None
    fmt: str | None = None
    unit: str | None = None

    def convert(self, token: Token) -> int:
        return _round_half_up(self.number(token))

    def format(self, value: object) -> str:
        return self.fmt.format(value) if self.fmt else str(int(value))  # type: ignore[call-overload]


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


@dataclass(frozen=True)
class Boolean(Param):
    """ON/OFF or a number (non-zero after rounding is ON, SCPI-99 §7.3). Answers 1 or 0."""

    def convert(self, token: Token) -> bool:
        if not isinstance(token, str):
            raise ScpiError(-104)
        upper = token.upper()
        if upper in ("ON", "OFF"):
            return upper == "ON"
        if looks_numeric(token):
            return _round_half_up(parse_number(token, None)) != 0
        raise ScpiError(-224)

    def format(self, value: object) -> str:
        return "1" if value else "0"


@dataclass(frozen=True, init=False)
class Choice(Param):
    """Character data from a fixed set, written SCPI-style: ``Choice("SINusoid", "PULSe")``.

    Short or long form, any case, is accepted; the handler gets the short form in upper case
    ('SIN', 'PULS'), which is also how instruments answer the query.
    """

    options: tuple[str, ...]
    _lookup: Mapping[str, str] = field(repr=False, compare=False)

    def __init__(self, *options: str, optional: bool = False) -> None:
        lookup: dict[str, str] = {}
        for option in options:
            short, long = mnemonic_forms(option)
            lookup[short] = lookup[long] = short
        object.__setattr__(self, "optional", optional)
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "_lookup", lookup)

    def convert(self, token: Token) -> str:
        if not isinstance(token, str):
            raise ScpiError(-104)
        found = self._lookup.get(token.upper())
        if found is not None:
            return found
        raise ScpiError(-104 if looks_numeric(token) else -224)


@dataclass(frozen=True)
class String(Param):
    """Quoted string data; answers are quoted with `"` (inner quotes doubled)."""

    max_length: int | None = None

    def convert(self, token: Token) -> str:
        if not isinstance(token, Quoted):
            raise ScpiError(-104)
        if self.max_length is not None and len(token.text) > self.max_length:
            raise ScpiError(-223)
        return token.text

    def format(self, value: object) -> str:
        return '"' + str(value).replace('"', '""') + '"'


@dataclass(frozen=True)
class Binary(Param):
    """Arbitrary block data (#<d><len>… or #0…); the handler gets bytes."""

    def convert(self, token: Token) -> bytes:
        if not isinstance(token, Block):
            raise ScpiError(-104)
        return token.data


@dataclass(frozen=True)
class Repeated(Param):
    """The rest of a unit's parameters, each converted by `each` (a list of points such as
    DATA:ARB's): declared last; the handler gets a tuple of at least `minimum` values."""

    each: Param
    minimum: int = 1

    def convert(self, token: Token) -> object:
        return self.each.convert(token)


@dataclass(frozen=True)
class Raw(Param):
    """Any token unconverted (str, Quoted or Block): an escape hatch for odd syntaxes."""

    def convert(self, token: Token) -> Token:
        return token
