"""Sample statistics with their intervals, spike probabilities and level crossings.

Every interval here is computed at the confidence level its caller names, and says so: the
`Uncertainty` it returns carries the method and level that the archive and the report print.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contracts.records import Uncertainty
from procedures.analysis.distributions import chi2_quantile, normal_quantile, t_quantile

#: The confidence level of every reported interval unless a procedure's parameter says otherwise.
CONFIDENCE_LEVEL = 0.95


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (ddof=1) and standard error of the finite values."""
    mean: float
    std: float
    stderr: float
    count: int


def summarize(values) -> Summary:
    """Summary of the finite values; NaN fields (never an exception) when there are too few."""
    array = np.asarray(values, dtype=float).ravel()
    array = array[np.isfinite(array)]
    n = int(array.size)
    if n == 0:
        return Summary(math.nan, math.nan, math.nan, 0)
    mean = float(np.mean(array))
    if n == 1:
        return Summary(mean, math.nan, math.nan, 1)
    std = float(np.std(array, ddof=1))
    return Summary(mean, std, std / math.sqrt(n), n)


def mean_uncertainty(summary: Summary, level: float = CONFIDENCE_LEVEL) -> Uncertainty:
    """Student-t interval on the mean of `summary`'s values; its standard uncertainty is the
    standard error. NaN bounds below two values."""
    if summary.count < 2 or not math.isfinite(summary.stderr):
        return Uncertainty(f"Student t interval on the mean (n = {summary.count})", level, math.nan, math.nan,
                           math.nan)
    half = t_quantile(0.5 + level / 2, summary.count - 1) * summary.stderr
    return Uncertainty(f"Student t interval on the mean (n = {summary.count})", level, summary.mean - half,
                       summary.mean + half, summary.stderr)


def integrated_autocorrelation_time(values) -> float:
    """τ = 1 + 2·Σρ_k of a sequence in the order it was taken, by Geyer's initial positive sequence
    (ρ_2m + ρ_2m+1 summed while positive), at least 1: how many values carry the information of
    one independent value. NaN below four values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    if n < 4:
        return math.nan
    x = x - x.mean()
    variance = float(np.dot(x, x)) / n
    if variance == 0.0:
        return 1.0
    rho = np.array([float(np.dot(x[: n - k], x[k:])) / n / variance for k in range(n)])
    tau = -1.0                       # 1 + 2·Σ_{k≥1} ρ_k = -ρ_0 + 2·Σ_m (ρ_2m + ρ_2m+1)
    for m in range(n // 2):
        pair = rho[2 * m] + rho[2 * m + 1]
        if pair <= 0.0:
            break
        tau += 2.0 * pair
    return max(1.0, tau)


def correlated_mean_uncertainty(values, level: float = CONFIDENCE_LEVEL) -> Uncertainty:
    """Student-t interval on the mean of a sequence whose successive values are correlated (each
    leaves the chip in a state the next starts from): the standard error s·√(τ/n) and n/τ − 1
    degrees of freedom, τ the integrated autocorrelation time. NaN bounds below four values."""
    summary = summarize(values)
    tau = integrated_autocorrelation_time(values)
    method = (f"Student t interval on the mean of correlated values (n = {summary.count}, integrated "
              f"autocorrelation time {tau:.2g} by Geyer's initial positive sequence, n/τ − 1 degrees of freedom)")
    if not math.isfinite(tau) or not math.isfinite(summary.std):
        return Uncertainty(method, level, math.nan, math.nan, math.nan)
    effective = summary.count / tau
    stderr = summary.std / math.sqrt(effective)
    half = t_quantile(0.5 + level / 2, max(effective - 1.0, 1.0)) * stderr
    return Uncertainty(method, level, summary.mean - half, summary.mean + half, stderr)


def std_uncertainty(summary: Summary, level: float = CONFIDENCE_LEVEL, scale: float = 1.0) -> Uncertainty:
    """Chi-square interval on a standard deviation (normal data): s·√((n−1)/χ²) at the two
    tail quantiles; its standard uncertainty s/√(2(n−1)) (large-n). `scale` multiplies all of it
    (1/√n gives the interval of the standard error). NaN bounds below two values."""
    n = summary.count
    method = f"chi-square interval on the standard deviation (n = {n}, normal data assumed)"
    if n < 2 or not math.isfinite(summary.std):
        return Uncertainty(method, level, math.nan, math.nan, math.nan)
    dof = n - 1
    low = summary.std * math.sqrt(dof / chi2_quantile(0.5 + level / 2, dof))
    high = summary.std * math.sqrt(dof / chi2_quantile(0.5 - level / 2, dof))
    return Uncertainty(method, level, scale * low, scale * high, scale * summary.std / math.sqrt(2 * dof))


def histogram(values, bin_count: int) -> tuple[np.ndarray, np.ndarray]:
    """(counts, bin_edges) of the finite values; one zero-width-safe bin set for constant data."""
    array = np.asarray(values, dtype=float).ravel()
    array = array[np.isfinite(array)]
    if array.size == 0:
        return np.zeros(bin_count, dtype=int), np.linspace(0.0, 1.0, bin_count + 1)
    low, high = float(array.min()), float(array.max())
    if high <= low:   # every value equal: centre them in a bin of nominal width
        half = abs(low) * 1e-6 or 1e-12
        low, high = low - half, high + half
    counts, edges = np.histogram(array, bins=bin_count, range=(low, high))
    return counts, edges


WILSON = "Wilson score interval"


def wilson_interval(successes: int, trials: int, level: float = CONFIDENCE_LEVEL) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion at confidence `level`; (0, 1) for no trials."""
    if trials <= 0:
        return 0.0, 1.0
    z = normal_quantile(0.5 + level / 2)
    p = successes / trials
    denominator = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / denominator
    # The interval holds p exactly: at 0 or n successes rounding left its end ~1e-17 past p.
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


def proportion_uncertainty(successes, trials, level: float = CONFIDENCE_LEVEL) -> Uncertainty:
    """Wilson intervals of the proportions successes/trials (arrays or scalars) at `level`."""
    successes, trials = np.broadcast_arrays(np.asarray(successes), np.asarray(trials))
    bounds = np.array([wilson_interval(int(k), int(n), level) for k, n in zip(successes.ravel(), trials.ravel())])
    shape = successes.shape
    return Uncertainty(WILSON, level, bounds[:, 0].reshape(shape), bounds[:, 1].reshape(shape))


def falling_crossing(x, y, level: float = 0.5) -> float:
    """The x where y first drops below `level`, walking x in the given order; linear
    interpolation between the last point at/above and the first below. NaN if it never does
    (or starts below)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if y.size == 0 or not y[0] >= level:
        return math.nan
    below = np.flatnonzero(y < level)
    if below.size == 0:
        return math.nan
    k = int(below[0])
    y0, y1 = y[k - 1], y[k]
    return float(x[k - 1] + (y0 - level) / (y0 - y1) * (x[k] - x[k - 1]))
