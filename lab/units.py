"""SI prefixes and small conversions. Everything inside nwlab is SI; names carry the unit."""

from __future__ import annotations

import math

FEMTO = 1e-15
PICO = 1e-12
NANO = 1e-9
MICRO = 1e-6
MILLI = 1e-3
KILO = 1e3
MEGA = 1e6
GIGA = 1e9

ATTOJOULE_J = 1e-18


def db_to_voltage_ratio(attenuation_db: float) -> float:
    """Voltage ratio out/in of a chain with the given attenuation (positive dB = loss)."""
    return 10.0 ** (-attenuation_db / 20.0)


def voltage_ratio_to_db(ratio: float) -> float:
    """Attenuation in dB (positive = loss) of a chain with voltage ratio out/in."""
    if ratio <= 0:
        raise ValueError(f"a voltage ratio must be positive, got {ratio!r}")
    return -20.0 * math.log10(ratio)
