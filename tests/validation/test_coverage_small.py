"""The coverage harness end to end on one short run: it reads the run's archived interval and
conditions and finds the truth for them (benchmarks/coverage.py repeats this with 30 seeds; no
figure is cheap enough to repeat 30 times here: a reduced energy_per_spike run takes 5-20 s)."""

from __future__ import annotations

import math

from validation import coverage as cv
from validation.ground_truth import TruthCache


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
