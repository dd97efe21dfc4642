"""Spike detection and energy integrals on synthetic signals with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procedures.analysis import energy, spikes


def gaussian(t, centre_s, width_s, height):
    return height * np.exp(-0.5 * ((t - centre_s) / width_s) ** 2)


def test_spike_times_finds_each_spike_once_despite_noise():
    rng = np.random.default_rng(1)
    t = np.arange(0, 100e-9, 50e-12)
    centres = [10e-9, 35e-9, 37.5e-9, 80e-9]
    v = sum(gaussian(t, c, 0.3e-9, 0.5e-3) for c in centres) + 10e-6 * rng.standard_normal(t.size)
    found = spikes.spike_times_s(t, v, threshold_v=0.25e-3)
    assert found.size == 4
    # The crossing lies on the rising flank: before the peak, within 2 widths of it.
    assert np.all(found < np.array(centres)) and np.all(found > np.array(centres) - 0.6e-9)


def test_a_spike_already_in_progress_at_the_start_is_not_counted():
    t = np.linspace(0, 10e-9, 1001)
    v = gaussian(t, 0.0, 1e-9, 1e-3) + gaussian(t, 6e-9, 0.3e-9, 1e-3)
    assert spikes.spike_times_s(t, v, 0.5e-3).size == 1


def test_flat_record_has_no_spikes_and_rate_guards_zero_duration():
    t = np.linspace(0, 1e-8, 100)
    assert spikes.spike_times_s(t, np.zeros(100), 1e-4).size == 0
    assert math.isnan(spikes.firing_rate_hz(3, 0.0))
    assert spikes.firing_rate_hz(5, 1e-6) == pytest.approx(5e6)


def test_linear_excess_removes_a_scaled_linear_response_and_leaves_the_spike():
    t = np.linspace(-2e-9, 20e-9, 2201)
    linear = np.where((t > 0) & (t < 2e-9), 20.0 * np.exp(-t / 0.9e-9), 0.0)   # V per A·1e-6 scale
    reference_v = 5e-6 * linear            # at A0 = 5 µA
    spike = gaussian(t, 3e-9, 0.3e-9, 0.4e-3)
    measured = 15e-6 * linear + spike      # at A = 15 µA
    excess = spikes.linear_excess_v(measured, reference_v, 15e-6 / 5e-6)
    np.testing.assert_allclose(excess, spike, atol=1e-15)
    assert spikes.has_spike(t, excess, 0.2e-3, (0.0, 10e-9))
    assert not spikes.has_spike(t, excess, 0.2e-3, (6e-9, 10e-9))   # outside the window
    below = spikes.linear_excess_v(15e-6 * linear, reference_v, 3.0)
    assert not spikes.has_spike(t, below, 1e-6, (0.0, 20e-9))


def test_delayed_copy_shifts_by_the_delay_and_pads_with_zero():
    t = np.arange(0, 10e-9, 0.1e-9)
    v = gaussian(t, 2e-9, 0.3e-9, 1.0)
    shifted = spikes.delayed(t, v, 3e-9)
    assert t[np.argmax(shifted)] == pytest.approx(5e-9, abs=1e-12)
    assert shifted[:20].max() < 1e-6


def test_energy_integral_of_a_known_waveform():
    # V = V0 sin(pi t/T), I = I0 on [0, T]: ∫ V I dt = 2 V0 I0 T / pi.
    t = np.linspace(0, 2e-9, 4001)
    v = 0.5e-3 * np.sin(np.pi * t / 2e-9)
    expected = 2 * 0.5e-3 * 20e-6 * 2e-9 / np.pi
    assert energy.integrate_j(t, v * 20e-6) == pytest.approx(expected, rel=1e-6)
    assert energy.integrate_j(t, v * 20e-6, (0.0, 1e-9)) == pytest.approx(expected / 2, rel=1e-3)
    assert energy.integrate_j(t[:1], v[:1]) == 0.0


def test_port_energy_adds_the_bias_port_share():
    t = np.linspace(0, 1e-9, 1001)
    vm, vc = np.full(t.size, 1e-3), np.full(t.size, 2e-3)
    result = energy.port_energy(t, vm, np.full(t.size, 10e-6), vc, 20e-6)
    assert result.input_j == pytest.approx(1e-3 * 10e-6 * 1e-9)
    assert result.bias_j == pytest.approx(2e-3 * 20e-6 * 1e-9)
    assert result.total_j == pytest.approx(5e-17)


@settings(max_examples=50, deadline=None)
@given(a0=st.floats(1e-6, 20e-6), a=st.floats(1e-6, 60e-6), spike_j=st.floats(0.0, 1e-16))
def test_baseline_subtraction_recovers_the_spike_of_a_linear_plus_spike_model(a0, a, spike_j):
    # A linear chip: input term ∝ amplitude², bias cross term ∝ amplitude.
    k_input, k_bias = 3e-8, -2e-13          # J/A², J/A
    reference = energy.PortEnergy(k_input * a0**2, k_bias * a0)
    measured = energy.PortEnergy(k_input * a**2 + spike_j, k_bias * a)
    assert energy.spike_energy_j(measured, reference, a, a0) == pytest.approx(spike_j, abs=1e-30)
    assert energy.baseline_j(reference, a, 0.0) == 0.0
