"""Keysight Infiniium personality: bytes in/out per model, waveform blocks against the preamble,
*OPC? after :DIGitize, then the stock QCoDeS driver in-process and over TCP."""

from __future__ import annotations

import dataclasses
from contextlib import closing
from pathlib import Path
import time
import uuid

import numpy as np
import pytest
from pyvisa.errors import InvalidBinaryFormat

from sim_backend.scpi.models.keysight_infiniium import KeysightInfiniium
from tests.personalities.personality_helpers import (
    StandInWorld, acquire, ask, errors, infiniium_trace, one_instrument_bench, over_tcp, raw,
)

ADDRESS = "TCPIP0::10.0.0.22::inst0::INSTR"


def make(model: str = "keysight_infiniium"):
    world = StandInWorld()
    world.panels["scope"] = KeysightInfiniium.create_panel(model, {"input_noise_v_rms": 1e-3})
    device = KeysightInfiniium(world, "scope", model, {})
    ask(device, ":SYSTem:HEADer OFF")
    return device, world.panels["scope"], world


@pytest.mark.parametrize("model", sorted(KeysightInfiniium.model_table))
def test_idn_and_limits_per_model(model):
    device, panel, _ = make(model)
    spec = KeysightInfiniium.model_table[model]
    maker, name, _serial, _firmware = ask(device, "*IDN?").split(",")
    assert (maker, name) == ("KEYSIGHT TECHNOLOGIES", spec.identity.model)
    assert ask(device, ":ACQ:POIN:TESTLIMITS?") == f"1,<numeric>16:{spec.max_record_length}"
    assert float(ask(device, ":ACQ:SRAT:TESTLIMITS?").split(":")[1]) == spec.max_sample_rate_hz
    assert panel.max_sample_rate_hz == spec.max_sample_rate_hz and panel.input_noise_v_rms == 1e-3
    assert sorted(panel.channels) == list(range(1, spec.channels + 1))
    ask(device, f":ACQ:SRAT {spec.max_sample_rate_hz * 2}")
    ask(device, f":CHAN{spec.channels + 1}:RANG 1")
    assert errors(device) == [-222, -114]


def test_reset_restores_defaults():
    device, panel, _ = make()
    for text in (":TIM:RANG 1e-6", ":TIM:POS 1e-7", ":TIM:REF LEFT", ":CHAN1:RANG 2", ":CHAN2:DISP ON",
                 ":ACQ:POIN 4000", ":ACQ:SRAT 1e9", ":TRIG:EDGE:SOUR CHAN2", ":TRIG:LEV CHAN2,0.3",
                 ":WAV:FORM WORD", ":ACQ:AVER ON", ":STOP"):
        ask(device, text)
    ask(device, "*RST")
    queries = (":TIM:RANG?", ":TIM:POS?", ":TIM:REF?", ":CHAN1:RANG?", ":CHAN2:DISP?", ":ACQ:POIN?",
               ":ACQ:SRAT?", ":TRIG:EDGE:SOUR?", ":TRIG:LEV? CHAN2", ":WAV:FORM?", ":ACQ:AVER?", ":RST?")
    assert [ask(device, q) for q in queries] == [
        "5.0000000000E-07", "0.0000000000E+00", "CENT", "8.0000000000E-01", "0", "10000",
        "2.0000000000E+10", "CHAN1", "0.0000000000E+00", "ASC", "0", "RUN"]
    assert (panel.record_length, panel.sample_rate_hz, panel.state) == (10_000, 20e9, "armed")
    assert errors(device) == []


ROUND_TRIPS = [  # (set, query, answer): short, long and mixed-case forms
    (":TIMebase:RANGe 2E-6", ":TIM:RANG?", "2.0000000000E-06"),
    (":tim:scal 50ns", ":TIMEBASE:RANGE?", "5.0000000000E-07"),
    (":TIM:POS -20NS", ":TIM:POS?", "-2.0000000000E-08"),
    (":TIM:REF RIGHT", ":TIM:REF?", "RIGH"),
    (":CHANnel2:RANGe 400MV", ":CHAN2:SCAL?", "5.0000000000E-02"),
    (":CHAN3:SCAL 0.02", ":CHAN3:RANG?", "1.6000000000E-01"),
    (":CHAN1:OFFS -0.1", ":CHANNEL1:OFFSET?", "-1.0000000000E-01"),
    (":CHAN4:DISP ON", ":CHAN4:DISP?", "1"),
    (":CHAN2:INP DC50", ":CHAN2:INP?", "DC50"),
    (":ACQ:POIN 2500", ":ACQuire:POINts:ANALog?", "2500"),
    (":ACQ:SRAT 5E9", ":ACQ:SRAT?", "5.0000000000E+09"),
    (":ACQ:SRAT MAX", ":ACQ:SRAT?", "2.0000000000E+10"),
    (":ACQ:BAND 1E9", ":ACQ:BAND?", "1.0000000000E+09"),
    (":ACQ:BAND AUTO", ":ACQ:BAND?", "2.5000000000E+09"),
    (":ACQ:AVER:COUN 64", ":ACQ:AVER:COUN?", "64"),
    (":ACQ:MODE HRES", "ACQuire:MODE?", "HRES"),
    (":TRIGger:EDGE:SOURce CHAN2", ":TRIG:EDGE:SOUR?", "CHAN2"),
    (":TRIG:EDGE:SLOP NEGATIVE", ":TRIG:EDGE:SLOP?", "NEG"),
    (":TRIG:LEV CHAN3,25MV", ":TRIG:LEV? CHAN3", "2.5000000000E-02"),
    (":TRIG:SWE TRIG", ":TRIG:SWE?", "TRIG"),
    (":WAV:SOUR CHAN2", ":WAVeform:SOURce?", "CHAN2"),
    (":WAVEFORM:FORMAT WORD", ":WAV:FORM?", "WORD"),
    (":WAVEFORM:BYTEORDER LSBFirst", ":WAV:BYT?", "LSBF"),
    (":WAVEFORM:STREAMING OFF", ":WAV:STR?", "0"),
    (":FUNC3:DISP ON", "FUNC3:DISP?", "1"),
]


@pytest.mark.parametrize(("command", "question", "answer"), ROUND_TRIPS)
def test_round_trips(command, question, answer):
    device, _, _ = make()
    assert ask(device, command) is None
    assert ask(device, question) == answer
    assert errors(device) == []


@pytest.mark.parametrize(("bad", "code", "question"), [
    (":CHAN1:RANG 100", -222, ":CHAN1:RANG?"),
    (":CHAN1:RANG 1 S", -131, ":CHAN1:RANG?"),
    (":CHAN5:RANG 1", -114, ":CHAN1:RANG?"),
    (":TIM:REF MIDDLE", -224, ":TIM:REF?"),
    (":TIM:RANG", -109, ":TIM:RANG?"),
    (":ACQ:POIN 5E9", -222, ":ACQ:POIN?"),
    (":ACQ:POIN 8", -222, ":ACQ:POIN?"),
    (":TRIG:LEV CHAN1", -109, ":TRIG:LEV? CHAN1"),
    (":TRIG:LEV CHAN9,0.1", -224, ":TRIG:LEV? CHAN1"),
    (":WAV:FORM WORD,1", -108, ":WAV:FORM?"),
    (":WAV:SOUR 'CHAN2'", -104, ":WAV:SOUR?"),
    (":TIMebase:FOO 1", -113, ":TIM:RANG?"),
    (":ACQ:AVER:COUN 1", -222, ":ACQ:AVER:COUN?"),
])
def test_errors_are_queued_and_change_nothing(bad, code, question):
    device, panel, _ = make()
    before, panel_before = ask(device, question), (panel.record_length, panel.channels[1].range_v)
    assert ask(device, bad) is None
    assert errors(device) == [code]
    assert ask(device, question) == before
    assert (panel.record_length, panel.channels[1].range_v) == panel_before


def test_header_on_prefixes_answers():
    device, _, _ = make()
    ask(device, ":SYST:HEAD ON")
    assert ask(device, ":CHAN1:RANG?") == ":CHAN1:RANG 8.0000000000E-01"
    assert ask(device, ":FUNC2?") == ":FUNC2:ADD CHAN1,CHAN2"
    assert ask(device, "*IDN?").startswith("KEYSIGHT")


def _preamble(device) -> list[str]:
    fields = ask(device, ":WAV:PRE?").split(",")
    assert len(fields) == 24
    return fields


def test_horizontal_controls_set_record_and_first_sample():
    device, panel, _ = make()
    for text in (":TIM:RANG 200NS", ":TIM:POS 30NS", ":TIM:REF LEFT", ":ACQ:SRAT 10E9", ":ACQ:POIN AUTO"):
        ask(device, text)
    assert int(ask(device, ":ACQ:POIN?")) == panel.record_length == 2000
    assert panel.first_sample_s == pytest.approx(30e-9)            # record fills the screen
    ask(device, ":ACQ:POIN 4000")                                    # longer record, centred on the screen
    fields = _preamble(device)
    assert (int(fields[2]), float(fields[4]), float(fields[5])) == (4000, pytest.approx(1e-10), pytest.approx(-70e-9))
    assert int(ask(device, ":WAV:POIN?")) == 4000
    assert float(ask(device, ":WAV:XOR?")) == pytest.approx(panel.first_sample_s)


@pytest.mark.parametrize(("setup", "header", "dtype", "shift"), [
    ((":WAV:FORM WORD", ":WAV:BYT LSBF", ":WAV:STR ON"), b"#0", "<i2", 8),
    ((":WAV:FORM WORD", ":WAV:BYT MSBF", ":WAV:STR OFF"), b"#", ">i2", 8),
    ((":WAV:FORM BYTE", ":WAV:STR OFF"), b"#", "i1", 0),
])
def test_waveform_block_matches_preamble(setup, header, dtype, shift):
    device, panel, _ = make()
    for text in (":ACQ:POIN 1000", ":CHAN1:RANG 0.4", ":CHAN1:OFFS 0.05", *setup):
        ask(device, text)
    codes = np.round(100 * np.sin(np.arange(1000) / 40)).astype(np.int16)
    acquire(panel, {1: codes})
    fields = _preamble(device)
    block = raw(device, ":WAV:DATA?")
    assert block.startswith(header) and block.endswith(b"\n")
    if header == b"#0":
        payload = block[2:-1]
    else:
        digits = int(block[1:2])
        payload = block[2 + digits:-1]
        assert int(block[2:2 + digits]) == len(payload)
    data = np.frombuffer(payload, dtype)
    assert data.size == int(fields[2]) == int(ask(device, ":ACQ:POIN?")) == 1000
    assert np.array_equal(data, codes.astype(np.int32) << shift)
    volts = data * float(fields[7]) + float(fields[8])
    assert volts == pytest.approx(panel.records[1].volts, abs=1e-9)
    assert (float(fields[4]), float(fields[5])) == (pytest.approx(panel.sample_interval_s),
                                                    pytest.approx(panel.first_sample_s))
    assert (fields[0], fields[21]) == ("2" if dtype != "i1" else "1", "1")
    assert errors(device) == []


def test_ascii_data_are_volts_and_missing_records_are_reported():
    device, panel, _ = make()
    ask(device, ":ACQ:POIN 100")
    assert raw(device, ":WAV:DATA?") == b"\n"                   # nothing acquired yet
    assert errors(device) == [-230]
    acquire(panel, {1: np.arange(-50, 50)})
    values = np.array(ask(device, ":WAV:DATA?").split(","), float)
    assert values == pytest.approx(panel.records[1].volts)


def test_opc_after_digitize_waits_for_the_acquisition():
    device, panel, _ = make()
    ask(device, ":ACQ:POIN 100")
    assert ask(device, ":DIGitize;*OPC?") is None                 # armed, no trigger yet: no answer
    assert ask(device, ":ADER?") == "0" and errors(device) == [-410]   # a new message interrupts it
    assert ask(device, ":DIGitize;*OPC?") is None
    assert device.read_message() is None
    acquire(panel, {1: np.zeros(100)})                             # the trigger came
    assert device.read_message() == b"1\n"
    assert (ask(device, ":ADER?"), ask(device, ":ADER?"), ask(device, ":RST?")) == ("1", "0", "STOP")
    assert ask(device, ":AST?") == "ADONE"


def test_measurements_on_the_record():
    device, panel, _ = make()
    ask(device, ":ACQ:POIN 1000")
    assert float(ask(device, ":MEAS:VPP? CHAN1")) == 9.99999e37      # no record: undefined
    square = np.where((np.arange(1000) // 100) % 2 == 0, 80, -40)
    acquire(panel, {1: square})
    lsb = panel.channels[1].lsb_v
    assert float(ask(device, ":MEAS:VPP? CHAN1")) == pytest.approx(120 * lsb)
    assert float(ask(device, ":MEAS:VAMP? CHAN1")) == pytest.approx(120 * lsb, rel=0.02)
    assert float(ask(device, ":MEAS:FREQ? CHAN1")) == pytest.approx(panel.sample_rate_hz / 200, rel=1e-6)
    assert float(ask(device, ":MEAS:VAV? DISP,CHAN1")) == pytest.approx(20 * lsb)


# -- channels per model: 8 on the MXR208A, 4 elsewhere ------------------------------------------

EIGHT_CHANNEL = "keysight_mxr208a"
FOUR_CHANNEL = sorted(m for m, spec in KeysightInfiniium.model_table.items() if spec.channels == 4)


def test_channel_count_per_model():
    counts = {model: spec.channels for model, spec in KeysightInfiniium.model_table.items()}
    assert counts == {"keysight_infiniium": 4, "keysight_dsos254a": 4, "keysight_dsos404a": 4,
                      "keysight_mxr208a": 8, "keysight_mxr404a": 4}


def test_mxr208a_answers_on_channels_5_to_8():
    device, panel, _ = make(EIGHT_CHANNEL)
    for text in (":CHANnel8:RANGe 2", ":CHAN8:OFFS -0.1", ":CHAN8:DISP ON", ":CHAN6:INP DC50", ":CHAN5:SCAL 0.05",
                 ":TRIG:EDGE:SOUR CHANNEL8", ":TRIG:LEV CHAN8,0.25", ":TRIG:LEV CHAN5,-0.1", ":MEAS:SOUR CHAN7"):
        assert ask(device, text) is None, text
    queries = (":CHANnel8:RANGe?", ":CHAN8:OFFS?", ":CHAN8:DISP?", ":CHAN6:INP?", ":CHAN5:RANG?",
               ":TRIG:EDGE:SOUR?", ":TRIG:LEV? CHAN8", ":TRIG:LEV? CHAN5", ":MEAS:SOUR?", ":CHAN7:DIFF?")
    assert [ask(device, q) for q in queries] == [
        "2.0000000000E+00", "-1.0000000000E-01", "1", "DC50", "4.0000000000E-01",
        "CHAN8", "2.5000000000E-01", "-1.0000000000E-01", "CHAN7", "0"]
    assert (panel.channels[8].range_v, panel.channels[8].displayed) == (2.0, True)
    assert (panel.trigger.source_channel, panel.trigger.level_v) == (8, 0.25)
    assert errors(device) == []
    for text in (":CHAN9:RANG 1", ":WAV:SOUR CHAN9", ":TRIG:EDGE:SOUR CHAN9"):
        ask(device, text)
    assert errors(device) == [-114, -224, -224]
    ask(device, "*RST")
    assert [ask(device, q) for q in (":CHAN8:RANG?", ":CHAN6:INP?", ":TRIG:LEV? CHAN8")] == [
        "8.0000000000E-01", "DC", "0.0000000000E+00"]


def test_mxr208a_sends_the_waveform_of_channel_7():
    device, panel, _ = make(EIGHT_CHANNEL)
    for text in (":ACQ:POIN 1000", ":CHAN7:RANG 0.4", ":CHAN7:OFFS 0.05", ":CHAN7:INP DC50", ":CHAN7:DISP ON",
                 ":WAVeform:SOURce CHANnel7", ":WAV:FORM WORD", ":WAV:BYT LSBF", ":WAV:STR OFF"):
        ask(device, text)
    codes = np.round(100 * np.sin(np.arange(1000) / 40)).astype(np.int16)
    acquire(panel, {1: np.zeros(1000), 7: codes})
    fields = _preamble(device)
    block = raw(device, ":WAVeform:DATA?")
    digits = int(block[1:2])
    payload = block[2 + digits:-1]
    assert int(block[2:2 + digits]) == len(payload)
    data = np.frombuffer(payload, "<i2")
    assert data.size == int(fields[2]) == 1000
    assert np.array_equal(data, codes.astype(np.int32) << 8)
    assert data * float(fields[7]) + float(fields[8]) == pytest.approx(panel.records[7].volts, abs=1e-9)
    # Coupling (DC50: 2), range and offset in the preamble are channel 7's.
    assert (fields[10], float(fields[13]), float(fields[14])) == ("2", pytest.approx(0.4), pytest.approx(0.05))
    assert float(ask(device, ":MEAS:VPP? CHAN7")) == pytest.approx(200 * panel.channels[7].lsb_v)
    assert errors(device) == []


@pytest.mark.parametrize("model", FOUR_CHANNEL)
def test_four_channel_models_refuse_channel_5(model):
    device, panel, _ = make(model)
    refused = [(":CHAN5:RANG 1", -114), (":CHAN5:RANG?", -114), (":CHANnel5:DISPlay ON", -114),
               (":CHAN5:INP DC50", -114), (":WAV:SOUR CHAN5", -224), (":TRIG:EDGE:SOUR CHAN5", -224),
               (":TRIG:LEV CHAN5,0.1", -224), (":TRIG:LEV CHAN5", -224), (":TRIG:LEV? CHAN5", -224),
               (":MEAS:SOUR CHAN5", -224), (":MEAS:VPP? CHAN5", -224)]
    for text, code in refused:
        assert ask(device, text) is None, text
        assert errors(device) == [code], text
    assert [ask(device, q) for q in (":WAV:SOUR?", ":TRIG:EDGE:SOUR?", ":MEAS:SOUR?")] == ["CHAN1"] * 3
    assert sorted(panel.channels) == [1, 2, 3, 4] and panel.trigger.source_channel == 1


def test_emulator_channels_setting_restates_the_model():
    assert sorted(KeysightInfiniium.create_panel(EIGHT_CHANNEL, {"channels": 8}).channels) == list(range(1, 9))
    with pytest.raises(ValueError, match=r"^emulator\.channels: 4 disagrees with the model: the MXR208A has 8 "):
        KeysightInfiniium.create_panel(EIGHT_CHANNEL, {"channels": 4})
    with pytest.raises(ValueError, match="the DSOS254A has 4 channels"):
        KeysightInfiniium.create_panel("keysight_dsos254a", {"channels": 8})


# -- the stock QCoDeS driver ----------------------------------------------------------------------

@pytest.fixture
def driver_bench():
    device, panel, world = make()
    ask(device, ":SYST:HEAD ON")          # as at power-on: the driver turns it off itself
    with one_instrument_bench(device, "scope", "keysight_infiniium", ADDRESS) as (bench, path):
        yield device, panel, bench, path


def _use_driver(scope, device, panel, snapshot_budget_s: float):
    scope.timebase_range(400e-9)
    scope.acquire_points(2000)
    scope.sample_rate(5e9)
    scope.ch1.range(0.5)
    scope.ch1.offset(0.01)
    scope.ch2.display(True)
    scope.ch1.trigger_level(0.02)
    scope.trigger_edge_source("CHAN1")
    assert scope.ask("*OPC?") == "1"          # over TCP, writes are done once a query is answered
    before = (panel.state, panel.acquisitions_completed, panel.record_length, panel.first_sample_s)
    scope.snapshot(update=True)
    started = time.perf_counter()
    snapshot = scope.snapshot(update=True)
    assert time.perf_counter() - started < snapshot_budget_s
    assert (panel.state, panel.acquisitions_completed, panel.record_length, panel.first_sample_s) == before
    assert snapshot["parameters"]["acquire_points"]["value"] == 2000
    assert snapshot["submodules"]["ch1"]["parameters"]["range"]["value"] == 0.5
    scope.auto_digitize(False)
    scope.stop()
    codes = np.round(60 * np.cos(np.arange(2000) / 50)).astype(np.int16)
    acquire(panel, {1: codes, 2: -codes})
    for channel in (scope.ch1, scope.ch2):
        trace = infiniium_trace(scope, channel)
        assert trace.shape == (2000,)
        assert trace == pytest.approx(panel.records[channel.channel].volts, abs=1e-9)
    assert scope.ch1.time_axis() == pytest.approx(panel.records[1].time_s)
    with pytest.raises(InvalidBinaryFormat, match="maximum supported dimension"):
        scope.ch1.trace()       # qcodes 0.58 passes container=npt.NDArray, which pyvisa cannot build
    assert errors(device) == []


def test_stock_driver_in_process(driver_bench):
    from qcodes.instrument_drivers.Keysight import KeysightInfiniium as Driver

    device, panel, _, path = driver_bench
    with closing(Driver(f"inf_{uuid.uuid4().hex[:8]}", ADDRESS, visalib=f"{path}@nwlab", timeout=2)) as scope:
        _use_driver(scope, device, panel, snapshot_budget_s=1.0)


@pytest.mark.timeout(30)
def test_stock_driver_over_tcp(driver_bench):
    from qcodes.instrument_drivers.Keysight import KeysightInfiniium as Driver

    device, panel, bench, _ = driver_bench
    with (over_tcp(bench) as address,
          closing(Driver(f"inf_{uuid.uuid4().hex[:8]}", address, visalib="@py", timeout=2,
                         silence_pyvisapy_warning=True)) as scope):
        # pyvisa-py leaves Nagle on: each write that follows a write waits ~40 ms for the
        # server's delayed ACK (the snapshot has 48 such pairs), hence the larger budget.
        _use_driver(scope, device, panel, snapshot_budget_s=5.0)


def test_stock_driver_with_eight_channels_reads_channel_7():
    from qcodes.instrument_drivers.Keysight import KeysightInfiniium as Driver

    device, panel, _ = make(EIGHT_CHANNEL)
    with (one_instrument_bench(device, "scope", EIGHT_CHANNEL, ADDRESS) as (_, path),
          closing(Driver(f"inf_{uuid.uuid4().hex[:8]}", ADDRESS, visalib=f"{path}@nwlab", timeout=2,
                         channels=8)) as scope):
        assert len(scope.channels) == 8
        scope.acquire_points(2000)
        scope.ch8.range(0.5)
        scope.ch7.display(True)
        scope.ch7.offset(0.01)
        scope.ch6.trigger_level(0.02)
        scope.trigger_edge_source("CHAN6")
        assert (scope.ch8.range(), scope.ch6.trigger_level(), scope.trigger_edge_source()) == (0.5, 0.02, "CHAN6")
        assert (panel.channels[8].range_v, panel.trigger.source_channel) == (0.5, 6)
        snapshot = scope.snapshot(update=True)
        assert snapshot["submodules"]["ch8"]["parameters"]["range"]["value"] == 0.5
        scope.auto_digitize(False)
        scope.stop()
        codes = np.round(60 * np.cos(np.arange(2000) / 50)).astype(np.int16)
        acquire(panel, {7: codes})
        assert infiniium_trace(scope, scope.ch7) == pytest.approx(panel.records[7].volts, abs=1e-9)
        assert scope.ch7.time_axis() == pytest.approx(panel.records[7].time_s)
        assert scope.ch7.measure.vpp() == pytest.approx(120 * panel.channels[7].lsb_v)
        scope.measure.source("CHAN7")
        assert ask(device, ":MEAS:SOUR?") == "CHAN7"
        assert errors(device) == []


# -- end to end on the emulated bench: bias, one input pulse, the chip, the scope -----------------

THRESHOLD_A = 36.8e-6      # default-neuron.yaml: firing threshold for a 2 ns input pulse at 2 K
INPUT_A_PER_V = 10 ** (-20 / 20) / 2000.0   # emulated.yaml: 20 dB attenuator, 2 kOhm series resistor
GAIN = 10 ** (50 / 20)                       # emulated.yaml: readout of node m


@pytest.fixture
def neuron_bench(tmp_path):
    import yaml

    from sim_backend.emulator import build_bench

    root = Path(__file__).resolve().parents[2]
    station = yaml.safe_load((root / "stations" / "emulated.yaml").read_text())
    station["chip"] = str(root / "stations" / "chips" / "default-neuron.yaml")
    station["clock"]["acceleration"] = 0          # lab time moves only when the test says so
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(station))
    bench = build_bench(path)
    world = bench.world
    bias = world.panels["bias"]
    bias.source_function, bias.current_level_a, bias.output_enabled = "current", 22e-6, True
    return bench


def _spike_trace(bench, input_a: float):
    """One pulse of `input_a` at the chip; the scope, triggered on the input monitor, sees node m."""
    world, scope = bench.world, bench.device("scope")
    pulse = world.panels["pulser"].channels[1]
    amplitude_v = input_a / INPUT_A_PER_V
    pulse.function, pulse.amplitude_vpp, pulse.offset_v = "PULS", amplitude_v, amplitude_v / 2
    pulse.pulse_width_s, pulse.lead_edge_s, pulse.trail_edge_s = 2e-9, 0.2e-9, 0.2e-9
    # Free running at 1 kHz: one pulse per record. (A BUS-triggered burst is not found by the
    # acquisition: its pulse comes TRIGGER_LATENCY_S = SEARCH_S after the trigger; see report.)
    pulse.frequency_hz, pulse.running_since_s, pulse.output_enabled = 1e3, 1e-6, True
    for text in (":SYST:HEAD OFF", ":TIM:RANG 20E-9", ":TIM:REF LEFT", ":TIM:POS -5E-9", ":ACQ:SRAT 20E9",
                 ":CHAN1:RANG 0.4", ":CHAN1:OFFS 0.1", ":CHAN2:DISP ON", ":CHAN2:RANG 0.4", ":CHAN2:OFFS 0.1",
                 ":TRIG:EDGE:SOUR CHAN2", f":TRIG:LEV CHAN2,{amplitude_v * 0.1 / 2}", ":WAV:FORM WORD",
                 ":WAV:BYT LSBF"):
        ask(scope, text)
    assert ask(scope, ":DIGitize;*OPC?") is None        # the next pulse is still to come
    world.clock.advance(1e-3)                               # one period of the pulse train
    assert scope.read_message() == b"1\n"                 # now it came: the acquisition completed
    ask(scope, ":WAV:SOUR CHAN1")
    fields = ask(scope, ":WAV:PRE?").split(",")
    block = raw(scope, ":WAV:DATA?")
    codes = np.frombuffer(block[2:-1], "<i2")
    assert codes.size == int(fields[2]) == 400
    volts = codes * float(fields[7]) + float(fields[8])
    time_s = float(fields[5]) + float(fields[4]) * np.arange(codes.size)
    assert errors(scope) == []
    return time_s, volts, world.last_capture


def test_spike_above_threshold_none_below_none_above_tc(neuron_bench):
    t_above, above, truth = _spike_trace(neuron_bench, 1.6 * THRESHOLD_A)
    wm_switches = truth.chip.switch_times_s("wm")
    assert wm_switches.size >= 1                              # ground truth: the neuron fired
    from sim_backend.bench.signal_processing import low_pass

    # Ground truth through the same 2 GHz chain the scope sees (wiring bandwidth, emulated.yaml).
    chip_time_s = truth.chip.time_s              # relative to the capture's origin, like trigger_rel_s
    band_limited_v = low_pass(truth.chip.node_voltage_v["m"], chip_time_s[1] - chip_time_s[0], 2.0e9)
    expected = np.interp(t_above + truth.trigger_rel_s, chip_time_s, band_limited_v) * GAIN
    assert above.max() == pytest.approx(expected.max(), rel=0.15)         # amplitude through the chain
    assert t_above[above.argmax()] == pytest.approx(t_above[expected.argmax()], abs=0.3e-9)

    t_below, below, truth_below = _spike_trace(neuron_bench, 0.5 * THRESHOLD_A)
    assert truth_below.chip.switch_times_s("wm").size == 0
    # Below threshold the chip is linear: scaled to the same input, the baseline has no spike.
    residual = above - below * (1.6 / 0.5)
    spike_v = residual.max()
    assert spike_v > 0.02                                   # ~0.14 mV at node m, times the 50 dB chain
    half = t_above[residual >= spike_v / 2]
    assert 1e-9 < half[-1] - half[0] < 5e-9                  # FWHM of order the chip file's 2.7 ns

    cryostat = neuron_bench.world.panels["cryostat"]
    cryostat.state = dataclasses.replace(cryostat.state, temperature_k=12.0)   # above T_c = 10.5 K
    t_hot, hot, truth_hot = _spike_trace(neuron_bench, 1.6 * THRESHOLD_A)
    assert truth_hot.chip.switch_times_s("wm").size == 0    # normal wires do not switch
    # A normal (resistive) chip is linear: the response scales with the input, with no spike on
    # top (compared where neither trace is clipped at the screen edge).
    _, hot_low, _ = _spike_trace(neuron_bench, 0.5 * THRESHOLD_A)
    on_screen = (hot < 0.29) & (hot_low < 0.29) & (hot > -0.09)
    assert on_screen.sum() > 100
    residual_hot = hot - np.median(hot) - (hot_low - np.median(hot_low)) * (1.6 / 0.5)
    assert np.abs(residual_hot[on_screen]).max() < spike_v / 2


# -- an 8-channel scope in a station: the lab opens it and captures on channels 5-8 ----------------

def _station_with_mxr208a(tmp_path, **emulator) -> Path:
    """The emulated station with an MXR208A driven as 8 channels, its readouts moved from 1-3 to 5-7."""
    import yaml

    root = Path(__file__).resolve().parents[2]
    tree = yaml.safe_load((root / "stations" / "emulated.yaml").read_text())
    tree["chip"] = str(root / "stations" / "chips" / "default-neuron.yaml")
    path = tmp_path / "station.yaml"
    bench_library = f"{path}#mxr-{uuid.uuid4().hex[:10]}@nwlab"     # a bench of its own
    for instrument in tree["instruments"].values():
        instrument["visalib"] = bench_library
    scope = tree["instruments"]["scope"]
    scope["emulator"] = {**scope["emulator"], "model": EIGHT_CHANNEL, **emulator}
    scope["options"] = {**(scope.get("options") or {}), "channels": 8}
    for readout in tree["wiring"]["readout"]:
        readout["scope_channel"] += 4
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.mark.timeout(60)
def test_station_with_mxr208a_captures_on_channels_5_to_8(tmp_path):
    from lab.execution.instruments import open_instruments
    from lab.execution.station_checks import load_station

    station = load_station(_station_with_mxr208a(tmp_path))    # readouts on 5-7 pass the channel checks
    monitor = next(r.scope_channel for r in station.readouts if r.monitor == "pulse_input")
    assert monitor == 6
    with open_instruments(station, name_prefix=f"mxr{uuid.uuid4().hex[:6]}_") as instruments:
        scope, pulser = instruments.roles["oscilloscope"], instruments.roles["pulse_generator"]
        assert (scope.IDN()["model"], scope.channel_count, len(scope.channels)) == ("MXR208A", 8, 8)
        pulser.configure_pulse(amplitude_v=0.8, width_s=50e-9, edge_s=9e-9, period_s=1e-6, count=1)
        pulser.set_output_enabled(True)
        scope.configure_acquisition(channel_ranges_v={5: 0.4, 6: 0.16, 7: 0.4, 8: 0.4}, record_length=2000,
                                    sample_rate_hz=16e9, pretrigger_s=20e-9, trigger_channel=monitor,
                                    trigger_level_v=0.02)
        scope.arm_single()
        pulser.trigger()
        assert scope.wait_acquired(5.0)
        traces = scope.fetch_traces([5, 6, 7, 8])
        assert set(traces.voltage_v) == {5, 6, 7, 8} and traces.time_s.shape == (2000,)
        assert traces.time_s[0] == pytest.approx(-20e-9, abs=1e-12)
        # The -20 dB pick-off of the 0.8 V pulse crosses the 20 mV trigger level near t = 0.
        crossing_s = traces.time_s[np.argmax(traces.voltage_v[monitor] > 0.02)]
        assert abs(crossing_s) < 2e-9
        assert traces.voltage_v[5].max() > 0.05                  # node m through the 50 dB chain
        assert np.abs(traces.voltage_v[8]).max() < 0.01         # channel 8 is not wired: noise only
        assert scope.snapshot(update=True)["submodules"]["ch8"]["parameters"]["range"]["value"] == 0.4


def test_emulator_channels_disagreeing_with_the_model_is_refused(tmp_path):
    from contracts.files.station import StationError
    from sim_backend.emulator import build_bench

    build_bench(_station_with_mxr208a(tmp_path, channels=8))
    with pytest.raises(StationError) as refused:
        build_bench(_station_with_mxr208a(tmp_path, channels=4))
    assert str(refused.value).endswith("station.yaml: instruments.scope: emulator.channels: 4 disagrees with "
                                       "the model: the MXR208A has 8 channels")
    assert "\n" not in str(refused.value)
