"""The ngspice port of the nanowire model against the published checks, then against the emulator.

The port is validated on its own first (C2 of physics.md §5, computed there with three independent
implementations); only then is it used as the reference the emulator must agree with.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

from validation import circuits, events, ngspice
from validation.netlist import Netlist

needs_ngspice = pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")
pytestmark = pytest.mark.ngspice


def _oscillator_figures(netlist):
    result = ngspice.run(netlist)
    wire = netlist.wires["w"]
    figs = events.figures(result.time_s, result.wire_current_a("w"), wire.switching_current_a,
                          result.voltage_v("d"))
    return result, figs


def _cycle_energies_j(result, figs):
    """Hotspot, shunt and delivered energy over the last complete steady-state cycle."""
    t, i_w, v = result.time_s, result.wire_current_a("w"), result.voltage_v("d")
    a, b = figs.switching_s[-3], figs.switching_s[-2]
    sel = (t >= a) & (t <= b)
    hotspot = np.trapezoid((result.hotspot_ohm("w") * i_w**2)[sel], t[sel])
    shunt = np.trapezoid((v**2 / 50.0)[sel], t[sel])
    delivered = np.trapezoid((v * (2.08 - v) / 100e3)[sel], t[sel])
    return hotspot, shunt, delivered


@needs_ngspice
def test_port_reproduces_c2():
    result, figs = _oscillator_figures(circuits.c2(stop_s=60e-9))
    assert figs.switching_s[0] == pytest.approx(4.564e-9, rel=0.01)
    assert figs.period_s == pytest.approx(4.513e-9, rel=0.01)
    assert figs.peak_v[-1] == pytest.approx(0.878e-3, rel=0.01)
    assert figs.peak_delay_s[-1] == pytest.approx(185e-12, rel=0.05)
    assert result.hotspot_ohm("w").max() == pytest.approx(1.086e3, rel=0.01)
    # Retrap (variant a) where the hotspot voltage falls below I_hs * 1 ohm: I ~ I_sw/sqrt(psi).
    st = result.normal_state("w")
    retrap_i = result.wire_current_a("w")[np.flatnonzero(st[:-1] & ~st[1:])]
    assert retrap_i[-1] == pytest.approx(3.24e-6, rel=0.01)
    hotspot, shunt, delivered = _cycle_energies_j(result, figs)
    assert hotspot == pytest.approx(14.3e-18, rel=0.01)
    assert shunt == pytest.approx(12.0e-18, rel=0.01)
    assert delivered == pytest.approx(26.3e-18, rel=0.01)
    assert delivered == pytest.approx(hotspot + shunt, rel=0.005)  # L stores nothing net per cycle


@needs_ngspice
def test_retrap_variant_b_shortens_the_c2_period():
    _, figs = _oscillator_figures(circuits.c2(stop_s=60e-9, retrap="b"))
    assert figs.period_s == pytest.approx(4.37e-9, rel=0.01)


@needs_ngspice
def test_nonlinear_inductance_lengthens_the_period_c3():
    r2, f2 = _oscillator_figures(circuits.c2(stop_s=60e-9))
    r3, f3 = _oscillator_figures(circuits.c3(stop_s=60e-9))
    assert f3.period_s > 1.2 * f2.period_s
    assert sum(_cycle_energies_j(r3, f3)[:2]) > sum(_cycle_energies_j(r2, f2)[:2])


@needs_ngspice
def test_neuron_fires_only_above_threshold():
    def spikes(amplitude_a):
        pulse = circuits.InputPulse(amplitude_a, width_s=2e-9, delay_s=10e-9)
        result = ngspice.run(circuits.neuron((pulse,), stop_s=20e-9))
        main = events.switching_times_s(result.time_s, result.wire_current_a("m"), 20e-6)
        control = events.switching_times_s(result.time_s, result.wire_current_a("c"), 20e-6)
        return main, control

    main, control = spikes(10e-6)
    assert main.size == 0 and control.size == 0
    main, control = spikes(30e-6)
    assert main.size == 1 and control.size == 1
    assert 0.3e-9 < control[0] - main[0] < 2e-9  # the control wire resets the loop after M fires


def test_missing_ngspice_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(ngspice.shutil, "which", lambda name: None)
    with pytest.raises(ngspice.NgspiceNotFound, match="ngspice not installed"):
        ngspice.run(circuits.c2(stop_s=1e-9))


@needs_ngspice
def test_ngspice_failure_carries_its_messages():
    bad = Netlist("broken deck", ("r1 a 0 1k", "bx a 0 V=nosuchfunc(v(a))"), 1e-9, 1e-12)
    with pytest.raises(ngspice.NgspiceError, match="nosuchfunc"):
        ngspice.run(bad)


# --- the emulator against the port -------------------------------------------------------------

from validation import emulator_circuits as ec  # noqa: E402
from validation.compare import crosscheck  # noqa: E402
from validation.from_circuit import deterministic, netlist_from_circuit, wire_params  # noqa: E402


def _assert_agree(comparison, *, expect_switches=True):
    for wire in comparison.wires:
        assert wire.same_count, (wire.wire, wire.reference_s, wire.emulator_s)
        assert wire.timing_error.size == 0 or wire.timing_error.max() <= 0.01, (wire.wire, wire.timing_error)
        assert wire.peak_error <= 0.02, (wire.wire, wire.reference_peak_v, wire.emulator_peak_v)
        if wire.reference_s.size >= 3:
            assert wire.period_error <= 0.01
    if expect_switches:
        assert sum(w.reference_s.size for w in comparison.wires) > 0  # not vacuous


@needs_ngspice
def test_deck_from_circuit_equals_the_direct_deck():
    direct = ngspice.run(circuits.c2(stop_s=30e-9))
    adapted = ngspice.run(netlist_from_circuit(ec.oscillator(nonlinear=False), stop_s=30e-9))
    t_direct = events.switching_times_s(direct.time_s, direct.wire_current_a("w"), 20e-6)
    t_adapted = events.switching_times_s(adapted.time_s, adapted.wire_current_a("w"), 20e-6)
    np.testing.assert_allclose(t_adapted, t_direct, rtol=1e-9)
    # Current-source direction and PWL drives: the neuron deck written by hand vs from the model.
    pulse = circuits.InputPulse(30e-6, width_s=1.98e-9, delay_s=5e-9)  # flat top = 2 ns - edge
    direct = ngspice.run(circuits.neuron((pulse,), stop_s=12e-9))
    drives = {"input": ec.pulse_train(30e-6, 2e-9, (5e-9,))}
    adapted = ngspice.run(netlist_from_circuit(ec.neuron(), drives, 12e-9))
    for direct_name, model_name in (("m", "main"), ("c", "control")):
        t_direct = events.switching_times_s(direct.time_s, direct.wire_current_a(direct_name), 20e-6)
        t_adapted = events.switching_times_s(adapted.time_s, adapted.wire_current_a(model_name), 20e-6)
        assert t_direct.size == t_adapted.size == 1
        np.testing.assert_allclose(t_adapted, t_direct, rtol=1e-4)


@needs_ngspice
@pytest.mark.parametrize(
    ("nonlinear", "retrap"), [(False, "voltage"), (True, "voltage"), (False, "current")],
    ids=["C2", "C3", "C2-retrap-b"],
)
def test_emulator_matches_ngspice_on_the_oscillator(nonlinear, retrap):
    comparison = crosscheck(ec.oscillator(nonlinear=nonlinear, retrap=retrap), 40e-9)
    _assert_agree(comparison)
    assert comparison.wire("w").reference_s.size >= 5


@needs_ngspice
def test_emulator_matches_ngspice_on_the_neuron():
    drives = {"input": ec.pulse_train(30e-6, 2e-9, (5e-9, 15e-9))}
    comparison = crosscheck(ec.neuron(), 25e-9, drives=drives)
    _assert_agree(comparison)
    assert comparison.wire("main").reference_s.size == 2
    assert comparison.wire("control").reference_s.size == 2


@needs_ngspice
def test_emulator_matches_ngspice_below_threshold():
    drives = {"input": ec.pulse_train(10e-6, 2e-9, (5e-9,))}
    comparison = crosscheck(ec.neuron(), 12e-9, drives=drives)
    _assert_agree(comparison, expect_switches=False)
    assert all(w.reference_s.size == 0 for w in comparison.wires)


def test_deck_conventions_and_safe_names():
    from sim_backend.physics import circuit as cm
    from sim_backend.physics.nanowire import NanowireParams

    circuit = cm.Circuit((
        cm.CurrentSource("I bias", "Top", "0", 15e-6),
        cm.Resistor("R", "Top", "0", 50.0),
        cm.Nanowire("W", "Top", "w_r", NanowireParams(inductance_h=50e-9)),  # a node named like an internal one
        cm.Resistor("R2", "w_r", "0", 10.0),
    ))
    deck = netlist_from_circuit(circuit, stop_s=1e-9)
    text = deck.text()
    assert "i_i_bias 0 top 1.5e-05" in text  # pushes its current into node_pos
    assert deck.node_alias["w_r"] != "w_r"  # renamed away from the wire's integrator node
    assert f"r_r2 {deck.node_alias['w_r']} 0 10" in text
    with pytest.raises(ValueError, match="unknown sources"):
        netlist_from_circuit(circuit, {"nope": 1.0}, stop_s=1e-9)


CHIP_FILES = sorted((Path(__file__).resolve().parents[2] / "stations" / "chips").glob("*.yaml"))


@needs_ngspice
@pytest.mark.skipif(not CHIP_FILES, reason="no chip files in stations/chips")
@pytest.mark.parametrize("chip_path", CHIP_FILES, ids=[p.stem for p in CHIP_FILES])
def test_emulator_matches_ngspice_on_shipped_chips(chip_path):
    """Any shipped chip, with a generic stimulus: DC sources as the file sets them, and a
    2 ns pulse of 2.5x the largest switching current on every source the file leaves at zero
    (above the default neuron's 2 ns threshold, 1.84 I_sw, and below its 2x-threshold limit)."""
    from sim_backend.chip.build import load_chip
    from sim_backend.physics import circuit as cm

    chip = load_chip(chip_path)
    circuit = deterministic(chip.circuit)
    wires = [e for e in circuit.elements if isinstance(e, cm.Nanowire)]
    assert wires, "a chip without nanowires"
    amplitude = 2.5 * max(wire_params(w.params).switching_current_a for w in wires)
    drives = {s.name: ec.pulse_train(amplitude, 2e-9, (5e-9,)) for s in circuit.sources
              if isinstance(s, cm.CurrentSource) and s.current_a == 0.0}
    comparison = crosscheck(circuit, 20e-9, drives=drives, temperature_k=chip.temperature_k)
    _assert_agree(comparison)
