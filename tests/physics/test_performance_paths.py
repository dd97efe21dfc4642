"""The solver's fast paths give the same answers as the direct ones they replace."""

from __future__ import annotations

import numpy as np
import pytest

from sim_backend.physics import _layout, transient
from sim_backend.physics._kernel_advance import interior_event, sample_row
from sim_backend.physics._kernel_integrate import _C, dense, rk_step
from sim_backend.physics._kernel_network import network
from sim_backend.physics._kernel_output import N_COEF, output_coefficients, write_samples
from sim_backend.physics.circuit import Circuit, CurrentSource, Nanowire, Resistor
from sim_backend.physics.nanowire import NanowireParams, hotspot_current_a, switching_current_a
from sim_backend.physics.results import CircuitState
from sim_backend.physics.transient import DEFAULT_MAX_STEP_S, simulate
from sim_backend.physics.waveform import PiecewiseLinear
from tests.physics.physics_cases import neuron_like, oscillator, reference_settings


def _kernel_inputs(circuit, drives):
    st = _layout.structure(circuit, 2.0)
    ip, fp, kinv = _layout.pack(st, _layout.waveform_arrays(circuit, st, drives))
    nb, nw, nr = len(st.branches), len(st.wires), len(st.resistors)
    ny = nb + nw + nr + nw + len(st.current_sources) + len(st.voltage_sources)
    ncol = len(st.nodes) + nb + nr + 2 * len(st.current_sources) + 2 * len(st.voltage_sources) + nr + 2 * nw
    return st, ip, fp, kinv, ny, ncol


@pytest.mark.parametrize("case", ["c2_resistive", "c3_superconducting", "neuron_ramp", "neuron_nonlinear_resistive"])
def test_polynomial_output_matches_network_at_dense_states(case):
    """Samples written from the per-step polynomials equal the network evaluated at the
    dense-output state, for every output column (voltages, currents, energies, hotspots)."""
    rng = np.random.default_rng(7)
    if case.startswith("c"):
        circuit, drives = oscillator(nonlinear=case.startswith("c3")), {}
    else:
        circuit = neuron_like(nonlinear="nonlinear" in case)
        # the step lies on the rising edge of a ramp: sources vary linearly inside it
        drives = {"input": PiecewiseLinear(np.array([0.0, 1e-9]), np.array([0.0, 40e-6]))}
    st, ip, fp, kinv, ny, ncol = _kernel_inputs(circuit, drives)
    nb, nw = len(st.branches), len(st.wires)
    y = np.zeros(ny)
    y[:nb] = rng.uniform(2e-6, 18e-6, nb)
    y[nb + nw:] = rng.uniform(0.0, 1e-17, ny - nb - nw)      # running energies
    s = np.zeros(nw, dtype=np.int64)
    if "resistive" in case:
        s[0] = 1
        y[nb] = 350.0
    nn, nvs = len(st.nodes), len(st.voltage_sources)
    v, iv, dy, k1 = np.empty(nn), np.empty(nvs), np.empty(ny), np.empty(ny)
    wk = np.empty(nn + nvs + 2 * nb + 4)
    t, h = 0.2e-9, 3e-12 if "resistive" in case else 40e-12
    network(t, t, y, s, ip, fp, kinv, v, iv, k1, wk)
    kst, y1, tmp = np.empty((7, ny)), np.empty(ny), np.empty(ny)
    rk_step(t, h, y, k1, s, ip, fp, kinv, kst, y1, v, iv, wk, tmp)

    ts = t + h * np.array([0.0, 0.13, 0.5, 0.77, 1.0])
    traces = np.full((ncol, ts.size), np.nan)     # the kernel's layout: a row a trace
    coef = np.empty((N_COEF, ncol))
    output_coefficients(t, h, y, kst, s, ip, fp, kinv, coef, np.empty((N_COEF, nn + nvs)))
    assert write_samples(coef, nw, t, h, ts, 0, t + h, traces) == ts.size
    fast = traces.T
    direct = np.empty_like(fast)
    ysm = np.empty(ny)
    for row, t_s in enumerate(ts):
        dense(min((t_s - t) / h, 1.0), h, y, kst, ysm)
        sample_row(t_s, ysm, s, ip, fp, kinv, v, iv, dy, direct[row], wk)
    scale = np.maximum(np.abs(direct).max(axis=0), 1e-300)
    assert np.all(np.abs(fast - direct) <= 1e-12 * scale)
    if "resistive" in case:
        assert np.all(fast[:, -nw] > 0)                # the hotspot column carries R while resistive


def test_samples_of_a_step_are_written_from_its_first_to_its_end_only():
    """A step writes the samples from the one it is given up to its end, in every trace kept, and
    no other: before it and after it the record is untouched, and it returns the next sample."""
    coef = np.arange(1.0, 16.0).reshape(5, 3)          # θ-polynomials of three traces, the last clamped at 0
    coef[:, 2] = [-1.0, 0.5, 0.0, 0.0, 0.0]            # −1 + θ/2 < 0 throughout: clamped
    ts = np.linspace(0.0, 10.0, 11)
    traces = np.full((3, ts.size), np.nan)
    assert write_samples(coef, 1, 3.0, 4.0, ts, 4, 7.0, traces) == 8
    theta = (ts[4:8] - 3.0) / 4.0
    expected = sum(coef[p, :2, None] * theta[None, :] ** p for p in range(5))
    np.testing.assert_allclose(traces[:2, 4:8], expected, rtol=1e-15)
    assert np.all(traces[2, 4:8] == 0.0)
    assert np.isnan(traces[:, :4]).all() and np.isnan(traces[:, 8:]).all()


@pytest.mark.parametrize("bump_a, fires", [(8e-6, True), (3e-6, False)])
def test_long_step_sees_a_transition_inside_it(bump_a, fires):
    """A step whose wire current rises above threshold and falls back below it by the end is
    caught on the dense output (long superconducting steps cannot skip a switch)."""

    st, ip, fp, kinv, ny, _ = _kernel_inputs(oscillator(), {})
    h = 2e-9
    slope = 4.0 * bump_a / h                   # I(θ) = I0 + bump·4θ(1 − θ): back to I0 at θ = 1
    kst = np.zeros((7, ny))
    for q, c in enumerate(list(_C) + [1.0]):
        kst[q, 0] = slope * (1.0 - 2.0 * c)
    y = np.zeros(ny)
    y[0] = 15e-6
    s = np.zeros(1, dtype=np.int64)
    thr = np.array([20e-6])
    theta = interior_event(h, y, kst, s, thr, ip, fp, np.empty(ny))
    assert (theta > 0.0) == fires
    if fires:
        assert 15e-6 + bump_a * 4 * theta * (1 - theta) >= 20e-6


@pytest.mark.parametrize("case", ["c3", "neuron"])
def test_long_default_steps_keep_switching_times(case):
    """The default maximum step (long superconducting steps) gives the switching times of a run
    held to 0.5 ns steps, to well within the solver's ps-level accuracy."""

    if case == "c3":
        circuit, drives = oscillator(nonlinear=True), {}
    else:
        circuit = neuron_like(nonlinear=True)
        drives = {"input": PiecewiseLinear.pulse(30e-6, delay_s=10e-9, width_s=2e-9, rise_s=0.2e-9)
                  + PiecewiseLinear.pulse(30e-6, delay_s=60e-9, width_s=2e-9, rise_s=0.2e-9)}
    grid = np.array([0.0, 100e-9])
    long = simulate(circuit, 100e-9, drives=drives, sample_times_s=grid)
    short = simulate(circuit, 100e-9, drives=drives, sample_times_s=grid, max_step_s=0.5e-9)
    assert DEFAULT_MAX_STEP_S > 0.5e-9
    assert len(long.events) == len(short.events) > 0
    assert [e.kind for e in long.events] == [e.kind for e in short.events]
    dt = np.array([a.time_s - b.time_s for a, b in zip(long.events, short.events)])
    assert np.max(np.abs(dt)) < 1e-12


@pytest.mark.parametrize("case", ["c3", "neuron"])
def test_node_voltages_only_are_the_full_runs_node_voltages(case):
    """What the emulated instruments ask for (node voltages alone) is the same run: the same node
    voltages, bit for bit, events and final state; only the other traces are left out."""

    if case == "c3":
        circuit, drives = oscillator(nonlinear=True), {}
    else:
        circuit = neuron_like(nonlinear=True)
        drives = {"input": PiecewiseLinear.pulse(30e-6, delay_s=10e-9, width_s=2e-9, rise_s=0.2e-9)}
    grid = np.linspace(0.0, 60e-9, 2401)
    full = simulate(circuit, 60e-9, drives=drives, sample_times_s=grid)
    nodes = simulate(circuit, 60e-9, drives=drives, sample_times_s=grid, node_voltages_only=True)
    assert full.node_voltage_v.keys() == nodes.node_voltage_v.keys()
    for node, volts in full.node_voltage_v.items():
        np.testing.assert_array_equal(nodes.node_voltage_v[node], volts)
    assert max(np.ptp(volts) for volts in full.node_voltage_v.values()) > 0
    assert not (nodes.branch_current_a or nodes.cumulative_dissipated_j or nodes.hotspot_resistance_ohm)
    assert [(e.element, e.kind, e.time_s) for e in nodes.events] == [(e.element, e.kind, e.time_s) for e in full.events]
    assert len(full.events) > 0 and nodes.final_state == full.final_state and nodes.solver_steps == full.solver_steps


@pytest.mark.parametrize("nonlinear", [False, True], ids=["c2", "c3"])
def test_a_relaxation_cycle_spends_few_steps_on_rejections_and_locating(nonlinear):
    """Where a collapsing hotspot nears the branch point of its growth law (ψi² = 1), a step is held
    to a fraction of the time left to it, crosses it within a small band of ψi² and is held to end
    just past the retrap; a transition is found on the step's dense output and the state there taken
    from it, with no real steps; the step after a transition, or after the crossing, grows as far as
    its error allows. 100 ns of C2 took 2,023 steps (726 rejected, 278 locating 44 transitions) before
    the step control near transitions, 1,393 with the confirming steps, 1,217 (330 rejected) with the
    transitions located on the dense output, 777 (44 rejected) with the limits near the branch
    point, 733 (44 rejected) with the first step after a retrap sized from the state, 462 (44
    rejected) and 23 exact stretches with the superconducting stretches in closed form (C2's
    inductance is linear); C3 1,643, 952, 848 (210 rejected), 548 (15 rejected) and 517 (15
    rejected). The rejections are counted per transition: the stretches took the steps they are
    a share of."""
    result = simulate(oscillator(nonlinear=nonlinear), 100e-9, sample_times_s=np.array([0.0, 100e-9]))
    steps = result.solver_steps
    assert len(result.events) >= 30
    assert steps["rejected"] <= len(result.events), steps
    assert steps["event_location"] == 0, steps
    assert sum(steps.values()) <= (520 if not nonlinear else 550), steps


def test_the_first_step_after_a_retrap_is_sized_from_the_state_not_climbed_to():
    """After a retrap into a superconducting chip the first step is what the L–R approach allows
    (half Hairer's starting-step estimate), not 0.1 ps growing 90x, then 5x a step: 100 ns of C2
    took 777 step attempts before (44 rejected), 733 after (44), and C3 548 and 517 (15); the
    neuron's 300 ns of relaxation under 30 µA DC, as in the campaign's settles, 7,813 (565) and
    7,109 (565). (C2 now crosses its superconducting stretches in closed form: C3 and the neuron,
    whose kinetic inductance is nonlinear, still step there.)"""
    c3 = simulate(oscillator(nonlinear=True), 100e-9, sample_times_s=np.array([0.0, 100e-9])).solver_steps
    make, stop_s, drives = BRANCH_POINT_CASES["neuron-30uA-dc"]
    neuron = simulate(make(), stop_s, drives=drives, sample_times_s=np.array([0.0, stop_s])).solver_steps
    for steps, most in ((c3, 530), (neuron, 7400)):
        assert steps["accepted"] + steps["rejected"] <= most, steps
        assert steps["rejected"] <= 0.1 * steps["accepted"], steps


@pytest.mark.parametrize("block", [1, 8])
def test_a_run_does_not_depend_on_how_its_threshold_draws_are_fetched(monkeypatch, block):
    """The kernel returns to fetch a wire's next threshold draws when its block is used up (one
    per retrap); the retrap, and the first step it chooses, happen after the fetch in one call.
    Fetched 1 or 8 at a time instead of 64, a one-wire run meets the same draws in the same order,
    so it has the same events at the same times, in the same steps. Before, the fetch came
    between the retrap and its step, which then started from 0.1 ps again."""
    circuit = oscillator(sigma_isw_a=0.3e-6)
    stop_s = 300e-9

    def run():
        return simulate(circuit, stop_s, sample_times_s=np.array([0.0, stop_s]), rng=np.random.default_rng(7))

    reference = run()
    monkeypatch.setattr(transient, "DRAW_BLOCK", block)
    result = run()
    assert sum(e.kind == "retrap" for e in reference.events) > 64
    assert [(e.kind, e.time_s) for e in result.events] == [(e.kind, e.time_s) for e in reference.events]
    assert result.solver_steps == reference.solver_steps


#: Circuits whose hotspots meet the growth law's branch point in other ways than C2's: a short wire
#: (its current turns back up through ψi² = 1 before the retrap), the current-retrap variant (no
#: collapse onto a voltage level), a larger δ, and the neuron driven into relaxation by 30 µA DC.
BRANCH_POINT_CASES = {
    "c2-20nH": (lambda: oscillator(inductance_h=20e-9), 50e-9, {}),
    "c2-current-retrap": (lambda: oscillator(retrap="current"), 100e-9, {}),
    "c3-delta-0.01": (lambda: oscillator(nonlinear=True, delta=0.01), 100e-9, {}),
    "neuron-30uA-dc": (lambda: neuron_like(True), 300e-9,
                       {"input": PiecewiseLinear(np.array([0.0, 1e-9]), np.array([0.0, 30e-6]))}),
}


@pytest.mark.parametrize("case", sorted(BRANCH_POINT_CASES))
def test_steps_near_the_branch_point_keep_every_switching_time(case):
    """The step limits near ψi² = 1 and the retrap leave every switching where a run at 1/1000 of
    the tolerances puts it (the same sequence, each time within 1e-5 of it, relative; measured:
    ≤ 4e-6), with few rejected steps: at most 1.5 a transition (measured: 1.5 for the short wire,
    1.0 for C2 with the current retrap and for the neuron, 0.5 for C3 with δ = 0.01), where the
    step controller alone rejected ~50 % of its steps in the neuron's relaxation and the short
    wire's cycles (~5 a transition). Per transition, not per step: the linear wires' stretches
    between transitions take no steps."""
    make, stop_s, drives = BRANCH_POINT_CASES[case]
    grid = np.array([0.0, stop_s])

    def run(scale: float):
        return simulate(make(), stop_s, drives=drives, sample_times_s=grid, **reference_settings(scale))

    result, reference = run(1.0), run(1e-3)
    assert [(e.element, e.kind) for e in result.events] == [(e.element, e.kind) for e in reference.events]
    assert len(result.events) >= 12
    relative = [abs(e.time_s - r.time_s) / r.time_s for e, r in zip(result.events, reference.events)]
    assert max(relative) <= 1e-5, max(relative)
    assert result.solver_steps["rejected"] <= 1.5 * len(result.events), result.solver_steps


@pytest.mark.parametrize("retrap", ["current", "voltage"])
def test_a_hotspot_collapsing_to_zero_and_staying_resistive_runs_on(retrap):
    """Near Tc (ψ < 1: I_sw below I_hs/√2) a wire under the current retrap collapses to R = 0 and
    stays resistive while |I| is above its retrap current. A step held to end the collapse exactly
    at R = 0 landed a hair above it and the next was held below the smallest step: "step size
    underflow", where the step controller alone retrapped at 0.356 ns. Both retraps run to the end
    and retrap there or before."""
    temperature_k = 10.2
    wire = NanowireParams(inductance_h=12.67e-9, retrap=retrap)
    ihs_a = hotspot_current_a(wire, temperature_k)
    assert switching_current_a(wire, temperature_k) < ihs_a / 2**0.5      # ψ < 1
    circuit = Circuit((Resistor("rsh", "d", "0", 35.1), Nanowire("w", "d", "0", wire),
                       CurrentSource("ib", "d", "0", 0.0)))
    start = CircuitState(resistive={"w": True}, hotspot_resistance_ohm={"w": 0.63},
                         branch_current_a={"w": 2.494 * ihs_a})
    result = simulate(circuit, 5e-9, temperature_k=temperature_k, initial=start, sample_times_s=np.array([0.0, 5e-9]))
    assert [e.kind for e in result.events] == ["retrap"]
    assert 0.3e-9 < result.events[0].time_s < 0.6e-9
