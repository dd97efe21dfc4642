"""The recovery-curve fit (procedures/analysis/recovery.py) on synthetic binomial data with a known
truth, and what the refractory procedure reports from it at the edges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from procedures.analysis.distributions import chi2_quantile
from procedures.analysis.recovery import _Likelihood, fit_recovery, probability
from procedures.refractory import adaptive_spacings_s, precise, results_of

TRUE_PERIOD_S, TRUE_WIDTH_S = 5e-9, 0.8e-9


def test_a_large_data_set_gives_back_the_truth_inside_narrow_intervals():
    rng = np.random.default_rng(11)
    spacings = np.linspace(2e-9, 10e-9, 20)
    trials = np.full(spacings.size, 200)
    fit = fit_recovery(spacings, rng.binomial(trials, probability(spacings, TRUE_PERIOD_S, TRUE_WIDTH_S)), trials)
    assert fit.midpoint == pytest.approx(TRUE_PERIOD_S, rel=0.02)
    assert fit.width == pytest.approx(TRUE_WIDTH_S, rel=0.15)
    assert fit.midpoint_low < TRUE_PERIOD_S < fit.midpoint_high and fit.half_width < 0.03 * TRUE_PERIOD_S
    assert fit.width_low < TRUE_WIDTH_S < fit.width_high
    u = fit.midpoint_uncertainty()
    assert u.level == 0.95 and u.method.startswith("profile-likelihood interval")


def test_95_percent_intervals_cover_the_truth_95_percent_of_the_time():
    """200 seeded data sets the size of a refractory run's (10 spacings x 8 pairs): each interval
    must hold the truth in 95 % of them within 3 binomial standard errors (0.904 to 0.996)."""
    rng = np.random.default_rng(2026)
    spacings = np.linspace(3e-9, 9e-9, 10)
    trials = np.full(spacings.size, 8)
    p = probability(spacings, TRUE_PERIOD_S, TRUE_WIDTH_S)
    repetitions = 200
    period = width = 0
    for _ in range(repetitions):
        fit = fit_recovery(spacings, rng.binomial(trials, p), trials)
        period += fit.midpoint_low <= TRUE_PERIOD_S <= fit.midpoint_high
        width += fit.width_low <= TRUE_WIDTH_S <= fit.width_high
    band = 3 * math.sqrt(0.95 * 0.05 / repetitions)
    assert abs(period / repetitions - 0.95) <= band, period
    assert abs(width / repetitions - 0.95) <= band, width


@pytest.mark.parametrize("spacings_s, seconds, pairs", [
    # A profile over σ with two maxima (a step in the gap, a slope across it): a search for one
    # maximum missed the higher, so the interval came out too short on one side.
    ([1.94169287e-09, 1.23811192e-08, 1.83327726e-08], [1, 13, 5], [9, 13, 5]),
    ([2.27807134e-09, 6.54693426e-09, 1.11348032e-08, 1.12075277e-08, 1.13234612e-08, 1.52874704e-08,
      1.56633191e-08, 1.64379612e-08, 1.64732706e-08, 1.68238344e-08],
     [1, 14, 5, 32, 23, 34, 8, 26, 28, 34], [38, 15, 5, 32, 23, 34, 8, 26, 28, 35]),
    (np.linspace(3e-9, 9e-9, 10), [0, 0, 1, 3, 2, 5, 7, 8, 8, 8], [8] * 10),
])
def test_the_interval_is_the_profile_likelihood_s_on_a_dense_grid(spacings_s, seconds, pairs):
    """The interval's ends and the estimate against ℓ on a 1201 × 1201 grid of (μ, log σ) over
    the fit's whole search range: the same interval to within the grid's spacing, and no point of
    the grid more likely than the estimate."""
    x, k, n = (np.asarray(v, dtype=float) for v in (spacings_s, seconds, pairs))
    fit = fit_recovery(x, k, n)
    like = _Likelihood(x, k, n)
    mu = np.linspace(*like.mu_bounds, 1201)
    log_sigma = np.linspace(*like.log_sigma_bounds, 1201)
    table = np.concatenate([like.loglik(mu[i:i + 100, None], log_sigma[None, :]) for i in range(0, mu.size, 100)])
    best = table.max()
    inside = like.origin + like.scale * mu[2 * (best - table.max(axis=1)) <= chi2_quantile(0.95, 1)]
    spacing_s = like.scale * (mu[1] - mu[0])
    assert fit.midpoint_low == pytest.approx(inside.min(), abs=spacing_s)
    assert fit.midpoint_high == pytest.approx(inside.max(), abs=spacing_s)
    at_estimate = like.loglik((fit.midpoint - like.origin) / like.scale, math.log(fit.width / like.scale))
    assert at_estimate >= best - 1e-6


def test_no_transition_in_range_gives_nan_and_the_open_side_never_an_exception():
    spacings = np.geomspace(33.6e-9, 3.6e-9, 8)
    trials = np.full(8, 4)
    every = fit_recovery(spacings, trials, trials)          # second spikes everywhere
    assert math.isnan(every.midpoint) and math.isnan(every.width)
    assert every.midpoint_low == 0.0 and 3e-9 < every.midpoint_high < 4.5e-9
    none = fit_recovery(spacings, np.zeros(8), trials)
    assert math.isnan(none.midpoint) and none.midpoint_high == math.inf and none.midpoint_low > 30e-9
    empty = fit_recovery([], [], [])
    assert math.isnan(empty.midpoint) and empty.trials == 0


def test_perfectly_separated_data_put_the_period_inside_the_gap():
    spacings = np.array([3e-9, 4e-9, 5e-9, 6e-9, 8e-9])
    trials = np.full(5, 6)
    fit = fit_recovery(spacings, np.array([0, 0, 6, 6, 6]), trials)
    assert 4e-9 < fit.midpoint < 5e-9
    assert fit.midpoint_low < 4.5e-9 < fit.midpoint_high and fit.width_low == 0.0


def test_a_period_below_the_shortest_spacing_is_nan_with_an_upper_bound_and_a_reason():
    tried = [(s, 4, 4) for s in np.geomspace(33.6e-9, 4.1e-9, 8)]
    found = {r.name: r for r in results_of(fit_recovery(*zip(*tried)), tried, 4.1e-9, 33.6e-9)}
    assert math.isnan(found["refractory_period_s"].value)
    assert 4e-9 < found["refractory_period_upper_bound_s"].value < 5e-9
    assert found["refractory_period_note"].value.startswith(
        "second spikes in half the pairs or more at every spacing down to the shortest, 4.1 ns: the refractory "
        "period is below it")
    probability_result = found["second_spike_probability"]
    assert probability_result.axis.values[0] == pytest.approx(33.6e-9)       # longest first
    assert probability_result.uncertainty.method == "Wilson score interval"


def test_adaptive_rounds_go_near_the_estimate_and_stop_at_the_precision():
    rng = np.random.default_rng(5)
    spacings = np.geomspace(33.6e-9, 3.6e-9, 8)
    trials = np.full(8, 4)
    fit = fit_recovery(spacings, rng.binomial(trials, probability(spacings, TRUE_PERIOD_S, TRUE_WIDTH_S)), trials)
    chosen = adaptive_spacings_s(fit, 3.6e-9, 33.6e-9, pairs_left=100, trials=4)
    assert len(chosen) == 3 and all(3.6e-9 <= s <= 33.6e-9 for s in chosen)
    assert all(abs(s - fit.midpoint) <= 1.01 * min(fit.width, fit.half_width) for s in chosen)
    assert adaptive_spacings_s(fit, 3.6e-9, 33.6e-9, pairs_left=4, trials=4) == chosen[:1]
    assert precise(fit, 3.6e-9, 33.6e-9, precision=10.0) and not precise(fit, 3.6e-9, 33.6e-9, precision=1e-4)
