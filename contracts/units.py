"""SI units: the one table of SI prefixes, quantities as files write them, and dB ratios.

Everything inside nwlab is SI; names that cross a module boundary carry their unit.
Files (chip files, station files, chip designs) write ``{value: 20, unit: nH, source: "…"}``;
this module turns such entries into SI floats.
"""

from __future__ import annotations

import math

PREFIXES = {
    "f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "µ": 1e-6, "μ": 1e-6, "m": 1e-3,
    "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
}

# field kind -> accepted spellings of the SI base unit
BASE_UNITS: dict[str, tuple[str, ...]] = {
    "inductance": ("H",),
    "resistance": ("ohm", "Ohm", "Ω"),
    "sheet_resistance": ("ohm/sq", "Ohm/sq", "Ω/sq", "ohm", "Ω"),
    "current": ("A",),
    "voltage": ("V",),
    "length": ("m",),
    "temperature": ("K",),
    "current_density": ("A/m^2", "A/m2"),
    "thermal_conductivity": ("W/(m*K)", "W/m/K"),
    "heat_capacity": ("J/(m^3*K)", "J/m^3/K"),
    "boundary_conductance": ("W/(m^2*K)", "W/m^2/K"),
    "dimensionless": ("1", ""),
}


class UnitError(ValueError):
    pass


def prefix_scale(unit: str, bases: tuple[str, ...]) -> float | None:
    """Factor from ``unit`` (one of ``bases``, optionally with an SI prefix) to SI; None if it is neither."""
    unit = unit.strip()
    if unit in bases:
        return 1.0
    if unit[:1] in PREFIXES and unit[1:] and unit[1:] in bases:
        return PREFIXES[unit[0]]
    return None


def scale_for(unit: str, kind: str) -> float:
    """Factor from ``unit`` to SI for a quantity of ``kind``; raises UnitError if it does not fit."""
    bases = BASE_UNITS[kind]
    scale = prefix_scale(unit, bases)
    if scale is None:
        expected = " or ".join(repr(b) for b in bases if b)
        raise UnitError(f"unknown unit {unit.strip()!r} (expected {expected}, optionally with an SI prefix)")
    return scale


def quantity_si(entry: object, kind: str) -> tuple[float, str]:
    """(value in SI, provenance) from a ``{value, unit, source}`` mapping."""
    if not isinstance(entry, dict):
        raise UnitError("must be a mapping {value: …, unit: …, source: …}")
    missing = [k for k in ("value", "unit", "source") if k not in entry and not (k == "unit" and kind == "dimensionless")]
    if missing:
        raise UnitError(f"missing {', '.join(missing)}")
    extra = set(entry) - {"value", "unit", "source"}
    if extra:
        raise UnitError(f"unexpected key(s) {sorted(extra, key=str)}")
    value = entry["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UnitError(f"value must be a finite number, got {value!r}")
    source = entry["source"]
    if not isinstance(source, str) or not source.strip():
        raise UnitError("source must be a non-empty provenance note")
    si = float(value) * scale_for(str(entry.get("unit", "")), kind)
    if not math.isfinite(si):
        raise UnitError(f"value {value!r} {entry.get('unit', '')} overflows in SI units")
    return si, source


def db_to_voltage_ratio(attenuation_db: float) -> float:
    """Voltage ratio out/in of a chain with the given attenuation (positive dB = loss)."""
    return 10.0 ** (-attenuation_db / 20.0)

