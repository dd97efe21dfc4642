"""Plans walked without instruments: step lists, duration estimates, flat-data safety."""

from __future__ import annotations

import math
import warnings

from pathlib import Path

import numpy as np
import pytest
import yaml

from contracts import steps
from contracts.files.station import read_station
from lab.execution.dry_run import dry_run
from lab.execution.executor import CAPTURE_ESTIMATE_S
from contracts.procedure import PlanContext
from contracts.records import Result, TableRows
from procedures.catalog import CAMPAIGN, SYNAPTIC
from procedures.cooldown import Cooldown
from procedures.design import DesignHints
from procedures.energy_per_spike import EnergyPerSpike
from procedures.firing_rate import FiringRate
from procedures.iv_sweep import IvSweep
from procedures.refractory import Refractory
from procedures.strength_duration import StrengthDuration

DESIGN = DesignHints.from_chip(None)
SYNAPSE_STATION = Path(__file__).resolve().parents[2] / "stations" / "emulated-synapse.yaml"


def results(report) -> dict[str, Result]:
    return {s.record.name: s.record for s, _ in report.steps
            if isinstance(s, steps.Archive) and isinstance(s.record, Result)}


@pytest.mark.parametrize("procedure", CAMPAIGN, ids=lambda p: p.name)
def test_every_plan_survives_flat_stand_in_data_without_numeric_warnings(procedure, station):
    context = None
    if procedure.name in SYNAPTIC:          # they need a chip with a synapse, and its bench
        station = read_station(SYNAPSE_STATION)
        context = PlanContext(yaml.safe_load(station.chip_path.read_text()), dry_run=True)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        report = dry_run(procedure(), station, context)
    assert report.steps and report.duration_s >= 0
    # The archive must have declared every table the plan appends to.
    _, tables = procedure().declare()
    appended = {s.record.table for s, _ in report.steps
                if isinstance(s, steps.Archive) and hasattr(s.record, "table")}
    assert appended <= set(tables)


def test_cooldown_logs_then_holds(station):
    p = Cooldown(log_duration_s=300.0, log_interval_s=30.0, hold_s=60.0)
    report = dry_run(p, station)
    assert report.count(steps.ReadTemperature) == 11 + 10      # the log, then the readings held
    assert report.count(steps.Wait) == 10 + 9
    assert report.count(steps.WaitTemperatureStable) == 1
    assert report.duration_s == pytest.approx(300.0 + 60.0 + 9 * 5.0)
    assert results(report)["stable_temperature_k"].value == pytest.approx(4.2)


def test_iv_sweep_step_budget_and_sweep_time(station):
    p = IvSweep(switching_events=50, pilot_sweeps=2, pilot_points=10, search_sweeps=5, sweeps_per_step=10)
    report = dry_run(p, station)
    sweeps = [s for s, _ in report.steps if isinstance(s, steps.SweepBias)]
    assert report.count(steps.SetBias) == report.count(steps.MeasureBiasVoltage) == 0
    # Nothing switches in a dry run: every fast sweep is tried, in batches of sweeps_per_step,
    # until the cap of 1.2 x events + search sweeps; then one sweep back to zero.
    batches = math.ceil((1.2 * 50 + 5) / 10)
    assert len(sweeps) == p.parameters.pilot_sweeps + batches + 1
    # Estimate = levels x dwell; no step (from the previous level on) exceeds ramp x dwell.
    levels = np.concatenate([[0.0]] + [s.levels_a for s in sweeps])
    assert report.duration_s == pytest.approx((levels.size - 1) * p.parameters.dwell_s)
    assert np.max(np.abs(np.diff(levels))) <= p.parameters.ramp_a_per_s * p.parameters.dwell_s * (1 + 1e-9)
    assert levels.max() == pytest.approx(1.1 * DESIGN.switching_current_a) and levels[-1] == 0.0
    r = results(report)
    assert r["switching_events"].value == 0 and math.isnan(r["switching_current_mean_a"].value)
    assert r["above_window_sweeps"].value == r["fast_sweeps"].value == batches * 10


def test_strength_duration_captures_and_thresholds_outside_bracket_are_nan(station):
    """Flat stand-in data never spike: each width's search climbs to the bracket's top and takes
    every trial (trials_max), so the dry run's estimate is the longest a run takes."""
    p = StrengthDuration(widths_s=(16e-9, 32e-9, 64e-9), trials_max=20, reference_captures=3)
    report = dry_run(p, station)
    per_width = 3 + 20
    assert report.count(steps.Capture) == 3 * per_width
    bias = DESIGN.bias_a
    assert report.duration_s == pytest.approx(report.count(steps.Capture) * CAPTURE_ESTIMATE_S
                                              + 2 * bias / p.parameters.ramp_a_per_s)
    # The search climbs towards the bracket's top (4 design thresholds), and a threshold it does
    # not place inside the bracket is NaN, its interval open above.
    amplitudes = [s.current_a for s, _ in report.steps if isinstance(s, steps.ConfigurePulses)]
    assert max(amplitudes) == pytest.approx(4.0 * DESIGN.threshold_a, rel=0.01)
    r = results(report)
    assert np.all(np.isnan(r["threshold_a"].value)) and np.all(r["threshold_a"].uncertainty.high == np.inf)
    assert r["threshold_a"].uncertainty.level == 0.95 and "psi-marginal" in r["threshold_a"].uncertainty.method
    assert list(r["threshold_trials"].value) == [20, 20, 20] and r["threshold_trials"].uncertainty is None
    tables = [s.record for s, _ in report.steps if isinstance(s, steps.Archive) and isinstance(s.record, TableRows)]
    assert sum(int(t.columns["trials"][0].sum()) for t in tables) == 3 * 20      # one row per amplitude tried


def test_refractory_scans_then_takes_every_adaptive_round_in_a_dry_run(station):
    """The scan fires `trials` pairs at each geometric spacing, interleaved; with flat stand-in data
    (no spike) a dry run takes every adaptive round, so its estimate is the longest a run takes."""
    p = Refractory(threshold_a=12e-6, spacings=5, trials=6, trials_max=54, reference_captures=4)
    report = dry_run(p, station)
    pairs = [s for s, _ in report.steps if isinstance(s, steps.ConfigurePulses) and s.count == 2]
    assert len(pairs) == 54 and report.count(steps.Capture) == 2 * 4 + 54
    assert all(s.current_a == pytest.approx(p.parameters.threshold_factor * 12e-6) for s in pairs)
    scan = [s.period_s for s in pairs[:30]]
    expected = np.geomspace(scan[0] if max(scan) == scan[0] else max(scan), min(scan), 5)
    np.testing.assert_allclose(sorted(set(scan), reverse=True), expected)
    assert all(scan.count(value) == 6 for value in set(scan))
    assert scan[:5] != sorted(scan[:5], reverse=True) or scan[5:10] != sorted(scan[5:10], reverse=True)  # shuffled
    r = results(report)
    assert np.all(r["second_spike_probability"].value == 0.0)
    assert r["second_spike_probability"].uncertainty.method == "Wilson score interval"
    assert math.isnan(r["refractory_period_s"].value)
    assert "above it" in r["refractory_period_note"].value


def test_firing_rate_uses_dc_input_and_self_triggered_captures(station):
    p = FiringRate(points=4, captures=3, settle_records=0, refine_steps=0, current_min_a=5e-6, current_max_a=20e-6)
    report = dry_run(p, station)
    dc = [s.current_a for s, _ in report.steps if isinstance(s, steps.ConfigureDcInput)]
    np.testing.assert_allclose(dc, np.linspace(5e-6, 20e-6, 4))
    configs = [s for s, _ in report.steps if isinstance(s, steps.ConfigureCapture)]
    assert all(c.trigger_on == DESIGN.output_node for c in configs)
    assert report.count(steps.Capture) == 12
    assert not any(s.fire for s, _ in report.steps if isinstance(s, steps.Capture))


def test_firing_rate_dry_run_takes_its_refinement_steps_too(station):
    """Flat stand-in data never fire; the dry run bisects the grid's middle gap instead, so its
    estimate holds the refinement a real run takes."""
    p = FiringRate(points=4, captures=3, settle_records=1, refine_steps=2, current_min_a=5e-6, current_max_a=20e-6)
    report = dry_run(p, station)
    dc = [s.current_a for s, _ in report.steps if isinstance(s, steps.ConfigureDcInput)]
    np.testing.assert_allclose(dc, [5e-6, 10e-6, 15e-6, 20e-6, 12.5e-6, 11.25e-6])
    assert report.count(steps.Capture) == 6 * (1 + 3)
    r = results(report)
    assert r["firing_rate_hz"].uncertainty.level == 0.95 and math.isnan(r["onset_current_a"].value)
    assert r["onset_note"].value.startswith("repeated firing in fewer than half the records up to the highest")


def test_energy_per_spike_baseline_then_spikes_and_design_amplitudes(station):
    p = EnergyPerSpike(spikes=7, reference_captures=5)
    report = dry_run(p, station, PlanContext({"neuron": {"threshold_a": 10e-6}}, dry_run=True))
    amplitudes = [s.current_a for s, _ in report.steps if isinstance(s, steps.ConfigurePulses)]
    assert amplitudes == pytest.approx([0.5 * 10e-6, 0.5 * 10e-6, 1.3 * 10e-6])   # levels before the output on
    assert report.count(steps.Capture) == 12
    traces = [s.record for s, _ in report.steps
              if isinstance(s, steps.Archive) and s.record.__class__.__name__ == "TraceBlock"]
    assert [t.n_traces for t in traces] == [1] * 12                   # each capture archived as it arrives
    assert [int(t.columns["kind"][0][0]) for t in traces] == [0] * 5 + [1] * 7
    assert all(int(t.columns["attempt"][0][0]) == 0 for t in traces)
    spec, _ = p.declare()
    assert all(t.samples.shape[2] == spec.n_points and set(t.columns) == set(spec.columns) for t in traces)
    assert results(report)["spikes_averaged"].value == 0
