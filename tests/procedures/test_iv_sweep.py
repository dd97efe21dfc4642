"""iv_sweep on the emulated station, short: the archived results carry their uncertainties
(method and level), and the switching-current histogram's bins follow the events' grid."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from lab.app.report.runs import load_run
from procedures.analysis.statistics import CONFIDENCE_LEVEL
from procedures.analysis.switching import Grid
from procedures.iv_sweep import IvSweep
from tests.procedures.test_end_to_end import Bench

EVENTS = 150


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    logging.getLogger("qcodes").setLevel(logging.ERROR)
    bench = Bench(tmp_path_factory.mktemp("iv"))
    try:
        outcome = bench.run(IvSweep(switching_events=EVENTS, search_sweeps=10))
        yield load_run(outcome.archive_path)
    finally:
        bench.instruments.close()


MEASURED = {
    "switching_current_mean_a": "Student t interval on the mean",
    "switching_current_std_a": "chi-square interval on the standard deviation",
    "switching_current_stderr_a": "chi-square interval on the standard deviation",
    "switching_fit_mean_a": "profile-likelihood interval",
    "switching_fit_width_a": "profile-likelihood interval",
    "retrapping_current_a": "GUM combined uncertainty",
    "resistive_branch_ohm": "Student t interval on a least-squares slope",
}


def test_measured_results_carry_an_interval_with_its_method_and_level(run):
    for name, method in MEASURED.items():
        result = run.result(name)
        assert result is not None, name
        u = result.uncertainty
        assert u is not None and u.method.startswith(method), (name, u)
        assert u.level == CONFIDENCE_LEVEL
        assert np.isfinite(u.low) and np.isfinite(u.high) and u.low <= result.scalar() <= u.high, (name, u)
    for name in ("switching_events", "fast_sweeps", "switching_fit_dof", "switching_current_histogram"):
        assert run.result(name).uncertainty is None, name          # counts: exact
    dof, p_value = run.scalar("switching_fit_dof"), run.scalar("switching_fit_p_value")
    assert dof >= 1 and dof == int(dof) and 0.0 <= p_value <= 1.0
    assert run.result("switching_fit_test").value.startswith("Pearson chi-square test of the fitted Gaussian over")
    assert "divided by the square root of n" in run.result("switching_current_stderr_a").uncertainty.method
    # The fit's width is the distribution's, the spread also holds the step's quantisation
    # (~4 % of it here); with 150 events both estimate one σ within the spread's interval.
    spread = run.result("switching_current_std_a").uncertainty
    assert spread.low <= run.scalar("switching_fit_width_a") <= spread.high


def test_histogram_bins_follow_the_events_grid_and_none_is_systematically_empty(run):
    events = run.tables["switching_events"]
    recorded = np.asarray(events["switching_current_a"])
    spacing_a = run.scalar("switching_current_grid_a")
    histogram = run.result("switching_current_histogram")
    centres = np.asarray(histogram.axis_values)
    width_a = np.diff(centres)
    steps = width_a / spacing_a
    assert np.allclose(width_a, width_a[0], rtol=1e-9) and np.allclose(steps, np.rint(steps), atol=1e-6)
    # Events after the search lie on the grid, the bin centres on it too (whole steps, odd or even).
    after_search = np.asarray(events["step_a"]) == np.asarray(events["step_a"])[-1]
    origin = recorded[after_search][0]
    assert np.all(Grid(spacing_a, origin).off_grid(recorded[after_search]) < 1e-6)
    edges = np.concatenate([centres - width_a[0] / 2, [centres[-1] + width_a[0] / 2]])
    assert np.all(Grid(spacing_a, origin).off_grid(edges) == pytest.approx(0.5, abs=1e-6))
    counts = np.asarray(histogram.value)
    assert counts.sum() == run.scalar("switching_events") == recorded.size >= EVENTS // 2
    # No empty bin inside the bulk: aliasing showed as bins with few or no events between full ones.
    bulk = counts[np.argmax(counts > 0.2 * counts.max()):][::-1]
    bulk = bulk[np.argmax(bulk > 0.2 * counts.max()):]
    assert np.all(bulk > 0), counts
