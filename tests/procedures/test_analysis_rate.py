"""Firing rates from spike counts (procedures/analysis/rate.py): the intervals hold the truth as
often as they say, on synthetic counts with a known rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from procedures.analysis.rate import (RATE_METHOD, counted_time_s, every_record_fired, gain_fit, garwood_interval,
                                     rate_uncertainty)

RECORD_S = 99e-9
REPETITIONS = 200
BAND = 3 * math.sqrt(0.95 * 0.05 / REPETITIONS)     # 3 binomial standard errors of a 95 % coverage


def test_garwood_interval_has_its_textbook_values_and_covers_at_least_95_percent_exactly():
    assert garwood_interval(0, 1.0) == pytest.approx((0.0, 3.6889), abs=1e-4)
    assert garwood_interval(10, 1.0) == pytest.approx((4.7954, 18.3904), abs=1e-4)
    # Exact coverage over the Poisson distribution of the count (no sampling): an exact interval
    # never covers less than its level.
    for mean in (0.5, 3.0, 12.0, 40.0):
        counts = np.arange(0, int(mean + 12 * math.sqrt(mean) + 20))
        bounds = np.array([garwood_interval(int(k), 1.0) for k in counts])
        covered = (bounds[:, 0] <= mean) & (mean <= bounds[:, 1])
        assert float(np.sum(stats.poisson.pmf(counts, mean)[covered])) >= 0.95


def test_a_nearly_periodic_count_gets_a_student_t_interval_that_covers_95_percent():
    """Counts of a jittered periodic train (the count in a record varies by about one): the
    interval from the records' spread holds the true rate 95 % of the time."""
    rng = np.random.default_rng(3)
    rate_hz = 1.23e8
    counts = np.floor(rate_hz * RECORD_S + rng.uniform(0, 1, (REPETITIONS, 6)) + rng.normal(0, 0.5, (REPETITIONS, 6)))
    rates, u = rate_uncertainty(list(counts), [np.full(6, RECORD_S)] * REPETITIONS)
    assert u.method == RATE_METHOD and u.level == 0.95
    covered = np.mean((u.low <= rate_hz) & (rate_hz <= u.high))
    assert abs(covered - 0.95) <= BAND, covered
    # Far narrower than a Poisson interval on the same counts would be.
    poisson = np.array([garwood_interval(int(k.sum()), 6 * RECORD_S) for k in counts[:20]])
    assert np.median(u.high[:20] - u.low[:20]) < 0.5 * np.median(poisson[:, 1] - poisson[:, 0])


def test_no_spike_or_one_record_falls_back_to_the_exact_poisson_interval():
    rates, u = rate_uncertainty([np.zeros(6), np.array([12.0])], [np.full(6, RECORD_S), np.array([RECORD_S])])
    assert rates[0] == 0.0 and u.low[0] == 0.0 and u.high[0] == pytest.approx(3.6889 / (6 * RECORD_S), rel=1e-4)
    assert (u.low[1], u.high[1]) == pytest.approx(garwood_interval(12, RECORD_S))
    assert math.isnan(u.standard[0]) and math.isnan(u.standard[1])


def test_the_gain_is_recovered_and_its_interval_covers_95_percent():
    rng = np.random.default_rng(8)
    currents = np.array([13.5e-6, 15.8e-6, 18.0e-6, 20.3e-6])
    gain_hz_per_a, onset_a = 13e12, 7e-6
    covered = 0
    for _ in range(REPETITIONS):
        spikes = [np.round(rng.normal(gain_hz_per_a * (c - onset_a) * RECORD_S, 0.8, 6)) for c in currents]
        fit = gain_fit(currents, spikes, [np.full(6, RECORD_S)] * 4)
        covered += fit.uncertainty.low <= gain_hz_per_a <= fit.uncertainty.high
    assert fit.slope_hz_per_a == pytest.approx(gain_hz_per_a, rel=0.15)
    assert fit.rate_hz(onset_a) == pytest.approx(0.0, abs=0.2 * gain_hz_per_a * 1e-6 * 5)
    assert abs(covered / REPETITIONS - 0.95) <= BAND, covered
    one = gain_fit(currents[:1], [np.ones(6)], [np.full(6, RECORD_S)])
    assert math.isnan(one.slope_hz_per_a) and math.isnan(one.uncertainty.low)


def test_every_record_fired_needs_a_spike_in_each():
    assert list(every_record_fired([1e-6, 2e-6], [np.array([0, 3]), np.array([2, 3])])) == [False, True]


def test_an_onset_outside_the_currents_is_nan_with_its_bound_and_a_reason():
    from procedures.firing_rate import onset_gap_a, results_of

    durations = [RECORD_S] * 4
    firing = {c: ([5, 6, 5, 6], durations) for c in (10e-6, 12e-6, 14e-6)}
    found = {r.name: r for r in results_of(firing, 10e-6, 14e-6)}
    assert math.isnan(found["onset_current_a"].value)
    assert found["onset_current_upper_bound_a"].value < 11e-6
    assert found["onset_note"].value.startswith("repeated firing in half the records or more down to the lowest "
                                                "current, 10 µA")
    assert found["firing_gain_hz_per_a"].value == pytest.approx(0.0, abs=1e12)
    silent = {c: ([0, 0, 0, 0], durations) for c in (10e-6, 12e-6)}
    found = {r.name: r for r in results_of(silent, 10e-6, 12e-6)}
    assert math.isnan(found["onset_current_a"].value) and found["onset_current_lower_bound_a"].value > 11e-6
    assert onset_gap_a(silent) is None and onset_gap_a(firing) is None
    assert onset_gap_a({**silent, 14e-6: ([3, 0, 2, 4], durations)}) == (12e-6, 14e-6)


@pytest.mark.parametrize("period_s", [7.3e-9, 11.2e-9, 23e-9, 41e-9])
def test_a_train_running_to_the_records_end_gives_its_rate_whatever_the_end_cuts_off(period_s):
    """A record triggered on a spike of a periodic train: its k spikes after the trigger over
    the time to the last of them is the train's rate exactly, where k over the whole record
    reads low by up to one spike (k over 99 ns: 4.1-17 % low for these periods)."""
    after_s = np.arange(1, int(RECORD_S / period_s) + 1) * period_s
    assert after_s.size / counted_time_s(after_s, RECORD_S) == pytest.approx(1 / period_s, rel=1e-12)
    assert after_s.size / RECORD_S < 0.98 / period_s


def test_a_train_that_stopped_is_counted_over_the_whole_record():
    """A burst that ended early (near onset), and no spike at all: the whole record."""
    burst_s = np.array([5e-9, 10e-9, 15e-9])
    assert counted_time_s(burst_s, RECORD_S) == RECORD_S
    assert counted_time_s(np.array([]), RECORD_S) == RECORD_S
    # one spike late in the record: a train of one interval that runs on
    assert counted_time_s(np.array([80e-9]), RECORD_S) == 80e-9
