"""Switching-current statistics on quantised events: grid-aligned bins (no aliasing) and the
maximum-likelihood Gaussian of interval-censored, window-truncated events."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from procedures.analysis.iv import bracketed_mean_uncertainty, quantized_mean_uncertainty, resistive_branch_fit
from procedures.analysis.statistics import mean_uncertainty, summarize
from procedures.analysis.switching import (CensoredEvents, Grid, estimate_grid, expected_counts, fit_gaussian,
                                           grid_bin_edges, grid_histogram, pool_bins)

MEAN_A, SIGMA_A = 36.6e-6, 70e-9
STEP_A, PHASES = 76e-9, 5               # the window step and its dither phases: a 15.2 nA grid


def quantised_events(rng, n: int, *, below: float = 3.5, above: float = 2.5, mean_a: float = MEAN_A,
                     sigma_a: float = SIGMA_A):
    """Events as iv_sweep records them: thresholds ~ N(mean, σ²), read on windows of levels
    step apart starting at origin + (phase / PHASES)·step (phases in rotation), each recorded at
    the middle of the step it switched in, and kept only inside its window."""
    origin_a = mean_a - below * sigma_a
    levels = int(np.ceil((below + above) * sigma_a / STEP_A)) + 1
    recorded, low, high = [], [], []
    sweep = 0
    while len(recorded) < n:
        low_a = origin_a + STEP_A * (sweep % PHASES) / PHASES
        high_a = low_a + STEP_A * (levels - 1)
        x = rng.normal(mean_a, sigma_a)
        sweep += 1
        if low_a < x <= high_a:
            k = np.ceil((x - low_a) / STEP_A)
            recorded.append(low_a + (k - 0.5) * STEP_A)
            low.append(low_a)
            high.append(high_a)
    grid = Grid(STEP_A / PHASES, origin_a + STEP_A / 2)
    return np.array(recorded), np.array(low), np.array(high), grid


def test_uniform_counts_per_grid_value_give_a_flat_histogram_where_plain_bins_alias():
    grid = Grid(15.2e-9, 36.4e-6)
    values = grid.origin_a + grid.spacing_a * np.repeat(np.arange(60), 10)     # 10 events on each of 60 values
    for bins in (0, 7, 20, 40):
        counts, edges = grid_histogram(values, grid, bins)
        widths = np.diff(edges) / grid.spacing_a
        assert np.allclose(widths, np.rint(widths[0])) and widths[0] >= 1     # whole grid steps
        assert np.allclose(grid.off_grid(edges), 0.5)                         # half-way between values
        full = counts[:-1] if 60 % int(round(widths[0])) else counts           # the last bin may be partial
        assert np.all(full == full[0]), (bins, counts)
    # The same data in 40 plain bins over the range (width 1.48 grid steps): 1 or 2 values per bin.
    plain, _ = np.histogram(values, 40)
    assert plain.max() >= 1.8 * plain.min()


def test_no_grid_value_falls_on_a_bin_edge_and_every_bin_holds_the_same_number_of_grid_values():
    rng = np.random.default_rng(3)
    recorded, _, _, grid = quantised_events(rng, 1000)
    edges = grid_bin_edges(recorded, grid)
    assert np.all(grid.off_grid(recorded) < 1e-6)
    values = grid.origin_a + grid.spacing_a * np.arange(grid.index(edges[0]) - 1, grid.index(edges[-1]) + 2)
    per_bin, _ = np.histogram(values, edges)
    assert np.all(per_bin == per_bin[0])


def test_the_grid_is_estimated_from_the_values_spacing():
    rng = np.random.default_rng(4)
    recorded, _, _, grid = quantised_events(rng, 400)
    found = estimate_grid(recorded)
    assert found is not None
    assert found.spacing_a == pytest.approx(grid.spacing_a, rel=1e-6)
    assert np.all(found.off_grid(recorded) < 1e-3)
    assert estimate_grid(rng.normal(MEAN_A, SIGMA_A, 400)) is None                 # not quantised


def test_fit_recovers_mean_and_width_of_quantised_truncated_data_and_passes_its_goodness_of_fit():
    rng = np.random.default_rng(5)
    recorded, low, high, grid = quantised_events(rng, 3000)
    events = CensoredEvents.from_steps(recorded, STEP_A, low, high)
    edges = grid_bin_edges(recorded, grid)
    fit = fit_gaussian(events, 0.95, edges)
    assert fit.mean_interval_a[0] < MEAN_A < fit.mean_interval_a[1]
    assert fit.width_interval_a[0] < SIGMA_A < fit.width_interval_a[1]
    assert fit.mean_a == pytest.approx(MEAN_A, abs=4 * fit.mean_standard_a)
    assert fit.width_a == pytest.approx(SIGMA_A, abs=4 * fit.width_standard_a)
    # The recorded values' own spread carries the quantisation: about step²/12 more variance.
    assert np.std(recorded, ddof=1) > SIGMA_A
    assert fit.dof == fit.bins_tested - 3 and fit.dof >= 5
    assert fit.p_value > 0.001
    assert sum(expected_counts(events, fit.mean_a, fit.width_a, edges)) == pytest.approx(events.count, rel=1e-6)


def test_goodness_of_fit_rejects_a_distribution_that_is_not_gaussian():
    rng = np.random.default_rng(6)
    recorded, low, high, grid = quantised_events(rng, 3000)
    skewed = MEAN_A + 0.8 * SIGMA_A * (rng.exponential(1.0, 3000) - 1.0)          # σ-like width, skewed
    k = np.ceil((skewed - (MEAN_A - 5 * SIGMA_A)) / STEP_A)
    recorded = MEAN_A - 5 * SIGMA_A + (k - 0.5) * STEP_A
    events = CensoredEvents.from_steps(recorded, STEP_A)
    fit = fit_gaussian(events, 0.95, grid_bin_edges(recorded, Grid(STEP_A, recorded[0])))
    assert fit.p_value < 1e-6


def test_pooling_keeps_every_event_and_reaches_the_minimum_expected_count():
    observed = np.array([0, 1, 3, 10, 20, 9, 2, 1, 0])
    expected = np.array([0.2, 1.5, 4.0, 9.0, 18.0, 10.0, 3.0, 1.0, 0.3])
    pooled_o, pooled_e = pool_bins(observed, expected)
    assert pooled_o.sum() == observed.sum() and pooled_e.sum() == pytest.approx(expected.sum())
    assert np.all(pooled_e >= 5)


def test_95_percent_intervals_on_the_mean_cover_the_truth_95_percent_of_the_time():
    """200 seeded repetitions of 300 quantised events (wide windows: no truncation bias in the
    plain mean): the Student t interval on the recorded values' mean, and the fit's
    profile-likelihood interval, each cover the true mean in 95 % ± binomial error."""
    repetitions, level = 200, 0.95
    covered_t = covered_fit = covered_width = 0
    for seed in range(repetitions):
        rng = np.random.default_rng(1000 + seed)
        recorded, low, high, grid = quantised_events(rng, 300, below=8.0, above=8.0)
        t = mean_uncertainty(summarize(recorded), level)
        covered_t += bool(t.low <= MEAN_A <= t.high)
        fit = fit_gaussian(CensoredEvents.from_steps(recorded, STEP_A, low, high), level)
        covered_fit += bool(fit.mean_interval_a[0] <= MEAN_A <= fit.mean_interval_a[1])
        covered_width += bool(fit.width_interval_a[0] <= SIGMA_A <= fit.width_interval_a[1])
    # 99.9 % acceptance band of a binomial(200, 0.95): a fair interval fails this 1 time in 1000.
    low_k, high_k = stats.binom.ppf([0.0005, 0.9995], repetitions, level)
    for covered in (covered_t, covered_fit, covered_width):
        assert low_k <= covered <= high_k, (covered_t, covered_fit, covered_width)


def test_events_all_in_one_step_give_that_step_as_the_mean_interval():
    """A short run at a coarse step can switch in one step every time: the likelihood is flat
    towards σ → 0 (no curvature) and the spread is rounding noise. The fit must still stand:
    the mean somewhere in the step, its interval the step, the width's from zero."""
    step_a = 0.1e-6
    events = CensoredEvents.from_steps(np.full(20, 36.6e-6), step_a, 30e-6, 40e-6)
    fit = fit_gaussian(events, 0.95)
    low, high = fit.mean_interval_a
    assert 36.55e-6 - 1e-12 <= low < fit.mean_a < high <= 36.65e-6 + 1e-12
    assert high - low == pytest.approx(step_a, rel=1e-6)
    assert fit.width_interval_a[0] == pytest.approx(0.0, abs=1e-12)
    assert 0 < fit.width_interval_a[1] < step_a
    assert math.isnan(fit.mean_standard_a)     # no curvature: no standard uncertainty to claim


def test_events_in_a_few_steps_give_intervals_not_an_overflow():
    """15 events in three overlapping 2.4 µA steps: the likelihood is nearly flat towards σ → 0,
    so the width's standard error is ~800 (in log σ) and the search for its interval's end began
    at e^1600, an OverflowError. Fewer events in the same steps left the mean's standard error
    at 1e-26 and its interval at (−inf, inf); the likelihood on a dense grid closes it at
    (57.446, 58.600) µA."""
    few = fit_gaussian(CensoredEvents.from_steps(np.repeat([57.4e-6, 58.2e-6, 59.0e-6], [10, 4, 1]), 2.4e-6), 0.95)
    assert few.mean_interval_a[0] < few.mean_a < few.mean_interval_a[1] <= 58.6e-6 + 1e-12
    assert few.width_interval_a[0] == 0.0 and few.width_a < few.width_interval_a[1] < 2.4e-6
    fewer = fit_gaussian(CensoredEvents.from_steps(np.repeat([57.4e-6, 58.2e-6, 59.0e-6], [5, 2, 1]), 2.4e-6), 0.95)
    assert fewer.mean_interval_a == pytest.approx((57.446e-6, 58.600e-6), abs=1e-9)


def test_a_width_the_events_do_not_bound_has_an_open_interval():
    """13 events in two adjacent steps of one window: a narrow Gaussian on the edge between the
    steps and an arbitrarily wide one (truncated to the window: an exponential) both fit, so the
    width's interval is (0, inf) and the mean's open above, as the likelihood on a dense grid
    says. A search for the inner minimum from the estimate alone found finite ends (to 0.03 A)
    that depended on the order of the events, or overflowed."""
    events = CensoredEvents.from_steps(np.repeat([4.231588404920449e-05, 4.251213835722595e-05], [4, 9]),
                                       1.9625430802144855e-07, 4.084397673904362e-05, 4.261026551123667e-05)
    fit = fit_gaussian(events, 0.95)
    assert fit.width_interval_a == (0.0, math.inf)
    assert fit.mean_interval_a[1] == math.inf and fit.mean_interval_a[0] < fit.mean_a


def test_the_fit_interval_covers_under_window_truncation():
    """With iv_sweep's windows (−3.5σ to +2.5σ) the kept events are truncated; the fit, which
    conditions each event on its window, still covers the true mean at 95 %."""
    repetitions, level = 100, 0.95
    covered = 0
    for seed in range(repetitions):
        rng = np.random.default_rng(5000 + seed)
        recorded, low, high, _ = quantised_events(rng, 300)
        fit = fit_gaussian(CensoredEvents.from_steps(recorded, STEP_A, low, high), level)
        covered += bool(fit.mean_interval_a[0] <= MEAN_A <= fit.mean_interval_a[1])
    low_k, high_k = stats.binom.ppf([0.0005, 0.9995], repetitions, level)
    assert low_k <= covered <= high_k


def test_resistive_branch_slope_and_bracketed_retrap():
    current = np.linspace(40e-6, 44e-6, 10)
    voltage = 5.0 * current + np.random.default_rng(1).normal(0, 1e-7, 10)
    slope, u = resistive_branch_fit(current, voltage, 1e-5, 0.95)
    assert u.low < 5.0 < u.high and u.low < slope < u.high and u.level == 0.95 and "slope" in u.method
    mean, u = bracketed_mean_uncertainty([33.85e-6, 33.85e-6], 1.13e-6, 0.95, "A")
    # Identical readings: the step alone, uniform: ±1.96·step/√12.
    assert mean == pytest.approx(33.85e-6)
    assert u.high - mean == pytest.approx(1.96 * 1.13e-6 / np.sqrt(12), rel=1e-3)
    assert "1.13 µA step" in u.method


def test_the_mean_of_readings_within_one_step_is_known_to_the_step_not_to_zero():
    """Rounded readings that spread over steps keep their Student t interval; readings that all
    fall in one step (spread 0) get the step's GUM interval, which holds the truth the Student t
    interval of zero width missed."""
    from procedures.analysis.statistics import correlated_mean_uncertainty

    step_a, truth_a = 0.5e-6, 36.62e-6
    rng = np.random.default_rng(7)
    spread = np.round(rng.normal(truth_a, 2e-6, 200) / step_a) * step_a      # σ 2 µA over 0.5 µA steps
    student = correlated_mean_uncertainty(spread, 0.95)
    assert quantized_mean_uncertainty(spread, step_a, 0.95, student) is student
    one_step = np.full(25, 36.75e-6)          # every threshold in (36.5, 37.0] µA, read at its middle
    student = correlated_mean_uncertainty(one_step, 0.95)
    assert student.low == student.high == 36.75e-6 and not student.low <= truth_a <= student.high
    bounded = quantized_mean_uncertainty(one_step, step_a, 0.95, student, "A")
    assert bounded.standard == pytest.approx(step_a / math.sqrt(12))
    assert bounded.low < truth_a < bounded.high
    assert bounded.high - bounded.low == pytest.approx(2 * 1.959964 * step_a / math.sqrt(12), rel=1e-5)
    assert "step" in bounded.method and "does not average out" in bounded.method
