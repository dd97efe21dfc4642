"""The ground truths of validation/ground_truth.py against what the chip file's notes state
(stations/chips/default-neuron.yaml: the bare chip at 2 K, 24 uA bias, 0.2 ns ramps)."""

from __future__ import annotations

import pytest

from validation.ground_truth import TruthChip, ramp_s, switching_current_truth

RAMP_S = 0.2e-9          # the notes' pulses: PiecewiseLinear.pulse(rise_s=0.2 ns)


@pytest.fixture(scope="module")
def bare():
    return TruthChip.from_station(wiring=False, temperature_k=2.0, bias_a=24e-6)


@pytest.mark.parametrize("width_s, notes_a", [(1e-9, 33.5e-6), (2e-9, 25.8e-6), (5e-9, 20.8e-6), (10e-9, 16.3e-6)])
def test_fresh_thresholds_are_the_notes_strength_duration_curve(bare, width_s, notes_a):
    assert bare.threshold_a(width_s, RAMP_S, "fresh") == pytest.approx(notes_a, abs=0.06e-6)   # notes: to 0.1 uA


def test_refractory_period_at_1p1_threshold_is_8p4_ns(bare):
    threshold_a = bare.threshold_a(2e-9, RAMP_S, "fresh")
    assert bare.refractory_period_s(1.1 * threshold_a, 2e-9, RAMP_S, "fresh") == pytest.approx(8.4e-9, abs=0.05e-9)


def test_energy_per_spike_is_14p1_aj(bare):
    threshold_a = bare.threshold_a(2e-9, RAMP_S, "fresh")
    energy_j = bare.energy_per_spike_j(1.1 * threshold_a, 0.9 * threshold_a, 2e-9, RAMP_S, 20e-9, "fresh")
    assert energy_j == pytest.approx(14.1e-18, rel=0.01)


def test_a_spike_leaves_current_in_the_loop_and_raises_the_2ns_threshold(bare):
    fresh, after = bare.fresh_state.branch_current_a["wm"], bare.post_spike_state.branch_current_a["wm"]
    assert fresh == pytest.approx(8.51e-6, abs=0.01e-6)          # the notes: wm at 8.51 uA
    assert 0.15e-6 < fresh - after < 0.5e-6                      # ~0.25 uA left circulating
    assert bare.threshold_a(2e-9, RAMP_S, "post_spike") > bare.threshold_a(2e-9, RAMP_S, "fresh")


def test_port_switching_current_lies_just_below_both_wires_at_isw():
    bench = TruthChip.from_station()                             # wiring, the stage's 3.17 K
    truth = switching_current_truth(bench, cycles=4)
    isw = truth["wire_switching_current_a"]
    assert truth["both_at_isw"] == pytest.approx(isw["wm"] + isw["wc"])
    assert truth["both_at_isw"] - 120e-9 < truth["truth"] < truth["both_at_isw"]
    assert truth["first_wire_port_a"] < truth["truth"] - 5e-6   # the first switch is voltage-free, far below
    assert ramp_s(1e-9) == pytest.approx(1.25e-9)
