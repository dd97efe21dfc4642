"""Quantities in chip files: ``{value: 20, unit: nH, source: "…"}`` -> SI float, with SI prefixes."""

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


def scale_for(unit: str, kind: str) -> float:
    """Factor from ``unit`` to SI for a quantity of ``kind``; raises UnitError if it does not fit."""
    bases = BASE_UNITS[kind]
    unit = unit.strip()
    if unit in bases:
        return 1.0
    if unit and unit[0] in PREFIXES and unit[1:] in bases and unit[1:]:
        return PREFIXES[unit[0]]
    expected = " or ".join(repr(b) for b in bases if b)
    raise UnitError(f"unknown unit {unit!r} (expected {expected}, optionally with an SI prefix)")


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
