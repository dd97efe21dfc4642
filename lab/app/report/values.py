"""A result as the report shows it: value, interval at its level, standard uncertainty, method.

Digits follow the uncertainty: the standard uncertainty (or, without one, the interval's
half-width) is rounded to two significant digits and the value and the interval ends to the same
decimal place, all in one SI-prefixed unit (contracts.units). What has no uncertainty says why:
a count or a setting is exact, a literature or assumed value names its source, and a measured
value archived without any uncertainty says "no uncertainty archived" — never a bare number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from contracts.units import prefix_for
from lab.app.report.runs import Quantity, RunData

#: The status shown for a measured value without any uncertainty.
NO_UNCERTAINTY = "no uncertainty archived"
EXACT_COUNT = "exact (count)"
EXACT_SETTING = "exact (setting the run used)"


@dataclass(frozen=True)
class Shown:
    """The texts of one result's cells (numbers without their unit; `unit` carries the prefix)."""
    value: str
    interval: str          # "[25.10, 26.82]" or ""
    level: str             # "95 %" or ""
    standard: str          # "0.21" or ""
    unit: str
    method: str            # how the uncertainty was computed, or why there is none
    missing: bool = False  # a measured value with no uncertainty archived
    spread: str = ""       # the sample standard deviation of what was averaged, if archived


def companion(name: str, kind: str, results: Mapping[str, Quantity]) -> str | None:
    """An old-style companion of `name`: x_mean_a → x_<kind>_a, x_j → x_<kind>_j (kind "std" or "stderr")."""
    stem, _, suffix = name.rpartition("_")
    for candidate in (name.replace("_mean_", f"_{kind}_"), f"{stem}_{kind}_{suffix}"):
        if candidate != name and candidate in results and results[candidate].is_scalar:
            return candidate
    return None


def companions(results: Mapping[str, Quantity]) -> set[str]:
    """Results shown inside another's row (its spread, its standard error), not as rows."""
    return {c for n in results for kind in ("std", "stderr") if (c := companion(n, kind, results))}


def source_of(name: str, results: Mapping[str, Quantity]) -> str | None:
    """The text result naming where a given (not measured) value comes from: x_y_j → x_source."""
    parts = name.split("_")
    for k in range(len(parts), 0, -1):
        candidate = "_".join(parts[:k]) + "_source"
        if candidate in results and results[candidate].is_text:
            return candidate
    return None


def decimals_for(standard: float) -> int:
    """Decimal places that keep two significant digits of `standard` (negative: round to tens…),
    counted after rounding it (0.0996 rounds to 0.10: two places, not three)."""
    return 1 - math.floor(math.log10(abs(float(f"{standard:.2g}"))))


def rounded(value: float, decimals: int) -> str:
    if not math.isfinite(value):
        return "n/a"
    if decimals >= 0:
        return f"{value:.{decimals}f}"
    return f"{round(value, decimals):.0f}"


def numbers(value: float, low: float, high: float, standard: float, factor: float) -> tuple[str, str, str]:
    """(value, "[low, high]", standard) in the shown unit, digits matched to the uncertainty."""
    width = standard if math.isfinite(standard) and standard > 0 else (
        0.5 * (high - low) if math.isfinite(low) and math.isfinite(high) and high > low else math.nan)
    # A width at the value's rounding (an interval of identical draws) sets no digits: 18 of them
    # would be shown.
    if not math.isfinite(width) or width <= abs(value) * 1e-12 or not math.isfinite(value):
        interval = (f"[{low * factor:.4g}, {high * factor:.4g}]" if math.isfinite(low) and math.isfinite(high)
                    else "")
        return (f"{value * factor:.4g}" if math.isfinite(value) else "n/a"), interval, (
            f"{standard * factor:.2g}" if math.isfinite(standard) else "")
    decimals = decimals_for(width * factor)
    interval = f"[{rounded(low * factor, decimals)}, {rounded(high * factor, decimals)}]" \
        if math.isfinite(low) and math.isfinite(high) else ""
    shown_standard = rounded(standard * factor, decimals) if math.isfinite(standard) and standard > 0 else ""
    return rounded(value * factor, decimals), interval, shown_standard


def level_text(level: float) -> str:
    return f"{level * 100:g} %"


def is_count(quantity: Quantity) -> bool:
    values = np.asarray(quantity.value)
    return values.dtype.kind in "iub" or (quantity.units in ("1", "") and values.dtype.kind == "f" and bool(
        np.all(np.isfinite(values) & (values == np.round(values)))) and not quantity.uncertainty)


def show(name: str, quantity: Quantity, run: RunData) -> Shown:
    """The cells of a numeric result of `run` (scalar or array)."""
    results = run.results
    values = np.atleast_1d(np.asarray(quantity.value, dtype=float))
    uncertainty = quantity.uncertainty
    lows = highs = standards = None
    method, missing = "", False
    if uncertainty is not None:
        lows, highs = (np.broadcast_to(np.asarray(b, float), values.shape) for b in (uncertainty.low, uncertainty.high))
        standards = np.broadcast_to(np.asarray(uncertainty.standard, float), values.shape)
        method = uncertainty.method
    elif (stderr := companion(name, "stderr", results)) is not None and quantity.is_scalar:
        standards = np.array([results[stderr].scalar()])
        method = f"standard error of the mean (`{stderr}`); no interval archived"
    elif quantity.exact:
        method = f"exact ({quantity.exact})"
    elif name in run.parameters or name in run.parameters_resolved:
        method = EXACT_SETTING
    elif (source := source_of(name, results)) is not None:
        method = f"given, not measured: see `{source}`"
    elif is_count(quantity):
        method = EXACT_COUNT
    else:
        method, missing = NO_UNCERTAINTY, True
    factor, unit = prefix_for(np.r_[values, lows if lows is not None else []], quantity.units)
    if lows is None and standards is None:
        # One prefix for every value (the unit cell's): a zero or a small value keeps no prefix of its own.
        shown_values = [("n/a" if not math.isfinite(v) else f"{v:.0f}" if method == EXACT_COUNT else
                         f"{v * factor:.4g}") for v in values[:MAX_LISTED]]
        intervals, shown_standards = [""] * len(shown_values), [""] * len(shown_values)
    else:
        nan = np.full(values.shape, math.nan)
        cells = [numbers(v, lo, hi, s, factor) for v, lo, hi, s in zip(
            values, lows if lows is not None else nan, highs if highs is not None else nan,
            standards if standards is not None else nan)][:MAX_LISTED]
        shown_values, intervals, shown_standards = (list(c) for c in zip(*cells)) if cells else ([], [], [])
    spread = ""
    if (std := companion(name, "std", results)) is not None and quantity.is_scalar:
        s = results[std].scalar()
        spread = f"{s * factor:.2g}" if math.isfinite(s) else ""
    if quantity.is_scalar:
        return Shown(shown_values[0], intervals[0], level_text(uncertainty.level) if uncertainty else "",
                     shown_standards[0], unit, method, missing, spread)
    more = f", … ({values.size} values)" if values.size > MAX_LISTED else ""
    along = ""
    if quantity.axis_name:
        a_factor, a_unit = prefix_for(quantity.axis_values, quantity.axis_units)
        along = (f" at {quantity.axis_name} = " + ", ".join(f"{a * a_factor:.4g}" for a in
                 np.asarray(quantity.axis_values, float)[:MAX_LISTED]) + f" {a_unit}").rstrip()
    # A value without an interval (a weight with no trial) keeps its place: "—".
    joined = lambda items: f"[{', '.join(i or '—' for i in items)}{more}]" if any(items) else ""
    return Shown(joined(shown_values) + along, "; ".join(i or "—" for i in intervals) + more if any(intervals) else "",
                 level_text(uncertainty.level) if uncertainty else "", joined(shown_standards), unit, method,
                 missing)


MAX_LISTED = 8        # array results with up to this many values are listed in full


def with_unit(number: str, unit: str) -> str:
    return f"{number} {unit}".rstrip() if number else ""

