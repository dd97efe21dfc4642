"""Each procedure end to end on a fresh emulated station: real drivers, the in-process emulator,
real archives; results checked against the chip's physics (tests/procedures/ground_truth.py)."""

from __future__ import annotations

import logging
import uuid

import h5py
import numpy as np
import pytest
import yaml

from lab.execution.instruments import open_instruments
from contracts.files.station import read_station
from lab.app.report.runs import load_run
from lab.execution.runner import Runner
from procedures.cooldown import Cooldown
from procedures.firing_rate import FiringRate
from procedures.iv_sweep import IvSweep
from procedures.refractory import Refractory
from procedures.strength_duration import StrengthDuration
from sim_backend import emulator
from tests.procedures.conftest import EMULATED
from tests.procedures.ground_truth import Chip

BIAS_A = 24e-6          # the chip file's operating bias (procedures' default)


class Bench:
    """A fresh emulated station in tmp_path (its chip the shipped one, or `chip_path`), its
    drivers open, and the bench's ground truth."""

    def __init__(self, tmp_path, chip_path=None):
        tree = yaml.safe_load(EMULATED.read_text())
        tree["chip"] = str(chip_path or (EMULATED.parent / tree["chip"]).resolve())
        path = tmp_path / "station.yaml"
        library = f"{path}#{uuid.uuid4().hex}"
        for instrument in tree["instruments"].values():
            instrument["visalib"] = f"{library}@nwlab"
        path.write_text(yaml.safe_dump(tree, sort_keys=False))
        self.station = read_station(path)
        self.design = yaml.safe_load(self.station.chip_path.read_text())
        self.instruments = open_instruments(self.station, name_prefix=f"e2e{uuid.uuid4().hex[:8]}_")
        self.bench = emulator.open_bench(library)
        self.archive_dir = tmp_path / "runs"

    def run(self, procedure):
        outcome = Runner(self.station, self.instruments.roles, archive_dir=self.archive_dir,
                         snapshot=dict, chip_design=self.design, show_progress=False).run(procedure)
        assert outcome.exit_status == "completed", outcome.message
        assert load_run(outcome.archive_path).status == "completed"
        return outcome

    def results(self, outcome) -> dict:
        return {name: result.value for name, result in outcome.results.items()}


@pytest.fixture
def bench(tmp_path):
    logging.getLogger("qcodes").setLevel(logging.ERROR)
    b = Bench(tmp_path)
    yield b
    b.instruments.close()


def test_cooldown_reaches_and_holds_its_setpoint(bench):
    outcome = bench.run(Cooldown(setpoint_k=4.2, log_duration_s=120.0, hold_s=20.0, timeout_s=1800.0))
    r = bench.results(outcome)
    assert r["stable_temperature_k"] == pytest.approx(4.2, abs=0.01)
    with h5py.File(outcome.archive_path, "r") as f:
        log_k = f["entry/temperature_log/temperature_k"][()]
        held = f["entry/results/stable_temperature_k"].attrs
        # the temperature held is a mean of readings: its interval is their scatter's, and says so
        assert held["interval_low"] < r["stable_temperature_k"] < held["interval_high"]
        assert held["interval_high"] - held["interval_low"] < 0.01 and "n = 10" in held["uncertainty_method"]
    assert np.all(np.isfinite(log_k)) and abs(log_k[-1] - 4.2) < abs(log_k[0] - 4.2)   # it approached


def test_a_short_iv_sweep_on_a_coarse_step_states_an_interval_that_holds_the_switching_current(bench):
    """20 events after a 5-point pilot: the windows' step (~0.6 µA) is wider than the port's
    spread, every event falls in one step, and the run still ends with a mean whose interval
    is the step's (not a zero-width Student t interval) and holds the chip's switching current."""
    outcome = bench.run(IvSweep(switching_events=20, pilot_points=5, pilot_sweeps=1))
    chip = Chip(bench.bench, 0.0)
    expected_a = chip.switching_current_a("wm") + chip.switching_current_a("wc")
    mean = outcome.results["switching_current_mean_a"].uncertainty
    assert mean.low < expected_a < mean.high
    assert mean.high - mean.low < 2e-6                  # bounded by the step, not open


@pytest.mark.slow
def test_iv_sweep_switches_where_both_wires_reach_their_switching_current(bench):
    outcome = bench.run(IvSweep(switching_events=1000))
    r = bench.results(outcome)
    chip = Chip(bench.bench, 0.0)
    expected_a = chip.switching_current_a("wm") + chip.switching_current_a("wc")
    assert r["switching_events"] >= 1000
    assert r["switching_current_mean_a"] == pytest.approx(expected_a, rel=0.01)
    sigma_a = 50e-9                                    # the chip file's sigma_isw
    assert 0.2 * sigma_a < r["switching_current_std_a"] < 4 * sigma_a
    # The shunted port's relaxation oscillation stops where it starts: down-sweeps in 50 nA steps
    # on this bench read 0 V first at 36.58 µA (mean of 60 sweeps, standard deviation 0.06 µA), the
    # switches at 36.60 µA (standard deviation 0.07 µA).
    # The pilot's 1 µA step brackets both.
    retrap = outcome.results["retrapping_current_a"].uncertainty
    assert retrap.low < r["switching_current_mean_a"] < retrap.high
    assert r["below_window_sweeps"] <= 0.03 * r["fast_sweeps"]    # the window holds the switches
    assert r["switching_events"] + r["latched_sweeps"] + r["below_window_sweeps"] + r["above_window_sweeps"] \
        == r["fast_sweeps"]


def test_strength_duration_thresholds_match_the_main_wire_switching(bench):
    outcome = bench.run(StrengthDuration())
    r = bench.results(outcome)
    widths = outcome.results["threshold_a"].axis.values
    thresholds = r["threshold_a"]
    assert np.all(np.isfinite(thresholds)) and np.all(np.diff(thresholds) < 0)   # a strength-duration curve
    chip = Chip(bench.bench, BIAS_A)
    for width_s in (2e-9, 3e-9):       # short pulses: the main wire fires first, nothing is left trapped
        index = int(np.argmin(np.abs(widths - width_s)))
        assert thresholds[index] == pytest.approx(chip.threshold_a(width_s, 1e-9), rel=0.03)
    assert 0 < r["rheobase_a"] < thresholds[-1]


def test_strength_duration_with_a_bracket_above_threshold_fails_naming_the_bracket(bench):
    """Every amplitude fires (against a reference below threshold: one at the bracket's foot would
    fire itself and hide the spikes near it): the threshold lies below the bracket (NaN), which
    is no latch (the bias is not cycled), but no threshold was measured: below the procedure's
    minimum of valid data, so the run fails saying so."""
    outcome = Runner(bench.station, bench.instruments.roles, archive_dir=bench.archive_dir, snapshot=dict,
                     chip_design=bench.design, show_progress=False).run(
        StrengthDuration(widths_s=(5e-9,), bracket_low_a=40e-6, bracket_high_a=80e-6, trials_max=12,
                         reference_fraction=0.2, reference_captures=2))
    assert outcome.exit_status == "failed" and load_run(outcome.archive_path).status == "failed"
    assert outcome.message.startswith("MeasurementError: strength_duration measured too little to report: needs "
                                      "a finite threshold at 1 width at least; got no width's psychometric fit "
                                      "located P = 0.5 inside the bracket 40 to 80 µA"), outcome.message
    assert "bias cycled" not in outcome.message


def test_refractory_period_against_paired_pulse_ground_truth(bench):
    chip = Chip(bench.bench, BIAS_A)
    threshold_a = chip.threshold_a(2e-9, 1e-9)
    r = bench.results(bench.run(Refractory(threshold_a=threshold_a)))
    expected_s = chip.refractory_s(1.2 * threshold_a, 2e-9, 1e-9, 3.6e-9, 40e-9)
    probability = r["second_spike_probability"]
    assert probability[0] == 1.0                       # the longest spacing always fires twice
    assert r["refractory_period_s"] == pytest.approx(expected_s, rel=0.35)


def test_firing_rates_agree_with_the_chips_long_run_rate(bench):
    """At two DC inputs above onset, each point's rate within 3 % of the emulated chip's own
    rate over 1 µs of steady firing (after 3 µs of settling). Counting each record's spikes
    over the whole record read 5.1 % low at 14.78 µA (104.5 against 110.1 MHz)."""
    from sim_backend.physics.waveform import PiecewiseLinear

    currents_a = (14.78e-6, 16.79e-6)
    outcome = bench.run(FiringRate(points=2, captures=6, settle_records=1, refine_steps=0,
                                   current_min_a=currents_a[0], current_max_a=currents_a[1]))
    rate = outcome.results["firing_rate_hz"]
    chip = Chip(bench.bench, BIAS_A)
    for current_a, rate_hz in zip(currents_a, np.asarray(rate.value, dtype=float)):
        run = chip.run(PiecewiseLinear(np.array([0.0, 1e-9, 2e-9]), np.array([0.0, 0.0, current_a])), 4e-6)
        times_s = np.array([e.time_s for e in run.events if e.element == "wm" and e.kind == "switch"
                            and e.time_s > 3e-6])
        long_run_hz = (times_s.size - 1) / (times_s[-1] - times_s[0])
        assert rate_hz == pytest.approx(long_run_hz, rel=0.03), (current_a, rate_hz, long_run_hz)


def test_firing_rate_has_an_onset_and_rises(bench):
    r = bench.results(bench.run(FiringRate()))
    rates = r["firing_rate_hz"]
    assert rates[0] == 0.0 and rates[-1] > 10e6
    firing = rates[rates > 0]
    assert np.all(np.diff(firing) > -0.2 * firing[:-1])   # monotonic within a record's resolution
    assert firing[-1] > firing[0]
