"""Decimal numeric program data (NR1/NR2/NR3) with unit suffixes and SI multipliers.

IEEE 488.2 §7.7.2–7.7.3: a mantissa, an optional exponent, optional white space, then an
optional suffix made of a multiplier and the unit (`50NS`, `2.5 MV`, `1KHZ`). The multiplier
`M` is milli, except in front of HZ and OHM where it is mega (`MHZ`, `MOHM`), which is why
`MA` is milliampere while `MAHZ` and `MHZ` are megahertz. Suffixes are case-insensitive.
Non-decimal forms `#H1F`, `#Q17`, `#B101` are accepted as integers.

Size limits (IEEE 488.2 §7.7.2.4.1, SCPI-99 §21.8.9): an exponent of magnitude above 32000 is
-123, a mantissa of more than 255 digits (leading zeros excluded) is -124. A number within those
limits that no double can hold (1E999) is beyond every parameter's range: -222. One that rounds
to zero (1E-400) is zero, the device's resolution being far coarser.

Instruments whose manuals define only plain decimal numbers (Lake Shore) use `plain_decimal`.
"""

from __future__ import annotations

import math
import re

from sim_backend.scpi.errors import ScpiError

_NUMBER = re.compile(
    r"([+-]?(?:\d+\.?\d*|\.\d+))(?:[ \t]*[eE][ \t]*([+-]?\d+))?[ \t]*([A-Za-z][A-Za-z0-9/%]*)?$"
)
# A plain decimal number: sign, digits, point, exponent; no white space, keyword, suffix or '#'.
_PLAIN_DECIMAL = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]([+-]?\d+))?$")
_MAX_EXPONENT = 32000
_MAX_DIGITS = 255
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
    -131 (a suffix that is not `unit` with a multiplier), -123 (exponent above 32000),
    -124 (more than 255 digits), -222 (beyond what a double holds).
    """
    if text.startswith("#"):
        base, digits = _NON_DECIMAL.get(text[1:2].upper(), (0, None))
        if digits is None or not digits.match(text, 2):
            raise ScpiError(-121)
        try:
            return float(int(text[2:], base))
        except OverflowError:
            raise ScpiError(-222) from None
    match = _NUMBER.match(text)
    if match is None:
        raise ScpiError(-121)
    mantissa, exponent, suffix = match.groups()
    value = _decimal(mantissa, exponent)
    if suffix is None:
        return value
    if unit is None:
        raise ScpiError(-138)
    return value * suffix_scale(suffix, unit)


def plain_decimal(text: str) -> float:
    """The value of a number as a manual without IEEE 488.2's numeric forms defines it.

    Only sign, digits, a decimal point and an exponent: -120 for keywords (MIN, MAX), non-decimal
    forms (#H1F), suffixes and inner white space, and for a number that is not what it says
    (1E-999999 rounding to 0, 1E999 overflowing): such an instrument does not take it as a limit.
    """
    match = _PLAIN_DECIMAL.match(text)
    if match is None:
        raise ScpiError(-120)
    mantissa, exponent = match.groups()
    try:
        value = _decimal(mantissa, exponent)
    except ScpiError:
        raise ScpiError(-120) from None
    if value == 0.0 and mantissa.strip("+-.0"):
        raise ScpiError(-120)  # underflow: a non-zero number written, zero understood
    return value


def _decimal(mantissa: str, exponent: str | None) -> float:
    """`mantissa` E `exponent` as a float, within IEEE 488.2's size limits (-123, -124, -222)."""
    if len(mantissa.lstrip("+-").replace(".", "").lstrip("0")) > _MAX_DIGITS:
        raise ScpiError(-124)
    if exponent is not None:
        magnitude = exponent.lstrip("+-").lstrip("0")
        if len(magnitude) > len(str(_MAX_EXPONENT)) or int(magnitude or "0") > _MAX_EXPONENT:
            raise ScpiError(-123)
    value = float(mantissa if exponent is None else f"{mantissa}e{exponent}")
    if math.isinf(value):
        raise ScpiError(-222)
    return value


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
