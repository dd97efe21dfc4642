"""The default neuron chip shows what the fabricated device shows (physics.md §5 C5, C6)."""

from pathlib import Path

import pytest
from neuron_probe import (
    FIRST_S, WIDTH_S, drive, refractory_window_s, second_spike_fires, spike_figures, spikes,
    threshold_a,
)

from sim_backend.chip.build import load_chip

CHIPS = Path(__file__).resolve().parents[2] / "stations" / "chips"


@pytest.fixture(scope="module")
def chip():
    return load_chip(CHIPS / "default-neuron.yaml")


@pytest.fixture(scope="module")
def threshold(chip):
    return threshold_a(chip)


def test_threshold_exists_and_is_sharp(chip, threshold):
    assert 10e-6 < threshold < 30e-6  # below 1.5 I_sw: the generic shipped-chip stimulus fires it
    below = drive(chip, [(0.97 * threshold, FIRST_S)], stop_s=20e-9, samples=False)
    assert spikes(below) == 0 and spikes(below, "wc") == 0


@pytest.mark.parametrize("factor", [1.03, 1.1, 1.5])
def test_one_spike_above_threshold(chip, threshold, factor):
    result = drive(chip, [(factor * threshold, FIRST_S)], stop_s=25e-9, samples=False)
    assert spikes(result) == 1
    assert spikes(result, "wc") == 1  # the control wire resets the loop once


def test_refractory_period(chip, threshold):
    amplitude = 1.1 * threshold
    window = refractory_window_s(chip, amplitude)
    # a real window, longer than the pulse itself, that ends
    assert WIDTH_S + 1e-9 < window < 20e-9
    assert not second_spike_fires(chip, amplitude, 0.8 * window)
    assert second_spike_fires(chip, amplitude, 1.2 * window)


def test_strength_duration(chip, threshold):
    assert threshold_a(chip, width_s=1e-9, tol=1e-8) > threshold > threshold_a(chip, width_s=5e-9, tol=1e-8)


def test_energy_per_spike_and_balance(chip, threshold):
    result, energy, amplitude, width = spike_figures(chip, 1.1 * threshold, threshold)
    assert 3e-18 < energy < 30e-18
    assert amplitude > 50e-6 and 0.2e-9 < width < 10e-9
    e = result.energy
    assert abs(e.balance_error_j) < 0.005 * e.total_delivered_j


def test_seeded_neuron_is_reproducible(chip, threshold):
    a = drive(chip, [(1.1 * threshold, FIRST_S)], stop_s=15e-9, seed=4, samples=False)
    b = drive(chip, [(1.1 * threshold, FIRST_S)], stop_s=15e-9, seed=4, samples=False)
    assert [(e.element, e.time_s) for e in a.events] == [(e.element, e.time_s) for e in b.events]


@pytest.mark.parametrize("nonlinear", [True, False])
def test_neuron_energy_balance_linear_and_nonlinear(nonlinear):
    """delivered = dissipated + Δstored within 0.5 % on the C8 neuron, with both inductance laws."""
    import dataclasses

    from sim_backend.physics.circuit import Circuit, Nanowire

    c8 = load_chip(CHIPS / "neuron-c8.yaml")
    elements = tuple(
        dataclasses.replace(e, params=dataclasses.replace(e.params, nonlinear_inductance=nonlinear))
        if isinstance(e, Nanowire) else e for e in c8.circuit.elements)
    chip = dataclasses.replace(c8, circuit=Circuit(elements))
    result = drive(chip, [(40e-6, FIRST_S)], stop_s=20e-9, samples=False)
    assert spikes(result) >= 1
    e = result.energy
    assert abs(e.balance_error_j) < 0.005 * e.total_delivered_j
