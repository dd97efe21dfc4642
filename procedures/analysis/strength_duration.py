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

Both are weighted least-squares fits when the thresholds' standard uncertainties are given
(weights 1/u², in Q = I_th·w for Weiss, i.e. 1/(u·w)²), and `bootstrap_intervals` gives their
parameters' intervals: a parametric bootstrap in which each width's threshold is redrawn from a
normal of its value and standard uncertainty (scaled up by the fit's Birge ratio where the
model misses the points by more than that) and both fits are repeated (vectorised over the
resamples), the interval being the resamples' percentiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contracts.records import Uncertainty

#: Resamples of the parametric bootstrap, and its seed (the same thresholds give the same intervals).
BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED = 2000, 0


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


def _finite(width_s, threshold_a, threshold_sd_a=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Widths, thresholds and weights (1/u², or ones without uncertainties) of the usable points."""
    w = np.asarray(width_s, dtype=float)
    i = np.asarray(threshold_a, dtype=float)
    keep = np.isfinite(w) & np.isfinite(i) & (w > 0)
    if threshold_sd_a is None:
        weight = np.ones_like(i)
    else:
        sd = np.broadcast_to(np.asarray(threshold_sd_a, dtype=float), i.shape)
        keep &= np.isfinite(sd) & (sd > 0)
        weight = 1.0 / np.where(keep, sd, 1.0) ** 2
    return w[keep], i[keep], weight[keep]


def _nan_fit() -> StrengthDurationFit:
    return StrengthDurationFit(math.nan, math.nan, math.nan, math.nan)


def _weiss_many(w: np.ndarray, i: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rheobase, chronaxie) of weighted lines Q = I_rh·w + I_rh·t_ch, one per row of i; NaN where
    the slope is not positive. Weights of Q are weight/w² (its uncertainty is w·u)."""
    q = i * w
    v = weight / w**2
    sw, sx, sxx = v.sum(), (v * w).sum(), (v * w * w).sum()
    sy, sxy = q @ v, q @ (v * w)
    det = sw * sxx - sx**2
    slope = (sw * sxy - sx * sy) / det
    intercept = (sxx * sy - sx * sxy) / det
    good = slope > 0
    return np.where(good, slope, np.nan), np.where(good, intercept / np.where(good, slope, 1.0), np.nan)


def fit_weiss(width_s, threshold_a, threshold_sd_a=None) -> StrengthDurationFit:
    """Least-squares line Q = I_rh·w + I_rh·t_ch through (w, I_th·w), weighted by the thresholds'
    standard uncertainties when given (else every Q weighs the same)."""
    w, i, weight = _finite(width_s, threshold_a, threshold_sd_a)
    if w.size < 2 or np.ptp(w) == 0:
        return _nan_fit()
    if threshold_sd_a is None:
        weight = w**2
    slope, chronaxie = _weiss_many(w, i[None, :], weight)
    if not np.isfinite(slope[0]):
        return _nan_fit()
    residual = i - weiss_threshold_a(w, slope[0], chronaxie[0])
    return StrengthDurationFit(float(slope[0]), float(chronaxie[0]), math.nan, float(np.sqrt(np.mean(residual**2))))


def _lapicque_costs(w: np.ndarray, i: np.ndarray, weight: np.ndarray, tau_s: np.ndarray):
    """Closed-form rheobase and weighted cost for each row of i (m, n) at each τ (m, k) or (k,)."""
    basis = 1.0 / -np.expm1(-w / np.asarray(tau_s)[..., None])       # (..., k, n)
    bb = np.sum(weight * basis**2, axis=-1)
    if basis.ndim == 2:
        ib = (i * weight) @ basis.T                                     # (m, k)
    else:
        ib = np.einsum("mn,mkn->mk", i * weight, basis)
    rheobase = ib / bb
    cost = np.sum(weight * i**2, axis=-1)[:, None] - rheobase * ib
    return rheobase, cost


def _lapicque_many(w: np.ndarray, i: np.ndarray, weight: np.ndarray, scan_points: int = 400):
    """(rheobase, τ, cost) of the Lapicque fit of each row of i: a scan over τ from 1 % of the
    shortest to 100x the longest width, refined by golden-section search in log τ between the
    scan neighbours."""
    taus = np.geomspace(0.01 * w.min(), 100.0 * w.max(), scan_points)
    _, costs = _lapicque_costs(w, i, weight, taus)
    best = np.argmin(costs, axis=1)
    low = np.log(taus[np.maximum(best - 1, 0)])
    high = np.log(taus[np.minimum(best + 1, taus.size - 1)])
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        _, cost = _lapicque_costs(w, i, weight, np.exp(np.stack([a, b], axis=1)))
        left = cost[:, 0] < cost[:, 1]
        high, low = np.where(left, b, high), np.where(left, low, a)
    tau_s = np.exp(0.5 * (low + high))
    rheobase, cost = _lapicque_costs(w, i, weight, tau_s[:, None])
    return rheobase[:, 0], tau_s, cost[:, 0]


def fit_lapicque(width_s, threshold_a, threshold_sd_a=None, scan_points: int = 400) -> StrengthDurationFit:
    """Least squares in I_th (weighted by the thresholds' standard uncertainties when given) over τ
    from 1 % of the shortest to 100× the longest width."""
    w, i, weight = _finite(width_s, threshold_a, threshold_sd_a)
    if w.size < 2 or np.ptp(w) == 0:
        return _nan_fit()
    rheobase, tau_s, _ = _lapicque_many(w, i[None, :], weight, scan_points)
    residual = i - lapicque_threshold_a(w, rheobase[0], tau_s[0])
    return StrengthDurationFit(float(rheobase[0]), float(tau_s[0] * math.log(2.0)), float(tau_s[0]),
                               float(np.sqrt(np.mean(residual**2))))


#: Names of the parameters `bootstrap_intervals` gives intervals for.
BOOTSTRAPPED = ("rheobase_a", "chronaxie_s", "lapicque_rheobase_a", "lapicque_chronaxie_s",
                "lapicque_time_constant_s")


def birge_ratio(residual_a: np.ndarray, weight: np.ndarray, parameters: int = 2) -> float:
    """sqrt(χ²/(n − parameters)) of a weighted fit (NaN without degrees of freedom): above 1 the
    points scatter about the model more than their uncertainties say."""
    dof = residual_a.size - parameters
    return math.sqrt(float(np.sum(weight * residual_a**2)) / dof) if dof > 0 else math.nan


def bootstrap_intervals(width_s, threshold_a, threshold_sd_a, level: float,
                        resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict[str, Uncertainty]:
    """Intervals at `level` of the Weiss (rheobase_a, chronaxie_s) and Lapicque (lapicque_*)
    parameters: each resample redraws every width's threshold from a normal of its value and
    standard uncertainty and repeats the weighted fit; the interval is the resamples'
    equal-tailed percentiles and the standard uncertainty their standard deviation. Where a
    model misses the points by more than their uncertainties (Birge ratio r = sqrt(χ²/(n − 2))
    above 1), that model's draws use the uncertainties times r, so the interval covers the
    misfit too. NaN bounds when fewer than two widths have a threshold and an uncertainty, or
    when more than (1 − level) of the resamples give no fit (a line of non-positive slope)."""
    w, i, weight = _finite(width_s, threshold_a, threshold_sd_a)
    method = (f"percentile interval of a parametric bootstrap ({resamples} resamples, seed {seed}: each width's "
              "threshold redrawn from a normal of its value and standard uncertainty, scaled by the fit's Birge "
              "ratio sqrt(chi2/(n-2)) where above 1), weighted least-squares refit")
    nan = {name: Uncertainty(method, level, math.nan, math.nan, math.nan) for name in BOOTSTRAPPED}
    if w.size < 2 or np.ptp(w) == 0:
        return nan
    noise = np.random.default_rng(seed).standard_normal((resamples, i.size)) / np.sqrt(weight)
    weiss, lapicque = fit_weiss(w, i, 1 / np.sqrt(weight)), fit_lapicque(w, i, 1 / np.sqrt(weight))
    scales = []
    for residual in (i - weiss_threshold_a(w, weiss.rheobase_a, weiss.chronaxie_s),
                     i - lapicque_threshold_a(w, lapicque.rheobase_a, lapicque.time_constant_s)):
        ratio = birge_ratio(residual, weight)
        scales.append(ratio if np.isfinite(ratio) and ratio > 1 else 1.0)
    rheobase, chronaxie = _weiss_many(w, i + scales[0] * noise, weight)
    lap_rheobase, tau_s, _ = _lapicque_many(w, i + scales[1] * noise, weight)
    tail = 100 * (1 - level) / 2
    out = {}
    for name, values in zip(BOOTSTRAPPED, (rheobase, chronaxie, lap_rheobase, tau_s * math.log(2.0), tau_s)):
        finite = values[np.isfinite(values)]
        if finite.size < level * resamples:
            out[name] = nan[name]
            continue
        low, high = np.percentile(finite, [tail, 100 - tail])
        out[name] = Uncertainty(method, level, low, high, float(np.std(finite, ddof=1)))
    return out
