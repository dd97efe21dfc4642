"""The psychometric fit and the adaptive (psi-marginal) threshold search, against a simulated
Bernoulli observer of known midpoint and width (seeded: every run draws the same replies)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from procedures.analysis.psychometric import GridPosterior, PsiSearch, fit_psychometric, probability

TRUE_MU_A, TRUE_SIGMA_A = 20e-6, 1e-6
LOW_A, HIGH_A = 8e-6, 48e-6
#: A coarser grid than the procedures' keeps 200 searches at once to a few seconds.
TEST_GRID = (121, 12, 3)


def run_searches(repetitions: int, precision: float, trials_max: int, seed: int, mu=TRUE_MU_A, sigma=TRUE_SIGMA_A,
                 grid=TEST_GRID) -> PsiSearch:
    """`repetitions` searches at once, each against its own draws of the observer, each stopping at
    its precision or trials_max."""
    rng = np.random.default_rng(seed)
    search = PsiSearch(LOW_A, HIGH_A, batch=repetitions, grid=grid)
    active = np.ones(repetitions, dtype=bool)
    while active.any():
        rows = np.flatnonzero(active)
        index = search.next_index(rows)
        spikes = rng.random(rows.size) < probability(search.stimuli[index], mu, sigma, lapse=0.0)
        search.update(index, spikes, rows)
        active[rows] = ~search.done(precision)[rows] & (search.trials[rows] < trials_max)
    return search


def test_adaptive_search_converges_to_the_threshold():
    search = run_searches(20, precision=0.02, trials_max=400, seed=1)
    fits = [search.fit(row) for row in range(20)]
    assert all(f.half_width <= 0.02 * f.midpoint for f in fits)       # stopped on precision, not the cap
    assert np.all(search.trials < 400)
    assert np.median([f.midpoint for f in fits]) == pytest.approx(TRUE_MU_A, rel=0.01)
    assert fits[0].midpoint_uncertainty().level == 0.95 and "psi-marginal" in fits[0].method


def test_adaptive_search_95_percent_interval_covers_the_true_threshold_95_percent_of_the_time():
    repetitions = 200
    search = run_searches(repetitions, precision=0.03, trials_max=300, seed=20261203)
    mu = search.posterior.midpoint(0.95)
    covered = int(np.count_nonzero((mu.low <= TRUE_MU_A) & (TRUE_MU_A <= mu.high)))
    low, high = stats.binom.interval(0.999, repetitions, 0.95)
    assert low <= covered <= high, f"{covered} of {repetitions} intervals cover the true threshold"


def test_a_search_that_never_sees_a_spike_reports_no_threshold_and_an_open_interval():
    search = PsiSearch(LOW_A, HIGH_A, grid=TEST_GRID)
    for _ in range(40):
        search.record(search.next_stimulus(), False)
    fit = search.fit()
    assert not search.done(0.05)[0]
    assert math.isnan(fit.midpoint) and fit.midpoint_high == math.inf and fit.midpoint_low > 0.5 * HIGH_A
    # It climbed to the bracket's top, where the threshold is not yet excluded.
    assert search.next_stimulus() == pytest.approx(search.stimuli[-1], rel=0.2)


@pytest.mark.parametrize("falling, repetitions", [(False, 100), (True, 20)])
def test_fit_recovers_midpoint_and_width_and_its_intervals_cover_them(falling, repetitions):
    rng = np.random.default_rng(7)
    x = np.linspace(15e-6, 25e-6, 11)
    trials = np.full(x.size, 40)
    fits = [fit_psychometric(x, rng.binomial(trials, probability(x, TRUE_MU_A, TRUE_SIGMA_A, lapse=0.0,
                                                                 falling=falling)), trials, falling=falling)
            for _ in range(repetitions)]
    assert np.median([f.midpoint for f in fits]) == pytest.approx(TRUE_MU_A, abs=0.1e-6)
    assert np.median([f.width for f in fits]) == pytest.approx(TRUE_SIGMA_A, rel=0.15)
    low, high = stats.binom.interval(0.999, repetitions, 0.95)
    assert low <= sum(f.midpoint_low <= TRUE_MU_A <= f.midpoint_high for f in fits) <= high
    assert low <= sum(f.width_low <= TRUE_SIGMA_A <= f.width_high for f in fits) <= high
    assert fits[0].trials == 440 and fits[0].midpoint_uncertainty().method == fits[0].method


def test_fit_of_all_or_no_responses_or_no_data_is_open_or_nan_never_an_error():
    x, trials = np.array([1.0, 2.0, 3.0]), np.array([5, 5, 5])
    everything = fit_psychometric(x, trials, trials)
    assert math.isnan(everything.midpoint) and everything.midpoint_low == -math.inf
    assert math.isfinite(everything.midpoint_high) and everything.midpoint_high <= 1.5
    nothing = fit_psychometric(x, 0 * trials, trials)
    assert math.isnan(nothing.midpoint) and nothing.midpoint_high == math.inf and nothing.midpoint_low >= 2.5
    empty = fit_psychometric([], [], [])
    assert math.isnan(empty.midpoint) and math.isnan(empty.midpoint_low) and empty.trials == 0
    single = fit_psychometric([2.0], [3], [6])
    assert math.isnan(single.midpoint) or single.midpoint_low <= 2.0 <= single.midpoint_high


def test_searches_of_one_bracket_share_its_tables_read_only_and_exact():
    """strength_duration's searches all search one bracket: its tables are computed once, are
    the model's own values to the last bit, and no search can change them for the next."""
    low, high = 4.8e-6, 4.8e-5
    first, second = PsiSearch(low, high), PsiSearch(low, high)
    assert first._log_yes is second._log_yes and first.stimuli is second.stimuli
    with pytest.raises(ValueError):
        first._log_no[0, 0, 0] = 0.0
    span = high - low
    grid = GridPosterior(np.geomspace(low, high, 301), np.geomspace(span * 5e-4, span * 0.2, 20))
    table = grid.curve(grid.midpoints[::2])
    np.testing.assert_array_equal(first._log_yes, np.log(table))
    np.testing.assert_array_equal(first._log_no, np.log1p(-table))
    np.testing.assert_array_equal(first._table_by_midpoint, table.transpose(1, 0, 2))


def test_the_cells_left_out_of_the_next_stimulus_change_no_choice(monkeypatch):
    """The search leaves μ cells below SEARCH_MASS_CUT of the peak out of its choice (for speed):
    on the procedures' grid, against observers of several thresholds and widths, it chooses the
    very stimuli the whole grid gives, trial after trial."""
    from procedures.analysis import psychometric

    def choices(cut: float, seed: int) -> list[int]:
        monkeypatch.setattr(psychometric, "SEARCH_MASS_CUT", cut)
        rng = np.random.default_rng(seed)
        mu_a = rng.uniform(1.2, 0.8 * HIGH_A / LOW_A) * LOW_A
        sigma_a = mu_a * rng.uniform(0.005, 0.05)
        search, chosen = PsiSearch(LOW_A, HIGH_A), []
        for _ in range(45):
            index = int(search.next_index()[0])
            chosen.append(index)
            search.update([index], [rng.random() < probability(search.stimuli[index], mu_a, sigma_a)])
        return chosen

    for seed in range(4):
        assert choices(psychometric.SEARCH_MASS_CUT, seed) == choices(0.0, seed)
