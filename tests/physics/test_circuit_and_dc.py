"""Netlist validation, DC operating point, superconducting loops and floating nodes."""

import math

import numpy as np
import pytest

from sim_backend.physics.circuit import (
    Circuit, CurrentSource, Inductor, Nanowire, Resistor, VoltageSource,
)
from sim_backend.physics.dc import dc_state
from sim_backend.physics.nanowire import NanowireParams
from sim_backend.physics.transient import simulate
from sim_backend.physics.waveform import PiecewiseLinear


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Inductor("L1", "a", "0", -1e-9), "L1.*inductance_h"),
    (lambda: Resistor("R1", "a", "0", 0.0), "R1.*resistance_ohm"),
    (lambda: Resistor("R1", "a", "a", 1.0), "R1.*shorted"),
    (lambda: Circuit((Resistor("R1", "a", "0", 1.0), Resistor("R2", "a", "b", 1.0))), "R2.*dangling node 'b'"),
    (lambda: Circuit((Resistor("R1", "a", "0", 1.0), Resistor("R1", "a", "0", 2.0))), "duplicate.*R1"),
    (lambda: Circuit((Resistor("R1", "a", "0", 1.0), Resistor("R2", "a", "0", 2.0)), nodes=("b",)), "R1.*unknown node 'a'"),
    (lambda: Circuit((Resistor("R1", "a", "b", 1.0), Resistor("R2", "a", "b", 2.0),
                      Resistor("R3", "c", "0", 1.0), Resistor("R4", "c", "0", 1.0))), "R1.*not connected to ground"),
])
def test_invalid_netlists_name_the_element(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def _loop_circuit(nonlinear=False):
    """Bias into node c splits between wire C (c->0) and L_S + wire M (c->m->0): a superconducting loop."""
    wire = NanowireParams(inductance_h=20e-9, nonlinear_inductance=nonlinear)
    return Circuit((
        CurrentSource("ib", "c", "0", 15e-6),
        Nanowire("wm", "m", "0", wire),
        Inductor("ls", "m", "c", 100e-9),
        Nanowire("wc", "c", "0", wire),
    ))


def test_dc_state_divides_by_inductance():
    state = dc_state(_loop_circuit(), temperature_k=2.0)
    assert state.branch_current_a["wc"] == pytest.approx(15e-6 * 120 / 140, rel=1e-9)
    assert state.branch_current_a["wm"] == pytest.approx(15e-6 * 20 / 140, rel=1e-9)
    assert state.branch_current_a["ls"] == pytest.approx(-15e-6 * 20 / 140, rel=1e-9)


def test_dc_state_nonlinear_has_zero_loop_flux():
    from sim_backend.physics import nanowire as nw

    circuit = _loop_circuit(nonlinear=True)
    state = dc_state(circuit, temperature_k=2.0)
    wire = circuit.element("wc").params
    flux_c = nw.flux_wb(wire, state.branch_current_a["wc"])
    flux_m = nw.flux_wb(wire, state.branch_current_a["wm"])
    flux_s = 100e-9 * state.branch_current_a["ls"]
    assert flux_c == pytest.approx(flux_m - flux_s, rel=1e-9)


def test_dc_state_keeping_flux_is_where_a_slow_source_change_leads():
    """With 3 µA circulating in the loop (trapped flux), the bias goes from 15 to 18 µA: the DC
    state that keeps the loop's flux is where a simulated ramp ends, and differs from plain
    superposition of the flux-free states (the nonlinear inductances divide differently at the
    loop's currents)."""
    from dataclasses import replace

    from sim_backend.physics import nanowire as nw

    circuit = _loop_circuit(nonlinear=True)
    free = dc_state(circuit, temperature_k=2.0).branch_current_a
    start = replace(dc_state(circuit, temperature_k=2.0), branch_current_a={
        "wm": free["wm"] + 3e-6, "ls": free["ls"] - 3e-6, "wc": free["wc"] - 3e-6})
    kept = dc_state(circuit, temperature_k=2.0, source_values={"ib": 18e-6}, keeping_flux_of=start).branch_current_a
    wire = circuit.element("wc").params

    def loop_flux_wb(currents):
        return nw.flux_wb(wire, currents["wm"]) - 100e-9 * currents["ls"] - nw.flux_wb(wire, currents["wc"])

    assert loop_flux_wb(kept) == pytest.approx(loop_flux_wb(start.branch_current_a), rel=1e-9)
    assert kept["wc"] - kept["ls"] == pytest.approx(18e-6, rel=1e-12)          # KCL at the bias node
    ramp = PiecewiseLinear(np.array([0.0, 20e-9]), np.array([15e-6, 18e-6]))
    ramped = simulate(circuit, 25e-9, drives={"ib": ramp}, initial=start, sample_times_s=np.array([25e-9]))
    for name, current_a in ramped.final_state.branch_current_a.items():
        assert kept[name] == pytest.approx(current_a, abs=1e-11), name
    superposed = start.branch_current_a["wm"] + dc_state(
        circuit, temperature_k=2.0, source_values={"ib": 18e-6}).branch_current_a["wm"] - free["wm"]
    assert abs(superposed - kept["wm"]) > 1e-9


def test_dc_state_holds_still_in_a_purely_inductive_circuit():
    """Nodes reached only through inductors (no resistor anywhere): the DC state is stationary."""
    circuit = _loop_circuit()
    state = dc_state(circuit, temperature_k=2.0)
    result = simulate(circuit, 5e-9, initial=state, sample_times_s=np.linspace(0, 5e-9, 11))
    assert result.events == ()
    for name, i0 in state.branch_current_a.items():
        assert np.allclose(result.branch_current_a[name], i0, rtol=1e-9, atol=1e-15)
    assert np.allclose(result.node_voltage_v["c"], 0.0, atol=1e-12)


def test_current_step_into_inductor_only_node_divides_by_inductance():
    """A ramped current into a node with no resistive path splits 1/L between the branches."""
    circuit = Circuit((
        CurrentSource("iin", "a", "0", 0.0),
        Inductor("l1", "a", "0", 10e-9),
        Inductor("l2", "a", "b", 30e-9),
        Resistor("rb", "b", "0", 1e3),
        Inductor("l3", "b", "0", 1e-9),
    ))
    ramp = PiecewiseLinear(np.array([0.0, 1e-9]), np.array([0.0, 4e-6]))
    result = simulate(circuit, 1e-9, drives={"iin": ramp}, sample_times_s=np.array([1e-9]))
    i1 = result.branch_current_a["l1"][-1]
    i2 = result.branch_current_a["l2"][-1]
    assert i1 + i2 == pytest.approx(4e-6, rel=1e-9)
    # l2 in series with l3: rb (L/R = 1 ps) only takes l3's tiny L·dI/dt voltage
    assert i1 / i2 == pytest.approx(31 / 10, rel=1e-3)
    assert abs(result.energy.balance_error_j) < 1e-6 * result.energy.total_delivered_j


def test_voltage_source_shorted_by_superconductor_at_dc():
    circuit = Circuit((VoltageSource("v", "a", "0", 1e-3), Inductor("l", "a", "0", 1e-9)))
    with pytest.raises(ValueError, match="'v'.*superconducting"):
        dc_state(circuit)


def test_pwl_holds_ends_and_builds_pulses():
    p = PiecewiseLinear.pulse(10e-6, delay_s=1e-9, width_s=2e-9, rise_s=0.2e-9)
    assert p(0.0) == 0.0 and p(10e-9) == 0.0
    assert p(2e-9) == pytest.approx(10e-6)
    assert p(1.1e-9) == pytest.approx(5e-6)
    s = PiecewiseLinear.from_samples(0.0, 1e-9, np.array([0.0, 1.0, 0.0]))
    assert s(0.5e-9) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="increasing"):
        PiecewiseLinear(np.array([0.0, 0.0]), np.array([1.0, 2.0]))


@pytest.mark.parametrize("points", [4, 40])     # checked in Python, and with numpy, by size
@pytest.mark.parametrize("at, time_s, value, message", [
    (2, None, None, None),                       # a valid waveform
    (2, 1.0, None, "increasing"), (3, 1.5, None, "increasing"),
    (1, math.nan, None, "finite"), (2, None, math.inf, "finite"), (0, None, -math.inf, "finite"),
])
def test_pwl_refuses_times_that_do_not_increase_and_values_that_are_not_finite(points, at, time_s, value, message):
    times, values = np.arange(points, dtype=float), np.ones(points)
    if time_s is not None:
        times[at] = time_s
    if value is not None:
        values[at] = value
    if message is None:
        assert PiecewiseLinear(times, values)(1.5) == 1.0
    else:
        with pytest.raises(ValueError, match=message):
            PiecewiseLinear(times, values)


@pytest.mark.parametrize("times_s", [
    [0.0, 2e-9, 1e-9],            # decreasing
    [-1e-12, 1e-9],               # before the start
    [0.0, 10e-9 + 1e-18],         # after the stop
    [0.0, math.nan, 5e-9],        # not a time
])
def test_simulate_refuses_sample_times_out_of_order_or_outside_the_run(times_s):
    circuit = Circuit([CurrentSource("ib", "a", "0", 1e-6), Resistor("r", "a", "0", 50.0)])
    with pytest.raises(ValueError, match="sample_times_s must be non-decreasing and inside"):
        simulate(circuit, 10e-9, sample_times_s=np.array(times_s))
    # repeated times and the run's own ends are samples like any other
    result = simulate(circuit, 10e-9, sample_times_s=np.array([0.0, 5e-9, 5e-9, 10e-9]))
    assert np.allclose(result.node_voltage_v["a"], 50e-6)
