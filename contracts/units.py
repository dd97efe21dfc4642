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



# -- numbers as people read them ---------------------------------------------------------------

#: Prefixes a shown number takes (one spelling of micro: µ, U+00B5).
SHOWN_PREFIXES = ((1e-24, "y"), (1e-21, "z"), (1e-18, "a"), (1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, ""),
                  (1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T"))
#: Units that take SI prefixes when shown, alone or as the numerator of a rate ("A/s" → "mA/s").
#: Temperatures stay in K (0.012 K reads as a fridge setting); dimensionless values carry no unit.
PREFIXABLE = frozenset({"A", "V", "s", "J", "Hz", "ohm", "W", "H", "F"})
_DISPLAY = {"1": "", "J-1": "1/J", "ohm": "Ω", "ohm/sq": "Ω/sq"}


def display_unit(unit: str) -> str:
    """UDUNITS as people read them: "1" is dimensionless, "J-1" is 1/J, "ohm" is Ω."""
    if unit in _DISPLAY:
        return _DISPLAY[unit]
    head, slash, tail = unit.partition("/")
    return f"{_DISPLAY.get(head, head)}/{tail}" if slash and head in PREFIXABLE else unit


_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _prefixable(unit: str) -> bool:
    return unit.partition("/")[0] in PREFIXABLE


def prefix_for(values, unit: str) -> tuple[float, str]:
    """(factor, shown unit) so the largest finite |value| × factor lies in [1, 1000). A unit that
    takes no prefix (1/J, dimensionless) shows a power of ten instead ("× 10¹⁷ 1/J") beyond
    [10⁻³, 10⁶)."""
    import numpy as np

    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if not _prefixable(unit):
        if finite.size == 0 or 1e-3 <= finite.max() < 1e6:
            return 1.0, display_unit(unit)
        exponent = int(np.floor(np.log10(finite.max())))
        power = "10" + str(exponent).translate(_SUPERSCRIPTS)
        return 10.0 ** -exponent, f"× {power} {display_unit(unit)}".rstrip()
    if finite.size == 0:
        return 1.0, display_unit(unit)
    scale, prefix = SHOWN_PREFIXES[0]
    for candidate, name in SHOWN_PREFIXES:
        if finite.max() >= candidate * (1 - 1e-9):
            scale, prefix = candidate, name
    return 1.0 / scale, prefix + display_unit(unit)


def format_si(value, unit: str = "", digits: int = 4) -> str:
    """A number as a person reads it: "25.9 µA", "2 ns", "1 mA/s", "40", "1.2 × 10¹⁷ 1/J", "n/a".

    The one formatter of every number nwlab shows (command line, messages, report): SI prefixes
    on SI units, `digits` significant digits, whole numbers in full, no unit for "1"."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return f"{int(value)} {display_unit(unit)}".rstrip()
    value = float(value)
    if not math.isfinite(value):
        return "n/a"
    factor, shown = prefix_for([value], unit)
    return f"{value * factor:.{digits}g} {shown}".rstrip()


#: Name suffixes that carry a unit (`width_s`, `ramp_a_per_s`), longest first.
NAME_UNITS = (("_a_per_s", "A/s"), ("_k_per_min", "K/min"), ("_v_per_s", "V/s"), ("_ohm", "ohm"), ("_hz", "Hz"),
              ("_a", "A"), ("_v", "V"), ("_s", "s"), ("_k", "K"), ("_j", "J"), ("_w", "W"), ("_h", "H"))


def unit_of_name(name: str) -> str:
    """The unit a name carries by nwlab's convention ("width_s" → "s"; "" if none)."""
    for suffix, unit in NAME_UNITS:
        if name.endswith(suffix):
            return unit
    return ""


def format_si_range(low: float, high: float, unit: str, digits: int = 4) -> str:
    """Two ends with one prefix: "1 to 2 µA"."""
    factor, shown = prefix_for([low, high], unit)
    return f"{low * factor:.{digits}g} to {high * factor:.{digits}g} {shown}".rstrip()
