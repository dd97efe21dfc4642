"""Faults that act on the world: a latched nanowire, a fridge excursion, injected SCPI errors."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from sim_backend.bench.station import StationFileError
from sim_backend.clock import LabClock
from sim_backend.emulator import build_bench

ROOT = Path(__file__).resolve().parents[2]


def station_with_faults(tmp_path: Path, **faults_by_role: dict) -> Path:
    tree = yaml.safe_load((ROOT / "stations" / "emulated.yaml").read_text())
    tree["chip"] = str(ROOT / "stations" / "chips" / "default-neuron.yaml")
    for role_name, faults in faults_by_role.items():
        tree["instruments"][role_name]["emulator"]["faults"] = faults
    path = tmp_path / f"station-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def bias_on(world, current_a: float) -> None:
    smu = world.panels["bias"]
    smu.source_function, smu.output_enabled, smu.current_level_a = "current", True, current_a


def test_latched_wire_shows_resistance_until_the_bias_is_removed(tmp_path):
    bench = build_bench(station_with_faults(tmp_path), clock=LabClock(0))
    world = bench.world
    bias_on(world, 20e-6)
    line_v = 20e-6 * 25.0
    healthy_v = world.bias_port_voltage_v("bias")
    assert healthy_v == pytest.approx(line_v, abs=1e-6)          # superconducting: line drop only
    world.inject_latch("wc")
    latched_v = world.bias_port_voltage_v("bias")
    assert latched_v - line_v > 5e-6                              # the port now shows a voltage
    assert world.bias_port_voltage_v("bias") == pytest.approx(latched_v, rel=0.05)   # and keeps it
    world.panels["bias"].current_level_a = 0.0
    world.bias_port_voltage_v("bias")
    world.bias_port_voltage_v("bias")
    assert not world.chip.latched                                 # bias removed: recovered
    world.panels["bias"].current_level_a = 20e-6
    assert world.bias_port_voltage_v("bias") == pytest.approx(healthy_v, abs=1e-6)


def test_latch_scheduled_in_the_station_file_waits_for_the_bias(tmp_path):
    path = station_with_faults(tmp_path, bias={"latch_nanowire": {"element": "wc", "after_s": 100}})
    clock = LabClock(0)
    world = build_bench(path, clock=clock).world
    clock.advance(200)
    assert not world.chip.latched                                 # due, but no bias yet
    bias_on(world, 20e-6)
    world.bias_port_voltage_v("bias")
    assert world.chip.latched == {"wc"}


def test_fridge_excursion_heats_the_stage_above_tc_and_it_recovers(tmp_path):
    path = station_with_faults(
        tmp_path, cryostat={"fridge_excursion": {"after_s": 600, "duration_s": 300, "heat_w": 5.0}})
    clock = LabClock(0)
    world = build_bench(path, clock=clock).world
    readings = {}
    for t_s in (590, 880, 2500):
        clock.advance(t_s - clock.now_s())
        readings[t_s] = world.stage_temperature_k()
    assert readings[590] < 4.0
    assert readings[880] > 10.5                                   # above the wires' Tc
    assert readings[2500] == pytest.approx(readings[590], abs=0.05)


def test_scpi_errors_injected_every_nth_reply(tmp_path):
    bench = build_bench(station_with_faults(tmp_path, bias={"scpi_error_every": 3}))
    address = next(e.address for e in bench.instruments if e.role == "bias")
    plan, device = bench.faults_for(address), bench.device("bias")
    for _ in range(6):
        plan.before_reply(b"+0\n")
    codes = []
    for _ in range(3):
        device.write_bytes(b":SYSTem:ERRor?\n")
        codes.append(device.read_message().split(b",")[0])
    assert codes == [b"-200", b"-200", b"+0"]


@pytest.mark.parametrize("faults, problem", [
    ({"latch_nanowire": "wc"}, "latch_nanowire: expected"),
    ({"latch_nanowire": {"element": "wc", "after_s": -1}}, "latch_nanowire.after_s: must be a number >= 0"),
    ({"fridge_excursion": {"after_s": 1, "duration_s": 1}}, "fridge_excursion.heat_w"),
    ({"melt": True}, "unknown fault 'melt'"),
])
def test_malformed_fault_settings_name_the_key(tmp_path, faults, problem):
    with pytest.raises((StationFileError, ValueError), match=problem) as error:
        build_bench(station_with_faults(tmp_path, bias=faults))
    assert "instruments.bias.emulator.faults" in str(error.value)
