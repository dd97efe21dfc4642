"""A stretch at rest is crossed in one backward-Euler stride (sim_backend/physics/_kernel_advance.py,
`rest_stride`): nothing that happens there is lost, and nothing that is not at rest is strode over."""

from __future__ import annotations

import numpy as np
import pytest

from sim_backend.physics import circuit as cm
from sim_backend.physics.dc import dc_state
from sim_backend.physics.nanowire import NanowireParams
from sim_backend.physics.transient import simulate
from sim_backend.physics.waveform import PiecewiseLinear
from validation import emulator_circuits as ec

SOURCE_V, SERIES_OHM, SHUNT_OHM = 0.5, 100e3, 50.0


def biased_wire() -> cm.Circuit:
    """C2's wire and shunt fed 5 µA through 100 kΩ: below its switching current, a source that
    keeps delivering power into its series resistor while the wire rests."""
    wire = NanowireParams(inductance_h=70e-9, nonlinear_inductance=False)
    return cm.Circuit((
        cm.VoltageSource("vbias", "vin", "0", SOURCE_V),
        cm.Resistor("rbias", "vin", "d", SERIES_OHM),
        cm.Resistor("rsh", "d", "0", SHUNT_OHM),
        cm.Nanowire("w", "d", "0", wire),
    ))


def test_a_wire_at_rest_is_crossed_in_a_stride_with_its_energy_still_flowing():
    circuit = biased_wire()
    stop_s = 1e-6
    result = simulate(circuit, stop_s, sample_times_s=np.linspace(0.0, stop_s, 101),
                      initial=dc_state(circuit), rng=np.random.default_rng(1))
    current_a = SOURCE_V / SERIES_OHM
    assert result.solver_steps["accepted"] <= 5, result.solver_steps    # 1 µs at ≤ 5 ns a step: 200
    assert not result.events
    assert result.branch_current_a["w"] == pytest.approx(np.full(101, current_a), abs=1e-12)
    assert np.max(np.abs(result.node_voltage_v["d"])) < 1e-9
    # the source feeds the series resistor all along, the stride included
    assert result.energy.delivered_j["vbias"] == pytest.approx(SOURCE_V * current_a * stop_s, rel=1e-9)
    assert result.energy.dissipated_j["rbias"] == pytest.approx(current_a**2 * SERIES_OHM * stop_s, rel=1e-9)
    delivered = result.cumulative_delivered_j["vbias"]
    assert delivered == pytest.approx(SOURCE_V * current_a * result.time_s, rel=1e-9, abs=1e-30)


def test_a_decaying_transient_is_followed_before_the_stride_and_a_later_pulse_still_fires():
    """The bias steps up by 2 µA over 1 ns, then holds; at 600 ns a pulse of input current makes
    the neuron spike. The L/R decay after the step is integrated, not strode over (the currents
    at 2 ns are still moving, and agree with a run whose steps may not exceed 20 ps), the rest up
    to the pulse is one stride, and the spike comes at the same time as in the short-step run."""
    bias = PiecewiseLinear(np.array([0.0, 1e-9]), np.array([18e-6, 20e-6]))
    pulse = PiecewiseLinear.pulse(30e-6, delay_s=600e-9, width_s=2e-9, rise_s=20e-12)
    circuit = ec.neuron(bias_a=18e-6)
    initial = dc_state(circuit, source_values={"bias": 18e-6, "input": 0.0})
    grid_s = np.linspace(0.0, 700e-9, 7001)
    runs = {label: simulate(circuit, 700e-9, drives={"bias": bias, "input": pulse}, sample_times_s=grid_s,
                            initial=initial, rng=np.random.default_rng(3), max_step_s=max_step_s)
            for label, max_step_s in (("default", 5e-9), ("short", 20e-12))}
    default, short = runs["default"], runs["short"]
    quiet = simulate(circuit, 599e-9, drives={"bias": bias, "input": pulse}, initial=initial,
                     sample_times_s=np.array([0.0, 599e-9]), rng=np.random.default_rng(3))
    assert quiet.solver_steps["accepted"] <= 40, quiet.solver_steps   # step by step: ~250
    moving = np.abs(np.diff(default.branch_current_a["ls"][10:30]))
    assert np.max(moving) > 1e-9                            # still decaying at 1-3 ns
    before_pulse = grid_s < 600e-9
    for name in ("main", "control", "ls"):
        assert default.branch_current_a[name][before_pulse] == pytest.approx(
            short.branch_current_a[name][before_pulse], abs=2e-11), name
    first = [e.time_s for e in default.events if e.kind == "switch"]
    reference = [e.time_s for e in short.events if e.kind == "switch"]
    assert len(first) == len(reference) >= 1 and first[0] > 600e-9
    assert first[0] == pytest.approx(reference[0], rel=1e-4)
