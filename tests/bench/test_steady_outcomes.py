"""Settles from a limit cycle: simulated OUTCOMES_KEPT times per change of drive, then drawn
from those, with fresh switching thresholds; settles from any other state always simulated."""

from __future__ import annotations

import math

from sim_backend.bench.steady_outcomes import OUTCOMES_KEPT
from tests.bench.test_world_dc_readings import bench_with_bias

RESISTIVE_A = (40e-6, 41e-6)     # both above the bias port's switching current: relaxation oscillation


def test_changes_between_resistive_levels_are_drawn_from_the_simulated_ones():
    world, smu = bench_with_bias(simulate_every_reading=False)
    settles = {level_a: [] for level_a in RESISTIVE_A}
    readings_v = {level_a: [] for level_a in RESISTIVE_A}
    for _ in range(3 * OUTCOMES_KEPT):
        for level_a in RESISTIVE_A:
            smu.current_level_a = level_a
            readings_v[level_a].append(world.bias_port_voltage_v("bias") - level_a * 25.0)
            settles[level_a].append(world.chip.last_result)
            assert world.chip.on_cycle_of() is not None          # still oscillating
    # 40 µA: once from the superconducting state, then OUTCOMES_KEPT distinct settles from 41 µA.
    assert len({id(r) for r in settles[40e-6]}) == OUTCOMES_KEPT + 1
    assert len({id(r) for r in settles[41e-6]}) == OUTCOMES_KEPT
    for level_a, volts in readings_v.items():
        assert min(volts) > 5e-6, level_a                        # every reading is resistive
        assert len(set(volts[OUTCOMES_KEPT:])) >= 2, level_a     # and the draws still vary


def test_a_drawn_outcome_carries_fresh_thresholds():
    world, smu = bench_with_bias(simulate_every_reading=False)
    for _ in range(OUTCOMES_KEPT + 1):
        for level_a in RESISTIVE_A:
            smu.current_level_a = level_a
            world.bias_port_voltage_v("bias")
    chip = world.chip
    kept = chip.last_result.final_state                         # a drawn outcome: the kept end state ...
    superconducting = [name for name, on in kept.resistive.items() if not on and name in kept.threshold_z]
    assert superconducting
    for name in superconducting:                                 # ... with each such wire's threshold drawn again
        assert chip.state.threshold_z[name] != kept.threshold_z[name]
        assert not math.isnan(chip.state.threshold_z[name])
    assert chip.state.branch_current_a == kept.branch_current_a


def test_a_retrapped_state_is_not_a_limit_cycle():
    """Superconducting again with flux left in the loop, the chip remembers its path: a settle
    from it is simulated however often the same change comes."""
    world, smu = bench_with_bias(simulate_every_reading=False)
    smu.current_level_a = 40e-6
    world.bias_port_voltage_v("bias")
    assert world.chip.on_cycle_of() is not None
    smu.current_level_a = 20e-6                                   # far below retrapping
    assert abs(world.bias_port_voltage_v("bias") - 20e-6 * 25.0) < 1e-6
    assert world.chip.on_cycle_of() is None
