"""Probe a neuron chip the way the characterization campaign does: pulses in, spikes out."""

from __future__ import annotations

import numpy as np
from physics_cases import fwhm_s

from sim_backend.physics.dc import dc_state
from sim_backend.physics.transient import simulate
from sim_backend.physics.waveform import PiecewiseLinear

WIDTH_S = 2e-9
RISE_S = 0.2e-9
FIRST_S = 2e-9


def drive(chip, pulses, *, stop_s, seed=0, width_s=WIDTH_S, samples=True):
    """pulses: [(amplitude_a, delay_s)], trapezoids into the chip's input port, from the biased DC state."""
    wave = None
    for amplitude, delay in pulses:
        p = PiecewiseLinear.pulse(amplitude, delay_s=delay, width_s=width_s, rise_s=RISE_S)
        wave = p if wave is None else wave + p
    circuit = chip.circuit
    start = dc_state(circuit, temperature_k=chip.temperature_k)
    grid = np.linspace(0.0, stop_s, int(round(stop_s / 1e-12)) + 1) if samples else np.array([stop_s])
    return simulate(circuit, stop_s, drives={chip.ports["input"]: wave}, initial=start,
                    temperature_k=chip.temperature_k, rng=np.random.default_rng(seed), sample_times_s=grid)


def spikes(result, wire="wm"):
    return len(result.switch_times_s(wire))


def threshold_a(chip, *, width_s=WIDTH_S, hi=100e-6, tol=1e-9):
    lo = 0.0
    fires = lambda a: spikes(drive(chip, [(a, FIRST_S)], stop_s=FIRST_S + width_s + 10e-9,  # noqa: E731
                                   width_s=width_s, samples=False)) > 0
    if not fires(hi):
        return float("nan")
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if fires(mid) else (mid, hi)
    return hi


def second_spike_fires(chip, amplitude_a, gap_s):
    r = drive(chip, [(amplitude_a, FIRST_S), (amplitude_a, FIRST_S + gap_s)],
              stop_s=FIRST_S + gap_s + WIDTH_S + 10e-9, samples=False)
    return spikes(r) >= 2


def refractory_window_s(chip, amplitude_a, *, lo=WIDTH_S + 0.2e-9, hi=30e-9, tol=20e-12):
    """Smallest pulse spacing (start to start) at which the second pulse fires again."""
    if second_spike_fires(chip, amplitude_a, lo):
        return lo
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if second_spike_fires(chip, amplitude_a, mid) else (mid, hi)
    return hi


def spike_figures(chip, amplitude_a, threshold):
    """Energy per spike (total dissipation minus the amplitude²-scaled sub-threshold baseline),
    amplitude and FWHM of V(out) above its baseline."""
    stop = FIRST_S + WIDTH_S + 20e-9
    sub_amp = 0.9 * threshold
    sub = drive(chip, [(sub_amp, FIRST_S)], stop_s=stop)
    r = drive(chip, [(amplitude_a, FIRST_S)], stop_s=stop)
    energy = r.energy.total_dissipated_j - (amplitude_a / sub_amp) ** 2 * sub.energy.total_dissipated_j
    out = chip.outputs["vout"]
    v = r.node_voltage_v[out] - (amplitude_a / sub_amp) * sub.node_voltage_v[out]
    return r, energy, float(v.max()), fwhm_s(r.time_s, v)
