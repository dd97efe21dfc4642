"""Switching-current statistics on quantised readings: histogram bins that respect the grid the
events were recorded on, and a Gaussian fitted by maximum likelihood to interval-censored events.

A switching event is read on a sweep of discrete levels: the threshold x lies between the last
level read superconducting and the first read resistive, and the event is recorded at the middle
of that step. Recorded values therefore sit on a grid (the window step divided by the number of
dither phases, when windows are offset by fractions of a step). Bins whose width is not a whole
number of grid steps hold alternately more and fewer grid values: an aliasing pattern that reads
as structure. `grid_bin_edges` puts edges half-way between grid values, whole grid steps apart.

The fit treats each event as what was observed: x in (low, high], and, when the event only counts
if x fell inside its sweep's window (window_low, window_high], conditioned on that. Its
likelihood is the Gaussian mass of each event's step divided by that of its window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy

from procedures.analysis.distributions import chi2_quantile, chi2_survival
from procedures.analysis.grid_search import grid_maximum

#: Pool bins until each expects at least this many events (Cochran's rule for the chi-square test).
EXPECTED_MIN = 5.0


@dataclass(frozen=True)
class Grid:
    """Values origin_a + k·spacing_a (k integer): where quantised readings can fall."""
    spacing_a: float
    origin_a: float

    def index(self, values) -> np.ndarray:
        return np.rint((np.asarray(values, dtype=float) - self.origin_a) / self.spacing_a).astype(np.int64)

    def off_grid(self, values) -> np.ndarray:
        """Distance of each value from its nearest grid value, in grid steps."""
        position = (np.asarray(values, dtype=float) - self.origin_a) / self.spacing_a
        return np.abs(position - np.rint(position))


def estimate_grid(values, tolerance: float = 0.02) -> Grid | None:
    """The coarsest grid holding the finite values to within `tolerance` of its step, found from
    their spacings: the smallest clear gap between distinct values is the first guess, refined to
    the spacing whose multiples fit all gaps. None with fewer than three distinct values or no
    such grid (values not quantised)."""
    array = np.asarray(values, dtype=float).ravel()
    array = np.sort(array[np.isfinite(array)])
    if array.size < 3:
        return None
    span = array[-1] - array[0]
    if span <= 0:
        return None
    # Values within a millionth of the span are one grid value (float noise of the midpoints).
    distinct = array[np.concatenate([[True], np.diff(array) > 1e-6 * span])]
    gaps = np.diff(distinct)
    if gaps.size < 2:
        return None
    for guess in np.unique(gaps[gaps <= 1.5 * gaps.min()])[:1]:
        for divisor in range(1, 11):           # the smallest gap may be a multiple of the step
            spacing = guess / divisor
            multiples = gaps / spacing
            if np.all(np.abs(multiples - np.rint(multiples)) <= tolerance):
                # Refine on all gaps (least squares on the integer multiples), then the origin.
                spacing = float(np.sum(gaps) / np.sum(np.rint(multiples)))
                phase = (distinct - distinct[0]) / spacing
                origin = float(distinct[0] + np.mean((phase - np.rint(phase)) * spacing))
                grid = Grid(spacing, origin)
                if np.all(grid.off_grid(distinct) <= tolerance):
                    return grid
    return None


def grid_bin_edges(values, grid: Grid | None, bins: int = 0) -> np.ndarray:
    """Histogram edges half-way between grid values, each bin a whole number of grid steps wide.

    bins = 0: the Freedman–Diaconis width (2·IQR·n^(-1/3); range/√n when the IQR is zero),
    rounded to whole grid steps; bins > 0: about that many bins over the values' range. The
    edges span whole bins from the lowest to the highest value's grid index. Without a grid,
    plain edges of that width over the range."""
    array = np.asarray(values, dtype=float).ravel()
    array = array[np.isfinite(array)]
    if array.size == 0:
        return np.linspace(0.0, 1.0, max(bins, 1) + 1)
    low, high = float(array.min()), float(array.max())
    width = _target_width(array, bins)
    if grid is None or not grid.spacing_a > 0:
        if not width > 0:
            half = abs(low) * 1e-6 or 1e-12
            return np.array([low - half, high + half])
        count = max(int(math.ceil((high - low) / width)), 1)
        return low + width * np.arange(count + 1) if high > low else np.array([low - width / 2, low + width / 2])
    steps = max(int(round(width / grid.spacing_a)), 1) if width > 0 else 1
    first, last = int(grid.index(low)), int(grid.index(high))
    count = (last - first) // steps + 1
    return grid.origin_a + grid.spacing_a * (first - 0.5 + steps * np.arange(count + 1))


def _target_width(array: np.ndarray, bins: int) -> float:
    span = float(array.max() - array.min())
    if bins > 0:
        return span / bins
    q25, q75 = np.percentile(array, [25, 75])
    width = 2.0 * float(q75 - q25) * array.size ** (-1.0 / 3.0)
    return width if width > 0 else span / math.sqrt(array.size)


def grid_histogram(values, grid: Grid | None, bins: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of the finite values on `grid_bin_edges`."""
    array = np.asarray(values, dtype=float).ravel()
    array = array[np.isfinite(array)]
    edges = grid_bin_edges(array, grid, bins)
    counts, _ = np.histogram(array, bins=edges)
    return counts, edges


# --- the Gaussian fit ------------------------------------------------------------------------
@dataclass(frozen=True)
class CensoredEvents:
    """Each event: the threshold lay in (low_a, high_a], and counted only inside its window
    (window_low_a, window_high_a] (±inf: no window). Arrays of one length."""
    low_a: np.ndarray
    high_a: np.ndarray
    window_low_a: np.ndarray
    window_high_a: np.ndarray

    @classmethod
    def from_steps(cls, recorded_a, step_a, window_low_a=None, window_high_a=None) -> CensoredEvents:
        """Events recorded at the middle of their step of width step_a."""
        recorded_a = np.asarray(recorded_a, dtype=float)
        step_a = np.broadcast_to(np.asarray(step_a, dtype=float), recorded_a.shape)
        window_low_a = np.full(recorded_a.shape, -np.inf) if window_low_a is None else \
            np.broadcast_to(np.asarray(window_low_a, dtype=float), recorded_a.shape)
        window_high_a = np.full(recorded_a.shape, np.inf) if window_high_a is None else \
            np.broadcast_to(np.asarray(window_high_a, dtype=float), recorded_a.shape)
        keep = np.isfinite(recorded_a) & np.isfinite(step_a) & (step_a > 0)
        return cls(recorded_a[keep] - step_a[keep] / 2, recorded_a[keep] + step_a[keep] / 2,
                   np.asarray(window_low_a[keep], float), np.asarray(window_high_a[keep], float))

    @property
    def count(self) -> int:
        return int(self.low_a.size)


@dataclass(frozen=True)
class GaussianFit:
    """Maximum-likelihood Gaussian of interval-censored (and window-truncated) events, with
    profile-likelihood intervals at `level`, and a Pearson chi-square goodness of fit."""
    mean_a: float
    width_a: float
    mean_interval_a: tuple[float, float]
    width_interval_a: tuple[float, float]
    mean_standard_a: float             # asymptotic (observed information) standard errors
    width_standard_a: float
    level: float
    count: int
    chi_square: float
    dof: int
    p_value: float
    bins_tested: int

    #: How the intervals are computed (the archive's Uncertainty method).
    INTERVAL_METHOD = "profile-likelihood interval (likelihood-ratio, chi-square 1 dof)"

    def method(self, parameter: str) -> str:
        return (f"{self.INTERVAL_METHOD} on the {parameter} of a Gaussian fitted by maximum likelihood to "
                f"{self.count} interval-censored events")

    @property
    def test_method(self) -> str:
        return (f"Pearson chi-square test of the fitted Gaussian over {self.bins_tested} grid-aligned bins pooled to "
                f">= {EXPECTED_MIN:g} expected events, dof = bins - 1 - 2 fitted parameters")


#: The profiles' inner minimum is searched over these grids (in units of the events' spread or
#: step, log σ and μ): log σ from 3e-7 to 3e6 spreads, μ within 20 spreads (20 σ², for a wide
#: σ) of the estimate, each refined around its best point. A search from the estimate alone
#: found the nearer of two minima, and an interval's end then fell on the jump between them
#: (finite widths up to 5e9 A where the likelihood leaves σ unbounded above).
LOG_SIGMA_GRID = np.linspace(-15.0, 15.0, 121)
MEAN_GRID = np.linspace(-20.0, 20.0, 161)
EDGE_GRID = np.linspace(-4.0, 4.0, 33)        # μ around a step's edge, in σ
#: Where an interval's end is searched to (log σ from e^-20 to e^12 spreads, μ within 1e6
#: spreads), from the estimate in steps doubling from twice the standard error, kept within
#: [SEARCH_STEP_MIN, SEARCH_STEP_MAX]; an end not found there is open (0 or ±inf). Beyond them
#: −log L loses its digits: above, its μ lies σ² away (a likelihood still flat there once gave a
#: spurious end at 18 A); below, adjacent steps' edges differ in their last bits.
LOG_SIGMA_BOUNDS, MEAN_BOUNDS = (-20.0, 12.0), (-1e6, 1e6)
SEARCH_STEP_MIN, SEARCH_STEP_MAX = 1e-3, 1.0


def _log_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Φ(b) − Φ(a)) for a < b, accurate in both tails (the upper tail by symmetry)."""
    upper = a > 0
    lo = np.where(upper, -b, a)
    hi = np.where(upper, -a, b)
    log_hi = scipy.special.log_ndtr(hi)
    log_lo = scipy.special.log_ndtr(lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        return log_hi + np.log1p(-np.exp(log_lo - log_hi))


class _Likelihood:
    """−log L of (μ, log σ) on the events, grouped: identical rows share one term."""

    def __init__(self, events: CensoredEvents):
        rows = np.column_stack([events.low_a, events.high_a, events.window_low_a, events.window_high_a])
        unique, counts = np.unique(rows, axis=0, return_counts=True)
        self.centre = float(np.mean((events.low_a + events.high_a) / 2))
        spread = float(np.std((events.low_a + events.high_a) / 2))
        # The spread, or the step where the events fill fewer than a few steps (all in one: a
        # spread of rounding noise, 1e-20 A, that would scale every parameter to nothing).
        self.scale = max(spread, float(np.mean(events.high_a - events.low_a))) or 1.0
        self.rows = (unique - self.centre) / self.scale      # ±inf stay ±inf
        self.edges = np.unique(self.rows[:, :2][np.isfinite(self.rows[:, :2])])
        self.counts = counts.astype(float)

    def __call__(self, theta) -> float:
        return float(self.values(float(theta[0]), float(theta[1])))

    def values(self, mean, log_sigma) -> np.ndarray:
        """−log L at each (μ, log σ) of two arrays broadcast against each other; +inf where it
        is not finite (σ → 0 overflows z, log σ beyond ~709 overflows σ)."""
        mean = np.asarray(mean, dtype=float)[..., None, None]            # (..., rows, edges)
        log_sigma = np.asarray(log_sigma, dtype=float)[..., None, None]
        with np.errstate(all="ignore"):
            z = (self.rows - mean) / np.exp(log_sigma)
            value = _log_mass(z[..., 0], z[..., 1]) - _log_mass(z[..., 2], z[..., 3])
            total = -(value @ self.counts)
        return np.where(np.isfinite(total), total, np.inf)

    def profile_mean(self, mean: float, near: float) -> float:
        """min over σ of −log L(μ, σ): on LOG_SIGMA_GRID, refined (grid_search), and at `near`."""
        found, _ = grid_maximum(lambda log_sigma: -self.values(mean, log_sigma), LOG_SIGMA_GRID)
        return min(-float(found[0]), float(self.values(mean, near)))

    def profile_width(self, log_sigma: float, near: float) -> float:
        """min over μ of −log L(μ, σ): on MEAN_GRID × max(1, σ²) around `near` (a wide Gaussian
        truncated to the windows fits as an exponential, slope (μ − x)/σ², its μ ∝ −σ²), refined,
        and at `near`."""
        sigma = math.exp(min(log_sigma, 300.0))
        found, _ = grid_maximum(lambda mean: -self.values(mean, log_sigma), near + max(1.0, sigma**2) * MEAN_GRID)
        # A narrow Gaussian fits events in adjacent steps best from the edge between them: μ
        # within σ of an edge, which a grid of spread-sized steps passes by.
        at_edges = self.values(self.edges, log_sigma)
        edge = float(self.edges[int(np.argmin(at_edges))])
        near_edge, _ = grid_maximum(lambda mean: -self.values(mean, log_sigma), edge + sigma * EDGE_GRID)
        return min(-float(found[0]), -float(near_edge[0]), float(at_edges.min()), float(self.values(near, log_sigma)))

    def to_amps(self, mean: float, log_sigma: float) -> tuple[float, float]:
        return self.centre + self.scale * mean, self.scale * math.exp(log_sigma)


def fit_gaussian(events: CensoredEvents, level: float, edges=None) -> GaussianFit | None:
    """The Gaussian (μ, σ) maximising the likelihood of the events; None below 3 events.

    Intervals: profile likelihood at `level` (the parameter values whose profile −2 log L is
    within the chi-square(1) quantile of the minimum). Goodness of fit over `edges` (grid-aligned
    histogram edges of the recorded values): observed against expected counts, bins pooled from
    the ends and between until each expects EXPECTED_MIN events; NaN p-value with no dof left."""
    if events.count < 3 or not np.all(events.high_a > events.low_a):
        return None
    nll = _Likelihood(events)
    midpoints = ((events.low_a + events.high_a) / 2 - nll.centre) / nll.scale
    steps = (events.high_a - events.low_a) / nll.scale
    sheppard = max(float(np.var(midpoints, ddof=1) - np.mean(steps**2) / 12), 1e-4)
    start = np.array([float(np.mean(midpoints)), 0.5 * math.log(sheppard)])
    best = scipy.optimize.minimize(nll, start, method="Nelder-Mead",
                                   options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 4000})
    best = scipy.optimize.minimize(nll, best.x, method="BFGS")   # polish; BFGS also gives the curvature
    theta, nll_min = best.x, float(best.fun)
    if not math.isfinite(nll_min):
        return None
    cutoff = chi2_quantile(level, 1) / 2
    covariance = _covariance(nll, theta)
    # Every event in one step leaves the likelihood flat towards σ → 0: no curvature there (a
    # NaN or negative variance), so no standard uncertainty (NaN), and the interval searches
    # start from a unit step instead.
    se_mean, se_log_sigma = (math.sqrt(v) if math.isfinite(v) and v > 0 else math.nan
                             for v in (covariance[0, 0], covariance[1, 1]))

    def profile_mean(mean: float) -> float:
        return nll.profile_mean(mean, theta[1]) - nll_min - cutoff

    def profile_width(log_sigma: float) -> float:
        return nll.profile_width(log_sigma, theta[0]) - nll_min - cutoff

    mean_search, width_search = (se if se > 0 else 0.1 for se in (se_mean, se_log_sigma))
    mean_low = _crossing(profile_mean, theta[0], -1, mean_search, MEAN_BOUNDS)
    mean_high = _crossing(profile_mean, theta[0], +1, mean_search, MEAN_BOUNDS)
    width_low = _crossing(profile_width, theta[1], -1, width_search, LOG_SIGMA_BOUNDS)
    width_high = _crossing(profile_width, theta[1], +1, width_search, LOG_SIGMA_BOUNDS)
    mean_a, width_a = nll.to_amps(theta[0], theta[1])
    chi_square, dof, p_value, tested = (math.nan, 0, math.nan, 0) if edges is None else \
        _goodness_of_fit(events, mean_a, width_a, np.asarray(edges, dtype=float))
    return GaussianFit(
        mean_a=mean_a, width_a=width_a,
        mean_interval_a=(nll.centre + nll.scale * mean_low, nll.centre + nll.scale * mean_high),
        width_interval_a=(nll.scale * math.exp(width_low), nll.scale * math.exp(width_high)),
        mean_standard_a=nll.scale * se_mean, width_standard_a=width_a * se_log_sigma,
        level=float(level), count=events.count, chi_square=chi_square, dof=dof, p_value=p_value,
        bins_tested=tested)


def _covariance(nll: _Likelihood, theta: np.ndarray) -> np.ndarray:
    """Inverse of the observed information (central-difference Hessian of −log L)."""
    h = 1e-4
    hessian = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
            hessian[i, j] = (nll(theta + ei + ej) - nll(theta + ei - ej) - nll(theta - ei + ej)
                             + nll(theta - ei - ej)) / (4 * h * h)
    try:
        return np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return np.full((2, 2), np.nan)


def _crossing(excess, at: float, direction: int, scale: float, bounds: tuple[float, float]) -> float:
    """Where excess (negative at `at`) crosses zero on the `direction` side, searched in steps
    doubling from twice `scale` (the standard error, taken within [1e-3, 1]: a flat likelihood's
    is ~1e3, a degenerate one's ~1e-26) up to `bounds`; ±inf if it does not within them."""
    scale = min(max(scale, SEARCH_STEP_MIN), SEARCH_STEP_MAX)
    bound = bounds[1] if direction > 0 else bounds[0]
    step = 2.0 * scale
    while direction * (bound - at) > 0:
        far = at + direction * min(step, direction * (bound - at))
        if excess(far) > 0:
            return float(scipy.optimize.brentq(excess, *sorted((at, far)), xtol=1e-6 * scale))
        if far == bound:
            break
        step *= 2.0
    return direction * math.inf


def expected_counts(events: CensoredEvents, mean_a: float, width_a: float, edges: np.ndarray) -> np.ndarray:
    """Events each bin of `edges` expects under N(mean_a, width_a²): every event contributes the
    mass of each step of its lattice (its own step width, through its own low edge) that lies in
    its window, normalised to the window, to the bin holding that step's middle (the ends take
    what lies beyond the edges)."""
    expected = np.zeros(len(edges) - 1)
    rows = np.column_stack([events.low_a, events.high_a - events.low_a, events.window_low_a, events.window_high_a])
    step = rows[:, 1]
    phase = np.mod(rows[:, 0], step) / step      # the lattice: low edges at (k + phase)·step
    keys = np.column_stack([np.round(phase, 6), step, rows[:, 2], rows[:, 3]])
    unique, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    reach = 12.0 * width_a
    for key, count, first in zip(unique, counts, [np.flatnonzero(inverse.ravel() == g)[0] for g in range(len(unique))]):
        step_a, window_low, window_high = key[1], key[2], key[3]
        low_a = rows[first, 0]
        start = max(window_low, mean_a - reach) if math.isfinite(window_low) else mean_a - reach
        stop = min(window_high, mean_a + reach) if math.isfinite(window_high) else mean_a + reach
        k = np.arange(math.floor((start - low_a) / step_a), math.ceil((stop - low_a) / step_a) + 1)
        lows = low_a + k * step_a
        keep = (lows >= start - 1e-9 * step_a) & (lows + step_a <= stop + 1e-9 * step_a) if \
            (math.isfinite(window_low) or math.isfinite(window_high)) else np.ones(k.size, bool)
        lows = lows[keep]
        mass = np.exp(_log_mass((lows - mean_a) / width_a, (lows + step_a - mean_a) / width_a))
        total = float(np.sum(mass))
        if total <= 0:
            continue
        bins = np.clip(np.searchsorted(edges, lows + step_a / 2, side="right") - 1, 0, len(edges) - 2)
        expected += count * np.bincount(bins, weights=mass / total, minlength=len(edges) - 1)
    return expected


def pool_bins(observed: np.ndarray, expected: np.ndarray, minimum: float = EXPECTED_MIN):
    """Adjacent bins merged left to right until each expects `minimum` events (a short last group
    joins the one before). Returns the pooled (observed, expected)."""
    pooled_o, pooled_e, o, e = [], [], 0.0, 0.0
    for count, mass in zip(observed, expected):
        o, e = o + count, e + mass
        if e >= minimum:
            pooled_o.append(o)
            pooled_e.append(e)
            o, e = 0.0, 0.0
    if e > 0 or o > 0:
        if pooled_e:
            pooled_o[-1] += o
            pooled_e[-1] += e
        else:
            pooled_o.append(o)
            pooled_e.append(e)
    return np.asarray(pooled_o), np.asarray(pooled_e)


def _goodness_of_fit(events: CensoredEvents, mean_a: float, width_a: float, edges: np.ndarray):
    recorded = (events.low_a + events.high_a) / 2
    observed = np.bincount(np.clip(np.searchsorted(edges, recorded, side="right") - 1, 0, len(edges) - 2),
                           minlength=len(edges) - 1).astype(float)
    expected = expected_counts(events, mean_a, width_a, edges)
    pooled_o, pooled_e = pool_bins(observed, expected)
    dof = int(pooled_o.size - 3)
    if dof < 1:
        return math.nan, max(dof, 0), math.nan, int(pooled_o.size)
    chi_square = float(np.sum((pooled_o - pooled_e) ** 2 / pooled_e))
    return chi_square, dof, chi2_survival(chi_square, dof), int(pooled_o.size)
