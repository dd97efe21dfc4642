"""C2, C3 and C4 (physics.md §5): the shunted-nanowire relaxation oscillator."""

import numpy as np
import pytest
from physics_cases import cycle_window, fwhm_s, oscillator, window_energy_j

from sim_backend.physics.transient import simulate

GRID = np.linspace(0.0, 40e-9, 40_001)


@pytest.fixture(scope="module")
def c2():
    return simulate(oscillator(), 40e-9, sample_times_s=GRID)


@pytest.fixture(scope="module")
def c3():
    return simulate(oscillator(nonlinear=True), 40e-9, sample_times_s=GRID)


def test_c2_timing(c2):
    sw = c2.switch_times_s("w")
    assert sw[0] == pytest.approx(4.564e-9, rel=0.01)
    assert np.diff(sw)[-1] == pytest.approx(4.513e-9, rel=0.01)


def test_c2_spike_shape(c2):
    a, b = cycle_window(c2)
    sel = (c2.time_s >= a) & (c2.time_s < b)
    t, v = c2.time_s[sel], c2.node_voltage_v["d"][sel]
    assert v.max() == pytest.approx(0.878e-3, rel=0.01)
    assert t[np.argmax(v)] - a == pytest.approx(185e-12, rel=0.05)
    assert fwhm_s(t, v) == pytest.approx(1.08e-9, rel=0.01)
    assert c2.hotspot_resistance_ohm["w"].max() == pytest.approx(1.086e3, rel=0.01)


def test_c2_retrap_current(c2):
    retrap = c2.retrap_events("w")[-1]
    i_at_retrap = np.interp(retrap.time_s, c2.time_s, c2.branch_current_a["w"])
    assert i_at_retrap == pytest.approx(3.24e-6, rel=0.01)


def test_c2_energy_per_cycle(c2):
    a, b = cycle_window(c2)
    hotspot = window_energy_j(c2, c2.cumulative_dissipated_j["w"], a, b)
    shunt = window_energy_j(c2, c2.cumulative_dissipated_j["rsh"], a, b)
    # delivered into the oscillator = source output minus its series resistor
    delivered = (window_energy_j(c2, c2.cumulative_delivered_j["vb"], a, b)
                 - window_energy_j(c2, c2.cumulative_dissipated_j["rb"], a, b))
    assert hotspot == pytest.approx(14.3e-18, rel=0.01)
    assert shunt == pytest.approx(12.0e-18, rel=0.01)
    assert delivered == pytest.approx(26.3e-18, rel=0.01)
    # the per-event figure agrees with the window integral
    assert c2.retrap_events("w")[-2].hotspot_energy_j == pytest.approx(hotspot, rel=1e-3)


def test_energy_balance(c2, c3):
    for result in (c2, c3):
        e = result.energy
        assert abs(e.balance_error_j) < 0.005 * e.total_delivered_j * 1e-3  # far inside 0.5 %
        # the interesting part (oscillator only, without the bias resistor) also balances
        osc_in = e.delivered_j["vb"] - e.dissipated_j["rb"]
        osc_out = e.dissipated_j["rsh"] + e.dissipated_j["w"] + e.stored_end_j - e.stored_start_j
        assert osc_out == pytest.approx(osc_in, rel=0.005)


def test_c4_rearm_time(c2):
    """t = tau ln((I_b - I_r)/(I_b - I_sw)), tau = L/R_sh (Norton equivalent of 100 k || 50)."""
    r_par = 1 / (1 / 50.0 + 1 / 100e3)
    i_b = 2.08 / 100e3
    i_r = 3.24e-6
    expected = 70e-9 / r_par * np.log((i_b - i_r) / (i_b - 20e-6))
    sw = c2.switch_times_s("w")
    retraps = [e.time_s for e in c2.retrap_events("w")]
    assert sw[-1] - retraps[-2] == pytest.approx(expected, rel=0.05)
    assert sw[-1] - sw[-2] == pytest.approx(expected + 0.19e-9, rel=0.05)


def test_c4_hotspot_energy_is_stored_energy_at_isw(c2, c3):
    assert c2.retrap_events("w")[-1].hotspot_energy_j == pytest.approx(14.0e-18, rel=0.05)
    assert c3.retrap_events("w")[-1].hotspot_energy_j == pytest.approx(18.9e-18, rel=0.05)


def test_c3_nonlinear_inductance_lengthens_period_and_raises_energy(c2, c3):
    p2 = np.diff(c2.switch_times_s("w"))[-1]
    p3 = np.diff(c3.switch_times_s("w"))[-1]
    assert p3 > 1.2 * p2
    assert c3.retrap_events("w")[-1].hotspot_energy_j > 1.2 * c2.retrap_events("w")[-1].hotspot_energy_j


def test_retrap_variant_b_shortens_period():
    """§2.4: variant (b), |I| < I_hs, gives 4.37 ns instead of 4.51 ns; it retraps at I_hs."""
    result = simulate(oscillator(retrap="current"), 30e-9, sample_times_s=np.linspace(0, 30e-9, 30001))
    assert np.diff(result.switch_times_s("w"))[-1] == pytest.approx(4.37e-9, rel=0.01)
    retrap = result.retrap_events("w")[-1]
    assert np.interp(retrap.time_s, result.time_s, result.branch_current_a["w"]) == pytest.approx(4.61e-6, rel=0.01)


def test_continuation_matches_one_run(c2):
    """A run split in two at an arbitrary time, continued from final_state, gives the same events."""
    first = simulate(oscillator(), 17.3e-9, sample_times_s=np.array([0.0]))
    second = simulate(oscillator(), 40e-9, sample_times_s=np.array([40e-9]), initial=first.final_state)
    split = [e.time_s for e in first.events + second.events]
    whole = [e.time_s for e in c2.events]
    assert len(split) == len(whole)
    assert np.allclose(split, whole, rtol=0, atol=1e-13)
