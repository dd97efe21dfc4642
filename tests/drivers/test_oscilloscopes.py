"""Oscilloscope drivers (Keysight Infiniium, Tektronix DPO) against their emulated scopes.

A full acquisition: the generator fires a pulse through the emulated wiring and chip; the
scope triggers on the monitor channel and records the configured number of samples.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from driver_helpers import PULSER_ENVELOPE, station_address

from drivers.keysight_33500b import Keysight33500B
from drivers.keysight_infiniium import KeysightInfiniium
from drivers.tektronix_dpo import TektronixDPO
from contracts.envelope import Envelope, EnvelopeError
from sim_backend.faults import plan as faults

pytestmark = pytest.mark.timeout(30)

MODELS = {"keysight_infiniium": KeysightInfiniium, "tektronix_dpo7254": TektronixDPO}
#: The monitor channel sees the generator through a -20 dB pick-off.
CAPTURE = dict(channel_ranges_v={1: 0.4, 2: 0.16}, record_length=2000, sample_rate_hz=20e9, pretrigger_s=20e-9,
               trigger_channel=2, trigger_level_v=0.02)
#: What a procedure asks for next: the monitor's range and the trigger level follow the pulse.
MOVED = {**CAPTURE, "channel_ranges_v": {1: 0.4, 2: 0.2}, "trigger_level_v": 0.03}
#: Channel 1 to 0.8 V full scale, written as a user (or a stock parameter) would.
OUTSIDE_WRITE = {"keysight_infiniium": ":CHANnel1:RANGe 0.8", "tektronix_dpo7254": "CH1:SCAle 0.08"}
#: Settings changed at the scope itself, as at its front panel.
AT_THE_SCOPE = {
    "keysight_infiniium": {"record": ":ACQuire:POINts:ANALog 1000", "slope": ":TRIGger:EDGE:SLOPe NEGative",
                           "averaging": ":ACQuire:AVERage:COUNt 8;:ACQuire:AVERage ON",
                           "range": ":CHANnel1:RANGe 0.8"},
    "tektronix_dpo7254": {"record": "HORizontal:MODE:RECOrdlength 1000", "slope": "TRIGger:A:EDGE:SLOpe FALL",
                          "averaging": "ACQuire:NUMAVg 8;:ACQuire:MODe AVErage", "range": "CH1:SCAle 0.08"},
}


@pytest.fixture(params=sorted(MODELS))
def model(request) -> str:
    return request.param


@pytest.fixture
def bench_models(model) -> dict[str, str]:
    return {"scope": model, "pulser": "keysight_33522b"}


@pytest.fixture
def scope(connect, model):
    return connect("scope", MODELS[model], envelope=Envelope("oscilloscope", {"input_range_max_v": 2.0}))


@pytest.fixture
def generator(connect):
    driver = connect("pulser", Keysight33500B, envelope=PULSER_ENVELOPE)
    driver.configure_pulse(amplitude_v=0.8, width_s=50e-9, edge_s=9e-9, period_s=1e-6, count=1)
    driver.set_output_enabled(True)
    return driver


def test_configuration_reaches_the_scope(scope, bench):
    scope.configure_acquisition(**CAPTURE, trigger_slope="falling", average_count=1)
    panel = bench.world.panels["scope"]
    assert panel.record_length == 2000 and panel.sample_rate_hz == pytest.approx(20e9)
    assert panel.first_sample_s == pytest.approx(-20e-9)
    assert panel.trigger.source_channel == 2 and panel.trigger.slope == "falling"
    assert panel.trigger.level_v == pytest.approx(0.02)
    assert panel.channels[1].displayed and panel.channels[2].displayed and not panel.channels[4].displayed
    # Full scale as asked (the Tek ADC spans 10.24 of its 10 screen divisions).
    assert panel.channels[2].range_v == pytest.approx(0.16, rel=0.03)


#: The messages that read one channel's record: its source and everything its axes are computed
#: from in one query (Infiniium Programmer's Guide, Waveform commands; DPO Programmer Manual,
#: Waveform Transfer; the answers to one message's queries come back joined by ';'), the codes in
#: a second.
RECORD_READ = {
    "keysight_infiniium": lambda n: [f":WAVeform:SOURce CHANnel{n};:WAVeform:PREamble?", ":WAVeform:DATA?"],
    "tektronix_dpo7254": lambda n: [f"DATa:SOUrce CH{n};:WFMOutpre:NR_Pt?;:WFMOutpre:XINcr?;:WFMOutpre:XZEro?;"
                                    ":WFMOutpre:YMUlt?;:WFMOutpre:YOFf?;:WFMOutpre:YZEro?", "CURVe?"],
}


def test_armed_capture_returns_volts_and_seconds(scope, generator, bench, model, received):
    scope.configure_acquisition(**CAPTURE)
    scope.arm_single()
    assert not scope.wait_acquired(0.05)       # nothing fired yet
    generator.trigger()
    assert scope.wait_acquired(5.0)
    log = received("scope")
    traces = scope.fetch_traces([1, 2])
    assert log.messages == RECORD_READ[model](1) + RECORD_READ[model](2)
    assert traces.time_s.shape == (2000,)
    assert traces.time_s[0] == pytest.approx(-20e-9, abs=1e-12)
    assert np.diff(traces.time_s) == pytest.approx(np.full(1999, 50e-12))
    assert set(traces.voltage_v) == {1, 2}
    monitor = traces.voltage_v[2]
    assert monitor.shape == (2000,) and monitor.dtype == np.float64
    # The -20 dB monitor of a 0.8 V pulse crosses the 20 mV trigger level near t = 0.
    assert monitor.max() > 0.02 and abs(monitor[traces.time_s < -5e-9].mean()) < 0.01
    crossing_s = traces.time_s[np.argmax(monitor > 0.02)]
    assert abs(crossing_s) < 2e-9


def test_refused_range_writes_nothing(scope, bench, received):
    before = copy.deepcopy({n: c for n, c in bench.world.panels["scope"].channels.items()})
    log = received("scope")
    with pytest.raises(EnvelopeError, match="input_range_max_v"):
        scope.configure_acquisition(**{**CAPTURE, "channel_ranges_v": {1: 0.4, 2: 4.0}})
    assert log.byte_count == 0
    assert bench.world.panels["scope"].channels == before


def test_safe_state_stops_acquiring(scope, bench):
    scope.configure_acquisition(**CAPTURE)
    scope.arm_single()
    assert bench.world.panels["scope"].state == "armed"
    scope.safe_state()
    assert bench.world.panels["scope"].state != "armed"


def _writes(log) -> list[str]:
    """The program units of every message without a query (a configuration is one message)."""
    return [unit for message in log.messages if "?" not in message for unit in message.split(";")]


def _holds(panel, capture) -> bool:
    """The emulated scope's panel holds `capture` (full scale to the Tek's 10.24 divisions)."""
    return (panel.record_length == capture["record_length"]
            and panel.first_sample_s == pytest.approx(-capture["pretrigger_s"])
            and panel.trigger.level_v == pytest.approx(capture["trigger_level_v"])
            and panel.trigger.slope == capture.get("trigger_slope", "rising")
            and panel.average_count == capture.get("average_count", 1)
            and all(panel.channels[n].range_v == pytest.approx(range_v, rel=0.03)
                    for n, range_v in capture["channel_ranges_v"].items()))


def test_a_write_from_outside_the_verbs_is_undone_by_the_next_configuration(scope, bench, model):
    panel = bench.world.panels["scope"]
    scope.configure_acquisition(**CAPTURE)
    scope.write(OUTSIDE_WRITE[model])
    scope.ask("*OPC?")                          # over TCP: the write has run
    assert panel.channels[1].range_v == pytest.approx(0.8, rel=0.03)
    scope.configure_acquisition(**CAPTURE)
    assert _holds(panel, CAPTURE)


def test_the_first_configuration_after_a_reconnect_is_written_whole(scope, bench, received):
    scope.configure_acquisition(**CAPTURE)
    bench.faults_for(station_address(bench, "scope")).inject(faults.drop())
    scope.ask("*IDN?")                          # the reply is lost with the link: the driver reconnects
    assert scope.links_lost == 1
    log = received("scope")
    scope.configure_acquisition(**MOVED)
    assert len(_writes(log)) > 15 and _holds(bench.world.panels["scope"], MOVED)


@pytest.mark.parametrize("change", sorted(AT_THE_SCOPE["keysight_infiniium"]))
def test_a_change_made_at_the_scope_itself_is_undone_by_the_next_configuration(scope, bench, model, change):
    """No message shows what was changed at the scope (a colleague at its panel between two
    trials): the next configuration, the same as the last, must still put it back."""
    panel = bench.world.panels["scope"]
    scope.configure_acquisition(**CAPTURE)
    bench.device("scope").write_bytes(f"{AT_THE_SCOPE[model][change]}\n".encode())
    assert not _holds(panel, CAPTURE)
    scope.configure_acquisition(**CAPTURE)
    assert _holds(panel, CAPTURE)
