"""Keysight 33500B/33600A personality: bytes in/out per model, then the stock QCoDeS driver
in-process and over TCP against the emulated bench."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from sim_backend.bench.pulse_generator import PulseGeneratorPanel
from sim_backend.scpi.models._keysight_33500b_model import MODELS
from sim_backend.scpi.models.keysight_33500b import Keysight33500B
from tests.personalities.personality_helpers import StandInWorld, ask, errors


def make(model: str = "keysight_33522b") -> tuple[Keysight33500B, PulseGeneratorPanel, StandInWorld]:
    world = StandInWorld()
    world.panels["pg"] = Keysight33500B.create_panel(model, {})
    return Keysight33500B(world, "pg", model, {}), world.panels["pg"], world


@pytest.mark.parametrize("model", sorted(MODELS))
def test_idn_and_channel_count_per_model(model):
    device, panel, _ = make(model)
    spec = MODELS[model]
    maker, name, _serial, _firmware = ask(device, "*IDN?").split(",")
    assert (maker, name) == ("Keysight Technologies", spec.name)
    assert sorted(panel.channels) == list(range(1, spec.channels + 1))
    ask(device, "SOUR2:VOLT 0.2")
    assert errors(device) == ([] if spec.channels == 2 else [-114])


def test_reset_restores_defaults_on_instrument_and_panel():
    device, panel, _ = make()
    for text in ("FUNC PULS", "VOLT 0.3", "FREQ 2e3", "OUTP1 ON", "OUTP1:LOAD INF", "BURS:STAT ON", "TRIG1:SOUR BUS"):
        ask(device, text)
    ask(device, "*RST")
    answers = [ask(device, q) for q in ("FUNC?", "FREQ?", "VOLT?", "VOLT:OFFS?", "OUTP1?", "OUTP1:LOAD?",
                                        "BURS:STAT?", "BURS:MODE?", "BURS:NCYC?", "TRIG1:SOUR?", "FUNC:PULS:WIDT?",
                                        "VOLT:UNIT?", "OUTP:SYNC?")]
    assert answers == ["SIN", "+1.00000000000000E+03", "+1.00000000000000E-01", "+0.00000000000000E+00", "0",
                       "+5.00000000000000E+01", "0", "TRIG", "+1.00000000000000E+00", "IMM",
                       "+1.00000000000000E-04", "VPP", "1"]
    channel = panel.channels[1]
    assert (channel.output_enabled, channel.burst_enabled, channel.load_ohm) == (False, False, 50.0)
    assert errors(device) == []


ROUND_TRIPS = [  # (set, query, answer) in short, long and mixed-case forms
    ("SOUR1:FUNC PULS", "SOURCE1:FUNCTION?", "PULS"),
    ("source2:function:shape square", "SOUR2:FUNC?", "SQU"),
    ("FREQ 2.5KHZ", "SOUR1:FREQ:CW?", "+2.50000000000000E+03"),
    ("SOUR1:FUNC:PULS:PER 2E-3", "FREQ?", "+5.00000000000000E+02"),
    ("FREQ:MODE FIX", "FREQ:MODE?", "FIX"),
    ("PHAS 90", "SOUR1:PHASe?", "+9.00000000000000E+01"),
    ("VOLT 250 MV", "VOLTage:LEVel:IMMediate:AMPLitude?", "+2.50000000000000E-01"),
    ("VOLT:OFFS -0.1", "volt:offs?", "-1.00000000000000E-01"),
    ("VOLT:HIGH 0.4;LOW -0.2", "VOLT?;VOLT:OFFS?", "+6.00000000000000E-01;+1.00000000000000E-01"),
    ("FUNC:PULS:WIDT 50NS", "FUNCtion:PULSe:WIDTh?", "+5.00000000000000E-08"),
    ("FUNC:PULS:DCYC 20", "FUNC:PULS:WIDT?", "+2.00000000000000E-04"),
    ("FUNC:PULS:HOLD DCYCLE", "FUNC:PULS:HOLD?", "DCYC"),
    ("FUNC:PULS:TRAN:BOTH 20NS", "FUNC:PULS:TRAN:TRA?", "+2.00000000000000E-08"),
    ("FUNC:PULS:TRAN:LEAD 9NS", "FUNC:PULS:TRAN:LEADING?", "+9.00000000000000E-09"),
    ("FUNC:PULS:TRAN:TRAiling 12NS", "FUNC:PULS:TRAN:TRA?", "+1.20000000000000E-08"),
    ("FUNC:SQU:DCYC 30", "FUNC:SQU:DCYC?", "+3.00000000000000E+01"),
    ("FUNC:RAMP:SYMM 50", "FUNC:RAMP:SYMMetry?", "+5.00000000000000E+01"),
    ("VOLT:UNIT VRMS", "VOLT?", "+3.53553390593274E-02"),
    ("BURS:STAT ON", "SOUR1:BURSt:STATe?", "1"),
    ("BURS:MODE GAT", "BURS:MODE?", "GAT"),
    ("BURS:NCYC 5", "BURS:NCYCLes?", "+5.00000000000000E+00"),
    ("TRIG:SOUR BUS;:BURS:NCYC INF", "BURS:NCYC?", "+9.90000000000000E+37"),
    ("BURS:PHAS -90", "BURS:PHAS?", "-9.00000000000000E+01"),
    ("BURS:INT:PER 0.1", "BURSt:INTernal:PERiod?", "+1.00000000000000E-01"),
    ("BURS:GATE:POL INV", "BURS:GATE:POL?", "INV"),
    ("TRIG1:SOUR EXT", "TRIGger1:SOURce?", "EXT"),
    ("TRIG2:SLOP NEG", "TRIG2:SLOPe?", "NEG"),
    ("TRIG:COUN 10", "TRIG:COUN?", "+1.00000000000000E+01"),
    ("TRIG:DEL 1US", "TRIG:DEL?", "+1.00000000000000E-06"),
    ("TRIG:TIM 0.5", "TRIG:TIMer?", "+5.00000000000000E-01"),
    ("OUTP ON", "OUTPut1:STATe?", "1"),
    ("OUTP2:POL INV", "OUTP2:POLarity?", "INV"),
    ("OUTP:LOAD 1KOHM", "OUTP1:LOAD?", "+1.00000000000000E+03"),
    ("OUTP:SYNC OFF", "OUTP:SYNC?", "0"),
    ("OUTP:SYNC:SOUR CH2", "OUTPut:SYNC:SOURce?", "CH2"),
    ('DISP:TEXT "cooling"', "DISPlay:TEXT?", '"cooling"'),
    ('DISP:TEXT "cooling";:DISP:TEXT:CLE', "DISP:TEXT?", '""'),
    ("DISP OFF;:SYST:BEEP", "DISPlay:STATe?", "0"),
    ("FORM:BORD SWAP", "FORMat:BORDer?", "SWAP"),
]


@pytest.mark.parametrize(("setting", "query", "answer"), ROUND_TRIPS, ids=[r[0] for r in ROUND_TRIPS])
def test_round_trip(setting, query, answer):
    device, _, _ = make()
    if "PULS" in setting or "TRAN" in setting:
        ask(device, "FUNC PULS")
    ask(device, setting)
    assert ask(device, query) == answer
    assert errors(device) == []


def test_settings_reach_the_front_panel():
    device, panel, world = make()
    world.time_s = 3.0
    ask(device, "FUNC PULS;:VOLT 0.5;VOLT:OFFS 0.25;:FUNC:PULS:WIDT 40NS;TRAN:LEAD 9NS;TRA 11NS;:FREQ 1E4")
    ask(device, "OUTP1:POL INV;:OUTP1 ON")
    assert errors(device) == []
    channel = panel.channels[1]
    assert (channel.function, channel.amplitude_vpp, channel.offset_v, channel.frequency_hz) == ("PULS", 0.5, 0.25, 1e4)
    assert channel.pulse_width_s == pytest.approx(40e-9)
    assert (channel.lead_edge_s, channel.trail_edge_s) == pytest.approx((9e-9, 11e-9))
    assert channel.inverted and channel.output_enabled and channel.running_since_s == 3.0
    world.time_s = 4.0
    ask(device, "VOLT:OFFS 0.25")          # unchanged waveform: keeps running
    assert channel.running_since_s == 3.0
    ask(device, "VOLT 0.4")
    assert channel.running_since_s == 4.0
    ask(device, "FUNC SIN")                # no sine on the panel: shown as its mean
    assert (channel.function, channel.offset_v) == ("DC", 0.25)


def test_load_keeps_the_output_voltage_and_rescales_levels():
    device, panel, _ = make()
    ask(device, "VOLT 1;VOLT:OFFS 0.5;:OUTP:LOAD INF")
    assert ask(device, "VOLT?;VOLT:OFFS?;:OUTP:LOAD?") == ("+2.00000000000000E+00;+1.00000000000000E+00;"
                                                           "+9.90000000000000E+37")
    assert math.isinf(panel.channels[1].load_ohm) and panel.channels[1].amplitude_vpp == 2.0
    ask(device, "VOLT 15")                 # 15 Vpp fits only into high Z
    assert errors(device) == [] and ask(device, "OUTP:LOAD 50") is None
    assert errors(device) == [] and ask(device, "VOLT?") == "+7.50000000000000E+00"


def test_edge_and_width_minimums_follow_the_model():
    fast, _, _ = make("keysight_33622a")
    slow, _, _ = make("keysight_33522b")
    for device in (fast, slow):
        ask(device, "FUNC PULS;:FUNC:PULS:WIDT 1E-6")
        ask(device, "FUNC:PULS:TRAN 3NS")
        ask(device, "FUNC:PULS:WIDT 5NS")
    assert errors(fast) == [] and ask(fast, "FUNC:PULS:TRAN?;WIDT?") == "+3.00000000000000E-09;+5.00000000000000E-09"
    assert errors(slow) == [-222, -222]
    assert ask(slow, "FUNC:PULS:TRAN?;WIDT?") == "+1.00000000000000E-08;+1.00000000000000E-06"
    ask(slow, "FUNC:PULS:TRAN 8.4NS")
    assert errors(slow) == []


BAD = [
    ("SOUR1:FUNC:BOGUS 1", -113), ("VOLT:AMPL:FOO 1", -113), ("OUTP3 ON", -114), ("FUNC SAWTOOTH", -224),
    ("VOLT 11", -222), ("VOLT 0.5MV", -222), ("FREQ 31MHZ", -222), ("FUNC:PULS:WIDT 10NS", -222),
    ("FUNC:PULS:TRAN 5NS", -222), ("BURS:NCYC 0", -222), ("OUTP:LOAD 0.5", -222), ("PHAS 400", -222),
    ("FUNC:PULS:WIDT 0.99999E-3", -221), ("FUNC:PULS:TRAN 100NS", -221), ("BURS:INT:PER 1E-6", -221),
    ("VOLT:OFFS 4.99", -221), ("VOLT:LOW 1", -221), ("BURS:NCYC INF", -221),
    ("VOLT ABC", -104), ("FREQ 1 V", -131), ("OUTP", -109), ("VOLT 1,2", -108), ("OUTP:LOAD FOO", -104),
]


@pytest.mark.parametrize(("command", "code"), BAD, ids=[b[0] for b in BAD])
def test_wrong_commands_queue_the_error_and_change_nothing(command, code):
    device, panel, _ = make()
    ask(device, "FUNC PULS;:VOLT 0.2;:FREQ 1E3;:FUNC:PULS:WIDT 100NS;:BURS:STAT ON;:OUTP1 ON")
    assert errors(device) == []
    before, panel_before = copy.deepcopy(device.channels), copy.deepcopy(panel)
    assert ask(device, command) is None
    assert errors(device) == [code]
    assert device.channels == before and panel == panel_before


def test_a_new_period_adjusts_the_pulse_edges_first_then_width_as_the_manual_says():
    device, panel, _ = make()                       # 33522B: 16 ns minimum width, 8.4 ns edges
    ask(device, "FUNC PULS;:FUNC:PULS:TRAN 20NS")
    ask(device, "FREQ 1E5")                         # 10 µs: the 100 µs default width cannot stay
    assert errors(device) == []
    ch = device.channels[1]
    # The width leaves the minimum gap (16 ns); the edges shrink to what fits it: 16 ns / 1.6.
    assert (ch.frequency_hz, ch.width_s, ch.lead_s) == (1e5, pytest.approx(10e-6 - 16e-9), pytest.approx(10e-9))
    assert panel.channels[1].frequency_hz == 1e5 and panel.channels[1].pulse_width_s == ch.width_s
    ask(device, "FUNC:PULS:WIDT 400NS;:FUNC:PULS:TRAN 200NS;:FREQ 2E6")   # 500 ns: the edges shrink first
    ch = device.channels[1]
    assert errors(device) == [] and ch.width_s == pytest.approx(400e-9, rel=1e-12)
    assert ch.lead_s == ch.trail_s == pytest.approx(100e-9 / 1.6)          # into the 100 ns gap
    ask(device, "FREQ 3E6")                         # 333 ns: the width goes, then the edges fit the gap
    ch = device.channels[1]
    assert errors(device) == [] and ch.width_s == pytest.approx(1 / 3e6 - 16e-9)
    assert ch.lead_s == ch.trail_s == pytest.approx(16e-9 / 1.6)
    ask(device, "FUNC:PULS:WIDT 1E-3")              # a width that cannot fit is still refused
    assert errors(device) == [-221]


def test_a_burst_that_outgrows_its_internal_period_lengthens_it():
    device, _, _ = make()
    ask(device, "FUNC PULS;:FREQ 1E3;:BURS:NCYC 20;:BURS:STAT ON")      # 20 ms of pulses, 10 ms period
    assert errors(device) == []
    assert device.channels[1].burst and device.channels[1].burst_period_s == pytest.approx(20e-3 + 1e-6)


def test_burst_and_bus_trigger_record_a_trigger_on_the_panel():
    device, panel, world = make()
    ask(device, "FUNC PULS;:BURS:STAT ON;MODE TRIG;NCYC 3;:TRIG1:SOUR IMM;:OUTP1 ON")
    world.time_s = 1.5
    ask(device, "*TRG")
    assert panel.channels[1].trigger_times_s == []           # trigger source is not BUS
    ask(device, "TRIG1:SOUR BUS")
    world.time_s = 2.5
    ask(device, "*TRG")
    assert panel.channels[1].trigger_times_s == [2.5] and panel.channels[1].burst_cycles == 3
    assert panel.channels[2].trigger_times_s == []           # channel 2 is off
    ask(device, "TRIG1")                                      # immediate trigger, any source
    assert panel.channels[1].trigger_times_s == [2.5, 2.5]
    assert errors(device) == []


# -- the stock QCoDeS driver against the emulated bench -------------------------------------

@pytest.fixture
def close_instruments():
    from qcodes.instrument import Instrument

    yield
    Instrument.close_all()


def single_shot_pulse(pg) -> None:
    """The 50 ns single-shot pulse of reference/instruments.md §2.2, through the stock driver."""
    ch = pg.ch1
    ch.function_type("PULS")
    ch.amplitude(0.25)
    ch.offset(0.125)
    ch.frequency(1000.0)
    ch.pulse_width(5e-08)
    pg.write("SOURce1:FUNCtion:PULSe:TRANsition 8.4e-09")   # the driver has no edge parameter
    ch.burst_state("ON")
    ch.burst_mode("N Cycle")
    ch.burst_ncycles(1)
    ch.trigger_source("BUS")
    ch.output("ON")
    pg.force_trigger()
    assert pg.error() == (0, "No error")


def check_pulse_on_panel(channel) -> None:
    assert (channel.function, channel.amplitude_vpp, channel.offset_v, channel.frequency_hz) == ("PULS", 0.25, 0.125, 1e3)
    assert (channel.pulse_width_s, channel.lead_edge_s, channel.trail_edge_s) == (5e-8, 8.4e-9, 8.4e-9)
    assert (channel.burst_enabled, channel.burst_cycles, channel.trigger_source) == (True, 1, "BUS")
    assert channel.output_enabled and len(channel.trigger_times_s) == 1


def check_snapshot_changes_nothing(pg, panel, device) -> None:
    before, settings = copy.deepcopy(panel), copy.deepcopy(device.channels)
    snapshot = pg.snapshot(update=True)
    assert panel == before and device.channels == settings
    parameters = snapshot["submodules"]["ch1"]["parameters"]
    assert parameters["pulse_width"]["value"] == 5e-8 and parameters["burst_mode"]["value"] == "N Cycle"
    assert parameters["output"]["value"] == "ON" and pg.error() == (0, "No error")


PULSER_33522B = {"pulser": ("keysight_33522b", "drivers.keysight_33500b.Keysight33500B")}


def test_stock_driver_in_process(variant_bench, close_instruments):
    bench, visalib = variant_bench(**PULSER_33522B)
    from qcodes.instrument_drivers.Keysight import Keysight33522B

    address = next(e.address for e in bench.instruments if e.role == "pulser")
    pg = Keysight33522B("pg_in_process", address, visalib=visalib)
    assert pg.IDN()["model"] == "33522B" and pg.num_channels == 2
    single_shot_pulse(pg)
    panel = bench.world.panels["pulser"]
    check_pulse_on_panel(panel.channels[1])
    check_snapshot_changes_nothing(pg, panel, bench.device("pulser"))


@pytest.mark.timeout(30)
def test_stock_driver_over_tcp(variant_bench, close_instruments):
    bench, _ = variant_bench(**PULSER_33522B)
    from qcodes.instrument_drivers.Keysight import Keysight33522B
    from sim_backend.transport.bench_server import BenchServer

    with BenchServer(bench) as server:
        address = next(s.server.visa_address for s in server.instruments if s.role == "pulser")
        pg = Keysight33522B("pg_tcp", address, visalib="@py")
        single_shot_pulse(pg)
        panel = bench.world.panels["pulser"]
        check_pulse_on_panel(panel.channels[1])
        check_snapshot_changes_nothing(pg, panel, bench.device("pulser"))
        pg.close()


@pytest.mark.parametrize("model", ["keysight_33522b", "keysight_33622a"])
def test_stock_driver_period_change_is_fitted_not_silently_refused(model, variant_bench, close_instruments):
    """A stock driver never reads the error queue: a refused frequency would leave the user at
    1 kHz untold. The instrument fits the pulse to the new period instead, and so does this."""
    import qcodes.instrument_drivers.Keysight as drivers

    bench, visalib = variant_bench(pulser=(model, "drivers.keysight_33500b.Keysight33500B"))
    address = next(e.address for e in bench.instruments if e.role == "pulser")
    pg = getattr(drivers, "Keysight33522B" if model == "keysight_33522b" else "Keysight33622A")(
        f"pg_fit_{model}", address, visalib=visalib)
    ch = pg.ch1
    ch.function_type("PULS")
    ch.frequency(1e5)                                   # 10 µs, with the default 100 µs width
    assert ch.frequency() == 1e5
    assert ch.pulse_width() == pytest.approx(1e-5 - MODELS[model].width_min_s)
    ch.burst_ncycles(20)                                # 200 µs of pulses
    ch.burst_state("ON")
    assert ch.burst_state() == "ON"
    assert pg.error() == (0, "No error")
    panel = bench.world.panels["pulser"].channels[1]
    assert (panel.frequency_hz, panel.burst_enabled) == (1e5, True)
    assert panel.pulse_width_s == pytest.approx(ch.pulse_width(), rel=1e-9)     # the reply has 10 digits


DRIVERS = {"keysight_33511b": "Keysight33511B", "keysight_33512b": "Keysight33512B",
           "keysight_33611a": "Keysight33611A", "keysight_33622a": "Keysight33622A"}


@pytest.mark.parametrize("model", sorted(DRIVERS))
def test_stock_driver_per_model(model, variant_bench, close_instruments):
    import qcodes.instrument_drivers.Keysight as drivers

    bench, visalib = variant_bench(pulser=(model, "drivers.keysight_33500b.Keysight33500B"))
    address = next(e.address for e in bench.instruments if e.role == "pulser")
    pg = getattr(drivers, DRIVERS[model])(f"pg_{model}", address, visalib=visalib)
    assert pg.IDN()["model"] == MODELS[model].name and pg.num_channels == MODELS[model].channels
    single_shot_pulse(pg)
    check_pulse_on_panel(bench.world.panels["pulser"].channels[1])
    check_snapshot_changes_nothing(pg, bench.world.panels["pulser"], bench.device("pulser"))


def test_arbitrary_waveform_settings_are_kept_and_a_loaded_waveform_can_be_chosen():
    device, _, _ = make()
    assert ask(device, "FUNC:ARB?") == '"INT:\\BUILTIN\\EXP_RISE.ARB"'
    assert (ask(device, "FUNC:ARB:ADV?"), ask(device, "FUNC:ARB:FILT?"), ask(device, "OUTP:TRIG?")) == \
        ("SRAT", "NORM", "0")
    assert float(ask(device, "FUNC:ARB:SRAT?")) == 40e3
    ask(device, "SOUR2:FUNC:ARB:ADV TRIG;:SOUR2:FUNC:ARB:FILT STEP;:SOUR2:FUNC:ARB:SRAT 1E6;:OUTP:TRIG ON")
    assert (ask(device, "SOUR2:FUNC:ARB:ADV?"), ask(device, "SOUR2:FUNC:ARB:FILT?"), ask(device, "OUTP:TRIG?")) == \
        ("TRIG", "STEP", "1")
    assert float(ask(device, "SOUR2:FUNC:ARB:SRAT?")) == 1e6 and ask(device, "FUNC:ARB:ADV?") == "SRAT"
    ask(device, 'FUNC:ARB "spike"')                                 # not loaded: refused
    assert errors(device) == [-224]
    points = np.linspace(-1, 1, 8).astype(">f4").tobytes()
    device.write_bytes(f'DATA:ARB "spike",#2{len(points)}'.encode() + points + b"\n")   # a binary block
    ask(device, 'FUNC:ARB "spike"')
    assert errors(device) == [] and ask(device, "FUNC:ARB?") == '"spike"'


def test_arbitrary_waveforms_load_per_channel_as_lists_dac_codes_or_blocks():
    device, panel, _ = make()
    ask(device, "DATA:ARB ramp8, -1, -0.5, 0, 0.5, 1, 0.5, 0, -0.5")
    ask(device, "SOUR2:DATA:ARB:DAC dac8, -32767, 0, 32767, 0, -32767, 0, 32767, 0")
    codes = np.array([0, 16384, 32767, 16384, 0, -16384, -32767, -16384], dtype="<i2")
    ask(device, "FORM:BORD SWAP")
    device.write_bytes(b"SOUR2:DATA:ARB:DAC swapped,#216" + codes.tobytes() + b"\n")
    assert errors(device) == [] and ask(device, "FORM:BORD?") == "SWAP"
    ask(device, "FUNC:ARB ramp8;:FUNC ARB;:SOUR2:FUNC:ARB swapped;:SOUR2:FUNC ARB")
    assert errors(device) == []
    np.testing.assert_allclose(panel.channels[1].arb_points, [-1, -0.5, 0, 0.5, 1, 0.5, 0, -0.5])
    np.testing.assert_allclose(panel.channels[2].arb_points, codes / 32767)
    ask(device, "SOUR2:FUNC:ARB ramp8")              # loaded into channel 1's memory, not 2's
    assert errors(device) == [-224] and ask(device, "SOUR2:FUNC:ARB?") == '"swapped"'


@pytest.mark.parametrize("command", [
    "DATA:ARB bad, 0, 0.5, 1.5, 0, 0, 0, 0, 0",        # beyond full scale
    "DATA:ARB short, 0, 0.5, 1, 0",                     # fewer than 8 points
    "DATA:ARB:DAC big, 0, 40000, 0, 0, 0, 0, 0, 0",     # beyond the DAC's codes
    "DATA:ARB",                                         # no name, no points
    "DATA:ARB text, 0, 0, 0, 0, 0, 0, 0, ON",           # not a number
])
def test_a_refused_arbitrary_waveform_changes_nothing(command):
    device, _, _ = make()
    ask(device, "DATA:ARB keep, -1, -1, 1, 1, -1, -1, 1, 1;:FUNC:ARB keep")
    name = command.split()[1].rstrip(",") if " " in command else "keep"
    ask(device, command)
    assert errors(device)                            # refused, with its error
    ask(device, f"FUNC:ARB {name}")
    assert name == "keep" or errors(device) == [-224]
    assert ask(device, "FUNC:ARB?") == '"keep"'


def test_clearing_volatile_memory_returns_the_channel_to_the_default_waveform():
    device, _, _ = make()
    ask(device, "DATA:ARB mine, -1, -1, 1, 1, -1, -1, 1, 1;:FUNC:ARB mine")
    ask(device, "DATA:VOL:CLE")
    assert errors(device) == [] and ask(device, "FUNC:ARB?") == '"INT:\\BUILTIN\\EXP_RISE.ARB"'
    ask(device, "FUNC:ARB mine")
    assert errors(device) == [-224]


@pytest.mark.parametrize("filter_name", ["NORM", "OFF"])
def test_a_playing_arbitrary_waveform_is_the_output_voltage(filter_name):
    """The panel's output (what reaches the chip through the input wiring) is the waveform,
    scaled to the levels, one waveform per period: joined linearly, or held and stepped with
    the filter off."""
    device, panel, world = make()
    points = np.array([-1, -1, 1, 1, 0.5, 0, -0.5, -1])
    ask(device, "DATA:ARB spike," + ",".join(f"{p:g}" for p in points))
    ask(device, f"FUNC:ARB spike;:FUNC ARB;:FUNC:ARB:SRAT 1E8;:FUNC:ARB:FILT {filter_name};"
                ":VOLT:HIGH 0.8;:VOLT:LOW 0;:OUTP ON")
    assert errors(device) == []
    channel = panel.channels[1]
    sample_s, period_s = 1e-8, 8e-8
    start_s = channel.running_since_s
    times_s, volts = channel.output_v(start_s, 3 * period_s, 5 * period_s)
    expected_v = 0.4 + 0.4 * points
    grid_s = 3 * period_s + np.arange(16) * sample_s
    if filter_name == "NORM":
        np.testing.assert_allclose(np.interp(grid_s, times_s, volts), np.tile(expected_v, 2), atol=1e-12)
        middle_s = grid_s[:-1] + sample_s / 2
        np.testing.assert_allclose(np.interp(middle_s, times_s, volts),
                                   (np.tile(expected_v, 2)[:-1] + np.tile(expected_v, 2)[1:]) / 2, atol=1e-12)
    else:
        held_s = grid_s + 0.3 * sample_s           # the DAC's step (8.4 ns edges: half a sample) is over
        np.testing.assert_allclose(np.interp(held_s, times_s, volts), np.tile(expected_v, 2), atol=1e-12)
    assert np.all(np.diff(times_s) > 0) and times_s[0] == 3 * period_s and times_s[-1] == 5 * period_s
    ask(device, "OUTP:POL INV")
    _, inverted_v = channel.output_v(start_s, 3 * period_s, 5 * period_s)
    np.testing.assert_allclose(inverted_v, 0.8 - volts, atol=1e-12)


def test_an_arbitrary_waveform_burst_plays_once_per_trigger_and_rests_at_its_first_point():
    device, panel, world = make()
    ask(device, "DATA:ARB blip, -1, 1, 1, -1, -1, -1, -1, -1;:FUNC:ARB blip;:FUNC ARB;:FUNC:ARB:SRAT 1E8")
    ask(device, ":VOLT:HIGH 0.5;:VOLT:LOW 0;:BURS:MODE TRIG;:BURS:NCYC 2;:TRIG:SOUR BUS;:BURS:STAT ON;:OUTP ON")
    assert errors(device) == []
    channel = panel.channels[1]
    origin_s = world.now_s()
    _, idle_v = channel.output_v(origin_s, 0.0, 1e-6)
    assert np.all(idle_v == 0.0)                        # no trigger yet: resting at the first point
    ask(device, "*TRG")
    times_s, volts = channel.output_v(origin_s, 0.0, 2e-6)
    high_s = times_s[volts == 0.5]
    assert len(high_s) == 4                             # two cycles, each two points at the top
    assert high_s[2] - high_s[0] == pytest.approx(8e-8)  # one waveform (8 points at 100 MSa/s) apart
    assert volts[-1] == 0.0
