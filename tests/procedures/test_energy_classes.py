"""energy_per_spike's capture classes: the detection rule on synthetic traces, then a short
emulated run (its class counts, its uncertainties, the single-spike mean) and its figures."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from lab.app.report import fig_energy
from lab.app.report.runs import load_run
from procedures.analysis.spikes import (
    CONTROL_AFTERPULSE, MULTIPLE_SPIKES, NO_RESET, NO_SPIKE, SINGLE_SPIKE, classify_spiking_capture, event_count,
    peak_count,
)
from procedures.efficiency import Efficiency
from procedures.energy_per_spike import CLASS_COUNTS, EnergyPerSpike
from tests.procedures.energy_truth import delivered_j, dissipated_j, port_delivered_j, true_energies
from tests.procedures.test_end_to_end import Bench
from validation.capture_log import record_captures

TIME_S = np.arange(0, 50e-9, 50e-12)
LEVEL_V = 120e-6


def pulse(at_s: float, height_v: float, width_s: float = 0.4e-9) -> np.ndarray:
    return height_v * np.exp(-0.5 * ((TIME_S - at_s) / width_s) ** 2)


def noisy(trace: np.ndarray, seed: int = 0) -> np.ndarray:
    return trace + np.random.default_rng(seed).normal(0, 3e-6, TIME_S.size)


@pytest.mark.parametrize("main, control, expected", [
    ([1e-9], [2e-9], SINGLE_SPIKE),                 # a spike and its control-wire reset
    ([1e-9, 6e-9], [2e-9, 7e-9], MULTIPLE_SPIKES),   # two spikes
    ([], [], NO_SPIKE),
    ([], [2e-9], NO_SPIKE),                         # the control wire alone: still no spike
    ([1e-9], [2e-9, 17e-9], CONTROL_AFTERPULSE),     # a second control switching, no spike with it
    ([1e-9], [], NO_RESET),                          # the control wire never switched
])
def test_classes_from_spikes_at_m_and_control_switchings_at_c(main, control, expected):
    m = noisy(sum((pulse(t, 250e-6) for t in main), np.zeros_like(TIME_S)), 1)
    # A spike's coupling into c (~40 uV) is no control switching; a switching is ~70-100 uV.
    c = noisy(sum((pulse(t + 0.5e-9, 40e-6) for t in main), np.zeros_like(TIME_S))
              + sum((pulse(t, 90e-6, 1e-9) for t in control), np.zeros_like(TIME_S)), 2)
    spikes = peak_count(m, LEVEL_V)
    switchings = event_count(TIME_S, c, 0.4 * LEVEL_V)
    assert (spikes, switchings) == (len(main), len(control))
    assert classify_spiking_capture(spikes, switchings) == expected


def test_two_spikes_1_ns_apart_on_a_slow_tail_count_twice():
    """At 2x threshold the main wire fires twice ~1 ns apart and the excess stays ~100 uV between
    the spikes (emulator, 2026-12-04): never below a crossing's hysteresis, so rising crossings
    count one spike; the peaks, each standing out by more than half the level, count two."""
    tail = 110e-6 * np.exp(-np.clip(TIME_S - 0.5e-9, 0, None) / 2e-9) * (TIME_S > 0.3e-9)
    m = noisy(tail + pulse(0.5e-9, 160e-6, 0.2e-9) + pulse(1.5e-9, 200e-6, 0.2e-9))
    assert event_count(TIME_S, m, LEVEL_V) == 1
    assert peak_count(m, LEVEL_V) == 2
    assert peak_count(noisy(tail + pulse(0.5e-9, 160e-6, 0.2e-9)), LEVEL_V) == 1


def test_noise_and_a_spikes_flank_count_once():
    """Noise on a spike's flank crosses the level back and forth: the hysteresis counts it once."""
    spike = pulse(1e-9, 250e-6) + 20e-6 * np.sin(2 * np.pi * TIME_S / 0.1e-9) * (np.abs(TIME_S - 1e-9) < 0.6e-9)
    assert event_count(TIME_S, noisy(spike), LEVEL_V) == 1
    assert peak_count(noisy(spike), LEVEL_V) == 1


@pytest.fixture(scope="module")
def emulated_run(tmp_path_factory):
    """40 captures at 1.3x the threshold the bench has (afterpulses come every ~15 spikes)."""
    logging.getLogger("qcodes").setLevel(logging.ERROR)
    bench = Bench(tmp_path_factory.mktemp("energy"))
    truths = record_captures(bench.bench.world)
    try:
        outcome = bench.run(EnergyPerSpike(spikes=40, reference_captures=10, threshold_a=24.7e-6))
        energy = outcome.results["energy_per_spike_j"]
        efficiency = bench.run(Efficiency(energy_per_spike_j=energy.value,
                                          energy_per_spike_low_j=float(energy.uncertainty.low),
                                          energy_per_spike_high_j=float(energy.uncertainty.high)))
    finally:
        bench.instruments.close()
    ratio = outcome.results["amplitude_a"].value / outcome.results["reference_amplitude_a"].value
    sources = bench.bench.world.chip.port_sources
    truth = {accounting.__name__: true_energies(truths[:10], truths[10:], sources["input"], ratio, accounting)
             for accounting in (dissipated_j, delivered_j)}
    truth["ports"] = {port: port_delivered_j(truths[:50], sources[port]) for port in ("input", "bias")}
    return outcome, efficiency, truth


def test_every_capture_is_classified_and_the_counts_add_up(emulated_run):
    outcome, _, _ = emulated_run
    r = {name: result.value for name, result in outcome.results.items()}
    captures = load_run(outcome.archive_path).tables["captures"]
    assert len(captures["class"]) == 50                                  # every capture has a row
    assert sum(r[name] for code, name in CLASS_COUNTS.items()) == 50
    assert r["baseline_captures"] == 10
    assert sum(r[name] for code, name in CLASS_COUNTS.items() if name != "baseline_captures") == r["captures"] == 40
    for code, name in CLASS_COUNTS.items():
        assert np.sum(captures["class"] == code) == r[name], name
    # The afterpulses are there (seeded emulator) and cost more than a spike alone.
    assert r["control_afterpulse_captures"] >= 1
    assert r["control_afterpulse_capture_energy_j"] > r["energy_per_spike_j"] + 3e-18


def test_every_numeric_result_has_an_uncertainty_or_is_a_count(emulated_run):
    outcome, _, _ = emulated_run
    exact = {"amplitude_a", "reference_amplitude_a", "bias_a", "threshold_a"}     # settings the plan chose
    for name, result in outcome.results.items():
        if isinstance(result.value, str) or name in exact:
            continue
        if result.units == "1":
            assert float(result.value).is_integer(), name                        # a count
            continue
        u = result.uncertainty
        assert u is not None and u.method and u.level == 0.95, name
    u = outcome.results["energy_per_spike_j"].uncertainty
    assert "Student t" in u.method and u.low < outcome.results["energy_per_spike_j"].value < u.high
    spread = outcome.results["energy_per_spike_std_j"].uncertainty
    assert "chi-square" in spread.method and spread.low < outcome.results["energy_per_spike_std_j"].value < spread.high


def test_the_energy_per_spike_is_the_mean_of_the_single_spikes_only(emulated_run):
    outcome, _, _ = emulated_run
    captures = load_run(outcome.archive_path).tables["captures"]
    single = captures["class"] == SINGLE_SPIKE
    value = outcome.results["energy_per_spike_j"].value
    assert value == pytest.approx(np.mean(captures["spike_energy_j"][single]), rel=1e-9, abs=0)
    assert outcome.results["spikes_averaged"].value == np.sum(single)
    firing = captures["kind"] == 1
    assert value != pytest.approx(np.mean(captures["spike_energy_j"][firing]), rel=1e-3, abs=0)   # others excluded
    # The single spikes are one tight population (the ~20 aJ captures were afterpulses).
    assert outcome.results["energy_per_spike_std_j"].value < 0.05 * value
    assert outcome.results["energy_per_spike_long_run_j"].value == pytest.approx(
        np.sum(captures["energy_j"][firing]) / np.sum(captures["spikes"][firing]), rel=1e-9, abs=0)


def test_energy_figures_render(emulated_run, tmp_path):
    outcome, efficiency, _ = emulated_run
    run = load_run(outcome.archive_path)
    for figure in fig_energy.energy_histogram(run, tmp_path) + fig_energy.spike_traces(run, tmp_path):
        assert figure.path.stat().st_size > 15_000
    assert "single spike" in fig_energy.energy_histogram(run, tmp_path)[0].caption
    (figure,) = fig_energy.efficiency(load_run(efficiency.archive_path), tmp_path)
    assert figure.path.stat().st_size > 15_000 and "assumes synaptic energy = 0.1 × spike energy" in figure.caption


def test_classes_and_single_spike_energy_match_the_emulators_own_accounting(emulated_run):
    """Each capture's class as the emulator's switch events give it, and the class energies
    within 5 % of the emulator's accounting of the same captures (energy_truth.py): the energy
    the sources delivered (what ∫V·I dt measures) and, for single spikes, the energy dissipated
    (the stored energy changes by < 1 % there)."""
    outcome, _, truth = emulated_run
    classes = load_run(outcome.archive_path).tables["captures"]["class"][10:]
    assert list(classes) == list(truth["delivered_j"].classes)
    single_j = outcome.results["energy_per_spike_j"].value
    assert single_j == pytest.approx(truth["delivered_j"].mean_per_spike_j(SINGLE_SPIKE), rel=0.05, abs=0)
    assert single_j == pytest.approx(truth["dissipated_j"].mean_per_spike_j(SINGLE_SPIKE), rel=0.05, abs=0)
    assert outcome.results["control_afterpulse_capture_energy_j"].value == pytest.approx(
        truth["delivered_j"].mean_per_spike_j(CONTROL_AFTERPULSE), rel=0.05, abs=0)


def test_single_spike_energy_within_1_percent_of_the_delivered_energy(emulated_run):
    """Node c recorded at its own, finer full scale: the bias term's slow few-uV tail is no longer
    rounded away by the 8-bit record. Measured on this run (2026-12-04): single-spike mean 0.23 %
    below the emulator's delivered energy of the same captures, reference captures' bias term
    0.019 aJ (truth ~0); with node c at the shared 4-spike full scale, 2.8 % low and 0.12 aJ."""
    outcome, _, truth = emulated_run
    r = outcome.results
    assert r["bias_node_clipped_captures"].value == 0
    assert r["energy_per_spike_j"].value == pytest.approx(
        truth["delivered_j"].mean_per_spike_j(SINGLE_SPIKE), rel=0.01, abs=0)
    assert abs(r["baseline_bias_j"].value) < 0.05e-18
    assert r["baseline_j"].value == pytest.approx(truth["delivered_j"].baseline_j, rel=0.015, abs=0)


def test_each_ports_energy_against_what_its_source_delivered(emulated_run):
    """Capture by capture, each port's ∫V·I dt against what its source delivered in the emulator
    (2026-12-04): the bias term of single spikes within 0.01 % (it was 1.3 % low with node c at
    the shared full scale), of reference captures 0.019 aJ where the truth is ~0; the input term
    0.7 % low on single spikes and 1.5 % on references: the readout chain's 2 GHz bandwidth on
    both node m and the input monitor (the product of two band-limited traces loses the
    highest frequencies of V·I), most of which the baseline subtraction cancels."""
    outcome, _, truth = emulated_run
    captures = load_run(outcome.archive_path).tables["captures"]
    single = np.flatnonzero(captures["class"] == SINGLE_SPIKE)
    references = np.arange(10)
    bias, inputs = truth["ports"]["bias"], truth["ports"]["input"]
    assert np.mean(captures["bias_energy_j"][single]) == pytest.approx(np.mean(bias[single]), rel=0.003, abs=0)
    assert abs(np.mean(captures["bias_energy_j"][references] - bias[references])) < 0.05e-18
    for rows, low in ((single, 0.985), (references, 0.97)):
        ratio = np.mean(captures["input_energy_j"][rows]) / np.mean(inputs[rows])
        assert low < ratio < 1.0
