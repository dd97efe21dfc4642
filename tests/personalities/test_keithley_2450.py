"""Keithley 2450 personality: bytes in/out, error queue, compliance, stock QCoDeS driver.

The stand-in world gives the SMU an ohmic load (line resistance plus a chip resistance the
test chooses), so readings and compliance can be checked against Ohm's law.
"""

from __future__ import annotations

import copy
import struct
import threading
import uuid
from types import SimpleNamespace

import pytest

from sim_backend.clock import LabClock
from sim_backend.scpi.models.keithley_2450 import Keithley2450
from sim_backend.transport._bench_lookup import set_bench_opener
from tests.personalities.personality_helpers import ask, errors, raw

ADDRESS = "TCPIP0::10.0.0.23::5025::SOCKET"
LINE_OHM = 25.0


class StandInWorld:
    """Panels, clock, wiring, and a load: V = I · (line + chip) while the output is on."""

    def __init__(self) -> None:
        self.clock = LabClock(0)
        self.panels: dict = {}
        self.station = SimpleNamespace(bias=[SimpleNamespace(instrument="bias", line_resistance_ohm=LINE_OHM)])
        self.chip_ohm = 0.0

    def now_s(self) -> float:
        return self.clock.now_s()

    def bias_port_voltage_v(self, role_name: str) -> float:
        panel = self.panels[role_name]
        return panel.sourced_current_a * (LINE_OHM + self.chip_ohm)


def make():
    world = StandInWorld()
    world.panels["bias"] = Keithley2450.create_panel("keithley_2450", {})
    return Keithley2450(world, "bias", "keithley_2450", {}), world


def test_idn_language_and_reset():
    device, world = make()
    assert ask(device, "*IDN?").startswith("KEITHLEY INSTRUMENTS,MODEL 2450,")
    assert ask(device, "*LANG?") == "SCPI"
    ask(device, ":SOUR:FUNC CURR;:SOUR:CURR 1e-6;:OUTP ON")
    ask(device, "*RST")
    assert (ask(device, ":SOUR:FUNC?"), ask(device, ":OUTP?")) == ("VOLT", "0")
    assert world.panels["bias"].output_enabled is False
    assert errors(device) == []


def test_source_current_and_measure_voltage_follow_the_load():
    device, world = make()
    world.chip_ohm = 75.0
    ask(device, ':SOUR:FUNC CURR;:SOUR:CURR 10e-6;:SOUR:CURR:VLIM 1;:SENS:FUNC "VOLT";:OUTP ON')
    assert float(ask(device, ":MEAS:VOLT?")) == pytest.approx(10e-6 * 100.0)
    assert float(ask(device, ":READ?")) == pytest.approx(1e-3)
    assert float(ask(device, ":MEAS:RES?")) == pytest.approx(100.0)
    assert ask(device, ":SOUR:CURR:VLIM:TRIP?") == "0"
    assert ask(device, ":TRAC:ACT? 'defbuffer1'") == "3"
    assert errors(device) == []


def test_compliance_holds_the_limit_and_reduces_the_current():
    device, world = make()
    world.chip_ohm = 9975.0  # 10 kΩ total: 1 mA would need 10 V
    ask(device, ':SOUR:FUNC CURR;:SOUR:CURR 1e-3;:SOUR:CURR:VLIM 2;:SENS:FUNC "CURR";:OUTP ON')
    assert float(ask(device, ":MEAS:VOLT?")) == pytest.approx(2.0)
    assert float(ask(device, ":MEAS:CURR?")) == pytest.approx(1e-3 * 2.0 / 10.0)
    assert ask(device, ":SOUR:CURR:VLIM:TRIP?") == "1"


@pytest.mark.parametrize(("bad", "code"), [
    (":SOUR:CURR 2", -222), (":SOUR:FUNC RES", -224), (":SENS:FUNC \"FREQ\"", -224),
    (":BOGUS 1", -113), (":SOUR:CURR:VLIM 500", -222), (":OUTP", -109), (":SOUR:CURR 1 V", -131),
    (":TRAC:DATA? 1, 5, 'defbuffer1'", -222), (":MEAS? 'nobuffer'", -224), (":SOUR:CURR 1e-3, 2", -108),
])
def test_errors_are_queued_and_change_nothing(bad, code):
    device, world = make()
    ask(device, ':SOUR:FUNC CURR;:SOUR:CURR 1e-6')
    before = copy.deepcopy((vars(world.panels["bias"]), device.source_range, device.buffers))
    ask(device, bad)
    assert errors(device) == [code]
    assert (vars(world.panels["bias"]), device.source_range, device.buffers) == before


def test_fixed_range_refuses_a_larger_level():
    device, _ = make()
    ask(device, ":SOUR:FUNC CURR;:SOUR:CURR:RANG 1e-6")
    assert ask(device, ":SOUR:CURR:RANG:AUTO?") == "0"
    ask(device, ":SOUR:CURR 5e-6")
    assert errors(device) == [-222]
    assert float(ask(device, ":SOUR:CURR?")) == 0.0


def test_list_sweep_sets_each_level_waits_the_delay_and_fills_the_buffer():
    device, world = make()
    world.chip_ohm = 75.0
    levels = [1e-6 * k for k in range(1, 151)]
    ask(device, ':SOUR:FUNC CURR;:SENS:FUNC "VOLT"')
    ask(device, ":SOUR:LIST:CURR " + ",".join(f"{v:g}" for v in levels[:100]))
    ask(device, ":SOUR:LIST:CURR:APP " + ",".join(f"{v:g}" for v in levels[100:]))
    assert ask(device, ":SOUR:LIST:CURR:POIN?") == "150"
    assert [float(v) for v in ask(device, ":SOUR:LIST:CURR? 149, 2").split(",")] == pytest.approx(levels[148:])
    ask(device, ':SOUR:SWE:CURR:LIST 1, 0.002, 1, OFF, "defbuffer1"')
    start_s = world.now_s()
    assert ask(device, ":INIT;*OPC?") == "1"
    assert world.now_s() - start_s == pytest.approx(150 * 0.002)    # the delays passed in lab time
    readings = [float(v) for v in ask(device, ':TRAC:DATA? 1, 150, "defbuffer1", READ').split(",")]
    assert readings == pytest.approx([v * (LINE_OHM + 75.0) for v in levels])
    panel = world.panels["bias"]
    assert panel.output_enabled and panel.current_level_a == pytest.approx(levels[-1])   # stays at the last level
    assert errors(device) == []


@pytest.mark.parametrize(("bad", "code"), [
    (":SOUR:LIST:CURR 1e-6, 2", -222), (":SOUR:LIST:CURR", -109), (':SOUR:SWE:CURR:LIST 5, 0.001', -221),
    (":SOUR:LIST:CURR " + ",".join(["1e-6"] * 2501), -108),
])
def test_list_errors_change_nothing(bad, code):
    device, _ = make()
    ask(device, ":SOUR:LIST:CURR 1e-6, 2e-6")
    ask(device, bad)
    assert errors(device) == [code]
    assert ask(device, ":SOUR:LIST:CURR:POIN?") == "2" and device.sweep is None


def test_list_is_bounded_by_its_capacity():
    device, _ = make()
    chunk = ",".join(["1e-6"] * 2500)
    ask(device, ":SOUR:LIST:CURR " + chunk)
    ask(device, ":SOUR:LIST:CURR:APP 2e-6")
    assert errors(device) == [-222]
    assert ask(device, ":SOUR:LIST:CURR:POIN?") == "2500"


def test_measuring_with_the_output_off_reads_the_idle_terminals():
    """Output off, the 2450 still measures (Reference Manual 2-82): 0 V and 0 A at the chip,
    and a resistance overflow."""
    device, world = make()
    ask(device, ':SOUR:FUNC CURR;:SOUR:CURR 10e-6;:SENS:FUNC "VOLT"')
    assert float(ask(device, ":READ?")) == 0.0
    assert float(ask(device, ":MEAS:CURR?")) == 0.0
    assert float(ask(device, ":MEAS:RES?")) == pytest.approx(9.9e37)
    assert ask(device, ":TRAC:ACT?") == "3"
    assert world.panels["bias"].output_enabled is False
    assert errors(device) == []


@pytest.fixture
def driver_bench():
    device, world = make()
    bench = SimpleNamespace(devices={ADDRESS: device}, lock=threading.RLock(),
                            instruments=[("bias", "keithley_2450", ADDRESS)])
    path = f"stand-in-2450-{uuid.uuid4().hex}.yaml#b"
    previous = set_bench_opener(lambda library_path: bench)
    yield device, world, bench, path
    set_bench_opener(previous)


def _bias_with_driver(smu, device, world):
    world.chip_ohm = 0.0  # superconducting: the SMU reads the line resistance
    smu.source_function("current")
    smu.sense_function("voltage")
    smu.source.limit(1.0)
    smu.source.current(20e-6)
    smu.output_enabled(True)
    assert smu.sense.voltage() == pytest.approx(20e-6 * LINE_OHM)
    assert smu.source.limit_tripped() is False
    smu.sense.clear_trace()  # the sweep reads buffer entries 1..N, so start it empty
    smu.source.sweep_setup(0.0, 10e-6, 5)
    assert smu.sense.sweep() == pytest.approx([i * 2.5e-6 * LINE_OHM for i in range(5)])
    for module in smu.submodules.values():
        if hasattr(module, "user_number"):
            module.user_number(1)  # left unset, the driver would ask for DELay:USERNone?
    before = copy.deepcopy((vars(world.panels["bias"]), device.source_range, device.sense_range))
    smu.snapshot(update=True)
    assert (vars(world.panels["bias"]), device.source_range, device.sense_range) == before
    assert errors(device) == []


def test_stock_driver_in_process(driver_bench):
    from qcodes.instrument_drivers.Keithley import Keithley2450 as Driver

    device, world, _, path = driver_bench
    smu = Driver(f"k2450_{uuid.uuid4().hex[:8]}", ADDRESS, visalib=f"{path}@nwlab")
    try:
        _bias_with_driver(smu, device, world)
    finally:
        smu.close()


@pytest.mark.timeout(30)
def test_stock_driver_over_tcp(driver_bench):
    from qcodes.instrument_drivers.Keithley import Keithley2450 as Driver

    from sim_backend.transport.bench_server import BenchServer

    device, world, bench, _ = driver_bench
    with BenchServer(bench) as server:
        address = server.instruments[0].server.visa_address
        smu = Driver(f"k2450_{uuid.uuid4().hex[:8]}", address, visalib="@py")
        try:
            _bias_with_driver(smu, device, world)
        finally:
            smu.close()


# -- buffers, formats, filters, status model (Reference Manual sections in the model's docstrings) --

def _bias(device, world, amps: float = 10e-6) -> None:
    world.chip_ohm = 0.0
    ask(device, f':SOUR:FUNC CURR;:SOUR:CURR {amps};:SOUR:CURR:VLIM 1;:SENS:FUNC "VOLT";:OUTP ON')


def test_user_buffer_takes_readings_and_reports_statistics():
    device, world = make()
    _bias(device, world)
    ask(device, ':TRAC:MAKE "userbuff1", 10')
    assert ask(device, ':TRAC:POIN? "userbuff1"') == "10"
    assert ask(device, ':TRAC:FILL:MODE? "userbuff1";:TRAC:FILL:MODE?') == "ONCE;CONT"
    assert float(ask(device, ":MEAS? 'userbuff1'")) == pytest.approx(10e-6 * LINE_OHM)
    ask(device, ':SOUR:CURR 30e-6;:SENS:COUN 3;:TRAC:TRIG "userbuff1"')
    assert ask(device, ':TRAC:ACT? "userbuff1";:TRAC:ACT?') == "4;0"
    volts = [10e-6 * LINE_OHM] + [30e-6 * LINE_OHM] * 3
    assert [float(v) for v in ask(device, ':TRAC:DATA? 1, 4, "userbuff1"').split(",")] == pytest.approx(volts)
    pairs = ask(device, ':TRAC:DATA? 4, 4, "userbuff1", SOUR, UNIT, READ').split(",")
    assert (float(pairs[0]), pairs[1], float(pairs[2])) == (pytest.approx(30e-6), "Volt DC", pytest.approx(volts[-1]))
    statistics = {name: float(ask(device, f':TRAC:STAT:{name}? "userbuff1"'))
                  for name in ("AVER", "MAX", "MIN", "PK2PK", "STDD")}
    assert statistics == pytest.approx({"AVER": sum(volts) / 4, "MAX": volts[-1], "MIN": volts[0],
                                        "PK2PK": volts[-1] - volts[0], "STDD": 20e-6 * LINE_OHM / 2})
    ask(device, ':TRAC:STAT:CLE "userbuff1"')
    ask(device, ":MEAS? 'userbuff1'")
    assert float(ask(device, ':TRAC:STAT:AVER? "userbuff1"')) == pytest.approx(volts[-1])
    assert ask(device, ':TRAC:ACT? "userbuff1"') == "7"      # :SENSe:COUNt readings per request
    ask(device, ':TRAC:DEL "userbuff1"')
    assert "userbuff1" not in device.buffers
    assert errors(device) == []


def test_a_buffer_filled_once_stops_and_a_continuous_one_overwrites():
    device, world = make()
    _bias(device, world)
    ask(device, ':TRAC:MAKE "once", 10;:TRAC:POIN 10')
    for amps in range(1, 13):
        ask(device, f":SOUR:CURR {amps}e-6;:READ? 'once';:READ?")
    first = [float(v) / LINE_OHM for v in ask(device, ':TRAC:DATA? 1, 10, "once"').split(",")]
    latest = [float(v) / LINE_OHM for v in ask(device, ":TRAC:DATA? 1, 10").split(",")]
    assert first == pytest.approx([k * 1e-6 for k in range(1, 11)])
    assert latest == pytest.approx([k * 1e-6 for k in range(3, 13)])
    ask(device, ':TRAC:FILL:MODE CONT, "once";:TRAC:CLE "once"')
    assert ask(device, ':TRAC:FILL:MODE? "once";:TRAC:ACT? "once"') == "CONT;0"
    assert errors(device) == []


@pytest.mark.parametrize(("bad", "code"), [
    (':TRAC:MAKE "b", 9', -222), (':TRAC:MAKE "b", 5500001', -222), (':TRAC:MAKE "defbuffer1", 100', -221),
    (':TRAC:MAKE "b", 100, WRIT', -224), (":TRAC:MAKE b, 100", -104), (':TRAC:POIN 9', -222),
    (':TRAC:POIN 100, "nobuffer"', -224), (':TRAC:CLE "nobuffer"', -224), (':TRAC:DEL "defbuffer2"', -224),
    (':TRAC:FILL:MODE SOMETIMES', -224), (':TRAC:STAT:AVER? "defbuffer2"', -230), (':TRAC:DATA?', -109),
    (':FORM:DATA HEX', -224), (':READ? "defbuffer1", UNITS', -224),
    (':SENS:CURR:AVER:COUN 101', -222), (':SENS:VOLT:AVER:TCON BOXCAR', -224), (':OUTP:CURR:SMOD OPEN', -224),
    (':TRIG:LOAD "DurationLoop", 10', -224), (':TRIG:LOAD "SimpleLoop"', -109), (':TRIG:LOAD "SimpleLoop", 0', -222),
    (':STAT:QUES:MAP 15, 4918', -222), (':STAT:OPER:ENAB 65536', -222),
    (":TRAC:FEED SENS", -113), (":TRAC:FEED:CONT NEXT", -113), (":STAT:MEAS:ENAB 512", -113),
    (":TRIG:COUN 10", -113), ("*OPT?", -113),
])
def test_new_commands_refuse_bad_arguments_and_change_nothing(bad, code):
    device, world = make()
    _bias(device, world)
    ask(device, ':TRAC:MAKE "b", 10;:READ?')
    before = copy.deepcopy((device.buffers, device.data_format, device.filter_count, device.filter_type,
                            device.off_state, device.sweep, device.status_sets))
    assert ask(device, bad) is None
    assert errors(device) == [code]
    assert (device.buffers, device.data_format, device.filter_count, device.filter_type, device.off_state,
            device.sweep, device.status_sets) == before


def test_filters_and_output_off_states_are_kept_per_function():
    device, _ = make()
    assert ask(device, ":SENS:CURR:AVER?;:SENS:CURR:AVER:COUN?;:SENS:CURR:AVER:TCON?") == "0;10;REP"
    ask(device, ":SENS:CURR:AVER ON;:SENS:CURR:AVER:COUNT 25;:SENS:CURR:AVER:TCON MOV;:SENS:RES:AVER:COUN MAX")
    assert ask(device, ":SENS:CURR:AVER:STAT?;:SENS:CURR:AVER:COUN?;:SENS:CURR:AVER:TCON?") == "1;25;MOV"
    assert ask(device, ":SENS:VOLT:AVER?;:SENS:VOLT:AVER:COUN?;:SENS:RES:AVER:COUN?") == "0;10;100"
    assert ask(device, ":OUTP:CURR:SMOD?;:OUTP:VOLT:SMOD?;:OUTP:SMOD?") == "NORM;NORM;NORM"
    ask(device, ":OUTP:CURR:SMOD HIMP")
    assert ask(device, ":OUTP:CURR:SMOD?;:OUTP:VOLT:SMOD?") == "HIMP;NORM"
    ask(device, ":OUTP:SMOD GUAR")
    assert ask(device, ":OUTP:CURR:SMOD?;:OUTP:VOLT:SMOD?") == "GUAR;GUAR"
    ask(device, "*RST")
    assert ask(device, ":SENS:CURR:AVER?;:OUTP:CURR:SMOD?") == "0;NORM"
    assert errors(device) == []


def test_binary_formats_send_ieee_754_after_a_zero_length_header():
    device, world = make()
    _bias(device, world, 20e-6)
    volts = 20e-6 * LINE_OHM
    ask(device, ":FORM REAL")
    answer = raw(device, ":READ? 'defbuffer1', READ, SOUR")
    assert answer[:2] == b"#0" and answer[-1:] == b"\n"
    assert struct.unpack("<2d", answer[2:-1]) == pytest.approx((volts, 20e-6))
    ask(device, ':READ? "defbuffer1", UNIT')      # text elements have no binary form
    assert errors(device) == [-224] and ask(device, ":TRAC:ACT?") == "1"
    ask(device, ":FORM:BORD NORM;:FORM SREAL")
    assert struct.unpack(">f", raw(device, ":FETC?")[2:-1])[0] == pytest.approx(volts, rel=1e-6)
    ask(device, ":FORM ASC")
    assert float(ask(device, ":FETC?")) == pytest.approx(volts)
    assert ask(device, ":FORM?;:FORM:BORD?") == "ASC;NORM"
    ask(device, "*RST")
    assert ask(device, ":FORM?;:FORM:BORD?") == "ASC;SWAP"
    assert errors(device) == []


def test_a_mapped_buffer_full_event_sets_the_questionable_and_measurement_summary_bits():
    device, world = make()
    _bias(device, world)
    ask(device, ':TRAC:POIN 10;:STAT:QUES:MAP 0, 4918, 4917;:STAT:QUES:ENAB 1;*SRE 1')
    assert ask(device, ":STAT:QUES:MAP? 0;:STAT:OPER:MAP? 0") == "4918,4917;0,0"
    ask(device, ':TRIG:LOAD "SimpleLoop", 9;:INIT')
    assert ask(device, "*STB?") == "0"
    ask(device, ':TRIG:LOAD "SimpleLoop", 1, 0.5;:INIT')
    assert ask(device, "*STB?") == str(0x01 | 0x08 | 0x40)        # MSB, QSB and MSS
    assert ask(device, ":STAT:QUES:COND?;:STAT:QUES?;:STAT:QUES?") == "1;1;0"
    assert ask(device, "*STB?") == "0"                            # reading the event register cleared it
    ask(device, ":TRAC:CLE")
    assert ask(device, ":STAT:QUES:COND?") == "0"
    ask(device, ':STAT:OPER:MAP 3, 4918;:STAT:OPER:ENAB 8;:SENS:COUN 10;:TRAC:TRIG')
    assert ask(device, "*STB?") == str(0x80 | 0x01 | 0x08 | 0x40)  # OSB too (QUES still maps the event)
    ask(device, ":STAT:PRES")
    assert ask(device, "*STB?;:STAT:QUES:ENAB?;:STAT:OPER?;*SRE?") == "0;0;0;1"
    assert errors(device) == []


def test_simple_loop_measures_count_times_the_delay_apart_at_the_present_source():
    device, world = make()
    _bias(device, world, 5e-6)
    ask(device, ':TRAC:MAKE "loop", 100;:TRIG:LOAD "SimpleLoop", 20, 0.01, "loop"')
    start_s = world.now_s()
    assert ask(device, ":INIT;*OPC?") == "1"
    assert world.now_s() - start_s == pytest.approx(20 * 0.01)
    readings = [float(v) for v in ask(device, ':TRAC:DATA? 1, 20, "loop"').split(",")]
    assert readings == pytest.approx([5e-6 * LINE_OHM] * 20)
    ask(device, ':TRIG:LOAD "Empty";:INIT')
    assert ask(device, ':TRAC:ACT? "loop"') == "20"
    assert errors(device) == []


def test_an_empty_last_parameter_counts_as_omitted():
    device, _ = make()
    ask(device, ":TRACe:MAKE 'userbuff1', 100, ;:TRAC:MAKE 'semi;colon, ', 10, ")
    assert sorted(device.buffers) == ["defbuffer1", "defbuffer2", "semi;colon, ", "userbuff1"]
    assert errors(device) == []


def test_beeper_and_event_log_clear_are_accepted():
    device, _ = make()
    ask(device, ":SYST:BEEP 440, 0.1;:SYST:CLE;:SYST:BEEP:IMM 2e6, 1")
    assert errors(device) == [-222]
