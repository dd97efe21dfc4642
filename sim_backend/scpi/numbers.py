"""Decimal numeric program data (NR1/NR2/NR3) with unit suffixes and SI multipliers.

IEEE 488.2 §7.7.2–7.7.3: a mantissa, an optional exponent, optional white space, then an
optional suffix made of a multiplier and the unit (`50NS`, `2.5 MV`, `1KHZ`). The multiplier
`M` is milli, except in front of HZ and OHM where it is mega (`MHZ`, `MOHM`), which is why
`MA` is milliampere while `MAHZ` and `MHZ` are megahertz. Suffixes are case-insensitive.
Non-decimal forms `#H1F`, `#Q17`, `#B101` are accepted as integers.
"""

from __future__ import annotations

import re

from sim_backend.scpi.errors import ScpiError

_NUMBER = re.compile(
    r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[ \t]*[eE][ \t]*[+-]?\d+)?)[ \t]*([A-Za-z][A-Za-z0-9/%]*)?$"
)
_NON_DECIMAL = {
    "H": (16, re.compile(r"[0-9A-Fa-f]+$")),
    "Q": (8, re.compile(r"[0-7]+$")),
    "B": (2, re.compile(r"[01]+$")),
}

MULTIPLIERS = {
    "EX": 1e18, "PE": 1e15, "T": 1e12, "G": 1e9, "MA": 1e6, "K": 1e3,
    "M": 1e-3, "U": 1e-6, "N": 1e-9, "P": 1e-12, "F": 1e-15, "A": 1e-18,
}  # fmt: skip
_MEGA_WITH_M = frozenset({"HZ", "OHM"})


def looks_numeric(text: str) -> bool:
    """True when `text` starts like decimal or non-decimal numeric data."""
    first = text[:1]
    return first.isdigit() or first in "+-." or (first == "#" and text[1:2].upper() in _NON_DECIMAL)


def parse_number(text: str, unit: str | None) -> float:
    """The value of `text` in SI units of `unit` (None: the command takes no suffix).

    Raises ScpiError -121 (malformed number), -138 (a suffix where none is allowed),
    -131 (a suffix that is not `unit` with a multiplier), -123 (exponent too large).
    """
    if text.startswith("#"):
        base, digits = _NON_DECIMAL.get(text[1:2].upper(), (0, None))
        if digits is None or not digits.match(text, 2):
            raise ScpiError(-121)
        return float(int(text[2:], base))
    match = _NUMBER.match(text)
    if match is None:
        raise ScpiError(-121)
    mantissa, suffix = match.groups()
    value = float(mantissa.replace(" ", "").replace("\t", ""))
    if value in (float("inf"), float("-inf")):
        raise ScpiError(-123)
    if suffix is None:
        return value
    if unit is None:
        raise ScpiError(-138)
    return value * suffix_scale(suffix, unit)


def suffix_scale(suffix: str, unit: str) -> float:
    """Factor that converts a value with `suffix` to the bare `unit` (e.g. 'MV', 'V' -> 1e-3)."""
    upper, unit = suffix.upper(), unit.upper()
    if upper == unit:
        return 1.0
    if not upper.endswith(unit):
        raise ScpiError(-131)
    prefix = upper[: -len(unit)]
    if prefix == "M" and unit in _MEGA_WITH_M:
        return 1e6
    try:
        return MULTIPLIERS[prefix]
    except KeyError:
        raise ScpiError(-131) from None
