"""Keysight 81160A personality: bytes in/out, then raw pyvisa in-process and over TCP on a
bench whose pulser is an 81160A (no stock driver exists for it)."""

from __future__ import annotations

import copy

import pytest

from sim_backend.scpi.models.keysight_81160a import Keysight81160A
from tests.personalities.personality_helpers import StandInWorld, ask, errors


def make(channels: int = 2):
    world = StandInWorld()
    settings = {"channels": channels}
    world.panels["pg"] = Keysight81160A.create_panel("keysight_81160a", settings)
    return Keysight81160A(world, "pg", "keysight_81160a", settings), world.panels["pg"], world


def test_identity_channels_and_reset():
    device, panel, _ = make()
    assert ask(device, "*IDN?").split(",")[:2] == ["Agilent Technologies", "81160A"]
    ask(device, ":FUNC PULS;:VOLT 2;:OUTP1 ON;:ARM:SOUR MAN;:VOLT:LIM:STAT ON")
    ask(device, "*RST")
    answers = [ask(device, q) for q in (":FUNC?", ":FREQ?", ":VOLT?", ":VOLT:OFFS?", ":PULS:WIDT?", ":PULS:TRAN?",
                                        ":OUTP?", ":ARM:SOUR?", ":TRIG:COUN?", ":VOLT:LIM:STAT?", ":OUTP:LOAD?")]
    assert answers == ["SIN", "+1.00000000000000E+06", "+1.00000000000000E+00", "+0.00000000000000E+00",
                       "+1.00000000000000E-07", "+2.50000000000000E-09", "0", "IMM", "1", "0",
                       "+5.00000000000000E+01"]
    assert not panel.channels[1].output_enabled and not panel.channels[1].burst_enabled
    single, _, _ = make(channels=1)
    ask(single, ":PULS:WIDT2 10NS")
    assert errors(device) == [] and errors(single) == [-114]


ROUND_TRIPS = [
    (":FUNC PULS", ":FUNCtion1?", "PULS"),
    (":SOUR2:FUNC:SHAP SQUARE", ":FUNC2?", "SQU"),
    (":FREQ 2MHZ", ":FREQuency1:CW?", "+2.00000000000000E+06"),
    (":PULS:PER 1US", ":PULSe:PERiod1?", "+1.00000000000000E-06"),
    (":PULS:WIDT2 20NS", ":SOUR2:PULS:WIDT?", "+2.00000000000000E-08"),
    (":pulse:width 30ns", ":PULS:WIDT?", "+3.00000000000000E-08"),
    (":PULS:DCYC 25", ":PULS:WIDT?", "+2.50000000000000E-07"),
    (":PULS:HOLD DCYC", ":PULSe:HOLD?", "DCYC"),
    (":PULS:TRAN 1NS", ":PULS:TRAN:TRA?", "+1.00000000000000E-09"),
    (":PULS:TRAN:TRA 5NS", ":PULS:TRAN:TRA:AUTO?;:PULS:TRAN:LEAD?", "0;+2.50000000000000E-09"),
    (":VOLT 0.5", ":VOLTage1:LEVel:IMMediate:AMPLitude?", "+5.00000000000000E-01"),
    (":VOLT:OFFS 0.1", ":VOLT:OFFSet?", "+1.00000000000000E-01"),
    (":VOLT2:HIGH 0.25;LOW 0", ":VOLT2?;:VOLT2:OFFS?", "+2.50000000000000E-01;+1.25000000000000E-01"),
    (":VOLT:LIM:HIGH 1", ":VOLT:LIM?", "+1.00000000000000E+00"),
    (":VOLT:LIM:LOW -1", ":VOLTage:LIMit:LOW?", "-1.00000000000000E+00"),
    (":VOLT:LIM:STAT ON", ":VOLT:LIM:STAT?", "1"),
    (":OUTP2 ON", ":OUTP2:NORM:STAT?", "1"),
    (":OUTP:POL INV", ":OUTP1:POL?", "INV"),
    (":OUTP:LOAD INF", ":OUTP:IMP:EXT?", "+9.90000000000000E+37"),
    (":OUTP:IMP:EXT 1KOHM", ":OUTP:LOAD?", "+1.00000000000000E+03"),
    (":ARM:SOUR2 EXT", ":ARM:SOURce2?", "EXT"),
    (":TRIG:COUN 5", ":TRIGger:COUNt?", "5"),
    (":TRIG:SOUR INT2", ":TRIG:SOUR?", "INT2"),
]


@pytest.mark.parametrize(("setting", "query", "answer"), ROUND_TRIPS, ids=[r[0] for r in ROUND_TRIPS])
def test_round_trip(setting, query, answer):
    device, _, _ = make()
    ask(device, ":FUNC PULS;:FUNC2 PULS")
    ask(device, setting)
    assert ask(device, query) == answer
    assert errors(device) == []


BAD = [
    (":PULS:BOGUS 1", -113), (":PULS:WIDT3 5NS", -114), (":FUNC TRIANGLE", -224), (":PULS:WIDT 1NS", -222),
    (":PULS:TRAN 0.5NS", -222), (":VOLT 6", -222), (":VOLT:HIGH 5.5", -222), (":FREQ 600MHZ", -222),
    (":PULS:WIDT 998NS", -221), (":PULS:TRAN 100NS", -221), (":FREQ 400MHZ", -221), (":VOLT:LOW 0.3", -221),
    (":VOLT:LIM:HIGH 0.1", -221), (":VOLT:HIGH 0.8", -221), (":VOLT:LIM:LOW 2", -221), (":VOLT:OFFS 4.9", -221),
    (":ARM:SOUR BUS", -224), (":VOLT X", -104), (":OUTP", -109), (":PULS:WIDT 1,2", -108), (":FREQ 1 V", -131),
]


@pytest.mark.parametrize(("command", "code"), BAD, ids=[b[0] for b in BAD])
def test_wrong_commands_queue_the_error_and_change_nothing(command, code):
    device, panel, _ = make()
    ask(device, ":FUNC PULS;:VOLT:HIGH 0.25;LOW 0;:VOLT:LIM:HIGH 0.5;LOW -0.5;STAT ON;:OUTP ON")
    assert errors(device) == []
    before, panel_before = copy.deepcopy(device.channels), copy.deepcopy(panel)
    assert ask(device, command) is None
    assert errors(device) == [code]
    assert device.channels == before and panel == panel_before


def test_arming_and_bus_trigger_record_a_burst():
    device, panel, world = make()
    ask(device, ":FUNC PULS;:OUTP ON;:TRIG:COUN 4")
    world.time_s = 1.0
    ask(device, "*TRG")
    assert panel.channels[1].trigger_times_s == [] and not panel.channels[1].burst_enabled   # continuous
    ask(device, ":ARM:SOUR MAN")
    world.time_s = 2.0
    ask(device, "*TRG")
    channel = panel.channels[1]
    assert (channel.burst_enabled, channel.burst_cycles, channel.trigger_times_s) == (True, 4, [2.0])
    assert errors(device) == []


# -- the same single-shot pulse through pyvisa on a bench whose pulser is an 81160A ----------

SCENARIO = (":FUNC1 PULS", ":VOLT1:HIGH 0.25", ":VOLT1:LOW 0", ":PULS:PER1 1E-3", ":PULS:WIDT1 5E-08",
            ":PULS:TRAN1 1E-09", ":VOLT1:LIM:HIGH 0.3", ":VOLT1:LIM:LOW -0.05", ":VOLT1:LIM:STAT ON",
            ":ARM:SOUR1 MAN", ":TRIG:COUN1 1", ":OUTP1 ON", "*TRG")


@pytest.fixture
def bench_81160a(variant_bench):
    return variant_bench(pulser=("keysight_81160a", "drivers.keysight_81160a.Keysight81160A"))


def run_scenario(resource, bench) -> None:
    assert resource.query("*IDN?").split(",")[1] == "81160A"
    for text in SCENARIO:
        resource.write(text)
    assert resource.query(":SYST:ERR?") == '+0,"No error"'
    assert resource.query(":PULS:WIDT1?;:VOLT1:OFFS?") == "+5.00000000000000E-08;+1.25000000000000E-01"
    channel = bench.world.panels["pulser"].channels[1]
    assert (channel.function, channel.amplitude_vpp, channel.offset_v, channel.frequency_hz) == ("PULS", 0.25, 0.125, 1e3)
    assert (channel.pulse_width_s, channel.lead_edge_s, channel.trail_edge_s) == (5e-8, 1e-9, 1e-9)
    assert channel.burst_enabled and channel.trigger_source == "BUS" and len(channel.trigger_times_s) == 1
    resource.write(":VOLT1:HIGH 0.4")                     # beyond the output limit
    assert resource.query(":SYST:ERR?").startswith("-221,") and channel.amplitude_vpp == 0.25


def test_pyvisa_in_process(bench_81160a):
    import pyvisa

    bench, visalib = bench_81160a
    address = next(e.address for e in bench.instruments if e.role == "pulser")
    resource = pyvisa.ResourceManager(visalib).open_resource(address, read_termination="\n",
                                                             write_termination="\n")
    run_scenario(resource, bench)
    resource.close()


@pytest.mark.timeout(30)
def test_pyvisa_over_tcp(bench_81160a):
    import pyvisa

    from sim_backend.transport.bench_server import BenchServer

    bench, _ = bench_81160a
    with BenchServer(bench) as server:
        address = next(s.server.visa_address for s in server.instruments if s.role == "pulser")
        manager = pyvisa.ResourceManager("@py")
        resource = manager.open_resource(address, read_termination="\n", write_termination="\n", timeout=5000)
        run_scenario(resource, bench)
        resource.close()
        manager.close()
