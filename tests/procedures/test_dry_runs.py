"""Plans walked without instruments: step lists, duration estimates, flat-data safety."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from contracts import steps
from lab.execution.dry_run import dry_run
from lab.execution.executor import CAPTURE_ESTIMATE_S
from contracts.procedure import PlanContext
from contracts.records import Result
from procedures.catalog import CAMPAIGN
from procedures.cooldown import Cooldown
from procedures.design import DesignHints
from procedures.energy_per_spike import EnergyPerSpike
from procedures.firing_rate import FiringRate
from procedures.iv_sweep import IvSweep
from procedures.refractory import Refractory
from procedures.strength_duration import StrengthDuration

DESIGN = DesignHints.from_chip(None)


def results(report) -> dict[str, Result]:
    return {s.record.name: s.record for s, _ in report.steps
            if isinstance(s, steps.Archive) and isinstance(s.record, Result)}


@pytest.mark.parametrize("procedure", CAMPAIGN, ids=lambda p: p.name)
def test_every_plan_survives_flat_stand_in_data_without_numeric_warnings(procedure, station):
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        report = dry_run(procedure(), station)
    assert report.steps and report.duration_s >= 0
    # The archive must have declared every table the plan appends to.
    _, tables = procedure().declare()
    appended = {s.record.table for s, _ in report.steps
                if isinstance(s, steps.Archive) and hasattr(s.record, "table")}
    assert appended <= set(tables)


def test_cooldown_logs_then_holds(station):
    p = Cooldown(log_duration_s=300.0, log_interval_s=30.0, hold_s=60.0)
    report = dry_run(p, station)
    assert report.count(steps.ReadTemperature) == 11
    assert report.count(steps.Wait) == 10
    assert report.count(steps.WaitTemperatureStable) == 1
    assert report.duration_s == pytest.approx(300.0 + 60.0)
    assert results(report)["stable_temperature_k"].value == pytest.approx(4.2)


def test_iv_sweep_step_budget_and_sweep_time(station):
    p = IvSweep(switching_events=50, pilot_sweeps=2, pilot_points=10, search_sweeps=5, sweeps_per_step=10)
    report = dry_run(p, station)
    sweeps = [s for s, _ in report.steps if isinstance(s, steps.SweepBias)]
    assert report.count(steps.SetBias) == report.count(steps.MeasureBiasVoltage) == 0
    # Nothing switches in a dry run: every fast sweep is tried, in batches of sweeps_per_step,
    # until the cap of 1.2 x events + search sweeps, each batch followed by a sweep to the top
    # (its last sweep never switched); then one sweep back to zero.
    batches = math.ceil((1.2 * 50 + 5) / 10)
    assert len(sweeps) == p.parameters.pilot_sweeps + 2 * batches + 1
    # Estimate = levels x dwell; no step (from the previous level on) exceeds ramp x dwell.
    levels = np.concatenate([[0.0]] + [s.levels_a for s in sweeps])
    assert report.duration_s == pytest.approx((levels.size - 1) * p.parameters.dwell_s)
    assert np.max(np.abs(np.diff(levels))) <= p.parameters.ramp_a_per_s * p.parameters.dwell_s * (1 + 1e-9)
    assert levels.max() == pytest.approx(1.1 * DESIGN.switching_current_a) and levels[-1] == 0.0
    r = results(report)
    assert r["switching_events"].value == 0 and math.isnan(r["switching_current_mean_a"].value)
    assert r["above_window_sweeps"].value == r["fast_sweeps"].value == batches * 10


def test_strength_duration_captures_and_thresholds_outside_bracket_are_nan(station):
    p = StrengthDuration(widths_s=(16e-9, 32e-9, 64e-9), trials=4, bisection_steps=5, reference_captures=3)
    report = dry_run(p, station)
    assert report.count(steps.Capture) == 3 * (3 + 5 * 4)
    assert report.count(steps.ConfigurePulses) == 1 + 3 * (1 + 5)     # levels set before the output goes on
    bias = DESIGN.bias_a
    assert report.duration_s == pytest.approx(report.count(steps.Capture) * CAPTURE_ESTIMATE_S
                                              + 2 * bias / p.parameters.ramp_a_per_s)
    # Flat traces never spike: the bisection runs to the top of its bracket -> NaN threshold.
    amplitudes = [s.current_a for s, _ in report.steps if isinstance(s, steps.ConfigurePulses)]
    assert max(amplitudes) == pytest.approx(4.0 * DESIGN.threshold_a * (1 - 2**-5 / 2 * 2), rel=0.05)
    assert np.all(np.isnan(results(report)["threshold_a"].value))


def test_refractory_fires_pairs_at_decreasing_spacing(station):
    p = Refractory(threshold_a=12e-6, spacings=5, trials=6, reference_captures=4)
    report = dry_run(p, station)
    pairs = [s for s, _ in report.steps if isinstance(s, steps.ConfigurePulses) and s.count == 2]
    assert len(pairs) == 5
    assert all(s.current_a == pytest.approx(p.parameters.threshold_factor * 12e-6) for s in pairs)
    spacings = [s.period_s for s in pairs]
    assert spacings == sorted(spacings, reverse=True)
    assert report.count(steps.Capture) == 2 * 4 + 5 * 6
    assert np.all(results(report)["second_spike_probability"].value == 0.0)


def test_firing_rate_uses_dc_input_and_self_triggered_captures(station):
    p = FiringRate(points=4, captures=3, current_min_a=5e-6, current_max_a=20e-6)
    report = dry_run(p, station)
    dc = [s.current_a for s, _ in report.steps if isinstance(s, steps.ConfigureDcInput)]
    np.testing.assert_allclose(dc, np.linspace(5e-6, 20e-6, 4))
    configs = [s for s, _ in report.steps if isinstance(s, steps.ConfigureCapture)]
    assert all(c.trigger_on == DESIGN.output_node for c in configs)
    assert report.count(steps.Capture) == 12
    assert not any(s.fire for s, _ in report.steps if isinstance(s, steps.Capture))


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
