"""SMU readings: the static shortcut agrees with a full simulation, and hysteresis is physical."""

from __future__ import annotations

import numpy as np
import pytest

from sim_backend.clock import LabClock
from sim_backend.emulator import build_bench
from tests.conftest import EMULATED_STATION


def bench_with_bias(*, simulate_every_reading: bool):
    world = build_bench(EMULATED_STATION, seed=7, clock=LabClock(0)).world
    smu = world.panels["bias"]
    smu.source_function, smu.output_enabled = "current", True
    if simulate_every_reading:
        # A generator output that is on (at 0 V) means the input is not idle: no shortcut.
        channel = world.panels["pulser"].channels[1]
        channel.function, channel.offset_v, channel.output_enabled = "DC", 0.0, True
    return world, smu


def test_static_shortcut_matches_a_full_simulation_below_switching():
    fast, fast_smu = bench_with_bias(simulate_every_reading=False)
    full, full_smu = bench_with_bias(simulate_every_reading=True)
    for current_a in (10e-6, 20e-6, 25e-6, 15e-6):
        fast_smu.current_level_a = full_smu.current_level_a = current_a
        assert fast.bias_port_voltage_v("bias") == pytest.approx(full.bias_port_voltage_v("bias"), abs=0.2e-6)
    assert fast.chip.settled and full.chip.settled
    for name, current_a in full.chip.state.branch_current_a.items():
        assert fast.chip.state.branch_current_a[name] == pytest.approx(current_a, abs=5e-9), name


def test_sweeps_switch_and_retrap_with_hysteresis():
    world, smu = bench_with_bias(simulate_every_reading=False)
    up = np.arange(0.0, 44e-6, 1e-6)
    down = up[::-1]
    readings = {}
    for direction, levels in (("up", up), ("down", down)):
        volts = []
        for current_a in levels:
            smu.current_level_a = current_a
            volts.append(world.bias_port_voltage_v("bias") - current_a * 25.0)
        readings[direction] = np.array(volts)
    switched = up[np.argmax(readings["up"] > 5e-6)]
    retrapped = down[np.argmax(readings["down"] < 1e-6)]
    assert 30e-6 < switched < 44e-6                    # the bias port's switching current
    assert retrapped < switched                        # hysteresis: it stays resistive on the way down
    assert np.all(readings["up"][up < switched] < 1e-6)
