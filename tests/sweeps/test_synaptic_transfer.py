"""Synaptic transfer in a design sweep: the shipped excitatory pair swept over its weight
(control) current. Below the synapse's range nothing transmits, inside it every pre spike makes
the post fire; the synaptic energy is the simulation's own per-element accounting, checked here
against a direct simulation summed independently; a chip without synapses is refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim_backend.chip.build import load_chip
from sim_backend.physics.dc import dc_state
from sim_backend.physics.transient import simulate
from sim_backend.physics.waveform import PiecewiseLinear
from sweeps.spec import SweepSpecError, read_spec
from tests.sweeps.conftest import ROOT, nwlab_sweep, open_results, write_spec

CHIP = ROOT / "stations" / "chips" / "synapse-excitatory-pair.yaml"
#: Weight currents: below the synapse's range (it starts to transmit at 18.0 uA, the chip's
#: notes), and inside it.
WEIGHTS_A = (17.0e-6, 17.5e-6, 18.6e-6, 19.0e-6)
SPEC = f"""
format: nwlab-sweep/1
chip: {CHIP}
seed: 3
parameters:
  syn_weight.current: {{values: [{", ".join(f"{w:g}" for w in WEIGHTS_A)}]}}
metrics: [threshold_a, transfer_probability, transfer_delay_s, synaptic_energy_j]
stimulus: {{transfer_trials: 3}}
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    directory = tmp_path_factory.mktemp("synaptic")
    spec = write_spec(directory, SPEC)
    summary, _ = nwlab_sweep(str(spec), "--out", str(directory / "out"), "--in-process", timeout_s=300)
    assert summary["failed"] == 0
    return open_results(directory / "out")


def test_the_weight_current_gates_the_transfer(swept):
    probability = swept["transfer_probability"].values
    low, high = swept["transfer_probability_low"].values, swept["transfer_probability_high"].values
    assert probability.tolist() == [0.0, 0.0, 1.0, 1.0]
    assert swept["pre_spikes"].values.tolist() == [3, 3, 3, 3]     # the pre fired in every trial
    assert np.all(low <= probability + 1e-12) and np.all(probability <= high + 1e-12)   # Wilson, rounded
    assert high[0] < 1.0 and low[-1] > 0.0
    assert "Wilson" in swept["transfer_probability_low"].attrs["uncertainty_method"]
    delay = swept["transfer_delay_s"].values
    assert math.isnan(delay[0]) and math.isnan(delay[1])
    # Inside the range the post fires within a nanosecond, sooner at the stronger weight.
    assert 0 < delay[3] < delay[2] < 1e-9
    low, high = swept["transfer_delay_s_low"].values, swept["transfer_delay_s_high"].values
    assert np.all(low[2:] <= delay[2:]) and np.all(delay[2:] <= high[2:])
    attrs = swept["transfer_delay_s_low"].attrs
    assert attrs["uncertainty_method"].startswith("range") and "level" not in attrs


def test_the_synaptic_energy_is_the_synapse_elements_dissipation(swept):
    """The sweep's figure at 19 uA against a direct simulation of the chip file, its syn_*
    elements' dissipation summed here by name, the input at 1.3x the sweep's own threshold."""
    energy = swept["synaptic_energy_j"].values
    assert energy[0] < 0.1e-18 and energy[1] < 0.1e-18        # no synaptic event: the leak only
    chip = load_chip(CHIP)
    threshold_a = float(swept["threshold_a"].isel(syn_weight_current_a=3, width_s=0))
    wave = PiecewiseLinear.pulse(1.3 * threshold_a, delay_s=2e-9, width_s=2e-9, rise_s=0.2e-9)
    result = simulate(chip.circuit, 2e-9 + 2e-9 + 0.4e-9 + 40e-9, drives={"iin": wave},
                      initial=dc_state(chip.circuit, temperature_k=chip.temperature_k),
                      temperature_k=chip.temperature_k, rng=np.random.default_rng(0),
                      sample_times_s=np.arange(0, 44.4e-9, 20e-12))
    direct_j = sum(e for name, e in result.energy.dissipated_j.items() if name.startswith("syn_"))
    assert 4e-18 < direct_j < 7e-18                               # the chip's notes: 5.49 aJ by 40 ns
    assert energy[3] == pytest.approx(direct_j, rel=0.02)


def test_a_chip_without_synapses_is_refused(tmp_path):
    spec = write_spec(tmp_path, SPEC.replace(str(CHIP), "default-neuron").replace("syn_weight.current", "ib.current"))
    with pytest.raises(SweepSpecError) as refused:
        read_spec(spec)
    message = str(refused.value)
    assert "transfer_probability" in message and "no synapse" in message and "\n" not in message
