"""I–V sweeps of a current-biased nanowire port: switching, retrapping, resistive branch.

A sweep is a list of (bias current, port voltage) points. The port is superconducting while
its voltage stays within `switched_v` of zero; the first point beyond it is the switch
(the switching current is the bias of that point, resolved to the step size). On the way
down, the retrapping current is the first bias at which the voltage is back within `switched_v`.
"""

from __future__ import annotations

import math

import numpy as np

from contracts.records import Uncertainty
from contracts.units import format_si
from procedures.analysis.distributions import t_quantile


def first_switch_index(voltage_v, switched_v: float) -> int | None:
    """Index of the first point with |V| > switched_v, None if the port never switched."""
    above = np.flatnonzero(np.abs(np.asarray(voltage_v, dtype=float)) > switched_v)
    return int(above[0]) if above.size else None


def switching_current_a(current_a, voltage_v, switched_v: float) -> float:
    """Bias of the first switched point of an up-sweep (NaN if none switched)."""
    index = first_switch_index(voltage_v, switched_v)
    return float(np.asarray(current_a, dtype=float)[index]) if index is not None else math.nan


def retrapping_current_a(current_a, voltage_v, switched_v: float) -> float:
    """On a down-sweep that starts resistive: the first bias where |V| <= switched_v again.

    NaN when the sweep did not start resistive or never came back."""
    current_a = np.asarray(current_a, dtype=float)
    voltage_v = np.abs(np.asarray(voltage_v, dtype=float))
    if voltage_v.size == 0 or voltage_v[0] <= switched_v:
        return math.nan
    back = np.flatnonzero(voltage_v <= switched_v)
    return float(current_a[back[0]]) if back.size else math.nan


def resistive_branch_ohm(current_a, voltage_v, switched_v: float) -> float:
    """dV/dI of the resistive branch: least-squares slope over the points with |V| > switched_v.

    NaN with fewer than two such points at distinct currents."""
    current_a = np.asarray(current_a, dtype=float)
    voltage_v = np.asarray(voltage_v, dtype=float)
    keep = np.abs(voltage_v) > switched_v
    if keep.sum() < 2 or np.ptp(current_a[keep]) == 0:
        return math.nan
    slope, _ = np.polyfit(current_a[keep], voltage_v[keep], 1)
    return float(slope)


#: How `resistive_branch_fit` computes its interval.
SLOPE_METHOD = "Student t interval on a least-squares slope"


def resistive_branch_fit(current_a, voltage_v, switched_v: float, level: float) -> tuple[float, Uncertainty | None]:
    """dV/dI of the resistive branch over all points with |V| > switched_v (several sweeps pooled),
    with the slope's Student t interval (n − 2 degrees of freedom, standard error from the
    residuals). (NaN, None) with fewer than three such points at distinct currents."""
    current_a = np.asarray(current_a, dtype=float)
    voltage_v = np.asarray(voltage_v, dtype=float)
    keep = np.isfinite(current_a) & np.isfinite(voltage_v) & (np.abs(voltage_v) > switched_v)
    n = int(keep.sum())
    if n < 3 or np.ptp(current_a[keep]) == 0:
        return math.nan, None
    # the covariance numpy returns is scaled by the residuals' variance over n − 2 dof
    (slope, _), covariance = np.polyfit(current_a[keep], voltage_v[keep], 1, cov=True)
    stderr = math.sqrt(covariance[0, 0])
    half = t_quantile(0.5 + level / 2, n - 2) * stderr
    return float(slope), Uncertainty(f"{SLOPE_METHOD} (n = {n} points, {n - 2} dof)", level,
                                     slope - half, slope + half, stderr)


def quantized_mean_uncertainty(values, step: float, level: float, spread_interval: Uncertainty,
                               unit: str = "") -> Uncertainty:
    """The mean's interval of readings rounded to a grid of `step`. While the readings spread
    over steps (their standard deviation at least the rounding's own, step/√12) the rounding
    averages out over them and `spread_interval` (their Student t interval) stands. Below that
    it does not (all in one step: a spread of 0 and an interval of zero width around a value
    the threshold only lies within a step of): the step bounds what is known, as in
    bracketed_mean_uncertainty."""
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    resolved = array.size > 1 and float(array.std(ddof=1)) >= abs(step) / math.sqrt(12.0)
    if resolved or not (math.isfinite(step) and step > 0):
        return spread_interval
    _, bracketed = bracketed_mean_uncertainty(array, step, level, unit)
    if bracketed is None:
        return spread_interval
    return Uncertainty(bracketed.method + " (the readings spread less than their step's own σ, step/√12: "
                       "the rounding does not average out)", bracketed.level, bracketed.low, bracketed.high,
                       bracketed.standard)


def bracketed_mean_uncertainty(values, resolution: float, level: float,
                               unit: str = "") -> tuple[float, Uncertainty | None]:
    """Mean of readings each known only to within a step of width `resolution` (given as the
    step's middle), with an interval combining the spread between readings (Student t, type A)
    and the step (uniform, resolution/√12, type B) as the GUM does: coverage factor from the
    Welch–Satterthwaite degrees of freedom (type B taken as exact). (NaN, None) with no reading."""
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    n = int(array.size)
    if n == 0:
        return math.nan, None
    mean = float(array.mean())
    type_a = float(array.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    type_b = abs(resolution) / math.sqrt(12.0)
    standard = math.hypot(type_a, type_b)
    if n == 1 and type_b == 0:
        return mean, None
    dof = math.inf if type_a == 0 else (standard**4 / (type_a**4 / (n - 1)) if n > 1 else math.inf)
    k = t_quantile(0.5 + level / 2, dof)
    method = (f"GUM combined uncertainty: Student t spread over n = {n} readings and a "
              f"{format_si(resolution, unit)} step (uniform), coverage factor {k:.3g} from the Welch-Satterthwaite dof")
    return mean, Uncertainty(method, level, mean - k * standard, mean + k * standard, standard)
