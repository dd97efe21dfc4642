"""Lake Shore 372 personality on a mixing chamber: bytes in/out, stock QCoDeS driver in-process and over TCP.

The world here is a stand-in (lab clock frozen, moved with `advance`) holding the personality's
real front panel and stage model, so lab time is exact and the thermal results are physics.
"""

from __future__ import annotations

import copy
from contextlib import closing
import math
import uuid

import pytest

from sim_backend.physics import thermal
from sim_backend.scpi.models.lakeshore_372 import Lakeshore372, ruox_kelvin, ruox_ohm
from tests.personalities.personality_helpers import ClockedWorld, one_instrument_bench, over_tcp
from tests.personalities.personality_helpers import ask_crlf as ask, value_crlf as value

ADDRESS = "TCPIP0::10.0.0.24::7777::SOCKET"


def make(**settings):
    settings = {"stage": "dilution_mxc", **settings}
    world = ClockedWorld()
    world.panels["fridge"] = Lakeshore372.create_panel("lakeshore_372", settings)
    return Lakeshore372(world, "fridge", "lakeshore_372", settings), world


def test_idn_base_temperature_and_resistance():
    device, _ = make()
    assert ask(device, "*IDN?") == b"LSCI,MODEL372,LSA2B3C,1.4\r\n"
    base_k = thermal.equilibrium_temperature_k(thermal.STAGE_MXC, 0.0)
    assert float(value(device, "RDGK? 6")) == pytest.approx(base_k, abs=1e-4)
    assert float(value(device, "KRDG? A")) == pytest.approx(base_k, abs=1e-4)
    ohms = float(value(device, "RDGR? 6"))
    assert ohms == pytest.approx(ruox_ohm(base_k), rel=0.01)
    assert ruox_kelvin(ohms) == pytest.approx(base_k, rel=0.01)


def test_six_field_groups_round_trip():
    device, _ = make()
    ask(device, "OUTMODE 0, 5, 6, 0, 0, 1, 20")
    assert value(device, "OUTMODE? 0") == "5,6,0,0,1,20"
    ask(device, "INSET 6,1,5,3,0,1")
    assert value(device, "INSET? 6") == "1,5,3,0,1"
    ask(device, "INTYPE 6,1,7,1,15,0,2")
    assert value(device, "INTYPE? 6") == "1,7,1,15,0,2"
    ask(device, "SCAN 6,0")
    assert value(device, "SCAN?") == "06,0"
    assert int(value(device, "*ESR?")) & 0x30 == 0


@pytest.mark.parametrize(("bad", "bit"), [
    ("RANGE 0,9", 0x10), ("RANGE 1,2", 0x10), ("OUTMODE 0,4,6,0,0,0,10", 0x10),
    ("RDGK? 17", 0x10), ("PID 0,10,20", 0x20), ("BOGUS?", 0x20), ("INTYPE 6,0,13,0,15,0,1", 0x10),
])
def test_bad_commands_set_esr_bits_and_change_nothing(bad, bit):
    device, world = make()
    ask(device, "*ESR?")
    before = copy.deepcopy((device.outputs, device.htrset, world.panels["fridge"].outputs))
    assert ask(device, bad) is None
    assert int(value(device, "*ESR?")) == bit
    assert (device.outputs, device.htrset, world.panels["fridge"].outputs) == before


def test_sample_heater_ranges_are_current_squared_times_resistance():
    device, world = make()
    powers = world.panels["fridge"].range_powers_w
    assert powers[8] == pytest.approx(1.0) and powers[4] == pytest.approx(1e-4)  # 100 mA, 1 mA into 100 Ω
    ask(device, "HTRSET 0,120,0,0,2")
    assert world.panels["fridge"].range_powers_w[8] == pytest.approx(1.2)


def test_pid_integral_time_in_seconds():
    device, world = make()
    ask(device, "PID 0,30,50,4")
    heater = world.panels["fridge"].outputs[0]
    assert (heater.p, heater.i, heater.d) == (30.0, pytest.approx(1000 / 50), 4.0)


def test_setpoint_in_ohms_when_the_input_reads_ohms():
    device, world = make()
    ask(device, "OUTMODE 0,5,6,0,0,0,10;INTYPE 6,0,2,1,15,0,2")
    ask(device, f"SETP 0,{ruox_ohm(0.05):.3f}")
    assert world.panels["fridge"].outputs[0].setpoint_k == pytest.approx(0.05, rel=1e-3)


@pytest.fixture
def driver_bench():
    device, world = make()
    with one_instrument_bench(device, "fridge", "lakeshore_372", ADDRESS) as (bench, path):
        yield device, world, bench, path


def _state(device, world):
    panel = world.panels["fridge"]
    return copy.deepcopy(([vars(i) for i in device.inputs.values()], device.outputs, device.htrset,
                          device.scan, panel.outputs, panel.range_powers_w))


def _regulate_with_driver(ls, device, world):
    target_k = 0.05
    assert ls.ch06.temperature() < 0.02
    heater = ls.sample_heater
    heater.output_range("1mA")                      # 100 µW full scale
    heater.setpoint(target_k)
    heater.input_channel(6)
    heater.mode("closed_loop")
    heater.P(10)
    heater.I(40)
    world.clock.advance(4 * 3600.0)
    assert ls.ch06.temperature() == pytest.approx(target_k, abs=5e-4)
    stage = thermal.STAGE_MXC
    needed_w = stage.cooler.power_w(target_k) - stage.parasitic_w
    current_pct = heater.output()                   # % of the range's current
    assert (current_pct / 100) ** 2 * 1e-4 == pytest.approx(needed_w, rel=0.05)
    assert not math.isnan(ls.ch06.sensor_raw())
    before = _state(device, world)
    ls.ask("*ESR?")
    ls.snapshot(update=True)
    assert _state(device, world) == before
    assert int(ls.ask("*ESR?")) == 0


def test_stock_driver_in_process(driver_bench):
    from qcodes.instrument_drivers.Lakeshore import LakeshoreModel372

    device, world, _, path = driver_bench
    with closing(LakeshoreModel372(f"ls372_{uuid.uuid4().hex[:8]}", ADDRESS, visalib=f"{path}@nwlab")) as ls:
        _regulate_with_driver(ls, device, world)


@pytest.mark.timeout(30)
def test_stock_driver_over_tcp(driver_bench):
    from qcodes.instrument_drivers.Lakeshore import LakeshoreModel372

    device, world, bench, _ = driver_bench
    with (over_tcp(bench) as address,
          closing(LakeshoreModel372(f"ls372_{uuid.uuid4().hex[:8]}", address, visalib="@py")) as ls):
        _regulate_with_driver(ls, device, world)
