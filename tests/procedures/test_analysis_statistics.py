"""Statistics, bisection, crossings, I-V analysis and strength-duration fits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from procedures.analysis import iv
from procedures.analysis.statistics import (
    correlated_mean_uncertainty, falling_crossing, histogram, integrated_autocorrelation_time, mean_uncertainty,
    proportion_uncertainty, summarize, wilson_interval,
)
from procedures.analysis.strength_duration import (
    bootstrap_intervals, fit_lapicque, fit_weiss, lapicque_threshold_a, weiss_threshold_a,
)


def test_summary_and_histogram_of_a_known_normal_sample():
    rng = np.random.default_rng(7)
    values = rng.normal(22e-6, 0.15e-6, 5000)
    s = summarize(values)
    assert s.count == 5000
    assert s.mean == pytest.approx(22e-6, abs=4 * 0.15e-6 / math.sqrt(5000))
    assert s.std == pytest.approx(0.15e-6, rel=0.05)
    assert s.stderr == pytest.approx(s.std / math.sqrt(5000))
    counts, edges = histogram(values, 40)
    assert counts.sum() == 5000 and edges.size == 41
    assert abs(0.5 * (edges[np.argmax(counts)] + edges[np.argmax(counts) + 1]) - 22e-6) < 0.1e-6


def test_summary_and_histogram_never_divide_by_zero():
    assert summarize([]).count == 0 and math.isnan(summarize([]).mean)
    one = summarize([1.0, math.nan])
    assert one.mean == 1.0 and math.isnan(one.std)
    counts, edges = histogram([3e-6] * 10, 5)
    assert counts.sum() == 10 and np.all(np.diff(edges) > 0)
    assert histogram([], 4)[0].sum() == 0


def test_wilson_interval_contains_the_estimate_and_handles_no_trials():
    low, high = wilson_interval(3, 10)
    assert low < 0.3 < high
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_falling_crossing_interpolates_and_reports_never():
    spacing = np.array([20e-9, 10e-9, 5e-9, 2e-9])
    p = np.array([1.0, 0.9, 0.3, 0.0])
    # Between 10 ns (0.9) and 5 ns (0.3): 0.5 lies 2/3 of the way.
    assert falling_crossing(spacing, p) == pytest.approx(10e-9 - (0.4 / 0.6) * 5e-9)
    assert math.isnan(falling_crossing(spacing, np.ones(4)))
    assert math.isnan(falling_crossing(spacing, np.zeros(4)))


def test_iv_analysis_of_a_synthetic_hysteretic_curve():
    isw, ir, r = 23.4e-6, 6e-6, 40.0
    up = np.linspace(0, 30e-6, 31)
    up_v = np.where(up >= isw, r * up, 0.0)
    down = up[::-1]
    down_v = np.where(down > ir, r * down, 0.0)
    assert iv.switching_current_a(up, up_v, 1e-5) == pytest.approx(24e-6)
    assert iv.retrapping_current_a(down, down_v, 1e-5) == pytest.approx(6e-6)
    assert iv.resistive_branch_ohm(up, up_v, 1e-5) == pytest.approx(r)
    assert math.isnan(iv.switching_current_a(up, np.zeros(31), 1e-5))
    assert math.isnan(iv.retrapping_current_a(down, np.zeros(31), 1e-5))
    assert math.isnan(iv.resistive_branch_ohm(up, np.zeros(31), 1e-5))


@pytest.mark.parametrize("rheobase, chronaxie", [(12e-6, 1.5e-9), (20e-6, 8e-9)])
def test_weiss_fit_recovers_rheobase_and_chronaxie(rheobase, chronaxie):
    widths = np.array([0.5, 1, 2, 4, 8, 16]) * 1e-9
    fit = fit_weiss(widths, weiss_threshold_a(widths, rheobase, chronaxie))
    assert fit.rheobase_a == pytest.approx(rheobase, rel=1e-9)
    assert fit.chronaxie_s == pytest.approx(chronaxie, rel=1e-9)


def test_lapicque_fit_recovers_rheobase_and_time_constant_with_noise():
    rng = np.random.default_rng(3)
    widths = np.array([0.5, 1, 2, 4, 8, 16, 32]) * 1e-9
    thresholds = lapicque_threshold_a(widths, 14e-6, 3e-9) * (1 + 0.002 * rng.standard_normal(widths.size))
    fit = fit_lapicque(widths, thresholds)
    assert fit.rheobase_a == pytest.approx(14e-6, rel=0.01)
    assert fit.time_constant_s == pytest.approx(3e-9, rel=0.03)
    assert fit.chronaxie_s == pytest.approx(3e-9 * math.log(2), rel=0.03)


def test_fits_refuse_too_little_data_with_nan():
    assert math.isnan(fit_weiss([1e-9], [1e-5]).rheobase_a)
    assert math.isnan(fit_lapicque([1e-9, 2e-9], [math.nan, math.nan]).chronaxie_s)


def test_wilson_interval_is_at_the_level_it_names():
    # 4 of 4: the 95 % Wilson interval is [0.510, 1] (Wilson 1927; Newcombe 1998, table I).
    low, high = wilson_interval(4, 4, level=0.95)
    assert low == pytest.approx(0.5101, abs=1e-4) and high == pytest.approx(1.0)
    assert wilson_interval(4, 4, level=0.6827)[0] == pytest.approx(0.8, abs=1e-3)   # one σ
    u = proportion_uncertainty([4, 2], [4, 4])
    assert u.method == "Wilson score interval" and u.level == 0.95
    assert u.low[0] == pytest.approx(0.5101, abs=1e-4) and u.low[1] < 0.5 < u.high[1]


def test_mean_uncertainty_is_a_student_t_interval_with_the_standard_error():
    values = [1.0, 2.0, 3.0, 4.0]
    s = summarize(values)
    u = mean_uncertainty(s, 0.95)
    half = 3.182446 * s.stderr        # t(0.975, 3)
    assert (u.low, u.high) == (pytest.approx(2.5 - half), pytest.approx(2.5 + half))
    assert u.standard == pytest.approx(s.stderr) and "n = 4" in u.method
    assert math.isnan(mean_uncertainty(summarize([1.0])).low)


def test_strength_duration_bootstrap_intervals_cover_the_true_parameters():
    """Thresholds drawn about an exact Lapicque curve with known standard uncertainties: the
    95 % bootstrap intervals of τ and of the rheobase cover the truth in a fraction of the
    seeded repetitions inside the 99.9 % binomial acceptance region of 0.95."""
    from scipy import stats
    widths = np.array([2, 3, 5, 10, 20]) * 1e-9
    sd_a = np.array([0.5, 0.5, 0.3, 0.4, 0.3]) * 1e-6
    tau_s, rheobase_a = 3e-9, 11e-6
    truth = lapicque_threshold_a(widths, rheobase_a, tau_s)
    rng = np.random.default_rng(11)
    repetitions, covered_tau, covered_rheobase = 80, 0, 0
    for _ in range(repetitions):
        b = bootstrap_intervals(widths, truth + rng.standard_normal(widths.size) * sd_a, sd_a, 0.95, resamples=400)
        covered_tau += b["lapicque_time_constant_s"].low <= tau_s <= b["lapicque_time_constant_s"].high
        covered_rheobase += b["lapicque_rheobase_a"].low <= rheobase_a <= b["lapicque_rheobase_a"].high
    low, high = stats.binom.interval(0.999, repetitions, 0.95)
    assert low <= covered_tau <= high and low <= covered_rheobase <= high
    assert "parametric bootstrap" in b["chronaxie_s"].method and b["chronaxie_s"].level == 0.95


def test_strength_duration_bootstrap_without_uncertainties_is_nan():
    b = bootstrap_intervals([2e-9, 5e-9], [20e-6, 15e-6], [math.nan, math.nan], 0.95)
    assert all(math.isnan(u.low) and math.isnan(u.high) for u in b.values())


def ar1(rng, phi: float, n: int) -> np.ndarray:
    """A stationary AR(1) sequence of unit innovations: τ = (1 + φ)/(1 − φ), mean 0."""
    noise = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = noise[0] / np.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + noise[i]
    return x


def test_autocorrelation_time_of_independent_and_correlated_sequences():
    rng = np.random.default_rng(3)
    assert integrated_autocorrelation_time(rng.standard_normal(2000)) == pytest.approx(1.0, abs=0.15)
    taus = [integrated_autocorrelation_time(ar1(rng, 0.5, 2000)) for _ in range(20)]
    assert np.median(taus) == pytest.approx(3.0, rel=0.15)
    assert math.isnan(integrated_autocorrelation_time([1.0, 2.0, 3.0]))


def test_the_correlated_mean_interval_covers_at_its_level_where_the_naive_one_does_not():
    """300 values of AR(1), φ = 0.5 (τ = 3): the Student t interval that takes them as independent
    covers the mean ~74 % of the time; the one on n/τ values near 95 %."""
    rng = np.random.default_rng(4)
    repetitions = 400
    covered = naive = 0
    for _ in range(repetitions):
        x = ar1(rng, 0.5, 300)
        found = correlated_mean_uncertainty(x, 0.95)
        covered += found.low <= 0.0 <= found.high
        plain = mean_uncertainty(summarize(x), 0.95)
        naive += plain.low <= 0.0 <= plain.high
        assert found.level == 0.95 and "autocorrelation time" in found.method
    low, high = stats.binom.ppf([0.0005, 0.9995], repetitions, 0.95) / repetitions
    assert low <= covered / repetitions <= high, covered
    assert naive / repetitions < low, naive
