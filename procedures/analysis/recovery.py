"""A probability rising with a stimulus — a second spike against a pulse pair's spacing, repeated
firing against a DC input current — fitted as a probit by maximum likelihood, with
profile-likelihood intervals on its midpoint and width.

Model: P(x) = λ/2 + (1 − λ)·Φ((x − μ)/σ). For paired pulses: the second pulse fires when the
spacing exceeds the time the neuron needs to recover on that pair. That time varies from pair to
pair (the switching current's spread, the state earlier pulses left in the loop); taken as normal
with median μ and spread σ, P(second spike | spacing) is this curve, μ (P = 0.5) is the refractory
period and σ the pair-to-pair spread of recovery times (the transition's width). The same holds
for the DC current at which a neuron starts firing. λ = LAPSE = 1 % is fixed, not fitted: one
spurious or missed spike far from the transition would otherwise have a likelihood of ~0 and
move the whole fit. The model and λ are procedures/analysis/psychometric.py's; what is here is
the inference asked of a refractory period and an onset: maximum likelihood with
profile-likelihood intervals, a positive stimulus, and the bounds a midpoint outside the data
has. (psychometric.fit_psychometric gives Bayesian credible intervals on a grid for the same
model; on a 10 x 8 design both cover 92-95 %.)

Fit: maximum likelihood on every (x, successes, trials) at once (binomial). Intervals: profile
likelihood, {μ : 2[ℓ̂ − max_σ ℓ(μ, σ)] ≤ χ²₁(level)}, and the same for σ (Wilks). The search
runs over μ in the data's x range extended by one range on each side (not below 0 when every x
is positive: a spacing, a current) and σ from 1e-4 to 2 ranges; a side the likelihood does not
close inside it is open (−inf, or 0 for a positive x, and +inf for μ; 0/+inf for σ), and μ's
estimate is then NaN. Data that separate perfectly (all failures below some x, all successes
above) put σ̂ at its floor and μ anywhere in the gap between them: the estimate is then the
middle of the flat part of the profile and the interval covers the gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy

from contracts.records import Result, Uncertainty
from procedures.analysis.psychometric import LAPSE, probability
from procedures.analysis.distributions import chi2_quantile
from procedures.analysis.grid_search import grid_maximum

#: Search range, in units of the data's x range (span): μ within span of the data, σ in
#: [SIGMA_RANGE[0], SIGMA_RANGE[1]] x span; the coarse grid that brackets the roots.
MU_EXTENSION, SIGMA_RANGE = 1.0, (1e-4, 2.0)
GRID_MU, GRID_SIGMA = 241, 60
#: The joint maximum (the estimates themselves) refined six rounds: μ to 3e-6 of the span (the
#: profiles' four: σ to 7e-4 of log σ, μ to 5e-5 of the span; grid_search).
JOINT_ROUNDS = 6


def method_text(level: float) -> str:
    return (f"profile-likelihood interval (χ²₁ at {level:.0%}) of a probit P = Φ((x − μ)/σ) fitted by "
            f"binomial maximum likelihood, lapse {LAPSE:.0%} fixed")


@dataclass(frozen=True)
class RecoveryFit:
    """μ (the midpoint, P = 0.5) and σ (the width) with their intervals at `level` (−inf/+inf,
    0/+inf on a side the data leave open); `midpoint` NaN when no finite estimate exists (no
    data, or no success / no failure at all). `deviance` is 2(ℓ_saturated − ℓ̂) on
    `points − 2` degrees of freedom (a goodness-of-fit check)."""
    midpoint: float
    midpoint_low: float
    midpoint_high: float
    width: float
    width_low: float
    width_high: float
    level: float
    trials: int
    points: int
    deviance: float
    method: str

    @property
    def half_width(self) -> float:
        """Half the midpoint's interval (inf when a side is open)."""
        return 0.5 * (self.midpoint_high - self.midpoint_low)

    def midpoint_uncertainty(self) -> Uncertainty:
        return Uncertainty(self.method, self.level, self.midpoint_low, self.midpoint_high)

    def width_uncertainty(self) -> Uncertainty:
        return Uncertainty(self.method, self.level, self.width_low, self.width_high)

    def outside(self, lowest: float, highest: float) -> str:
        """"below" or "above" when the midpoint lies outside what was scanned, [lowest, highest]
        (or the data give only its confidence limit on that side); "" when inside."""
        if self.midpoint < lowest or (np.isnan(self.midpoint) and np.isfinite(self.midpoint_high)):
            return "below"
        if self.midpoint > highest or (np.isnan(self.midpoint) and np.isfinite(self.midpoint_low)):
            return "above"
        return ""

    def limit(self, name: str, side: str) -> Result:
        """The confidence limit a midpoint outside the scan keeps to, as the result `name`
        ("x_upper_bound_u" for a side "below", "x_lower_bound_u" for "above")."""
        upper = side == "below"
        return Result(name, self.midpoint_high if upper else self.midpoint_low, name.rpartition("_")[2],
                      exact=f"a {self.level:.0%} profile-likelihood {'upper' if upper else 'lower'} confidence "
                            "limit itself")


class _Likelihood:
    """ℓ(μ, σ) of binomial data under the model, in x scaled to the data's range (conditioning)."""

    def __init__(self, x: np.ndarray, k: np.ndarray, n: np.ndarray):
        self.origin = float(x.min())
        self.scale = float(np.ptp(x)) or (abs(self.origin) * 0.1 or 1.0)
        self.x = (x - self.origin) / self.scale
        self.k, self.n = k, n
        # A positive stimulus (a spacing, a current) has a positive midpoint.
        self.mu_bounds = (-MU_EXTENSION if self.origin <= 0 else max(-MU_EXTENSION, -self.origin / self.scale),
                          1.0 + MU_EXTENSION)
        self.log_sigma_bounds = (math.log(SIGMA_RANGE[0]), math.log(SIGMA_RANGE[1]))
        self.mu_grid = np.linspace(*self.mu_bounds, GRID_MU)
        self.log_sigma_grid = np.linspace(*self.log_sigma_bounds, GRID_SIGMA)

    def loglik(self, mu, log_sigma):
        """ℓ, broadcasting μ and log σ against each other (data on a trailing axis)."""
        mu = np.asarray(mu, dtype=float)[..., None]
        sigma = np.exp(np.asarray(log_sigma, dtype=float))[..., None]
        with np.errstate(under="ignore"):      # Φ far from the transition is 0 or 1: exact enough
            p = probability(self.x, mu, sigma)
            return np.sum(self.k * np.log(p) + (self.n - self.k) * np.log1p(-p), axis=-1)

    def profile_mu(self, mu) -> tuple[np.ndarray, np.ndarray]:
        """max over σ of ℓ(μ, σ), and the log σ where it is, at each μ of an array (a profile
        need not be unimodal in log σ: data on both sides of a gap fit a step and a slope)."""
        mu = np.asarray(mu, dtype=float)[:, None]
        return grid_maximum(lambda log_sigma: self.loglik(mu, log_sigma), self.log_sigma_grid)

    def profile_sigma(self, log_sigma) -> tuple[np.ndarray, np.ndarray]:
        """max over μ of ℓ(μ, σ), and the μ where it is, at each log σ of an array."""
        log_sigma = np.asarray(log_sigma, dtype=float)[:, None]
        return grid_maximum(lambda mu: self.loglik(mu, log_sigma), self.mu_grid)

    def saturated(self) -> float:
        p = np.clip(self.k / self.n, LAPSE / 2, 1 - LAPSE / 2)
        return float(np.sum(self.k * np.log(p) + (self.n - self.k) * np.log1p(-p)))


def _root(f, inside: float, outside: float) -> float:
    """The crossing of f (< 0 at inside, > 0 at outside) between them; `inside` itself if f
    is not below 0 there (a profile flat at the cut)."""
    if not f(inside) < 0:
        return inside
    return float(scipy.optimize.brentq(f, inside, outside, xtol=1e-6, rtol=1e-8))


def fit_recovery(x, successes, trials, level: float = 0.95) -> RecoveryFit:
    """Fit the rising probit to `successes` of `trials` at each x (points may repeat an x).
    Never raises on data: no data gives NaN everywhere; all successes or none an open interval
    and a NaN midpoint."""
    x = np.asarray(x, dtype=float).ravel()
    k = np.asarray(successes, dtype=float).ravel()
    n = np.asarray(trials, dtype=float).ravel()
    keep = np.isfinite(x) & np.isfinite(k) & np.isfinite(n) & (n > 0)
    x, k, n = x[keep], k[keep], n[keep]
    method = method_text(level)
    if x.size == 0:
        return RecoveryFit(*[math.nan] * 6, level, 0, 0, math.nan, method)
    like = _Likelihood(x, k, n)
    cut = chi2_quantile(level, 1)

    # The profile over μ's grid brackets the maximum and the interval's ends.
    mu_grid, log_sigma_grid = like.mu_grid, like.log_sigma_grid
    table = like.loglik(mu_grid[:, None], log_sigma_grid[None, :])
    profile, _ = grid_maximum(lambda log_sigma: like.loglik(mu_grid[:, None], log_sigma), log_sigma_grid, table)
    best, mu_hat = (float(v[0]) for v in grid_maximum(lambda mu: like.profile_mu(mu.ravel())[0][None, :], mu_grid,
                                                  profile[None, :], JOINT_ROUNDS))

    def deviance_mu(mu: float) -> float:
        return 2 * (best - float(like.profile_mu([mu])[0][0])) - cut

    def deviance_sigma(log_sigma: float) -> float:
        return 2 * (best - float(like.profile_sigma([log_sigma])[0][0])) - cut

    # The flat part of μ's profile (perfect separation): its middle is the estimate.
    flat = mu_grid[2 * (best - profile) <= 1e-3]
    if flat.size and np.ptp(flat) > 2 * (mu_grid[1] - mu_grid[0]):
        mu_hat = float(np.clip(0.5 * (flat.min() + flat.max()), *like.mu_bounds))
    at_estimate, log_sigma_at = like.profile_mu([mu_hat])
    log_sigma_hat = float(log_sigma_at[0])

    # The inner maximisations may find a little more than the 2-D search did.
    best = max(best, float(at_estimate[0]), float(like.profile_sigma([log_sigma_hat])[0][0]))

    def ends(deviance, estimate: float, grid: np.ndarray, coarse: np.ndarray, open_low: float,
             open_high: float) -> tuple[float, float]:
        """The interval's ends: outward from the estimate, the first grid point whose coarse
        deviance (a maximum over the grid: never below the exact one) passes the cut and whose
        exact one does too, then the root between it and the estimate."""
        out = []
        for side, open_value in ((grid < estimate, open_low), (grid > estimate, open_high)):
            order = np.flatnonzero(side)
            order = order[::-1] if open_value < 0 else order
            outside = next((grid[g] for g in order if coarse[g] > 0 and deviance(grid[g]) > 0), None)
            if outside is None:
                out.append(open_value)
            else:
                out.append(_root(deviance, estimate, float(outside)))
        return out[0], out[1]

    mu_low, mu_high = ends(deviance_mu, mu_hat, mu_grid, 2 * (best - table.max(axis=1)) - cut, -math.inf, math.inf)
    s_low, s_high = ends(deviance_sigma, log_sigma_hat, log_sigma_grid, 2 * (best - table.max(axis=0)) - cut,
                         -math.inf, math.inf)

    scale, origin = like.scale, like.origin
    located = math.isfinite(mu_low) and math.isfinite(mu_high)
    low = origin + scale * mu_low
    if origin > 0:                          # a positive stimulus: open down to 0 at most (not -1e-25)
        low = max(low, 0.0)
    midpoint = origin + scale * mu_hat if located else math.nan
    if not located:        # no transition inside the range: its width is not measured
        s_low, log_sigma_hat, s_high = -math.inf, math.nan, math.inf
    width = scale * math.exp(log_sigma_hat) if math.isfinite(s_high) else math.nan
    deviance = 2 * (like.saturated() - best)
    return RecoveryFit(
        midpoint, low, origin + scale * mu_high,
        width, 0.0 if not math.isfinite(s_low) else scale * math.exp(s_low),
        math.inf if not math.isfinite(s_high) else scale * math.exp(s_high),
        level, int(n.sum()), int(x.size), deviance, method)
