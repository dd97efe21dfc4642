"""The coverage harness end to end on one short run: it reads the run's archived interval and
conditions and finds the truth for them (benchmarks/interval_coverage.py repeats this with 30 seeds; no
figure is cheap enough to repeat 30 times here: a reduced run takes 5-20 s)."""

from __future__ import annotations

import math

from sim_backend.physics.waveform import PiecewiseLinear
from validation import coverage as cv
from validation.capture_log import pulses
from validation.ground_truth import TruthCache, pulse_train


def test_one_energy_per_spike_repetition_gives_an_interval_and_its_truth(tmp_path):
    rep = cv.run_repetition("energy_per_spike", 7, str(tmp_path),
                            {"spikes": 6, "reference_captures": 3, "threshold_a": 24e-6})
    assert rep.status == "completed", rep.message
    assert rep.conditions["temperature_k"] > 2.0 and rep.conditions["bias_a"] == 24e-6
    assert math.isclose(rep.conditions["amplitude_a"], 1.3 * 24e-6)
    found = rep.figures["energy_per_spike_j"]
    assert found["level"] == 0.95 and found["method"]
    assert found["low"] < found["value"] < found["high"]
    truths = cv.JOBS["energy_per_spike"].truth(rep.conditions, TruthCache(tmp_path / "truths.json"))
    truth = truths["energy_per_spike_j"]
    assert truth["truth"] > truth["single_spike"] > 0         # afterpulses cost more than single spikes
    assert abs(found["value"] / truth["single_spike"] - 1) < 0.1
    coverage = cv.tally([rep], lambda r: truths)
    assert coverage["energy_per_spike_j"].repetitions == 1 and not coverage["energy_per_spike_j"].failed


def test_a_failed_run_is_counted_and_listed(tmp_path):
    rep = cv.run_repetition("energy_per_spike", 7, str(tmp_path), {"no_such_parameter": 1})
    assert rep.status == "failed" and rep.message
    coverage = cv.tally([rep], lambda r: {})
    assert coverage["energy_per_spike_j"].failed and coverage["energy_per_spike_j"].repetitions == 0


def test_pulses_are_read_back_from_a_generator_waveform():
    found = pulses(pulse_train(20e-6, 2e-9, 1.25e-9, [1e-9, 7e-9]))
    assert math.isclose(found.amplitude_a, 20e-6)
    assert math.isclose(found.width_s, 2e-9, rel_tol=1e-9)
    assert len(found.starts_s) == 2 and math.isclose(found.starts_s[1] - found.starts_s[0], 6e-9, rel_tol=1e-9)
    assert pulses(PiecewiseLinear.constant(5e-6)) is None


def test_a_strength_duration_run_is_judged_against_the_states_its_own_trials_met(tmp_path):
    """The chip keeps current in its loop from spike to spike, so the truth of a threshold is the
    median over the states this run's trials started from; it lies within the spread of
    thresholds over the cycle of states spikes leave."""
    rep = cv.run_repetition("strength_duration", 5, str(tmp_path),
                            {"widths_s": (2e-9, 5e-9), "trials_max": 16, "reference_captures": 2})
    assert rep.status == "completed", rep.message
    cycle = cv.JOBS["strength_duration"].truth(rep.conditions, TruthCache(tmp_path / "truths.json"))
    for name in ("threshold_a@2ns", "threshold_a@5ns"):
        visited = rep.run_truths[name]
        assert visited["visited_trials"] >= 8, visited
        spread = cycle[name]["cycle"]
        assert spread["min"] <= visited["visited"] <= spread["max"], (name, visited, spread)
    assert 0 < rep.run_truths["chronaxie_s"]["visited"] < 10e-9
    coverage = cv.tally([rep], lambda r: cycle)
    assert coverage["threshold_a@2ns"].truth_keys == {"visited"} and coverage["threshold_a@2ns"].repetitions == 1
