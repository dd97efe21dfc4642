"""The synapse chips (stations/chips/synapse-*.yaml): what their notes claim, the synapse helper,
energy balance, and agreement with the independent ngspice port on every switch.

Behaviours run from the biased DC operating point (the weight current through the synapse wire),
as `nwlab chip simulate` does. The ngspice cross-checks start both simulators from zero currents
(the port takes no initial state), let the biases settle for several L/R of the slowest loop, then
apply the representative input.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

from contracts.files.chip import read_chip
from sim_backend.chip.build import load_chip
from sim_backend.chip.synapse import Synapse, synapse_of, synapses, synaptic_energy_j
from sim_backend.physics.dc import dc_state
from sim_backend.physics.transient import simulate
from sim_backend.physics.waveform import PiecewiseLinear

CHIPS = Path(__file__).resolve().parents[2] / "stations" / "chips"
needs_ngspice = pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")

#: representative inputs (2 ns, 0.2 ns edges): 1.2x the pre's 2 ns threshold in each chip
#: (24.43, 24.07, 24.70 uA), and 1.2x the inhibited post's threshold in its chip (30.66 uA)
EXC_INPUT_A, FAN_INPUT_A, INH_INPUT_A, INH_POST_INPUT_A = 29.3e-6, 28.9e-6, 29.6e-6, 36.8e-6
SUBTHRESHOLD_A = 0.97 * 24.07e-6   # below the lowest of the three pre thresholds
WIDTH_S, RISE_S, FIRST_S = 2e-9, 0.2e-9, 2e-9


@pytest.fixture(scope="module")
def exc():
    return load_chip(CHIPS / "synapse-excitatory-pair.yaml")


@pytest.fixture(scope="module")
def fan():
    return load_chip(CHIPS / "synapse-fan-out.yaml")


@pytest.fixture(scope="module")
def inh():
    return load_chip(CHIPS / "synapse-inhibitory-pair.yaml")


def run(chip, pulses=None, dc=None, *, stop_s=40e-9, samples=False, seed=0):
    """pulses: {port: [(amplitude_a, delay_s)]}; dc: {port: value} (also sets the starting DC state)."""
    drives, values = {}, {}
    for port, train in (pulses or {}).items():
        source = chip.ports[port]
        for amplitude, delay in train:
            wave = PiecewiseLinear.pulse(amplitude, delay_s=delay, width_s=WIDTH_S, rise_s=RISE_S)
            drives[source] = drives[source] + wave if source in drives else wave
    for port, value in (dc or {}).items():
        source = chip.ports[port]
        values[source] = value
        wave = PiecewiseLinear.constant(value)
        drives[source] = drives[source] + wave if source in drives else wave
    start = dc_state(chip.circuit, temperature_k=chip.temperature_k, source_values=values)
    grid = np.minimum(np.arange(0.0, stop_s + 0.5e-12, 1e-12), stop_s) if samples else np.array([stop_s])
    return simulate(chip.circuit, stop_s, drives=drives, initial=start, temperature_k=chip.temperature_k,
                    rng=np.random.default_rng(seed), sample_times_s=grid)


def count(result, wire):
    return len(result.switch_times_s(wire))


def first(result, wire):
    return float(result.switch_times_s(wire)[0])


# --- the helper: which elements form each synapse ----------------------------------------------

def test_synapse_elements_are_found_by_name(exc, fan, inh):
    assert synapse_of("syn_w") == "syn" and synapse_of("syn12_lr") == "syn12"
    assert synapse_of("wm") is None and synapse_of("synth_x") is None and synapse_of("syn_") is None
    found = synapses(exc)
    assert list(found) == ["syn"]
    syn = found["syn"]
    assert syn.elements == ("syn_rin", "syn_w", "syn_lr", "syn_weight", "syn_rout", "syn_lp")
    assert syn.wires == ("syn_w",) and syn.sources == ("syn_weight",) and syn.ports == ("weight",)
    assert syn.dissipative == ("syn_rin", "syn_w", "syn_rout")
    assert list(synapses(fan)) == ["syn1", "syn2", "syn3"]
    assert [s.ports for s in synapses(fan).values()] == [("weight1",), ("weight2",), ("weight3",)]
    assert synapses(inh)["syn"].inductors == ("syn_lp",)   # no return inductor: the wire goes to ground
    # the same answer from the lab's document and from a bare circuit (which has no ports)
    assert synapses(read_chip(CHIPS / "synapse-fan-out.yaml")) == synapses(fan)
    bare = synapses(exc.circuit)["syn"]
    assert isinstance(bare, Synapse) and bare.elements == syn.elements and bare.ports == ()
    assert synapses(load_chip(CHIPS / "default-neuron.yaml")) == {}


def test_synaptic_energy_sums_the_synapse_elements(fan):
    dissipated = {"syn1_w": 4e-18, "syn1_rin": 1e-18, "syn1_rout": 2e-18, "syn2_w": 3e-18, "wm": 5e-18}
    assert synaptic_energy_j(fan, dissipated) == pytest.approx({"syn1": 7e-18, "syn2": 3e-18, "syn3": 0.0})
    assert synaptic_energy_j(fan, dissipated, only=["syn2"]) == pytest.approx({"syn2": 3e-18})
    with pytest.raises(KeyError, match="no synapse 'syn7'"):
        synaptic_energy_j(fan, dissipated, only=["syn7"])


# --- excitatory pair ---------------------------------------------------------------------------

def test_excitatory_synapse_transmits_each_pre_spike(exc):
    r = run(exc, {"input": [(EXC_INPUT_A, FIRST_S), (EXC_INPUT_A, FIRST_S + 100e-9)]}, stop_s=140e-9)
    assert count(r, "wm") == count(r, "syn_w") == count(r, "wm_post") == 2
    delays = r.switch_times_s("wm_post") - r.switch_times_s("wm")
    assert 0.2e-9 < delays[0] < 0.6e-9     # notes: 0.42 ns at the default weight
    assert 0.2e-9 < delays[1] < 0.8e-9     # 0.64 ns: flux trapped in the pre by the first event
    assert count(r, "wc") == 2 and count(r, "wc_post") == 2   # both neurons reset


def test_no_post_spike_without_a_pre_spike(exc, fan):
    r = run(exc, {"input": [(SUBTHRESHOLD_A, FIRST_S)]})
    assert count(r, "wm") == count(r, "syn_w") == count(r, "wm_post") == 0
    r = run(fan, {"input": [(SUBTHRESHOLD_A, FIRST_S)]})
    assert sum(count(r, w) for w in ("wm", "syn1_w", "syn2_w", "syn3_w", "wm_post1", "wm_post2", "wm_post3")) == 0


def test_weight_grows_with_the_control_current_and_the_weakest_does_not_transmit(exc):
    peaks = []
    for weight in (18.2e-6, 18.6e-6, 19.0e-6, 19.4e-6):
        r = run(exc, {"input": [(EXC_INPUT_A, FIRST_S)]}, {"weight": weight}, samples=True)
        assert count(r, "syn_w") == 1 and count(r, "wm_post") == 1, weight
        peaks.append(float(r.branch_current_a["syn_lp"].max()))   # released current into the post
    assert np.all(np.diff(peaks) > 0), peaks
    assert 13e-6 < peaks[0] and peaks[-1] < 17e-6
    for weight in (0.0, 17.0e-6):
        r = run(exc, {"input": [(EXC_INPUT_A, FIRST_S)]}, {"weight": weight}, samples=True)
        assert count(r, "syn_w") == 0 and count(r, "wm_post") == 0, weight
        assert r.branch_current_a["syn_lp"].max() < 2.5e-6     # only the passive leak of the spike


# --- fan-out -----------------------------------------------------------------------------------

def test_one_pre_neuron_fires_three_post_neurons(fan):
    r = run(fan, {"input": [(FAN_INPUT_A, FIRST_S)]})
    pre = first(r, "wm")
    for k in (1, 2, 3):
        assert count(r, f"syn{k}_w") == 1 and count(r, f"wm_post{k}") == 1
        assert 0.3e-9 < first(r, f"wm_post{k}") - pre < 0.8e-9   # notes: 0.52-0.55 ns
    r = run(fan, {"input": [(FAN_INPUT_A, FIRST_S)]}, {"weight2": 10e-6})
    assert [count(r, f"wm_post{k}") for k in (1, 2, 3)] == [1, 0, 1]   # each weight acts on its own post


# --- inhibitory pair ---------------------------------------------------------------------------

def test_inhibitory_synapse_suppresses_the_driven_post_neuron(inh):
    alone = run(inh, {"input_post": [(INH_POST_INPUT_A, 5e-9)]})
    assert count(alone, "wm_post") == 1
    pre = run(inh, {"input": [(INH_INPUT_A, FIRST_S)]}, samples=True)
    t_pre = first(pre, "wm")
    assert count(pre, "syn_w") == 1
    assert pre.branch_current_a["syn_lp"].min() < -6e-6       # pulled out of the post's main node
    for delay in (2e-9, 10e-9):          # inside the window (notes: -0.1 to 16.0 ns after the pre spike)
        r = run(inh, {"input": [(INH_INPUT_A, FIRST_S)], "input_post": [(INH_POST_INPUT_A, t_pre + delay)]})
        assert count(r, "wm_post") == 0, delay
    r = run(inh, {"input": [(INH_INPUT_A, FIRST_S)], "input_post": [(INH_POST_INPUT_A, t_pre + 25e-9)]},
            stop_s=50e-9)
    assert count(r, "wm_post") == 1      # the window closes
    r = run(inh, {"input": [(SUBTHRESHOLD_A, FIRST_S)], "input_post": [(INH_POST_INPUT_A, t_pre + 2e-9)]})
    assert count(r, "syn_w") == 0 and count(r, "wm_post") == 1   # no pre spike, no inhibition


# --- energy ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "amplitude", "per_synapse"), [
    ("synapse-excitatory-pair", EXC_INPUT_A, (4e-18, 8e-18)),
    ("synapse-fan-out", FAN_INPUT_A, (5e-18, 9e-18)),
    ("synapse-inhibitory-pair", INH_INPUT_A, (7e-18, 13e-18)),
], ids=["excitatory", "fan-out", "inhibitory"])
def test_energy_balance_and_energy_per_synaptic_event(name, amplitude, per_synapse):
    chip = load_chip(CHIPS / f"{name}.yaml")
    r = run(chip, {"input": [(amplitude, FIRST_S)]}, stop_s=200e-9)
    e = r.energy
    assert abs(e.balance_error_j) < 0.005 * e.total_delivered_j
    lo, hi = per_synapse
    for sid, energy in synaptic_energy_j(chip, e.dissipated_j).items():
        assert lo < energy < hi, (sid, energy)
    quiet = run(chip, {"input": [(SUBTHRESHOLD_A, FIRST_S)]}, stop_s=200e-9)
    assert all(v < 0.1e-18 for v in synaptic_energy_j(chip, quiet.energy.dissipated_j).values())


# --- against ngspice ---------------------------------------------------------------------------

@pytest.mark.ngspice
@needs_ngspice
@pytest.mark.parametrize(("name", "settle_s", "inputs", "must_switch"), [
    # excitatory: the weight current settles through syn_rin with L/R = 115 nH / 3 ohm = 38 ns
    ("synapse-excitatory-pair", 200e-9, {"input": (26e-6, 0.0)}, ("syn_w", "wm_post")),
    ("synapse-fan-out", 100e-9, {"input": (FAN_INPUT_A, 0.0)}, ("syn1_w", "syn2_w", "syn3_w", "wm_post1")),
    # inhibitory: the post's input 2 ns after the pre's, suppressed in both simulators
    ("synapse-inhibitory-pair", 100e-9, {"input": (INH_INPUT_A, 0.0), "input_post": (INH_POST_INPUT_A, 3.2e-9)},
     ("syn_w",)),
], ids=["excitatory", "fan-out", "inhibitory"])
def test_synapse_chip_matches_ngspice(name, settle_s, inputs, must_switch):
    from validation import emulator_circuits as ec
    from validation.compare import crosscheck
    from validation.from_circuit import deterministic

    chip = load_chip(CHIPS / f"{name}.yaml")
    drives = {chip.ports[port]: ec.pulse_train(amplitude, WIDTH_S, (settle_s + delay,))
              for port, (amplitude, delay) in inputs.items()}
    comparison = crosscheck(deterministic(chip.circuit), settle_s + 25e-9, drives=drives,
                            temperature_k=chip.temperature_k)
    for wire in comparison.wires:
        assert wire.same_count, (wire.wire, wire.reference_s, wire.emulator_s)
        assert wire.timing_error.size == 0 or wire.timing_error.max() <= 0.01, (wire.wire, wire.timing_error)
    for wire in must_switch:   # not vacuous: the synapse and its post did act
        assert comparison.wire(wire).reference_s.size >= 1, wire
    if name == "synapse-inhibitory-pair":
        assert comparison.wire("wm_post").reference_s.size == 0
