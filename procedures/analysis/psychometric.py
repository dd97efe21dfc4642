"""Psychometric curves: the probability of a response (a spike) against a stimulus (a pulse
amplitude, a spacing), its midpoint (the threshold) and width, with intervals; and the adaptive
search that places each trial where it tells most about the midpoint.

Model (probit with a fixed lapse): P(x) = λ/2 + (1 − λ)·Φ((x − μ)/σ), or Φ((μ − x)/σ) for a
falling curve; μ is the midpoint (P = 0.5, the threshold), σ the width of the transition.
λ = LAPSE = 1 % is fixed, not fitted: a pure probit gives a spike far below threshold (a noise
excursion over the detection level) or a missed one far above it a likelihood of ~0, and one
such capture would move the whole posterior; with λ it costs at most log(λ/2). A 1 % lapse
widens an interval by well under a percent where the observer has none (the coverage test in
tests/procedures/test_analysis_psychometric.py holds with it).

Inference is on a grid posterior over (μ, σ): uniform weights over the grid points given (a
linear μ grid is a flat prior, a geometric one log-uniform; σ's grid is geometric: log-uniform).
Intervals are equal-tailed credible intervals of the marginals, interpolated within grid cells.
A side the data do not bound — the grid's edge is not excluded by a likelihood-ratio test at the
interval's level (the profile likelihood at the edge within χ²₁(level)/2 of its maximum) — is
reported as −inf/+inf for μ (0/+inf for σ), and μ's estimate as NaN: the midpoint is not
located inside the grid (all responses, or none).

The adaptive search is the psi method (Kontsevich & Tyler 1999) in its psi-marginal form
(Prins 2013): the next stimulus, from a fixed candidate set, is the one minimising the expected
entropy of μ's marginal posterior (σ is a nuisance parameter), ties to the lowest candidate;
it stops when μ's interval half-width is at most the requested precision (a fraction of μ's
estimate), or at the maximum trial count. It is deterministic given the replies.

Why not PyPI `questplus` (2023.1, QUEST+): it needs xarray and json-tricks (procedures may
import only numpy and scipy), recomputes its tables through xarray at every trial, and has no
interval output; the grid posterior here is ~150 lines of numpy.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy

from contracts.records import Uncertainty
from procedures.analysis.distributions import chi2_quantile

#: Fixed lapse rate λ (see the module doc): half of it below the curve, half above.
LAPSE = 0.01
#: Grid of fit_psychometric: midpoints over the data's range extended by half of it each side,
#: widths from 1/1000 to 2x that range.
FIT_MIDPOINTS, FIT_WIDTHS = 601, 121


#: Probabilities of cells far from the data underflow to 0 on the way: harmless here (they are
#: excluded), so computations run with underflow ignored whatever the caller's numpy settings.
_QUIET = np.errstate(under="ignore")


@_QUIET
def probability(x, midpoint, width, lapse: float = LAPSE, falling: bool = False) -> np.ndarray:
    """P(response | x) of the model (arrays broadcast)."""
    z = (np.asarray(x, dtype=float) - midpoint) / width
    return lapse / 2 + (1 - lapse) * scipy.special.ndtr(-z if falling else z)


def _cell_edges(grid: np.ndarray) -> np.ndarray:
    inner = 0.5 * (grid[1:] + grid[:-1])
    return np.concatenate([[grid[0] - (inner[0] - grid[0])], inner, [grid[-1] + (grid[-1] - inner[-1])]])


@_QUIET
def _quantiles(weights: np.ndarray, edges: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantiles of a grid marginal (weights over cells, last axis), linear within a cell."""
    cdf = np.cumsum(weights, axis=-1)
    cdf = cdf / cdf[..., -1:]
    cdf = np.concatenate([np.zeros(cdf.shape[:-1] + (1,)), cdf], axis=-1)
    out = np.empty(weights.shape[:-1] + q.shape)
    for index in np.ndindex(weights.shape[:-1]):
        c = cdf[index]
        # np.interp needs increasing x: empty cells make flat steps, where the first edge is taken.
        k = np.clip(np.searchsorted(c, q, side="left"), 1, c.size - 1)
        c0, c1 = c[k - 1], c[k]
        frac = np.where(c1 > c0, (q - c0) / np.where(c1 > c0, c1 - c0, 1.0), 0.0)
        out[index] = edges[k - 1] + frac * (edges[k] - edges[k - 1])
    return out


@dataclass(frozen=True)
class Estimate:
    """One parameter: the marginal posterior's median, the equal-tailed interval, its standard
    deviation. Arrays when the posterior is batched."""
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray
    standard: np.ndarray


class GridPosterior:
    """Log-likelihood of the model on a (μ, σ) grid, for a batch of independent data sets
    (leading axis), with uniform prior weights over the grid points."""

    def __init__(self, midpoints, widths, *, batch: int = 1, lapse: float = LAPSE, falling: bool = False):
        self.midpoints = np.asarray(midpoints, dtype=float)
        self.widths = np.asarray(widths, dtype=float)
        self.lapse, self.falling = lapse, falling
        self.loglik = np.zeros((batch, self.midpoints.size, self.widths.size))

    def curve(self, x) -> np.ndarray:
        """P(response) at each x for every grid point: shape (len(x), n_μ, n_σ)."""
        x = np.asarray(x, dtype=float).reshape(-1, 1, 1)
        return probability(x, self.midpoints[:, None], self.widths[None, :], self.lapse, self.falling)

    @_QUIET
    def add(self, x, successes, trials, rows=None) -> None:
        """Add data (x, successes of trials) to the batch rows `rows` (all rows by default; with
        rows, x etc. give one value per row)."""
        p = self.curve(x)
        k = np.asarray(successes, dtype=float).reshape(-1, 1, 1)
        n = np.asarray(trials, dtype=float).reshape(-1, 1, 1)
        terms = k * np.log(p) + (n - k) * np.log1p(-p)
        if rows is None:
            self.loglik += terms.sum(axis=0)
        else:
            self.loglik[rows] += terms

    @_QUIET
    def posterior(self) -> np.ndarray:
        top = self.loglik.max(axis=(1, 2), keepdims=True)
        post = np.exp(self.loglik - top)
        return post / post.sum(axis=(1, 2), keepdims=True)

    @_QUIET
    def _estimate(self, marginal: np.ndarray, grid: np.ndarray, profile: np.ndarray, level: float,
                  low_open: float, high_open: float) -> Estimate:
        tail = (1 - level) / 2
        q = _quantiles(marginal, _cell_edges(grid), np.array([tail, 0.5, 1 - tail]))
        mean = marginal @ grid
        standard = np.sqrt(np.maximum(marginal @ grid**2 - mean**2, 0.0))
        # An edge the data do not exclude (likelihood-ratio test at `level`) leaves that side open.
        cut = chi2_quantile(level, 1) / 2
        top = profile.max(axis=-1)
        low = np.where(top - profile[:, 0] < cut, low_open, q[:, 0])
        high = np.where(top - profile[:, -1] < cut, high_open, q[:, 2])
        return Estimate(q[:, 1], low, high, standard)

    def midpoint(self, level: float) -> Estimate:
        """μ: median, interval (±inf on a side the data leave open; then the median is NaN)."""
        est = self._estimate(self.posterior().sum(axis=2), self.midpoints, self.loglik.max(axis=2), level,
                             -math.inf, math.inf)
        located = np.isfinite(est.low) & np.isfinite(est.high)
        return Estimate(np.where(located, est.value, math.nan), est.low, est.high,
                        np.where(located, est.standard, math.nan))

    def width(self, level: float) -> Estimate:
        """σ: median, interval (0 or +inf on a side the data leave open; NaN median if +inf)."""
        est = self._estimate(self.posterior().sum(axis=1), self.widths, self.loglik.max(axis=1), level,
                             0.0, math.inf)
        return Estimate(np.where(np.isfinite(est.high), est.value, math.nan), est.low, est.high,
                        np.where(np.isfinite(est.high), est.standard, math.nan))


@dataclass(frozen=True)
class PsychometricFit:
    """A fitted psychometric curve: midpoint μ (P = 0.5) and width σ with their intervals at
    `level`, and the method that computed them (for `Uncertainty.method`)."""
    midpoint: float
    midpoint_low: float
    midpoint_high: float
    midpoint_standard: float
    width: float
    width_low: float
    width_high: float
    width_standard: float
    level: float
    method: str
    trials: int

    def midpoint_uncertainty(self) -> Uncertainty:
        return Uncertainty(self.method, self.level, self.midpoint_low, self.midpoint_high, self.midpoint_standard)

    def width_uncertainty(self) -> Uncertainty:
        return Uncertainty(self.method, self.level, self.width_low, self.width_high, self.width_standard)

    @property
    def half_width(self) -> float:
        """Half the midpoint's interval (inf when a side is open)."""
        return 0.5 * (self.midpoint_high - self.midpoint_low)


def method_text(level: float, prior: str, lapse: float = LAPSE) -> str:
    return (f"{level:.0%} equal-tailed credible interval of a probit psychometric fit (lapse {lapse:.0%} fixed), "
            f"grid posterior: {prior}; a side the data leave open (likelihood-ratio test at the grid's edge) "
            "is infinite")


def _fit_of(posterior: GridPosterior, row: int, level: float, method: str, trials: int) -> PsychometricFit:
    mu, sigma = posterior.midpoint(level), posterior.width(level)
    return PsychometricFit(float(mu.value[row]), float(mu.low[row]), float(mu.high[row]), float(mu.standard[row]),
                           float(sigma.value[row]), float(sigma.low[row]), float(sigma.high[row]),
                           float(sigma.standard[row]), level, method, int(trials))


def fit_psychometric(x, successes, trials, level: float = 0.95, falling: bool = False) -> PsychometricFit:
    """Fit P(x) (rising, or falling with falling=True) to `successes` of `trials` at each x.

    Grid posterior: μ flat over the data's x range extended by half of it on each side, σ
    log-uniform from 1/1000 to 2x that range; midpoint and width are marginal medians with
    equal-tailed credible intervals at `level` (see the module doc for open sides). Never raises
    on data: no data gives NaN everywhere; all successes or none give an interval open on one
    side and a NaN midpoint."""
    x = np.asarray(x, dtype=float).ravel()
    k = np.asarray(successes, dtype=float).ravel()
    n = np.asarray(trials, dtype=float).ravel()
    keep = np.isfinite(x) & np.isfinite(k) & np.isfinite(n) & (n > 0)
    x, k, n = x[keep], k[keep], n[keep]
    method = method_text(level, "flat prior on the midpoint over the data's range +-50 %, log-uniform on the width")
    if x.size == 0:
        return PsychometricFit(*[math.nan] * 8, level, method, 0)
    span = float(np.ptp(x)) or (abs(float(x[0])) * 0.1 or 1.0)
    midpoints = np.linspace(x.min() - 0.5 * span, x.max() + 0.5 * span, FIT_MIDPOINTS)
    widths = np.geomspace(span * 1e-3, span * 2, FIT_WIDTHS)
    posterior = GridPosterior(midpoints, widths, falling=falling)
    posterior.add(x, k, n)
    return _fit_of(posterior, 0, level, method, int(n.sum()))


# -- the adaptive search ---------------------------------------------------------------------

#: Grid of a threshold search: μ geometric over the bracket (log-uniform prior: a threshold's
#: scale is what is unknown); σ geometric from 1/2000 to 1/5 of the bracket's span; candidate
#: stimuli every other μ grid point.
SEARCH_MIDPOINTS, SEARCH_WIDTHS, CANDIDATE_STRIDE = 301, 20, 2
SEARCH_WIDTH_RANGE = (5e-4, 0.2)
#: μ cells whose marginal posterior is below this fraction of the largest one are left out of
#: the choice of the next stimulus: together they move an expected entropy by under 1e-13.
SEARCH_MASS_CUT = 1e-16


def _search_grid(low: float, high: float, grid: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(μ grid, σ grid) of a search over [low, high]."""
    span = high - low
    midpoints, widths, _ = grid
    return (np.geomspace(low, high, midpoints),
            np.geomspace(span * SEARCH_WIDTH_RANGE[0], span * SEARCH_WIDTH_RANGE[1], widths))


@functools.lru_cache(maxsize=2)      # 29 MB each; a procedure's searches share one bracket
@_QUIET
def _search_tables(low: float, high: float, lapse: float, grid: tuple[int, int, int]):
    """(stimuli, P(yes) as (n_μ, n_x, n_σ), log P(yes) and log P(no) as (n_x, n_μ, n_σ)) of a
    search: a function of its bracket alone, computed once for the searches that share it
    (strength_duration's 15 all search one bracket), read-only."""
    posterior = GridPosterior(*_search_grid(low, high, grid), lapse=lapse)
    stimuli = posterior.midpoints[::grid[2]]
    table = posterior.curve(stimuli)                                   # (n_x, n_μ, n_σ)
    tables = (stimuli, np.ascontiguousarray(table.transpose(1, 0, 2)), np.log(table), np.log1p(-table))
    for array in tables:
        array.setflags(write=False)
    return tables


class PsiSearch:
    """The psi-marginal search for a rising curve's midpoint inside [low, high] (low > 0), for
    `batch` independent searches at once (the procedures use one; tests many). `grid`: μ grid
    points, σ grid points, and the stride of the candidate stimuli over the μ grid.

    `next_stimulus()` gives each search's next stimulus; `update(stimulus_index, response)` adds
    the replies; `done(precision)` says which have reached their precision; `fit(row)` reports."""

    @_QUIET
    def __init__(self, low: float, high: float, *, level: float = 0.95, batch: int = 1, lapse: float = LAPSE,
                 grid: tuple[int, int, int] = (SEARCH_MIDPOINTS, SEARCH_WIDTHS, CANDIDATE_STRIDE)):
        if not 0 < low < high:
            raise ValueError(f"PsiSearch needs 0 < low < high, got {low!r}, {high!r}")
        self.level = level
        self.posterior = GridPosterior(*_search_grid(low, high, grid), batch=batch, lapse=lapse)
        self.stimuli, self._table_by_midpoint, self._log_yes, self._log_no = _search_tables(low, high, lapse, grid)
        self.trials = np.zeros(batch, dtype=int)
        self.method = method_text(level, "log-uniform prior on the threshold over the bracket, log-uniform on the "
                                         "width", lapse) + "; psi-marginal adaptive design"

    @_QUIET
    def next_index(self, rows=None) -> np.ndarray:
        """Index into `stimuli` of each search's (or each of `rows`') next stimulus."""
        post = self.posterior.posterior()
        if rows is not None:
            post = post[rows]
        # Only the μ cells holding posterior mass count: a few trials leave most of the grid
        # below 1e-16 of the peak (each contrary reply weighs a cell by the lapse, 0.005), and
        # the table those cells would read is most of the time spent (7 MB per call).
        marginal = post.sum(axis=2)
        held = np.flatnonzero((marginal > SEARCH_MASS_CUT * marginal.max(axis=1, keepdims=True)).any(axis=0))
        cells = slice(held[0], held[-1] + 1)
        post, margin = post[:, cells], marginal[:, None, cells]
        # (b, n_x, n_μ): μ's marginal times P(yes), one matrix product per μ (BLAS, not einsum)
        yes = np.matmul(self._table_by_midpoint[cells],
                        np.ascontiguousarray(post.transpose(1, 2, 0))).transpose(2, 1, 0)
        no = margin - yes
        p_yes = yes.sum(axis=2)
        p_no = margin.sum(axis=2) - p_yes

        def entropy(m, total):
            # of m / total over μ: log(total) − Σ m·log(m) / total (one log per cell, no division)
            log_m = np.log(m, out=np.zeros_like(m), where=m > 0.0)
            return np.log(total) - np.einsum("bxm,bxm->bx", m, log_m) / total

        expected = p_yes * entropy(yes, p_yes) + p_no * entropy(no, p_no)
        return np.argmin(expected, axis=1)

    def next_stimulus(self) -> float:
        return float(self.stimuli[self.next_index()[0]])

    @_QUIET
    def update(self, index, response, rows=None) -> None:
        index = np.atleast_1d(np.asarray(index))
        response = np.atleast_1d(np.asarray(response, dtype=bool))
        terms = np.where(response[:, None, None], self._log_yes[index], self._log_no[index])
        if rows is None:
            self.posterior.loglik += terms
            self.trials += 1
        else:
            self.posterior.loglik[rows] += terms
            self.trials[rows] += 1

    def record(self, stimulus: float, response: bool) -> None:
        """One reply of a single search, at a stimulus of `stimuli`."""
        index = int(np.argmin(np.abs(self.stimuli - stimulus)))
        self.update([index], [response])

    def done(self, precision: float) -> np.ndarray:
        """Which searches' midpoint interval half-width is at most precision x the midpoint."""
        mu = self.posterior.midpoint(self.level)
        half = 0.5 * (mu.high - mu.low)
        return np.isfinite(mu.value) & (half <= precision * np.abs(mu.value))

    def fit(self, row: int = 0) -> PsychometricFit:
        return _fit_of(self.posterior, row, self.level, self.method, int(self.trials[row]))
