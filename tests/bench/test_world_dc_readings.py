"""SMU readings: the static shortcut agrees with a full simulation, and hysteresis is physical."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from sim_backend.bench.chip import port_node
from sim_backend.bench.world import DC_READING_S, DC_SETTLE_S, RUN_OUT_STRETCH_S
from sim_backend.clock import LabClock
from sim_backend.emulator import build_bench
from tests.conftest import EMULATED_STATION
from tests.personalities.personality_helpers import ask


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


def test_sweeps_switch_and_retrap_where_the_port_oscillation_starts_and_stops():
    """Up in 1 µA steps the port turns resistive at its switching current and stays so above; down,
    it reads 0 V again within a step of where it switched: the shunted port's relaxation
    oscillation stops where it starts (no hysteresis wider than a step on the default neuron)."""
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
    assert switched - 1e-6 <= retrapped < switched     # resistive on the way down to within a step
    assert np.all(readings["up"][up < switched] < 1e-6) and np.all(readings["up"][up >= switched] > 5e-6)
    assert np.all(readings["down"][down <= retrapped] < 1e-6)


def dc_input_world(input_a: float):
    """The bench at the default bias with its pulse input held at a DC current `input_a`."""
    world, smu = bench_with_bias(simulate_every_reading=False)
    smu.current_level_a = 24e-6
    world.bias_port_voltage_v("bias")                    # settled at the bias, input off
    wire = world.station.pulse_inputs[0]
    channel = world.panels[wire.instrument].channels[wire.channel]
    channel.function, channel.offset_v, channel.output_enabled = "DC", input_a / wire.amperes_per_volt, True
    return world


def main_wire_spikes(world, window_s: float = 100e-9) -> int:
    result = world.chip.run(start_s=0.0, stop_s=window_s, bias_a=world.bias_currents_a(),
                            inputs_a=world.input_currents_a(world.now_s(), 0.0, window_s),
                            sample_times_s=np.array([window_s]), temperature_k=world.stage_temperature_k(),
                            rng=world.rng)
    return len(result.switch_times_s("wm"))


@pytest.mark.parametrize("input_a, keeps_firing", [(11e-6, False), (14e-6, True)])
def test_a_new_dc_input_level_is_seen_settled_as_a_bench_sees_it(input_a, keeps_firing):
    """Switching a DC input on near the f–I onset fires a burst that stops (each spike leaves
    current in the loop). A bench arms its scope milliseconds later: what the emulated bench
    acquires after a level change is the state after that burst, not the burst."""
    first = dc_input_world(input_a)
    assert main_wire_spikes(first) >= 2                  # the burst, straight after the step
    settled = dc_input_world(input_a)
    settled.chip_at_present_bias()                      # what every acquisition and reading does first
    assert (main_wire_spikes(settled) >= 2) == keeps_firing
    assert settled.chip.settled_dc_inputs == settled.dc_inputs()
    settled.chip_at_present_bias()                      # the same level again: nothing more to settle
    assert (main_wire_spikes(settled) >= 2) == keeps_firing


@pytest.mark.parametrize("input_a, triggers", [(11e-6, False), (14e-6, True)])
def test_a_scope_armed_after_a_dc_level_change_triggers_only_on_steady_firing(tmp_path, input_a, triggers):
    """Through the scope's SCPI, as a procedure acquires: the level is set, then the scope is armed
    and waits for a spike on node m. Below the steady-firing onset (12.6 µA) the burst that the
    level change fires is over long before a bench could arm, so nothing triggers."""
    station = yaml.safe_load(EMULATED_STATION.read_text())
    station["chip"] = str((EMULATED_STATION.parent / station["chip"]).resolve())
    station["clock"]["acceleration"] = 0               # lab time moves only when the test says so
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(station))
    bench = build_bench(path, seed=3)
    world, scope = bench.world, bench.device("scope")
    bias = world.panels["bias"]
    bias.source_function, bias.current_level_a, bias.output_enabled = "current", 24e-6, True
    world.bias_port_voltage_v("bias")                   # biased, input off: the state the level change starts from
    wire = world.station.pulse_inputs[0]
    channel = world.panels[wire.instrument].channels[wire.channel]
    channel.function, channel.offset_v, channel.output_enabled = "DC", input_a / wire.amperes_per_volt, True
    for text in (":SYST:HEAD OFF", ":TIM:RANG 100E-9", ":TIM:REF LEFT", ":TIM:POS -1E-9", ":ACQ:SRAT 10E9",
                 ":CHAN1:RANG 0.4", ":CHAN1:OFFS 0.1", ":TRIG:EDGE:SOUR CHAN1", ":TRIG:LEV CHAN1,0.05"):
        ask(scope, text)
    reply = ask(scope, ":DIGitize;*OPC?")          # None: still waiting for its trigger
    if reply is None:
        last_window = world.chip.last_result
        world.clock.advance(1e-3)
        reply = scope.read_message()
        if not triggers:       # a chip static under DC levels cannot trigger: no window simulated again
            assert world.chip.settled and world.chip.last_result is last_window
    assert (reply in ("1", b"1\n")) == triggers, reply


def test_a_reading_after_a_bias_change_is_the_settles_last_stretch():
    """A bias change is settled for DC_SETTLE_S, and on while still switching; the next SMU reading
    is the mean port voltage over the settle's last DC_READING_S (no stretch simulated of its
    own), the one after it simulates a stretch of its own. The first settle into a drive that
    holds a limit cycle runs out to CYCLE_CONFIRM_S; once that drive, or a gentler one of the same
    port, is known to hold one, DC_SETTLE_S."""
    world, smu = bench_with_bias(simulate_every_reading=False)
    smu.current_level_a = 40e-6                          # above the port's switching current
    chip = world.chip_at_present_bias()
    settle = chip.last_result
    assert settle.time_s[0] == pytest.approx(RUN_OUT_STRETCH_S - DC_READING_S)
    assert settle.time_s[-1] == pytest.approx(RUN_OUT_STRETCH_S) and settle.events
    for current_a in (20e-6, 40e-6):                     # away (retrapped) and back: the cycle is known
        smu.current_level_a = current_a
        chip = world.chip_at_present_bias()
    settle = chip.last_result
    assert settle.time_s[0] == pytest.approx(DC_SETTLE_S - DC_READING_S) and settle.time_s[-1] == pytest.approx(DC_SETTLE_S)
    port_v = settle.node_voltage_v[port_node(chip.definition, "bias")]
    first_v = world.bias_port_voltage_v("bias")
    assert chip.last_result is settle                    # nothing simulated for the first reading
    assert first_v == pytest.approx(40e-6 * 25.0 + float(np.mean(port_v)), rel=1e-12)
    assert first_v - 40e-6 * 25.0 > 5e-6                 # and it reads the resistive port
    second_v = world.bias_port_voltage_v("bias")
    assert chip.last_result is not settle                # the second reading simulated its stretch
    assert second_v - 40e-6 * 25.0 > 5e-6
    for current_a in (20e-6, 42e-6):                     # a harder drive of the port: known to cycle too
        smu.current_level_a = current_a
        chip = world.chip_at_present_bias()
    assert chip.last_result.time_s[-1] == pytest.approx(DC_SETTLE_S) and chip.last_result.events
    for current_a in (20e-6, 38e-6):                     # a gentler one is followed to its end
        smu.current_level_a = current_a
        chip = world.chip_at_present_bias()
    assert chip.last_result.time_s[-1] == pytest.approx(RUN_OUT_STRETCH_S)


def test_every_climb_past_a_survived_level_is_a_new_switching_trial():
    """Climbs from well below retrapping to near the port's switching current switch now and
    then, climb after climb: a climb the wire survived does not fix its threshold for the next
    one (a wire whose current falls draws a new threshold, given that it has not switched). With
    the threshold kept, the first climb survived was followed by no switching at all."""
    world, smu = bench_with_bias(simulate_every_reading=False)
    near_switching_a, reset_a = 36.6e-6, 30e-6
    switched = []
    for _ in range(40):
        smu.current_level_a = reset_a
        assert world.bias_port_voltage_v("bias") - reset_a * 25.0 < 1e-6       # superconducting again
        smu.current_level_a = near_switching_a
        switched.append(world.bias_port_voltage_v("bias") - near_switching_a * 25.0 > 5e-6)
    survived_then_switched = sum(1 for before, now in zip(switched, switched[1:]) if not before and now)
    assert 4 <= sum(switched) <= 36, switched
    assert survived_then_switched >= 2, switched


def test_a_settle_that_retrapped_and_came_to_rest_is_a_static_state():
    """Down from the resistive port to far below retrapping: the settle switches and retraps,
    then the currents come to rest with flux left in the loop. The next bias change that
    switches nothing is then applied statically, and agrees with simulating it."""
    world, smu = bench_with_bias(simulate_every_reading=False)
    smu.current_level_a = 40e-6
    world.bias_port_voltage_v("bias")
    smu.current_level_a = 20e-6
    world.bias_port_voltage_v("bias")
    chip = world.chip
    assert chip.last_result.events and chip.settled       # it switched on the way, and is at rest
    before = chip.snapshot()
    temperature_k = world.stage_temperature_k()
    assert chip.static_bias_change({"bias": 22e-6}, temperature_k=temperature_k, rng=world.rng)
    static = dict(chip.state.branch_current_a)
    chip.restore(before)
    chip.run(start_s=0.0, stop_s=DC_SETTLE_S, bias_a={"bias": 22e-6}, inputs_a={},
             sample_times_s=np.array([DC_SETTLE_S]), temperature_k=temperature_k, rng=world.rng, bias_ramp_s=50e-9)
    assert not chip.last_result.events
    for name, current_a in chip.state.branch_current_a.items():
        assert static[name] == pytest.approx(current_a, abs=5e-9), name


def test_a_burst_that_moves_trapped_flux_out_reads_as_the_rest_it_ends_in():
    """From 30 µA with flux left by the resistive port, steps of 1.55 µA up to 34.65 µA (below
    the port's switching current) make the wire carrying the flux switch, and the two wires then
    switch by turns for a few hundred ns while the flux leaves the loop. The end of a 150 ns
    settle is often still in that burst; what the source meter reads, long after, is the rest it
    ends in: 0 V."""
    world, smu = bench_with_bias(simulate_every_reading=False)
    temperature_k = world.stage_temperature_k()
    readings_v, still_switching = [], 0
    for _ in range(30):
        for current_a in (40e-6, 30e-6):                 # resistive, then back down: flux left
            smu.current_level_a = current_a
            world.bias_port_voltage_v("bias")
        for current_a in (31.55e-6, 33.1e-6, 34.65e-6):
            before = world.chip.snapshot()
            smu.current_level_a = current_a
            readings_v.append(world.bias_port_voltage_v("bias") - current_a * 25.0)
            # The same step settled for DC_SETTLE_S alone, from the same state (the comparison).
            after = world.chip.snapshot()
            world.chip.restore(before)
            if not world.chip.static_bias_change({"bias": current_a}, temperature_k=temperature_k, rng=world.rng):
                result = world.chip.run(start_s=0.0, stop_s=DC_SETTLE_S, bias_a={"bias": current_a}, inputs_a={},
                                        sample_times_s=np.array([DC_SETTLE_S]), temperature_k=temperature_k,
                                        rng=world.rng, bias_ramp_s=50e-9)
                still_switching += any(e.time_s >= DC_SETTLE_S - DC_READING_S for e in result.events)
            world.chip.restore(after)
    assert still_switching >= 5                          # the bursts outlast a 150 ns settle
    assert max(abs(v) for v in readings_v) < 1e-6, readings_v
