"""Superconducting stretches of a linear chip in closed form (_kernel_exact, _linear_modes): the
same answers as the steps they replace, and the answers the circuit's own algebra gives."""

from __future__ import annotations

import numpy as np
import pytest

from sim_backend.physics import _layout, _linear_modes
from sim_backend.physics.circuit import Circuit, CurrentSource, Inductor, Nanowire, Resistor, VoltageSource
from sim_backend.physics.nanowire import NanowireParams, switching_current_a
from sim_backend.physics.transient import simulate
from sim_backend.physics.waveform import PiecewiseLinear
from tests.physics.physics_cases import neuron_like, oscillator, reference_settings


def _loop_with_pulses() -> tuple[Circuit, dict]:
    """Two linear wires joined by an inductor (a superconducting loop: a mode of λ = 0), a DC bias
    and three input pulses (ramps, where the chip steps, between flat stretches)."""
    times, values = [0.0], [0.0]
    for start in (10e-9, 40e-9, 70e-9):
        times += [start, start + 0.2e-9, start + 2.2e-9, start + 2.4e-9]
        values += [0.0, 30e-6, 30e-6, 0.0]
    return neuron_like(nonlinear=False), {"input": PiecewiseLinear(np.array(times), np.array(values))}


CASES = {
    "c2": lambda: (oscillator(), {}, None),
    "c2-current-retrap": lambda: (oscillator(retrap="current"), {}, None),
    "c2-random-thresholds": lambda: (oscillator(sigma_isw_a=0.3e-6), {}, 7),
    "loop-with-pulses": lambda: (*_loop_with_pulses(), None),
}
GRID = np.linspace(0.0, 100e-9, 10_001)


def _run(case: str, grid: np.ndarray = GRID, scale: float = 1.0):
    circuit, drives, seed = CASES[case]()
    rng = None if seed is None else np.random.default_rng(seed)
    return simulate(circuit, float(grid[-1]), drives=drives, sample_times_s=grid, rng=rng, **reference_settings(scale))


def _stepping(monkeypatch) -> None:
    """The chip as if it had no modal form: every stretch stepped, as before the closed form."""
    monkeypatch.setattr(_linear_modes, "modes", lambda st: np.zeros(1))


def _event_times(result) -> np.ndarray:
    return np.array([e.time_s for e in result.events])


@pytest.mark.parametrize("case", sorted(CASES))
def test_closed_form_stretches_give_what_the_steps_give(case, monkeypatch):
    """Against the same run stepped: the same transitions at the same times (within 5e-6,
    relative; measured ≤ 2.0e-6, the steps' location tolerance accumulating over the cycles), the
    same traces where every wire is superconducting (within 2e-4 of each trace's range; measured
    ≤ 9.7e-5, C2's, from those shifted times), the same energies per element (within 2e-5;
    measured ≤ 6.3e-6) and a balance that closes as well as the steps' does (to 1e-9
    of what was delivered, or twice the steps' error: 7e-7 against 1.0e-6 with the pulses); in
    about half the steps."""
    exact = _run(case)
    _stepping(monkeypatch)
    stepped = _run(case)
    assert exact.solver_steps["exact_stretches"] >= 10 and stepped.solver_steps["exact_stretches"] == 0
    assert exact.solver_steps["accepted"] < 0.7 * stepped.solver_steps["accepted"]
    assert [(e.element, e.kind) for e in exact.events] == [(e.element, e.kind) for e in stepped.events]
    assert len(exact.events) >= 6
    times = _event_times(exact)
    assert np.max(np.abs(times - _event_times(stepped)) / times) <= 5e-6
    superconducting = np.ones(GRID.size, bool)
    for result in (exact, stepped):
        for trace in result.hotspot_resistance_ohm.values():
            superconducting &= trace == 0.0
    for t in times:
        superconducting &= np.abs(GRID - t) > 20e-12
    assert superconducting.sum() > 0.5 * GRID.size
    for kind in ("node_voltage_v", "branch_current_a"):
        for name, trace in getattr(exact, kind).items():
            other = getattr(stepped, kind)[name]
            assert np.max(np.abs(trace - other)[superconducting], initial=0.0) <= 2e-4 * np.ptp(other), (kind, name)
    for kind in ("dissipated_j", "delivered_j"):
        for name, energy in getattr(exact.energy, kind).items():
            assert energy == pytest.approx(getattr(stepped.energy, kind)[name], rel=2e-5, abs=1e-30), (kind, name)
    assert abs(exact.energy.balance_error_j) <= max(2.0 * abs(stepped.energy.balance_error_j),
                                                    1e-9 * exact.energy.total_delivered_j)


def test_closed_form_switching_is_nearer_a_tight_run_than_the_steps_are(monkeypatch):
    """C2's transitions against a stepped run at 1/1000 of the tolerances: the closed form lands
    each switching on its crossing (Newton steps on the exact current, to well inside the location
    tolerance), where a step locates it within T_TOL_S and ends half of it past. Measured: 8.3e-7
    (closed form) against 1.9e-6 (steps) at most, relative."""
    exact = _run("c2")
    _stepping(monkeypatch)
    stepped, reference = _run("c2"), _run("c2", scale=1e-3)
    ref = _event_times(reference)
    exact_error = np.max(np.abs(_event_times(exact) - ref) / ref)
    assert exact_error <= 1e-6
    assert exact_error < np.max(np.abs(_event_times(stepped) - ref) / ref)


def test_a_wire_on_a_voltage_switches_when_its_current_reaches_the_threshold():
    """1 mV straight across a 70 nH wire: I = V·t/L (a mode of λ = 0 with a constant drive) until
    I_sw, which it reaches at L·I_sw/V; the source has delivered ½·L·I_sw² then, all stored.
    The closed form gives both to rounding (the time within 1e-13, relative; the energy 1e-12)."""
    wire = NanowireParams(inductance_h=70e-9)
    circuit = Circuit((VoltageSource("v", "a", "0", 1e-3), Nanowire("w", "a", "0", wire)))
    isw_a = switching_current_a(wire, 2.0)
    switch_s = wire.inductance_h * isw_a / 1e-3
    grid = np.linspace(0.0, 0.9 * switch_s, 101)
    before = simulate(circuit, 0.9 * switch_s, sample_times_s=grid)
    assert before.solver_steps == {"accepted": 0, "rejected": 0, "event_location": 0, "exact_stretches": 1}
    np.testing.assert_allclose(before.branch_current_a["w"], 1e-3 * grid / wire.inductance_h, rtol=1e-13, atol=1e-22)
    run = simulate(circuit, 1.1 * switch_s, sample_times_s=np.array([0.0, 1.1 * switch_s]))
    first = run.events[0]
    assert (first.element, first.kind) == ("w", "switch")
    assert first.time_s == pytest.approx(switch_s, rel=1e-13)
    at_switch = simulate(circuit, first.time_s, sample_times_s=np.array([0.0, first.time_s]))
    assert at_switch.energy.delivered_j["v"] == pytest.approx(0.5 * wire.inductance_h * isw_a**2, rel=1e-12)
    assert at_switch.energy.stored_end_j == pytest.approx(at_switch.energy.delivered_j["v"], rel=1e-12)


@pytest.mark.parametrize("case", ["c2", "loop-with-pulses"])
def test_samples_on_an_uneven_grid_are_the_even_grids(case):
    """On a uniform grid a chunk's exponentials go by recurrence, elsewhere by exp at every sample:
    the samples both grids share agree to 1e-12 of each trace's range (every third sample dropped
    makes the grid uneven)."""
    even = _run(case)
    uneven_grid = np.delete(GRID, np.arange(1, GRID.size - 1, 3))
    uneven = _run(case, uneven_grid)
    shared = np.isin(GRID, uneven_grid)
    assert [e.time_s for e in even.events] == [e.time_s for e in uneven.events]
    for kind in ("node_voltage_v", "branch_current_a", "cumulative_dissipated_j", "cumulative_delivered_j"):
        for name, trace in getattr(even, kind).items():
            other = getattr(uneven, kind)[name]
            assert np.max(np.abs(trace[shared] - other)) <= 1e-12 * max(np.ptp(trace), 1e-300), (kind, name)


def test_only_a_linear_chip_without_floating_clusters_has_a_modal_form():
    """Linear wires and inductors, grounded through resistors: a modal form, whose eigenvalues are
    ≤ 0 (a passive network) and whose basis inverts. A nonlinear kinetic inductance, or a node
    reached only through inductive branches (a floating cluster), leave it without one."""
    def lin(circuit):
        return _linear_modes.modes(_layout.structure(circuit, 2.0))

    for circuit in (oscillator(), neuron_like(nonlinear=False)):
        form = lin(circuit)
        nb = len(_layout.structure(circuit, 2.0).branches)
        assert form[0] == 1.0
        lam = form[1:1 + nb]
        assert np.all(lam <= 0.0) and np.any(lam < 0.0)
        v = form[1 + nb:1 + nb + nb * nb].reshape(nb, nb)
        v_inv = form[1 + nb + nb * nb:1 + nb + 2 * nb * nb].reshape(nb, nb)
        np.testing.assert_allclose(v @ v_inv, np.eye(nb), atol=1e-12)
    assert lin(neuron_like(nonlinear=False))[1:4].tolist().count(0.0) == 1      # the loop
    assert lin(oscillator(nonlinear=True))[0] == 0.0
    floating = Circuit((CurrentSource("i", "0", "a", 1e-6), Inductor("l1", "a", "b", 1e-9),
                        Inductor("l2", "b", "0", 1e-9), Nanowire("w", "b", "c", NanowireParams()),
                        Resistor("r", "a", "0", 50.0), Inductor("l3", "c", "0", 1e-9)))
    assert _layout.structure(floating, 2.0).cluster_incidence.shape[0] > 0
    assert lin(floating)[0] == 0.0


def test_branches_no_source_reaches_carry_no_current_after_a_stretch(monkeypatch):
    """Three grounded cells, a ramped source in one: the others carry exactly 0 A throughout. The
    modes are found for each set of coupled branches on its own: from one eigendecomposition of
    the whole, the idle cells carried ~1e-21 A after the first stretch (rounding), which the steps
    on the next ramp, near a stiff mode's stability limit, amplified to 2.4e-12 A and 2.3e-7 V
    in 739 accepted and 123 rejected steps (stepped throughout: 0 A in 94 and 1)."""
    def wire(inductance_h, delta=0.005, retrap="voltage"):
        return NanowireParams(inductance_h=inductance_h, delta=delta, retrap=retrap)

    circuit = Circuit((
        Nanowire("w0", "n0", "0", wire(177.95e-9, 0.001)), Nanowire("w1", "n1", "0", wire(136.28e-9, 0.001)),
        Nanowire("w2", "n2", "0", wire(30.42e-9)), Nanowire("w3", "n0", "0", wire(31.45e-9, 0.005, "current")),
        Resistor("rs0", "n0", "0", 7348.28), Resistor("rs1", "n1", "0", 1070.19), Resistor("rs2", "n2", "0", 96825.39),
        CurrentSource("i0", "0", "n1", 0.0)))
    ns = 1e-9
    times = np.array([0.0, 0.3529, 0.6958, 0.7325, 1.0754, 1.5551, 1.6039, 3.1355, 3.1843, 3.8886, 3.9100, 3.9188,
                      3.9402]) * ns
    amps = np.array([1.9636, 1.9636, 10.5158, 10.5158, 8.6981, 8.6981, 13.4674, 13.4674, 4.8106, 4.8106, -0.3842,
                     -0.3842, 9.6143]) * 1e-6
    drives = {"i0": PiecewiseLinear(times, amps)}
    grid = np.linspace(0.0, 8.5932 * ns, 999)
    exact = simulate(circuit, float(grid[-1]), drives=drives, sample_times_s=grid)
    _stepping(monkeypatch)
    stepped = simulate(circuit, float(grid[-1]), drives=drives, sample_times_s=grid)
    assert exact.solver_steps["exact_stretches"] > 0
    for name in ("w0", "w2", "w3"):
        assert not np.any(exact.branch_current_a[name]), name
        assert exact.final_state.branch_current_a[name] == 0.0
    assert not np.any(exact.node_voltage_v["n0"]) and not np.any(exact.node_voltage_v["n2"])
    steps = exact.solver_steps["accepted"] + exact.solver_steps["rejected"]
    assert steps <= stepped.solver_steps["accepted"] + stepped.solver_steps["rejected"], (exact.solver_steps,
                                                                                          stepped.solver_steps)
