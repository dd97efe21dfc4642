"""PyMeasure's stock `Keysight81160A` (0.16) against the emulated 81160A, in-process and over
TCP: the channel set-up methods, and the SCPI added for them byte by byte (arguments refused
as the manual says). Its property walk is in tests/conformance/test_pymeasure_conformance.py."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from sim_backend.transport._bench_lookup import set_bench_opener
from tests.conformance.stock_bench import no_nagle, reach
from tests.personalities.personality_helpers import ask, errors
from tests.personalities.test_keysight_81160a import make

pytest.importorskip("pymeasure", reason="pymeasure is a dev dependency; install .[dev]")

def open_generator(transport: str, tmp_path):
    """PyMeasure's Keysight81160A on a fresh bench whose pulser is an 81160A."""
    from pymeasure.instruments.keysight import Keysight81160A

    reached = reach("keysight_81160a", transport, tmp_path)
    generator = Keysight81160A(reached.address, visa_library=reached.visa_library, timeout=400,
                               read_termination="\n", write_termination="\n")
    if reached.server is not None:
        no_nagle(generator.adapter.connection)
    return generator, reached


@pytest.fixture(params=["inproc", "tcp"])
def generator(request, tmp_path):
    previous = set_bench_opener(None)          # reach() installs the test's own bench
    generator, reached = open_generator(request.param, tmp_path)
    try:
        yield generator
    finally:
        generator.adapter.close()
        reached.stop()
        set_bench_opener(previous)


def queued_errors(generator) -> list[int]:
    codes = []
    while not (answer := generator.ask("SYST:ERR?")).startswith("+0,"):
        codes.append(int(answer.split(",")[0]))
    return codes


def test_pymeasure_channel_set_up_methods(generator):
    """The driver's waveform and APPLy methods run and the instrument holds what they set."""
    ch = generator.channels[1]
    assert ch.free_memory_slots == 4 and ch.waveforms == ""
    # save_waveform writes the block with no terminator (PyMeasure's write_binary_values sends
    # termination=""): the instrument takes it when the bus's END ends it; neither a raw socket
    # nor this emulator's in-process transport marks END without a LF. So the block goes as the
    # driver builds it, terminated, then the COPY save_waveform sends.
    generator.adapter.write_binary_values(":DATA1:DAC VOLATILE,", [-8191, -6143, 0, 6143, 8191], datatype="h",
                                          is_big_endian=True, termination="\n")
    ch.write(":DATA1:COPY spike, VOLATILE")
    assert ch.free_memory_slots == 3 and ch.waveforms == "SPIKE"
    ch.write(":FUNC1:USER SPIKE")
    ch.shape = "USER"
    assert generator.ask(":FUNC1:USER?") == "SPIKE" and ch.shape == "USER"
    ch.shape = "PULS"
    ch.delete_waveform("spike")
    assert ch.free_memory_slots == 4 and generator.ask(":FUNC1:USER?") == "VOLATILE"
    ch.apply_pulse(1e6, 0.5, 0.1)
    assert (ch.shape, ch.frequency, ch.amplitude, ch.offset) == ("PULS", 1e6, 0.5, 0.1)
    ch.apply_sin(2e6, 1.0, 0.0)
    ch.apply_square(3e6, 1.0, 0.0)
    ch.apply_noise(0.5, 0.2)
    assert (ch.shape, ch.frequency, ch.amplitude, ch.offset) == ("NOIS", 3e6, 0.5, 0.2)
    ch.apply_dc(0.3)
    assert (ch.shape, ch.offset) == ("DC", 0.3)
    ch.apply_user_waveform(1e3, 1.0, 0.0)
    ch.trigger_mode, ch.trigger_count = "MAN", 3
    assert (ch.shape, ch.trigger_mode, ch.trigger_count) == ("USER", "MAN", 3)
    assert queued_errors(generator) == []


# -- the added SCPI, byte by byte --------------------------------------------------------------

def dac_block(codes, dtype=">i2") -> bytes:
    data = np.asarray(codes).astype(dtype).tobytes()
    return f"#{len(str(len(data)))}{len(data)}".encode() + data


def load(device, text: str, block: bytes) -> None:
    device.write_bytes(text.encode() + block + b"\n")
    assert device.read_message() is None


def test_user_waveform_memory():
    device, _, _ = make()
    assert (ask(device, ":DATA:NVOL:FREE?"), ask(device, ":DATA:NVOL:CAT?")) == ("4", '""')
    load(device, ":DATA1:DAC VOLATILE,", dac_block([-8191, 0, 8191]))
    for name in ("A1", "B_2", "C3", "D4"):
        ask(device, f":DATA1:COPY {name},VOLATILE")
    assert ask(device, ":DATA2:NVOL:CAT?") == '"A1","B_2","C3","D4"' and ask(device, ":DATA:NVOL:FREE?") == "0"
    ask(device, ":DATA:COPY E5")                            # no free slot
    ask(device, ":DATA:COPY A1")                            # the same name is overwritten
    ask(device, ":FUNC2:USER b_2;:FUNC2 USER")
    assert ask(device, ":SOUR2:FUNC:USER?") == "B_2"
    ask(device, ":DATA:DEL B_2")                            # playing on channel 2
    ask(device, ":DATA:DEL:ALL")
    assert errors(device) == [-225, -221, -221]
    ask(device, ":FUNC2 SIN;:DATA:DEL:ALL")
    assert (ask(device, ":DATA:NVOL:CAT?"), ask(device, ":FUNC2:USER?")) == ('""', "VOLATILE")
    ask(device, ":FORM:BORD SWAP")
    load(device, ":DATA2:DAC VOLATILE,", dac_block([1, 2], "<i2"))
    assert (ask(device, ":FORM:BORD?"), device.memory.volatile[2].tolist()) == ("SWAP", [1, 2])
    assert errors(device) == []


BAD_DATA = [
    (":DATA:DAC VOLATILE,", dac_block([8192, 0]), -222),          # beyond 14 bits
    (":DATA:DAC VOLATILE,", dac_block([5]), -222),                # fewer than 2 points
    (":DATA:DAC VOLATILE,", b"#13\x00\x01\x02", -161),           # half a point
    (":DATA:DAC USER,", dac_block([1, 2]), -224),                 # only VOLATILE is loaded
]


@pytest.mark.parametrize(("header", "block", "code"), BAD_DATA, ids=[str(b[2]) + b[0] for b in BAD_DATA])
def test_bad_waveform_data_is_refused_and_changes_nothing(header, block, code):
    device, _, _ = make()
    load(device, ":DATA:DAC VOLATILE,", dac_block([1, -1]))
    before = copy.deepcopy(device.memory.volatile)
    device.write_bytes(header.encode() + block + b"\n")
    assert device.read_message() is None and errors(device) == [code]
    assert [v.tolist() for v in device.memory.volatile.values()] == [v.tolist() for v in before.values()]


BAD = [
    (":DATA:COPY VOLATILE", -224), (":DATA:COPY 1ABC", -224), (":DATA:COPY ABCDEFGHIJKLM", -224),
    (":DATA2:COPY WAVE", -221),                               # channel 2's volatile memory is empty
    (":DATA:DEL NONE", -224), (":FUNC:USER NONE", -224), (":VOLT:UNIT WATT", -224),
    (":FUNC PULS;:VOLT:UNIT VRMS", -221), (":VOLT:UNIT DBM;:OUTP:LOAD INF", -221),
    (":FUNC SQU;:FREQ 300MHZ;:FUNC:SQU:DCYC 10", -221), (":FUNC:SQU:DCYC 101", -222),
    (":FUNC:RAMP:SYMM -1", -222), (":PHAS 400", -222), (":TRAC:CHAN2 ON", -114), (":APPL:PULS 400MHZ", -221),
    (":APPL:SIN 1E6,7", -222), (":APPL:SIN 1E6,1,4.9", -221), (":APPL:TRI 1E3", -113),
    (":BURS:STAT ON", -113), (":BURS1:NCYC 5", -113), (":FUNC:ARB:SRAT 1E6", -113), (":OUTP:TRIG ON", -113),
    (":FUNC:PULS:TRAN:BOTH 5NS", -113), (":TRIG2:COUN3 4", -114),
]


@pytest.mark.parametrize(("command", "code"), BAD, ids=[b[0] for b in BAD])
def test_refused_commands_queue_the_manuals_error_and_change_nothing(command, code):
    device, panel, _ = make()
    load(device, ":DATA:DAC VOLATILE,", dac_block([1, -1]))
    ask(device, ":DATA:COPY KEEP")
    *setup, last = command.split(";")
    for text in setup:
        ask(device, text)
    assert errors(device) == []
    before, panel_before = copy.deepcopy(device.channels), copy.deepcopy(panel)
    nonvolatile = dict(device.memory.nonvolatile)
    assert ask(device, last if last.startswith(":") else ":" + last) is None
    assert errors(device) == [code]
    assert device.channels == before and panel == panel_before and device.memory.nonvolatile == nonvolatile


ROUND_TRIPS = [
    (":VOLT:UNIT VRMS", ":VOLT?", "+3.53553390593274E-01"),       # 1 Vpp sine
    (":VOLT2:UNIT DBM;:VOLT2 0", ":VOLT2:UNIT?;:SOUR2:VOLT?", "DBM;+0.00000000000000E+00"),
    (":FUNC:SQU:DCYC 25", ":FUNCtion1:SQUare:DCYCle?", "+2.50000000000000E+01"),
    (":FUNC2:RAMP:SYMM 40", ":SOUR2:FUNC:RAMP:SYMM?", "+4.00000000000000E+01"),
    (":PHAS2 -90", ":SOUR2:PHASe:ADJust?", "-9.00000000000000E+01"),
    (":FUNC PULS;:FUNC:PULS:WIDT 20NS", ":PULS:WIDT1?", "+2.00000000000000E-08"),
    (":FUNC PULS;:FUNC1:PULS:DCYC 20", ":FUNC:PULS:WIDT?", "+2.00000000000000E-07"),
    (":FUNC PULS;:FUNC:PULS:TRAN 2NS", ":PULS:TRAN:TRA?;:FUNC:PULS:TRAN:LEAD?",
     "+2.00000000000000E-09;+2.00000000000000E-09"),
    (":FUNC:PULS:HOLD DCYC", ":PULS:HOLD?", "DCYC"),
    (":TRIG2:COUN 7", ":TRIG:COUN2?;:TRIG2:COUN?", "7;7"),
    (":APPL2:PULS 2E6,0.5,0.1", ":FUNC2?;:FREQ2?;:VOLT2?;:VOLT2:OFFS?",
     "PULS;+2.00000000000000E+06;+5.00000000000000E-01;+1.00000000000000E-01"),
    (":APPL:DC DEF,DEF,0.3", ":FUNC?;:FREQ?;:VOLT?;:VOLT:OFFS?",
     "DC;+1.00000000000000E+06;+1.00000000000000E+00;+3.00000000000000E-01"),
    (":FREQ 2E6;:TRAC:CHAN1 ON;:FREQ 3E6", ":TRAC:CHAN1?;:FREQ2?", "1;+3.00000000000000E+06"),
]


@pytest.mark.parametrize(("setting", "query", "answer"), ROUND_TRIPS, ids=[r[0] for r in ROUND_TRIPS])
def test_round_trip(setting, query, answer):
    device, _, _ = make()
    ask(device, setting)
    assert ask(device, query) == answer
    assert errors(device) == []


def test_coupled_frequency_is_refused_on_both_channels_when_one_cannot_take_it():
    device, panel, _ = make()
    ask(device, ":FUNC2 PULS;:TRAC:CHAN ON")
    before, panel_before = copy.deepcopy(device.channels), copy.deepcopy(panel)
    ask(device, ":FREQ 400MHZ")                           # a sine could, channel 2's pulse cannot
    assert errors(device) == [-221] and device.channels == before and panel == panel_before
    single, _, _ = make(channels=1)
    ask(single, ":TRAC:CHAN1 ON")
    assert errors(single) == [-113]


def test_square_duty_cycle_reaches_the_panel():
    device, panel, _ = make()
    ask(device, ":FUNC SQU;:FREQ 1E6;:FUNC:SQU:DCYC 20")
    assert panel.channels[1].pulse_width_s == pytest.approx(200e-9)


def test_a_user_waveform_plays_once_per_period_at_the_channel_levels():
    """What reaches the chip: the waveform's codes in full scale mapped to low..high, the whole
    waveform once per period (the 81160A's USER function), point by point."""
    device, panel, _ = make()
    codes = np.array([-8191, 8191, 8191, 0, -8191, -8191, -8191, -8191])
    load(device, ":DATA1:DAC VOLATILE,", dac_block(codes))
    ask(device, ":FUNC1 USER;:FREQ1 10MHZ;:VOLT1:HIGH 0.6;:VOLT1:LOW 0;:OUTP1 ON")
    assert errors(device) == []
    channel = panel.channels[1]
    period_s = 1e-7
    start_s = channel.running_since_s
    times_s, volts = channel.output_v(start_s, 2 * period_s, 3 * period_s)
    point_times_s = 2 * period_s + np.arange(8) * period_s / 8
    np.testing.assert_allclose(np.interp(point_times_s, times_s, volts), 0.3 + 0.3 * codes / 8191, atol=1e-12)
    load(device, ":DATA1:DAC VOLATILE,", dac_block(-codes))            # reloaded while playing
    _, inverted_v = channel.output_v(start_s, 2 * period_s, 3 * period_s)
    np.testing.assert_allclose(inverted_v, 0.6 - volts, atol=1e-12)
    ask(device, ":FREQ1 1MHZ;:FUNC1 PULS")
    assert errors(device) == [] and channel.function == "PULS"
