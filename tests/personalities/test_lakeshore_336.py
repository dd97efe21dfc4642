"""Lake Shore 336 personality: bytes in/out, then the stock QCoDeS driver in-process and over TCP.

The world here is a stand-in (lab clock frozen, moved with `advance`) holding the personality's
real front panel and stage model, so lab time is exact and the thermal results are physics.
"""

from __future__ import annotations

import contextlib
import copy
from contextlib import closing
import uuid

import pytest

from sim_backend.physics import thermal
from sim_backend.scpi.models.lakeshore_336 import Lakeshore336
from tests.personalities.personality_helpers import ClockedWorld, one_instrument_bench, over_tcp
from tests.personalities.personality_helpers import ask_crlf as ask, value_crlf as value

ADDRESS = "TCPIP0::10.0.0.20::7777::SOCKET"


def make(**settings):
    settings = {"stage": "4k_probe_station", "initial_temperature_k": 3.0, **settings}
    world = ClockedWorld()
    world.panels["cryostat"] = Lakeshore336.create_panel("lakeshore_336", settings)
    return Lakeshore336(world, "cryostat", "lakeshore_336", settings), world


def test_idn_and_crlf_replies():
    device, _ = make()
    assert ask(device, "*IDN?") == b"LSCI,MODEL336,LSA1A2B/#######,2.9\r\n"
    assert float(value(device, "KRDG? A")) == pytest.approx(3.0, abs=0.01)
    assert len(value(device, "KRDG? 0").split(",")) == 4


def test_measured_sequence_bytes_reach_the_panel():
    device, world = make()
    heater = world.panels["cryostat"].outputs[1]
    for text in ("RANGE 1, 1", "SETP 1, 4.5", "OUTMODE 1, 1, 1, 0", "PID 1,50,20,0"):
        assert ask(device, text) is None
    assert value(device, "OUTMODE? 1") == "1,1,0"
    assert [float(x) for x in value(device, "PID? 1").split(",")] == [50.0, 20.0, 0.0]
    assert (heater.mode, heater.range_index, heater.setpoint_k) == ("closed_loop", 1, 4.5)
    assert value(device, "SETP? 1") == "+4.5000"
    assert int(value(device, "*ESR?")) & 0x30 == 0


@pytest.mark.parametrize(("bad", "bit"), [
    ("FOO 1", 0x20),              # unknown header: command error
    ("RANGE 1,7", 0x10),          # out of range: execution error
    ("RANGE 3,2", 0x10),          # analog outputs are off/on only
    ("OUTMODE 1,4,1,0", 0x10),    # monitor out exists on outputs 3-4 only
    ("SETP 1", 0x20),             # missing parameter
    ("KRDG? E", 0x10),            # no input E
    ("HTRSET 2,1,4,0,1", 0x10),   # 2 A is output 1 only
    ("SYST:ERR?", 0x20),          # no SCPI error queue on a Lake Shore
    ("MDAT?", 0x20),              # min/max data of which input?
    ("MDAT? E", 0x10),            # no input E
    ("MDAT? 0", 0x10),            # one input per query (unlike KRDG? 0)
    ("MDAT A", 0x20),             # a query only
    ("MNMXRST 1", 0x20),          # resets every input, takes no parameter
    ("MNMXRST?", 0x20),           # a command only
])
def test_bad_commands_set_esr_bits_and_change_nothing(bad, bit):
    device, world = make()
    ask(device, "*ESR?")  # clears power-on
    before = copy.deepcopy((device.outputs, device.htrset, world.panels["cryostat"].outputs))
    assert ask(device, bad) is None
    assert int(value(device, "*ESR?")) == bit
    assert (device.outputs, device.htrset, world.panels["cryostat"].outputs) == before


def test_rst_and_cls():
    device, world = make()
    ask(device, "RANGE 1,3;OUTMODE 1,3,1,0;MOUT 1,40")
    assert world.panels["cryostat"].outputs[1].range_index == 3
    ask(device, "FOO")
    ask(device, "*RST")
    assert value(device, "RANGE? 1") == "0"
    assert world.panels["cryostat"].outputs[1].mode == "off"
    ask(device, "*CLS")
    assert value(device, "*ESR?") == "0"


def test_reading_status_is_a_three_digit_bit_weighting():
    device, _ = make()
    assert [value(device, f"RDGST? {letter}") for letter in "ABCD"] == ["000"] * 4
    ask(device, "INTYPE B,0,0,0,0,1")                   # disabled: invalid reading
    ask(device, "INTYPE C,2,0,0,0,1;INCRV C,6")         # PT-100 curve: 30 K to 800 K
    assert (value(device, "RDGST? B"), value(device, "RDGST? C")) == ("001", "016")


def test_temperature_limit_switches_every_output_off_when_exceeded():
    device, world = make()
    ask(device, "TLIMIT B,3.5;OUTMODE 1,3,1,0;RANGE 1,3;MOUT 1,100;RANGE 2,1;RANGE 3,1")
    assert value(device, "TLIMIT? B") == "+3.5000"
    world.clock.advance(60.0)                            # 100 W open loop: past 3.5 K within a minute
    assert [value(device, f"RANGE? {n}") for n in (1, 2, 3)] == ["0", "0", "0"]
    assert world.panels["cryostat"].outputs[1].range_index == 0
    ask(device, "TLIMIT B,0;RANGE 1,1")                  # zero turns the limit off
    world.clock.advance(60.0)
    assert value(device, "RANGE? 1") == "1"


def test_output_2_keeps_the_manuals_settings_and_its_power_up_heater_setup_can_be_sent_back():
    device, world = make()
    setup = value(device, "HTRSET? 2")
    assert setup == "1,2,+0.000,1"                       # 25 Ω, 1 A, current
    ask(device, "*ESR?")
    ask(device, f"HTRSET 2,{setup}")
    for text in ("OUTMODE 2,1,2,0", "RANGE 2,2", "PID 2,30,15,5", "MOUT 2,12.5", "SETP 2,6.25"):
        ask(device, text)
    assert int(value(device, "*ESR?")) == 0
    assert [value(device, q) for q in ("OUTMODE? 2", "RANGE? 2", "PID? 2", "MOUT? 2", "SETP? 2")] == \
        ["1,2,0", "2", "+0030.0,+0015.0,+005.0", "+12.50", "+6.2500"]
    assert world.panels["cryostat"].outputs[1].range_index == 0     # output 2 heats nothing modelled


def test_pid_units_follow_the_manual():
    device, world = make()
    ask(device, "PID 1,40,25,100")  # D 100 % of a quarter of the 40 s integral time
    heater = world.panels["cryostat"].outputs[1]
    assert (heater.p, heater.i) == (40.0, 25.0)
    assert heater.d == pytest.approx(1.0 * 1000 / 25 / 4)


def test_heater_setup_sets_range_powers():
    device, world = make()
    assert world.panels["cryostat"].range_powers_w[3] == pytest.approx(100.0)  # 2 A into 25 Ω
    ask(device, "HTRSET 1,2,2,0,2")  # 50 Ω, 1 A, show power
    assert value(device, "HTRSET? 1") == "2,2,+0.000,2"
    assert world.panels["cryostat"].range_powers_w[1:] == pytest.approx((0.5, 5.0, 50.0))


def test_open_loop_heater_percent_of_current_and_power():
    device, world = make()
    ask(device, "OUTMODE 1,3,1,0;RANGE 1,1;MOUT 1,50")
    world.clock.advance(5.0)
    assert float(value(device, "HTR? 1")) == pytest.approx(50.0)          # % of current
    assert world.panels["cryostat"].heater_power_w() == pytest.approx(0.25)  # (0.5)² · 1 W
    ask(device, "HTRSET 1,1,4,0,2")                                        # display power
    assert float(value(device, "HTR? 1")) == pytest.approx(25.0)


def test_setpoint_ramp_status():
    device, world = make()
    ask(device, "RANGE 1,2;OUTMODE 1,1,1,0;RAMP 1,1,1.0;SETP 1,5.0")
    world.clock.advance(60.0)
    assert value(device, "RAMPST? 1") == "1"
    world.clock.advance(300.0)
    assert value(device, "RAMPST? 1") == "0"


def test_cooldown_from_room_temperature_takes_hours():
    device, world = make(initial_temperature_k=300.0)
    hours = 0.0
    while float(value(device, "KRDG? A")) > 4.5:
        world.clock.advance(600.0)
        hours += 600.0 / 3600.0
        assert hours < 12
    assert 2.0 < hours < 6.0
    world.clock.advance(4 * 3600.0)
    base_k = thermal.equilibrium_temperature_k(thermal.STAGE_4K, 0.0)
    assert float(value(device, "KRDG? A")) == pytest.approx(base_k, abs=0.01)


@pytest.mark.parametrize("start", [{}, {"initial_temperature_k": "base"}])
def test_the_stage_starts_and_stays_at_its_base_by_default(start):
    settings = {"stage": "4k_probe_station", **start}
    world = ClockedWorld()
    world.panels["cryostat"] = Lakeshore336.create_panel("lakeshore_336", settings)
    device = Lakeshore336(world, "cryostat", "lakeshore_336", settings)
    base_k = thermal.equilibrium_temperature_k(thermal.STAGE_4K, 0.0)
    assert world.panels["cryostat"].state.temperature_k == base_k
    world.clock.advance(3600.0)                        # heater off: nothing to drift towards
    assert float(value(device, "KRDG? A")) == pytest.approx(base_k, abs=0.01)
    assert world.panels["cryostat"].state.temperature_k == pytest.approx(base_k, abs=1e-9)


@pytest.mark.parametrize("bad", ["cold", -4.0, 0.0, None, False])
def test_a_bad_initial_temperature_names_the_setting(bad):
    with pytest.raises(ValueError, match="initial_temperature_k: expected a temperature in kelvin > 0 or 'base'"):
        make(initial_temperature_k=bad)


@pytest.fixture
def driver_bench():
    device, world = make()
    with one_instrument_bench(device, "cryostat", "lakeshore_336", ADDRESS) as (bench, path):
        yield device, world, bench, path


def _state(device, world):
    panel = world.panels["cryostat"]
    return copy.deepcopy(([vars(i) for i in device.inputs.values()], device.outputs,
                          device.htrset, panel.outputs, panel.range_powers_w))


def _settle_with_driver(ls, device, world):
    sent: list[str] = []
    original = device.write_bytes
    device.write_bytes = lambda data: (sent.append(data.decode().strip()), original(data))[1]
    ls.A.temperature()
    ls.output_1.output_range("low")
    ls.output_1.setpoint(4.5)
    ls.output_1.mode("closed_loop")
    ls.output_1.P(50)
    ls.output_1.output()
    device.write_bytes = original
    assert sent[:6] == ["KRDG? A", "RANGE 1, 1", "SETP 1, 4.5", "OUTMODE? 1", "OUTMODE 1, 1, 1, 0", "PID? 1"]
    assert sent[6].startswith("PID 1,50,") and sent[7] == "HTR? 1"
    world.clock.advance(3600.0)
    assert ls.A.temperature() == pytest.approx(4.5, abs=0.01)
    current_pct = ls.output_1.output()
    stage = thermal.STAGE_4K
    needed_w = stage.cooler.power_w(4.5) - stage.parasitic_w
    assert (current_pct / 100) ** 2 * 1.0 == pytest.approx(needed_w, rel=0.03)  # Low = 1 W
    before = _state(device, world)
    ls.ask("*ESR?")
    ls.snapshot(update=True)
    assert _state(device, world) == before
    assert int(ls.ask("*ESR?")) == 0  # every query the driver sent was valid


def test_stock_driver_in_process(driver_bench):
    from qcodes.instrument_drivers.Lakeshore import LakeshoreModel336

    device, world, _, path = driver_bench
    with closing(LakeshoreModel336(f"ls336_{uuid.uuid4().hex[:8]}", ADDRESS, visalib=f"{path}@nwlab")) as ls:
        _settle_with_driver(ls, device, world)


@pytest.mark.timeout(30)
def test_stock_driver_over_tcp(driver_bench):
    from qcodes.instrument_drivers.Lakeshore import LakeshoreModel336

    device, world, bench, _ = driver_bench
    with (over_tcp(bench) as address,
          closing(LakeshoreModel336(f"ls336_{uuid.uuid4().hex[:8]}", address, visalib="@py")) as ls):
        _settle_with_driver(ls, device, world)


# --- min/max capture: MNMXRST, MDAT? (manual chapter 6) ---------------------------------------------

def _extremes(device, letter="A") -> tuple[float, float]:
    low, high = value(device, f"MDAT? {letter}").split(",")
    return float(low), float(high)


def test_min_max_capture_sees_an_excursion_between_two_queries():
    """Heater off: the stage drifts; 2 W for 300 s take it to ~5.93 K and it is back long before
    the next query, which finds the highest temperature all the same."""
    device, world = make()
    panel = world.panels["cryostat"]
    assert ask(device, "MNMXRST") is None
    start_k = panel.state.temperature_k
    assert value(device, "MDAT? A") == f"{start_k:+.4f},{start_k:+.4f}"        # from the present reading
    panel.excursions.append((world.now_s() + 100.0, world.now_s() + 400.0, 2.0))
    world.clock.advance(1800.0)
    assert float(value(device, "KRDG? A")) < 3.3                              # back: a reading sees nothing
    low_k, high_k = _extremes(device)
    assert high_k == pytest.approx(thermal.equilibrium_temperature_k(thermal.STAGE_4K, 2.0), abs=1e-4)
    assert low_k == pytest.approx(min(start_k, panel.state.temperature_k), abs=1e-4)
    assert [_extremes(device, letter)[1] for letter in "BCD"] == [high_k] * 3   # every input captures
    ask(device, "MNMXRST")                                                     # all inputs start again
    assert all(_extremes(device, letter)[1] < 3.3 for letter in "ABCD")
    assert int(value(device, "*ESR?")) & 0x30 == 0


def test_min_max_capture_follows_the_regulating_loop_interval_by_interval():
    """With the loop on, the capture has the lowest and highest temperature of every control
    interval of the compiled catch-up: those of the Python reference path, which steps one
    interval per call."""
    device, world = make()
    ask(device, "OUTMODE 1,1,1,0;RANGE 1,2;SETP 1,4.2")
    world.clock.advance(3600.0)
    ask(device, "MNMXRST")
    panel = world.panels["cryostat"]
    panel.excursions.append((world.now_s() + 60.0, world.now_s() + 90.0, 2.0))
    reference = copy.deepcopy(panel)
    world.clock.advance(600.0)
    low_k, high_k = _extremes(device)
    reference.advance_to_reference(world.now_s())
    assert (low_k, high_k) == pytest.approx(reference.extremes_k("A"), abs=1e-4)
    now_k = panel.state.temperature_k
    assert high_k > now_k + 0.1 and low_k < 4.2 < high_k                      # overshoot and undershoot, gone


def test_min_max_data_come_in_the_inputs_preferred_units():
    device, world = make()
    ask(device, "MNMXRST")
    world.panels["cryostat"].excursions.append((world.now_s() + 10.0, world.now_s() + 300.0, 2.0))
    world.clock.advance(600.0)
    low_k, high_k = _extremes(device)
    ask(device, "INTYPE A,1,0,0,0,2")                                          # Celsius
    assert _extremes(device) == pytest.approx((low_k - 273.15, high_k - 273.15), abs=1e-4)
    ask(device, "INTYPE A,1,0,0,0,3")                                          # sensor units: diode volts,
    low_v, high_v = _extremes(device)                                          # lowest at the warmest
    assert low_v < high_v and low_v == pytest.approx(device._sensor_units("A", high_k), abs=1e-4)
    ask(device, "INTYPE A,0,0,0,0,1")                                          # disabled, as KRDG? answers
    assert value(device, "MDAT? A") == "+0.0000,+0.0000"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("transport", ["inproc", "tcp"])
def test_min_max_capture_through_the_stock_driver(driver_bench, transport):
    """Stock QCoDeS has no parameter for it: the raw commands, over either transport."""
    from qcodes.instrument_drivers.Lakeshore import LakeshoreModel336

    device, world, bench, path = driver_bench
    with contextlib.ExitStack() as stack:
        address, library = ADDRESS, f"{path}@nwlab"
        if transport == "tcp":
            address, library = stack.enter_context(over_tcp(bench)), "@py"
        ls = stack.enter_context(closing(LakeshoreModel336(f"ls336_{uuid.uuid4().hex[:8]}", address, visalib=library)))
        ls.write("MNMXRST")
        assert ls.ask("*OPC?") == "1"          # taken (over TCP a write returns before the server has it)
        world.panels["cryostat"].excursions.append((world.now_s() + 10.0, world.now_s() + 300.0, 2.0))
        world.clock.advance(900.0)
        low_k, high_k = (float(v) for v in ls.ask("MDAT? A").split(","))
        assert high_k == pytest.approx(thermal.equilibrium_temperature_k(thermal.STAGE_4K, 2.0), abs=1e-4)
        assert low_k < 3.3 and ls.A.temperature() < 3.3
        assert int(ls.ask("*ESR?")) & 0x30 == 0
