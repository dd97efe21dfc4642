"""Strength–duration fits: rheobase and chronaxie from thresholds at several pulse widths.

Two classical forms, both reported:

* Weiss (1901), the linear charge–duration law: the threshold charge Q = I_th·w grows linearly
  with the width, Q = I_rh·(w + t_ch). A straight-line fit of Q against w gives the rheobase
  I_rh (slope) and the chronaxie t_ch (intercept / slope); equivalently I_th = I_rh·(1 + t_ch/w).
* Lapicque (1907), the leaky-integrator (RC) form: I_th = I_rh / (1 − exp(−w/τ)); its chronaxie
  (the width at which I_th = 2·I_rh) is τ·ln 2. Fitted by a scan over τ with I_rh solved in
  closed form at each τ (least squares in I_th), then refined around the best τ.

A nanowire neuron integrates its input with τ ≈ L_eff/R (physics reference §1.3), so the
Lapicque form is the physically motivated one; Weiss needs no iteration and is robust.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StrengthDurationFit:
    rheobase_a: float
    chronaxie_s: float
    time_constant_s: float      # τ of the Lapicque form (NaN for Weiss)
    rms_residual_a: float


def weiss_threshold_a(width_s, rheobase_a: float, chronaxie_s: float) -> np.ndarray:
    return rheobase_a * (1.0 + chronaxie_s / np.asarray(width_s, dtype=float))


def lapicque_threshold_a(width_s, rheobase_a: float, time_constant_s: float) -> np.ndarray:
    return rheobase_a / -np.expm1(-np.asarray(width_s, dtype=float) / time_constant_s)


def _finite(width_s, threshold_a) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(width_s, dtype=float)
    i = np.asarray(threshold_a, dtype=float)
    keep = np.isfinite(w) & np.isfinite(i) & (w > 0)
    return w[keep], i[keep]


def _nan_fit() -> StrengthDurationFit:
    return StrengthDurationFit(math.nan, math.nan, math.nan, math.nan)


def fit_weiss(width_s, threshold_a) -> StrengthDurationFit:
    """Least-squares line Q = I_rh·w + I_rh·t_ch through (w, I_th·w)."""
    w, i = _finite(width_s, threshold_a)
    if w.size < 2 or np.ptp(w) == 0:
        return _nan_fit()
    slope, intercept = np.polyfit(w, i * w, 1)
    if slope <= 0:
        return _nan_fit()
    chronaxie_s = intercept / slope
    residual = i - weiss_threshold_a(w, slope, chronaxie_s)
    return StrengthDurationFit(float(slope), float(chronaxie_s), math.nan, float(np.sqrt(np.mean(residual**2))))


def _lapicque_at(w: np.ndarray, i: np.ndarray, tau_s: float) -> tuple[float, float]:
    basis = 1.0 / -np.expm1(-w / tau_s)
    rheobase = float(np.dot(basis, i) / np.dot(basis, basis))
    return rheobase, float(np.sum((i - rheobase * basis) ** 2))


def fit_lapicque(width_s, threshold_a, scan_points: int = 400) -> StrengthDurationFit:
    """Least squares in I_th over τ from 1 % of the shortest to 100× the longest width."""
    w, i = _finite(width_s, threshold_a)
    if w.size < 2 or np.ptp(w) == 0:
        return _nan_fit()
    taus = np.geomspace(0.01 * w.min(), 100.0 * w.max(), scan_points)
    costs = [_lapicque_at(w, i, tau)[1] for tau in taus]
    best = int(np.argmin(costs))
    # Refine by golden-section search in log τ between the scan neighbours.
    low, high = math.log(taus[max(best - 1, 0)]), math.log(taus[min(best + 1, taus.size - 1)])
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if _lapicque_at(w, i, math.exp(a))[1] < _lapicque_at(w, i, math.exp(b))[1]:
            high = b
        else:
            low = a
    tau_s = math.exp(0.5 * (low + high))
    rheobase, cost = _lapicque_at(w, i, tau_s)
    return StrengthDurationFit(rheobase, tau_s * math.log(2.0), tau_s, math.sqrt(cost / w.size))
