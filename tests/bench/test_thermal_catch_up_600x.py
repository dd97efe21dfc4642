"""F-SIM-1: on a bench whose clock runs 600x, the emulated Lake Shore answers every command.

Before the fix a `set_setpoint_k` after setpoints 7.1, 1.8, 1.0 K (ramps 0.05-4.6 K/min, heater
on) took 16 s and the next never returned: catching the 10 Hz loop up cost more wall time than
it covered. Here the real driver runs that sequence twice against a fresh 600x bench of the
shipped station. No wall-time assertions: each test has a timeout, and after every command the
stage model has been brought up to at least the lab time at which the command was sent (by
integration, or at worst by a logged clock slip).
"""

from __future__ import annotations

import time
import uuid

import pytest

from drivers.lakeshore_336 import Lakeshore336
from contracts.envelope import Envelope
from sim_backend.bench.temperature_controller import CATCH_UP_WALL_BUDGET_S

#: The F-SIM-1 sequence, then a setpoint above 7.6 K (Theta_D/45, where the stage's Debye
#: integrals must be evaluated), the old path's most expensive regime (~80-200 us per step).
SEQUENCE = [(7.1, 0.05), (1.8, 4.6), (1.0, 2.0), (7.1, 4.6), (1.8, 0.05), (1.0, 4.6), (10.6, 7.1)]
ENVELOPE = {"temperature_min_k": 0.5, "temperature_max_k": 12.0, "setpoint_ramp_max_k_per_min": 10.0}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("heater_range", ["medium", "high"])
def test_setpoint_sequence_on_a_600x_bench_answers_every_command(bench, visalib, heater_range):
    world, panel = bench.world, bench.world.panels["cryostat"]
    assert world.clock.acceleration == 600
    assert panel.max_catch_up_wall_s == CATCH_UP_WALL_BUDGET_S      # a running clock: work is capped
    address = next(e.address for e in bench.instruments if e.role == "cryostat")
    driver = Lakeshore336(f"cryostat_{uuid.uuid4().hex[:6]}", address, visalib=visalib, sensor_input="A",
                          heater_output=1, heater_range=heater_range, envelope=Envelope("temperature_controller",
                                                                                        ENVELOPE))
    try:
        for setpoint_k, ramp in SEQUENCE + SEQUENCE[::-1]:
            sent_s = world.now_s()
            driver.set_setpoint_k(setpoint_k, ramp_k_per_min=ramp)
            assert panel.state.time_s >= sent_s
            heater = panel.outputs[1]
            assert heater.setpoint_k == pytest.approx(setpoint_k, abs=1e-4)
            assert heater.ramp_rate_k_per_min == pytest.approx(ramp, abs=1e-3) and heater.range_index > 0
            for _ in range(3):
                time.sleep(0.05)
                sent_s = world.now_s()
                reading_k = driver.read_temperature_k()
                assert panel.state.time_s >= sent_s
                assert 2.5 < reading_k < 20.0
        assert world.now_s() > 12 * 60.0                                # lab time ran: minutes of it
    finally:
        driver.close()


@pytest.mark.timeout(60)
def test_a_frozen_clock_keeps_every_catch_up_exact(tmp_path):
    """Tests that move lab time themselves (acceleration 0) never slip, however far they jump."""
    from sim_backend.clock import LabClock
    from sim_backend.emulator import build_bench

    from tests.bench.test_stage_start import station

    clock = LabClock(0)
    world = build_bench(station(tmp_path), clock=clock).world
    panel = world.panels["cryostat"]
    assert panel.max_catch_up_wall_s is None
    clock.advance(10 * 3600.0)
    world.stage_temperature_k()
    assert panel.state.time_s == 10 * 3600.0 and panel.slips == 0
