"""Tektronix DPO/MSO personality: bytes in/out per model, horizontal modes, CURVe? blocks against
WFMOutpre (field by field and as the whole preamble), HORizontal:RECOrdlength, measurement
slots, single sequence, then the stock QCoDeS driver in-process and over TCP (its full
snapshot: 2,487 messages)."""

from __future__ import annotations

import socket
from contextlib import closing
import time
import uuid

import numpy as np
import pytest

from sim_backend.scpi.models.tektronix_dpo import TektronixDPO
from tests.personalities.personality_helpers import StandInWorld, acquire, ask, one_instrument_bench, over_tcp, raw

ADDRESS = "TCPIP0::10.0.0.24::inst0::INSTR"


def make(model: str = "tektronix_dpo7254"):
    world = StandInWorld()
    world.panels["scope"] = TektronixDPO.create_panel(model, {})
    return TektronixDPO(world, "scope", model, {}), world.panels["scope"]


def errors(device) -> list[int]:
    answer = ask(device, "ALLEV?")
    return [] if answer.startswith("0,") else [int(entry) for entry in answer.split(",")[::2]]


@pytest.mark.parametrize("model", sorted(TektronixDPO.model_table))
def test_idn_and_limits_per_model(model):
    device, panel = make(model)
    spec = TektronixDPO.model_table[model]
    assert ask(device, "*IDN?").split(",")[:2] == ["TEKTRONIX", spec.identity.model]
    assert panel.max_sample_rate_hz == spec.max_sample_rate_hz
    ask(device, "HOR:MODE MAN")
    ask(device, f"HOR:MODE:SAMPLER {spec.max_sample_rate_hz * 2}")
    ask(device, "CH5:SCA 0.1")
    ask(device, "SYST:ERR?")                      # these scopes have an event queue instead
    assert errors(device) == [-222, -114, -113]


def test_reset_restores_defaults():
    device, panel = make()
    for text in ("HOR:MODE MAN", "HOR:MODE:RECO 2000", "HOR:POS 20", "CH1:SCA 0.5", "CH1:POS 2", "DATA:ENC SRI",
                 "DATA:WIDTH 2", "ACQ:MODE AVE", "ACQ:STOPA SEQ", "TRIG:A:EDGE:SOU CH2", "SELECT:CH2 ON"):
        ask(device, text)
    ask(device, "*RST")
    queries = ("HOR:MODE?", "HOR:MODE:RECO?", "HOR:MODE:SCA?", "HOR:MODE:SAMPLER?", "HOR:POS?", "CH1:SCA?",
               "CH1:POS?", "DATA:ENC?", "DATA:WIDTH?", "ACQ:MODE?", "ACQ:STOPA?", "TRIG:A:EDGE:SOU?",
               "SELECT:CH2?", "ACQ:STATE?")
    assert [ask(device, q) for q in queries] == [
        "AUTO", "5000", "1.0000000000E-07", "5.0000000000E+09", "5.0000000000E+01", "1.0000000000E-01",
        "0.0000000000E+00", "RIBINARY", "1", "SAMPLE", "RUNSTOP", "CH1", "0", "1"]
    assert (panel.record_length, panel.sample_rate_hz, panel.first_sample_s) == (5000, 5e9, pytest.approx(-0.5e-6))
    assert errors(device) == []


ROUND_TRIPS = [  # (set, query, answer): short, long and mixed-case forms; answers in long form
    ("HORizontal:MODE CONStant", "HOR:MODE?", "CONSTANT"),
    ("horizontal:position 10", "HOR:POS?", "1.0000000000E+01"),
    ("CH2:SCAle 20MV", "CH2:SCA?", "2.0000000000E-02"),
    ("CH1:OFFS -0.1", "CH1:OFFSET?", "-1.0000000000E-01"),
    ("CH3:POS -2.5", "CH3:POSITION?", "-2.5000000000E+00"),
    ("CH1:TER 50", "CH1:TERMINATION?", "5.0000000000E+01"),
    ("CH1:BAN 500E6", "CH1:BAN?", "5.0000000000E+08"),
    ("CH4:COUP DCREJ", "CH4:COUPLING?", "DCREJECT"),
    ("SELect:CH3 ON", "SEL:CH3?", "1"),
    ("ACQuire:MODe AVErage", "ACQ:MOD?", "AVERAGE"),
    ("ACQ:NUMAV 64", "ACQ:NUMAVG?", "64"),
    ("ACQuire:STOPAfter SEQUENCE", "ACQ:STOPA?", "SEQUENCE"),
    ("TRIGger:A:EDGE:SOUrce CH2", "TRIG:A:EDGE:SOU?", "CH2"),
    ("TRIG:A:EDGE:SLO fall", "TRIG:A:EDGE:SLOPE?", "FALL"),
    ("TRIGger:A:LEVel 25MV", "TRIG:A:LEV?", "2.5000000000E-02"),
    ("TRIG:B:EDGE:COUP NOISErej", "TRIG:B:EDGE:COUP?", "NOISEREJ"),
    ("DATa:SOUrce CH2", "DATA:SOU?", "CH2"),
    ("DATa:ENCdg SRPbinary", "WFMOutpre:BN_Fmt?", "RP"),
    ("DATa:ENCdg RIBinary", "WFMOutpre:BYT_Or?", "MSB"),
    ("WFMOutpre:BYT_Nr 2", "DATa:WIDth?", "2"),
    ("WFMOutpre:ENCdg ASCii", "DATa:ENCdg?", "ASCII"),
    ("DATa:STARt 11", "DATA:START?", "11"),
    ("MEASUrement:MEAS3:TYPe pk2pk", "MEASU:MEAS3:TYP?", "PK2PK"),
    ("MEASUrement:MEAS2:SOUrce2 REF1", "MEASU:MEAS2:SOU2?", "REF1"),
    ("MEASUrement:STATIstics:MODe VALUEMean", "MEASU:STATI:MOD?", "VALUEMEAN"),
    ("CURSor:VBArs:POSITION2 1e-6", "CURSOR:VBARS:POSITION2?", "1.0000000000E-06"),
]


@pytest.mark.parametrize(("command", "question", "answer"), ROUND_TRIPS)
def test_round_trips(command, question, answer):
    device, _ = make()
    assert ask(device, command) is None
    assert ask(device, question) == answer
    assert errors(device) == []


@pytest.mark.parametrize(("mode", "refused"), [
    ("AUTO", "HOR:MODE:SAMPLER 1E9"), ("CONS", "HOR:MODE:RECO 1000"), ("MAN", "HOR:MODE:SCA 1E-6"),
])
def test_horizontal_modes_derive_the_third_control(mode, refused):
    device, panel = make()
    ask(device, f"HOR:MODE {mode}")
    for text in ("HOR:MODE:SCA 200E-9", "HOR:MODE:SAMPLER 10E9", "HOR:MODE:RECO 4000"):
        ask(device, text)
    assert errors(device) == [-221]                  # the one control this mode derives
    scale, rate, length = (float(ask(device, q)) for q in ("HOR:MODE:SCA?", "HOR:MODE:SAMPLER?", "HOR:MODE:RECO?"))
    assert length == pytest.approx(10 * scale * rate)
    assert (panel.record_length, panel.sample_rate_hz) == (length, pytest.approx(rate))
    before = (scale, rate, length)
    ask(device, refused)
    assert errors(device) == [-221]
    assert tuple(float(ask(device, q)) for q in ("HOR:MODE:SCA?", "HOR:MODE:SAMPLER?", "HOR:MODE:RECO?")) == before


@pytest.mark.parametrize(("bad", "code", "question"), [
    ("CH1:SCA 100", -222, "CH1:SCA?"),
    ("CH1:POS 6", -222, "CH1:POS?"),
    ("CH1:TER 75", -222, "CH1:TER?"),
    ("CH1:SCA 1 S", -131, "CH1:SCA?"),
    ("DATA:WIDTH 3", -224, "DATA:WIDTH?"),
    ("DATA:ENC BINARY", -224, "DATA:ENC?"),
    ("ACQ:MODE HIGH_RES", -224, "ACQ:MODE?"),
    ("ACQ:NUMAVG 1", -222, "ACQ:NUMAVG?"),
    ("MEASU:MEAS9:TYPE RMS", -114, "MEASU:MEAS1:TYPE?"),
    ("MEASU:MEAS1:TYPE VOLTS", -224, "MEASU:MEAS1:TYPE?"),
    ("HOR:FOO 1", -113, "HOR:POS?"),
])
def test_errors_are_queued_and_change_nothing(bad, code, question):
    device, panel = make()
    before, panel_before = ask(device, question), (panel.record_length, panel.channels[1].range_v)
    assert ask(device, bad) is None
    assert ask(device, "*ESR?") != "0"
    assert ask(device, "EVMsg?").startswith(f"{code},")
    assert ask(device, question) == before
    assert (panel.record_length, panel.channels[1].range_v) == panel_before


@pytest.mark.parametrize(("encoding", "width", "dtype", "shift", "unsigned"), [
    ("RIBinary", 1, ">i1", 0, 0), ("SRIbinary", 2, "<i2", 8, 0), ("RIBinary", 2, ">i2", 8, 0),
    ("SRPbinary", 1, "<u1", 0, 128), ("RPBinary", 2, ">u2", 8, 32768),
])
def test_curve_block_matches_wfmoutpre(encoding, width, dtype, shift, unsigned):
    device, panel = make()
    for text in ("HOR:MODE MAN", "HOR:MODE:RECO 1000", "HOR:MODE:SAMPLER 10E9", "HOR:POS 25", "CH2:SCA 0.05",
                 "CH2:OFFS 0.02", "CH2:POS 1.5", "SEL:CH2 ON", f"DATA:ENC {encoding}", f"DATA:WIDTH {width}",
                 "DATA:SOU CH2", "DATA:START 101", "DATA:STOP 900"):
        ask(device, text)
    codes = np.round(100 * np.sin(np.arange(1000) / 30)).astype(np.int16)
    acquire(panel, {2: codes})
    block = raw(device, "CURVE?")
    digits = int(block[1:2])
    length = int(block[2:2 + digits])
    assert block[:1] == b"#" and block.endswith(b"\n") and len(block) == 2 + digits + length + 1
    data = np.frombuffer(block[2 + digits:-1], dtype).astype(np.int64)
    points = int(ask(device, "WFMOutpre:NR_Pt?"))
    assert data.size == points == 800
    assert np.array_equal(data, (codes[100:900].astype(np.int64) << shift) + unsigned)
    ymult, yoff, yzero, xincr, xzero = (float(ask(device, f"WFMOutpre:{q}?"))
                                        for q in ("YMUlt", "YOFf", "YZEro", "XINcr", "XZEro"))
    assert yzero == pytest.approx(0.02)                       # the channel offset, as Tek reports it
    assert (data - yoff) * ymult + yzero == pytest.approx(panel.records[2].volts[100:900], abs=1e-9)
    assert xzero + xincr * np.arange(points) == pytest.approx(panel.records[2].time_s[100:900])
    assert (xincr, ask(device, "WFMOutpre:XUNit?"), ask(device, "WFMOutpre:YUNit?")) == (1e-10, '"s"', '"V"')
    assert errors(device) == []


#: WFMOutpre? fields in the programmer manual's order, each with the query that answers it alone.
PREAMBLE_FIELDS = (("BYT_NR", "BYT_Nr"), ("BIT_NR", "BIT_Nr"), ("ENCDG", "ENCdg"), ("BN_FMT", "BN_Fmt"),
                   ("BYT_OR", "BYT_Or"), ("WFID", "WFId"), ("NR_PT", "NR_Pt"), ("PT_FMT", "PT_Fmt"),
                   ("XUNIT", "XUNit"), ("XINCR", "XINcr"), ("XZERO", "XZEro"), ("PT_OFF", "PT_Off"),
                   ("YUNIT", "YUNit"), ("YMULT", "YMUlt"), ("YOFF", "YOFf"), ("YZERO", "YZEro"), ("NR_FR", "NR_FR"))


@pytest.mark.parametrize("header", ["WFMOutpre?", "WFMO?", "wfmoutpre?", ":WFMO?"])
def test_wfmoutpre_answers_the_whole_preamble_in_the_manuals_order(header):
    device, panel = make()
    for text in ("HOR:MODE MAN", "HOR:MODE:RECO 1000", "HOR:MODE:SAMPLER 10E9", "CH2:SCA 0.05", "CH2:OFFS 0.02",
                 "SEL:CH2 ON", "DATA:ENC SRIbinary", "DATA:WIDTH 2", "DATA:SOU CH2", "DATA:START 101",
                 "DATA:STOP 900"):
        ask(device, text)
    acquire(panel, {2: np.zeros(1000, dtype=np.int16)})
    values = ask(device, header).split(";")
    alone = [ask(device, f"WFMOutpre:{query}?") for _, query in PREAMBLE_FIELDS]
    assert values == ["2", "16", "BINARY", "RI", "LSB",
                      '"Ch2, DC coupling, 50.00mV/div, 10.00ns/div, 800 points, Sample mode"', "800", "Y", '"s"',
                      *alone[9:11], "0", '"V"', *alone[13:16], "1"]
    # ENCdg, BN_Fmt and BYT_Or answer in their own (short) spelling; the rest as in the preamble
    assert [v for i, v in enumerate(values) if i not in (2, 3, 4)] == \
        [v for i, v in enumerate(alone) if i not in (2, 3, 4)]
    assert errors(device) == []
    ask(device, "HEADER ON")
    named = ask(device, header)
    assert named.startswith(":WFMOUTPRE:BYT_NR 2;BIT_NR 16;ENCDG BINARY;")
    assert named.removeprefix(":WFMOUTPRE:").split(";") == \
        [f"{name} {value}" for (name, _), value in zip(PREAMBLE_FIELDS, values)]


def test_wfmoutpre_bit_nr_sets_the_width_and_refuses_what_no_width_gives():
    device, _ = make()
    ask(device, "WFMO:BIT_NR 16")
    assert (ask(device, "WFMO:BYT_NR?"), ask(device, "DATA:WIDTH?"), ask(device, "WFMO:BIT_NR?")) == ("2", "2", "16")
    ask(device, "WFMO:BIT_NR 12")
    ask(device, "WFMO:BIT_NR 24")
    assert errors(device) == [-224, -224]
    assert ask(device, "WFMO:BIT_NR?") == "16"


@pytest.mark.parametrize("header", ["HORizontal:RECOrdlength", "HOR:RECO", "hor:reco", "HORIZONTAL:RECORDLENGTH"])
def test_horizontal_record_length_answers_in_short_and_long_form(header):
    device, panel = make()
    assert ask(device, f"{header}?") == ask(device, "HOR:MODE:RECO?") == "5000"
    ask(device, f"{header} 10000")                            # AUTO: the sample rate follows
    assert ask(device, f"{header}?") == ask(device, "HOR:MODE:RECO?") == "10000"
    assert (panel.record_length, panel.sample_rate_hz) == (10000, pytest.approx(10e9))
    ask(device, "HOR:MODE MAN")
    ask(device, f"{header} 2000")
    assert (ask(device, f"{header}?"), panel.record_length) == ("2000", 2000)
    ask(device, "HOR:MODE CONS")                              # scale and rate set the length here
    before = ask(device, f"{header}?")
    ask(device, f"{header} 4000")
    assert errors(device) == [-221]
    assert ask(device, f"{header}?") == before
    ask(device, "HEADER ON")
    assert ask(device, f"{header}?") == f":{header.upper()} {before}"


def test_curve_without_an_acquisition_is_an_error():
    device, _ = make()
    assert raw(device, "CURVE?") is None
    assert errors(device) == [-200]


def test_single_sequence_and_opc():
    device, panel = make()
    ask(device, "ACQ:STOPA SEQ")
    assert ask(device, "ACQ:STATE RUN;*OPC?") is None            # waits for the acquisition
    assert (ask(device, "ACQ:STATE?"), ask(device, "TRIG:STATE?")) == ("1", "READY")
    assert ask(device, "ACQ:STATE ON;*OPC?") is None
    acquire(panel, {1: np.zeros(5000)})
    assert device.read_message() == b"1\n"
    assert (ask(device, "ACQ:STATE?"), ask(device, "TRIG:STATE?"), ask(device, "ACQ:NUMAC?")) == ("0", "SAVE", "1")


def test_measurement_slots_accept_every_type_and_answer_values():
    from qcodes.instrument_drivers.tektronix.DPO7200xx import TektronixDPOMeasurement

    device, panel = make()
    for name, _unit in TektronixDPOMeasurement.measurements:      # what the stock driver sends
        ask(device, f"MEASUrement:MEAS1:TYPe {name}")
        ask(device, "MEASUrement:MEAS1:STATe 1")
        assert float(ask(device, "MEASUrement:MEAS1:VALue?")) == 9.91e37      # nothing acquired
    assert errors(device) == []
    square = np.where((np.arange(5000) // 250) % 2 == 0, 50, -50)
    acquire(panel, {1: square})
    lsb = panel.channels[1].lsb_v
    expected = {"pk2pk": 100 * lsb, "frequency": panel.sample_rate_hz / 500, "maximum": 50 * lsb,
                "pwidth": 250 / panel.sample_rate_hz}
    for name, value in expected.items():
        ask(device, f"MEASU:MEAS2:TYPE {name};STATE 1")
        assert float(ask(device, "MEASU:MEAS2:VAL?")) == pytest.approx(value, rel=1e-6)
        assert float(ask(device, "MEASU:MEAS2:MEAN?")) == pytest.approx(value, rel=1e-6)
    ask(device, "MEASU:MEAS2:TYPE EYEHEIGHT")
    assert float(ask(device, "MEASU:MEAS2:VAL?")) == 9.91e37    # not computed by this bench


# -- the stock QCoDeS driver ----------------------------------------------------------------------

@pytest.fixture
def driver_bench(monkeypatch):
    from qcodes.instrument_drivers.tektronix.DPO7200xx import TektronixDPOMeasurement

    # The driver sleeps 0.1 s (wall clock) after each measurement type change to let a real scope
    # settle; its snapshot changes the type 364 times. The emulator needs no settling.
    monkeypatch.setattr(TektronixDPOMeasurement, "_minimum_adjustment_time", 0.0)
    device, panel = make()
    with one_instrument_bench(device, "scope", "tektronix_dpo7254", ADDRESS) as (bench, path):
        yield device, panel, bench, path


def _use_driver(scope, device, panel, snapshot_budget_s: float):
    sent = []
    write_bytes = device.write_bytes
    device.write_bytes = lambda data: (sent.append(data), write_bytes(data))[1]
    scope.horizontal.mode("manual")
    scope.horizontal.record_length(2000)
    scope.horizontal.sample_rate(5e9)
    scope.channel1.scale(0.05)
    scope.acquisition.stop_after("SEQUENCE")
    scope.data.encoding("SRIbinary")
    scope.waveform.bytes_per_sample(2)
    assert scope.ask("*OPC?") == "1"          # over TCP, writes are done once a query is answered
    before = (panel.state, panel.acquisitions_completed, panel.record_length, panel.first_sample_s)
    sent.clear()
    started = time.perf_counter()
    snapshot = scope.snapshot(update=True)
    assert time.perf_counter() - started < snapshot_budget_s
    assert sum(data.count(b"\n") for data in sent) == 2487   # TCP may bring several per call
    assert (panel.state, panel.acquisitions_completed, panel.record_length, panel.first_sample_s) == before
    assert snapshot["submodules"]["horizontal"]["parameters"]["record_length"]["value"] == 2000
    codes = np.round(80 * np.cos(np.arange(2000) / 40)).astype(np.int16)
    acquire(panel, {1: codes, 2: -codes})
    for number, channel in ((1, scope.channel1), (2, scope.channel2)):
        trace = channel.waveform.trace()
        assert trace.shape == (2000,)
        assert trace == pytest.approx(panel.records[number].volts, abs=1e-9)
        assert channel.waveform.trace_axis()[1] == pytest.approx(panel.sample_interval_s, rel=1e-3)
    assert errors(device) == []


def test_stock_driver_in_process(driver_bench):
    from qcodes.instrument_drivers.tektronix.DPO7200xx import TektronixDPO7000xx as Driver

    device, panel, _, path = driver_bench
    with closing(Driver(f"dpo_{uuid.uuid4().hex[:8]}", ADDRESS, visalib=f"{path}@nwlab", timeout=2)) as scope:
        _use_driver(scope, device, panel, snapshot_budget_s=3.0)


@pytest.mark.timeout(30)
def test_stock_driver_over_tcp(driver_bench):
    from qcodes.instrument_drivers.tektronix.DPO7200xx import TektronixDPO7000xx as Driver

    device, panel, bench, _ = driver_bench
    with (over_tcp(bench) as address,
          closing(Driver(f"dpo_{uuid.uuid4().hex[:8]}", address, visalib="@py", timeout=2)) as scope):
        # pyvisa-py leaves Nagle on and its SOCKET sessions lack VI_ATTR_TCPIP_NODELAY (NI-VISA's
        # default is true): a write that follows a write waits ~40 ms for the server's delayed
        # ACK, 728 times in this snapshot. Switch it off on the client socket, as NI-VISA would.
        handle = scope.visa_handle
        handle.visalib.sessions[handle.session].interface.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _use_driver(scope, device, panel, snapshot_budget_s=10.0)
