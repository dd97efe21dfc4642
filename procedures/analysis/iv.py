"""I–V sweeps of a current-biased nanowire port: switching, retrapping, resistive branch.

A sweep is a list of (bias current, port voltage) points. The port is superconducting while
its voltage stays within `switched_v` of zero; the first point beyond it is the switch
(the switching current is the bias of that point, resolved to the step size). On the way
down, the retrapping current is the first bias at which the voltage is back within `switched_v`.
"""

from __future__ import annotations

import math

import numpy as np


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
