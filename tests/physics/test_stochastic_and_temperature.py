"""Seeded stochastic switching (physics.md §2.6) and temperature dependence (§2.5)."""

import numpy as np
import pytest
from physics_cases import oscillator

from sim_backend.physics.transient import simulate

NO_SAMPLES = np.array([0.0])


def _times(result):
    return [(e.element, e.kind, e.time_s) for e in result.events]


def test_same_seed_same_events_different_seed_different_events():
    circuit = oscillator(sigma_isw_a=0.3e-6)
    a = simulate(circuit, 40e-9, sample_times_s=NO_SAMPLES, rng=np.random.default_rng(7))
    b = simulate(circuit, 40e-9, sample_times_s=NO_SAMPLES, rng=np.random.default_rng(7))
    c = simulate(circuit, 40e-9, sample_times_s=NO_SAMPLES, rng=np.random.default_rng(8))
    assert _times(a) == _times(b)
    assert _times(a) != _times(c)


def test_sigma_spreads_the_period_and_zero_sigma_does_not():
    noisy = simulate(oscillator(sigma_isw_a=0.3e-6), 200e-9, sample_times_s=NO_SAMPLES,
                     rng=np.random.default_rng(1))
    periods = np.diff(noisy.switch_times_s("w"))
    assert periods.std() > 10e-12
    clean = simulate(oscillator(), 200e-9, sample_times_s=NO_SAMPLES, rng=np.random.default_rng(1))
    assert np.diff(clean.switch_times_s("w"))[1:].std() < 1e-13


def test_threshold_draw_matches_switching_current():
    """Each switch happens where |I| reaches its own drawn threshold I_sw + sigma z."""
    sigma = 0.2e-6  # a draw above the 20.8 uA bias would stop the oscillator for good
    result = simulate(oscillator(sigma_isw_a=sigma), 100e-9, rng=np.random.default_rng(3))
    i_at_switch = np.interp(result.switch_times_s("w"), result.time_s, result.branch_current_a["w"])
    z = (i_at_switch - 20e-6) / sigma
    assert abs(z.mean()) < 1.0 and 0.3 < z.std() < 2.0


def test_stochastic_wire_needs_a_generator():
    with pytest.raises(ValueError, match="rng"):
        simulate(oscillator(sigma_isw_a=1e-7), 10e-9)


def test_warmer_wire_switches_earlier():
    cold = simulate(oscillator(), 20e-9, sample_times_s=NO_SAMPLES, temperature_k=2.0)
    warm = simulate(oscillator(), 20e-9, sample_times_s=NO_SAMPLES, temperature_k=4.2)
    assert warm.switch_times_s("w")[0] < cold.switch_times_s("w")[0]


def test_above_tc_nothing_spikes_and_the_wire_is_a_resistor():
    result = simulate(oscillator(), 20e-9, temperature_k=11.0)
    assert result.events == ()
    # 20.8 uA divides between the 50 Ohm shunt and R_n = 532.6 kOhm
    v = result.node_voltage_v["d"][-1]
    assert v == pytest.approx(2.08 * (1 / (1 / 50 + 1 / 532.6e3)) / (100e3 + 1 / (1 / 50 + 1 / 532.6e3)), rel=1e-6)
    assert result.energy.dissipated_j["w"] > 0
