"""Keithley 2450 personality: bytes in/out, error queue, compliance, stock QCoDeS driver.

The stand-in world gives the SMU an ohmic load (line resistance plus a chip resistance the
test chooses), so readings and compliance can be checked against Ohm's law.
"""

from __future__ import annotations

import copy
import threading
import uuid
from types import SimpleNamespace

import pytest

from sim_backend.clock import LabClock
from sim_backend.scpi.models.keithley_2450 import Keithley2450
from sim_backend.transport._bench_lookup import set_bench_opener

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


def ask(device, text: str) -> str | None:
    device.write_bytes(text.encode() + b"\n")
    answer = device.read_message()
    return None if answer is None else answer.decode().removesuffix("\n")


def errors(device) -> list[int]:
    found = []
    while (answer := ask(device, ":SYST:ERR?")) != '+0,"No error"':
        found.append(int(answer.split(",")[0]))
    return found


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


def test_measuring_with_the_output_off_is_an_error():
    device, _ = make()
    assert ask(device, ":MEAS:VOLT?") is None
    assert errors(device) == [-221]


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
