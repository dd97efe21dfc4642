"""Numbers the manuals do not allow change nothing and are reported as the instrument would.

Lake Shore controllers (no error queue) take plain decimal numbers only: `MIN`, `#H1F`, a suffix
or a number no double holds (`1E-999999`, `1E999`) is a command error (*ESR bit 5, 32), a value
outside the parameter's range an execution error (bit 4, 16). SCPI instruments follow IEEE 488.2
§7.7.2.4.1: exponent magnitude above 32000 is -123, more than 255 mantissa digits -124, a value
no double holds -222. Every case goes through a real transport (pyvisa in-process, and TCP for
the Lake Shore the issue was found on) and checks the instrument's panel did not move.
"""

from __future__ import annotations

import copy

import pytest
import pyvisa

from sim_backend.scpi.models.lakeshore_372 import Lakeshore372
from sim_backend.transport.bench_server import BenchServer
from tests.personalities.personality_helpers import ClockedWorld
from tests.personalities.personality_helpers import ask_crlf, value_crlf

pytestmark = pytest.mark.timeout(60)

CME, EXE = 0x20, 0x10

#: (what is sent after `SETP 1,`, *ESR? bit). None of these may move the setpoint.
LAKESHORE_BAD_SETPOINTS = [
    ("#H1F", CME),        # IEEE 488.2 non-decimal: not in the manual (was 31 K)
    ("#B101", CME),
    ("MIN", CME),         # no MIN/MAX keywords (was -273.15 K)
    ("MAX", CME),
    ("DEF", CME),
    ("1E-999999", CME),   # underflows: not 0 (was 0 K without an error)
    ("1E999", CME),       # overflows: not infinity
    ("0." + "0" * 400 + "1", CME),
    ("4.5K", CME),        # no unit suffixes
    ("4 .5", CME),
    ("nan", CME),
    ("1E7", EXE),         # a plain number outside the range is an execution error
]


def _address(bench, role: str) -> str:
    return next(entry.address for entry in bench.instruments if entry.role == role)


@pytest.fixture
def cryostat(bench, visalib):
    rm = pyvisa.ResourceManager(visalib)
    res = rm.open_resource(_address(bench, "cryostat"), read_termination="\r\n", write_termination="\n",
                           timeout=2000)
    res.write("SETP 1,4.5")
    res.query("*ESR?")  # clears power-on and anything before
    yield res, bench.world.panels["cryostat"]
    res.close()
    rm.close()


@pytest.mark.parametrize(("text", "bit"), LAKESHORE_BAD_SETPOINTS)
def test_lakeshore_336_refuses_numbers_the_manual_does_not_define(cryostat, text, bit):
    res, panel = cryostat
    before = copy.deepcopy(panel.outputs)
    res.write(f"SETP 1,{text}")
    assert int(res.query("*ESR?")) == bit
    assert res.query("SETP? 1") == "+4.5000"
    assert panel.outputs == before


@pytest.mark.parametrize("text", ["RANGE 1,#H3", "RANGE 1,MAX", "MOUT 1,MAX", "PID 1,#H32,20,0",
                                  "RAMP 1,1,1E-999999", "*ESE #HFF"])
def test_lakeshore_336_other_numeric_parameters_are_plain_decimal_too(cryostat, text):
    res, panel = cryostat
    before = copy.deepcopy(panel.outputs)
    settings = res.query("RANGE? 1;MOUT? 1;PID? 1;RAMP? 1;*ESE?")
    res.write(text)
    assert int(res.query("*ESR?")) == CME
    assert res.query("RANGE? 1;MOUT? 1;PID? 1;RAMP? 1;*ESE?") == settings
    assert panel.outputs == before


def test_lakeshore_336_still_takes_what_drivers_send(cryostat):
    res, panel = cryostat
    for text, expected in [("4.25", "+4.2500"), ("+5", "+5.0000"), (".5", "+0.5000"), ("1.5E1", "+15.0000"),
                           ("2.5e-05", "+0.0000"), ("0E-5", "+0.0000")]:
        res.write(f"SETP 1, {text}")
        assert (res.query("SETP? 1"), int(res.query("*ESR?"))) == (expected, 0), text


def test_lakeshore_336_over_tcp_refuses_hex_and_min(bench):
    with BenchServer(bench) as server:
        served = next(s for s in server.instruments if s.role == "cryostat")
        rm = pyvisa.ResourceManager("@py")
        res = rm.open_resource(served.server.visa_address, read_termination="\r\n", write_termination="\n",
                               timeout=3000)
        try:
            res.write("SETP 1,4.5")
            res.query("*ESR?")
            for text in ("SETP 1,#H1F", "SETP 1,MIN", "SETP 1,1E-999999"):
                res.write(text)
                assert (int(res.query("*ESR?")), res.query("SETP? 1")) == (CME, "+4.5000"), text
            assert bench.world.panels["cryostat"].outputs[1].setpoint_k == 4.5
        finally:
            res.close()
            rm.close()


@pytest.mark.parametrize(("text", "bit"), LAKESHORE_BAD_SETPOINTS)
def test_lakeshore_372_refuses_numbers_the_manual_does_not_define(text, bit):
    world = ClockedWorld()
    world.panels["fridge"] = Lakeshore372.create_panel("lakeshore_372", {"stage": "dilution_mxc"})
    device = Lakeshore372(world, "fridge", "lakeshore_372", {"stage": "dilution_mxc"})
    assert ask_crlf(device, "SETP 0,0.05") is None
    value_crlf(device, "*ESR?")
    before = copy.deepcopy((device.outputs, world.panels["fridge"].outputs))
    setpoint = value_crlf(device, "SETP? 0")
    assert ask_crlf(device, f"SETP 0,{text}") is None
    assert int(value_crlf(device, "*ESR?")) == bit
    assert value_crlf(device, "SETP? 0") == setpoint
    assert (device.outputs, world.panels["fridge"].outputs) == before


#: (what is sent after `:SOUR:CURR `, the SCPI error it must queue).
SCPI_BAD_CURRENTS = [
    ("1E-999999", -123),          # exponent magnitude above 32000 (was 0 A without an error)
    ("1E32001", -123),
    ("1E" + "9" * 5000, -123),
    ("1" + "0" * 300, -124),      # more than 255 digits
    ("1E400", -222),              # legal syntax, beyond every range (was -123)
    ("#H" + "F" * 300, -222),     # was an OverflowError escaping the personality
    ("2", -222),
]


@pytest.fixture
def smu(bench, visalib):
    rm = pyvisa.ResourceManager(visalib)
    res = rm.open_resource(_address(bench, "bias"), read_termination="\n", write_termination="\n", timeout=2000)
    res.write(":SOUR:FUNC CURR;:SOUR:CURR 1E-6;*CLS")
    yield res, bench.world.panels["bias"]
    res.close()
    rm.close()


@pytest.mark.parametrize(("text", "code"), SCPI_BAD_CURRENTS)
def test_keithley_2450_numbers_follow_ieee_488_2_limits(smu, text, code):
    res, panel = smu
    before = copy.deepcopy(panel)
    res.write(f":SOUR:CURR {text}")
    assert res.query(":SYST:ERR?").split(",")[0] == f"{code:+d}"
    assert res.query(":SYST:ERR?").startswith("+0,")
    assert float(res.query(":SOUR:CURR?")) == 1e-6
    assert panel == before


def test_keithley_2450_tiny_numbers_round_to_zero_within_the_exponent_limit(smu):
    res, _ = smu
    res.write(":SOUR:CURR 1E-32000")
    assert (float(res.query(":SOUR:CURR?")), res.query(":SYST:ERR?")) == (0.0, '+0,"No error"')


#: One model of each personality family; *ESE takes a number on every one of them.
FAMILIES = ["keithley_2450", "keysight_33522b", "keysight_81160a", "keysight_infiniium", "tektronix_dpo7254c",
            "lakeshore_336", "lakeshore_372"]


@pytest.mark.parametrize("model", FAMILIES)
def test_every_family_reports_oversized_numbers_by_the_same_rule(tmp_path, model):
    """IEEE 488.2 families: exponent above 32000 or 256 digits is a command error, a number no
    double holds an execution error (-222). Lake Shore: all of them are command errors."""
    from reliability_helpers import bench_for_model

    from sim_backend.scpi.models import personality_classes

    cls = personality_classes()[model]
    bench, key = bench_for_model(tmp_path, model, cls.role)
    device = bench.device(key)
    terminator = cls.response_terminator

    def ask(text: str) -> str | None:
        device.write_bytes(text.encode() + b"\n")
        answer = device.read_message()
        return None if answer is None else answer.decode().removesuffix(terminator.decode())

    ask("*ESE 16")
    ask("*ESR?")
    plain = cls.numeric_data == "plain_decimal"
    for text, bit in [("1E-999999", CME), ("1E32001", CME), ("9" * 256, CME),
                      ("1E999", CME if plain else EXE), ("1E-400", CME if plain else None)]:
        ask(f"*ESE {text}")
        esr = int(ask("*ESR?"))
        if bit is None:   # IEEE 488.2: a tiny number rounds to 0, which *ESE takes
            assert (esr, ask("*ESE?")) == (0, "0"), (model, text)
            ask("*ESE 16")
        else:
            assert (esr & (CME | EXE), ask("*ESE?")) == (bit, "16"), (model, text)
