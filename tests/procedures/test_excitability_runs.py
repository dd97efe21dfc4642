"""Short refractory and f–I runs on the emulated station: every measured figure is archived with
its uncertainty (method and level), read back as the report reads it, and the figures render."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from lab.app.report import fig_excitability
from lab.app.report.runs import load_run
from procedures.analysis.rate import RATE_METHOD
from procedures.firing_rate import FiringRate
from procedures.refractory import Refractory
from tests.procedures.test_end_to_end import Bench


@pytest.fixture
def bench(tmp_path):
    logging.getLogger("qcodes").setLevel(logging.ERROR)
    b = Bench(tmp_path)
    yield b
    b.instruments.close()


def test_refractory_archives_the_fitted_period_and_width_with_their_intervals(bench, tmp_path):
    outcome = bench.run(Refractory(threshold_a=25e-6, spacings=4, trials=2, trials_max=14, reference_captures=2))
    run = load_run(outcome.archive_path)
    probability = run.results["second_spike_probability"]
    assert probability.uncertainty.method == "Wilson score interval" and probability.uncertainty.level == 0.95
    assert np.all(probability.uncertainty.low <= probability.value)
    assert np.all(probability.value <= probability.uncertainty.high)
    pairs = run.tables["pairs"]
    assert 4 <= pairs["trials"].size <= 7 and int(pairs["trials"].sum()) <= 14    # the scan, then adaptive rows
    assert np.unique(pairs["spacing_s"]).size == probability.value.size
    for name in ("refractory_period_s", "recovery_width_s"):
        u = run.results[name].uncertainty
        assert u.method.startswith("profile-likelihood interval") and u.level == 0.95
    period = run.results["refractory_period_s"]
    if math.isfinite(period.value):
        assert period.uncertainty.low <= period.value <= period.uncertainty.high
    else:       # NaN is never left unexplained
        assert run.results["refractory_period_note"].value
    assert "refractory_period_below_s" not in run.results
    figures = fig_excitability.refractory(run, tmp_path)
    assert figures[0].path.stat().st_size > 10_000


def test_firing_rate_archives_rates_onset_and_gain_with_their_intervals(bench, tmp_path):
    outcome = bench.run(FiringRate(points=4, captures=2, settle_records=1, refine_steps=1, current_min_a=6e-6,
                                   current_max_a=18e-6))
    run = load_run(outcome.archive_path)
    rate = run.results["firing_rate_hz"]
    assert rate.uncertainty.method == RATE_METHOD and rate.uncertainty.level == 0.95
    assert rate.axis_values.size in (4, 5)              # the grid and the bisection between its onset points
    assert np.all(rate.uncertainty.low <= rate.value) and np.all(rate.value <= rate.uncertainty.high)
    records = run.tables["records"]
    assert records["spikes"].size == 3 * rate.axis_values.size            # one settling record, two counted
    assert int(records["counted"].sum()) == 2 * rate.axis_values.size
    onset, gain = run.results["onset_current_a"], run.results["firing_gain_hz_per_a"]
    assert onset.uncertainty.method.startswith("profile-likelihood interval") and onset.uncertainty.level == 0.95
    assert gain.uncertainty.method.startswith("Student t interval on the least-squares slope")
    assert 6e-6 < onset.value < 18e-6 and onset.uncertainty.low <= onset.value <= onset.uncertainty.high
    assert gain.value > 0 and gain.uncertainty.low <= gain.value <= gain.uncertainty.high
    assert "firing_rate_std_hz" not in run.results
    figures = fig_excitability.firing_rate(run, tmp_path)
    assert figures[0].path.stat().st_size > 10_000
