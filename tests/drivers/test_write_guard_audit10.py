"""A thirteenth attack (2026-12-06), on the pulse generators: faults at every reply of their
verbs, interrupts, front-panel changes while the link was down, link losses in reconnects and
resynchronisations. Both generators, both transports. Each test asserts what must hold and
failed on the code before (docs/reliability.md).

The instrument's true state is read from the emulated personality itself
(`bench.device("pulser").channels[1]`: its function, output, amplitude, offset), not from the
bench panel, which shows a sine as "DC" at its mean.
"""

from __future__ import annotations

import pytest
from driver_helpers import PULSER_ENVELOPE, faults_of, send

from contracts.envelope import EnvelopeError
from drivers.keysight_33500b import Keysight33500B
from drivers.keysight_81160a import Keysight81160A
from sim_backend.faults.plan import drop, withhold

pytestmark = pytest.mark.timeout(60)

GENERATORS = {"keysight_33522b": Keysight33500B, "keysight_81160a": Keysight81160A}
PULSE = dict(amplitude_v=0.5, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=1)
#: levels, width and output, as the stock parameters write them (no function written)
RAW_PULSE_ON = {
    "keysight_33522b": ["SOURce1:VOLTage:HIGH 0.5", "SOURce1:VOLTage:LOW 0", "SOURce1:FUNCtion:PULSE:WIDTh 5e-08",
                        "OUTPut1 1"],
    "keysight_81160a": [":VOLTage1:HIGH 0.5", ":VOLTage1:LOW 0", ":PULSe:WIDTh1 5e-08", ":OUTPut1 1"],
}
#: at the front panel before the session: a sine at 1 MHz with a pulse width (kept for the pulse
#: function) that does not fit its period, so the instrument refuses the switch to PULSe (-221)
SINE_WITH_A_WIDTH_THAT_DOES_NOT_FIT = {
    "keysight_33522b": ":SOUR1:FUNC SIN;:SOUR1:FREQ 1e6;:SOUR1:FUNC:PULS:WIDT 1e-5",
    "keysight_81160a": ":FUNC1 SIN;:FREQ1 1e6;:PULS:WIDT1 1e-5",
}


@pytest.fixture(params=sorted(GENERATORS))
def generator_model(request) -> str:
    return request.param


@pytest.fixture
def bench_models(generator_model) -> dict[str, str]:
    return {"pulser": generator_model}


def instrument(bench):
    """Channel 1 as the emulated instrument holds it."""
    return bench.device("pulser").channels[1]


def test_output_is_not_switched_on_with_a_function_the_guard_never_checked(connect, bench, generator_model):
    """A fresh session (the generator at its power-on sine, 1 kHz on the 33500B, 1 MHz on the
    81160A), high and low levels, width, output on, as stock parameters write them: no function
    is ever written, yet `OUTPut1 1` is admitted. The guard takes an unknown function for a
    pulse and asks only for the levels and the width; the instrument puts out a sine."""
    generator = connect("pulser", GENERATORS[generator_model], envelope=PULSER_ENVELOPE)
    outcomes = [send(generator, message) for message in RAW_PULSE_ON[generator_model]]
    channel = instrument(bench)
    assert not (channel.output and channel.function not in ("PULS", "DC")), (
        outcomes, f"output on with function {channel.function} (guard never checked one)")


def test_output_is_not_switched_on_after_the_instrument_refused_the_pulse_function(connect, bench, generator_model):
    """Before the session, at the panel: a sine at 1 MHz whose (pulse) width is 10 us. The
    driver's configure_pulse writes FUNC PULS, which the instrument refuses (-221: the width does
    not fit the period), then period, width and levels, which it takes for the sine; the verb
    reports the error. set_output_enabled(True) then switches the output on: a 250 kHz sine
    between 0 and 1.2 V (lobes of 2 us against pulse_width_max_s 1 us)."""
    bench.device("pulser").write_bytes(f"{SINE_WITH_A_WIDTH_THAT_DOES_NOT_FIT[generator_model]}\n".encode())
    generator = connect("pulser", GENERATORS[generator_model], envelope=PULSER_ENVELOPE)
    generator.timeout(0.3)
    with pytest.raises(Exception, match="-221"):
        generator.configure_pulse(amplitude_v=1.2, width_s=1e-6, edge_s=20e-9, period_s=4e-6, count=2)
    outcome = "switched on"
    try:
        generator.set_output_enabled(True)
    except EnvelopeError as error:
        outcome = f"refused: {error}"
    channel = instrument(bench)
    assert not (channel.output and channel.function not in ("PULS", "DC")), (
        outcome, f"output on with function {channel.function} at {channel.frequency_hz:.3g} Hz")


@pytest.mark.parametrize("loss", [drop, withhold], ids=["dropped", "withheld"])
def test_output_switched_off_stays_off_when_its_report_is_lost(connect, bench, generator_model, loss):
    """The generator on at 0.3 V DC (a ConfigureDcInput step). set_output_enabled(False), and the
    error-queue reply after `OUTP 0` lost with the link: the reconnect re-applies the role settings
    with the output state of *before* the verb (`_output_on` is updated only after
    `_switch_output` returns), switching the output back on; the verb returns normally. The
    executor's excursion handling ("nothing drives the chip while it is warm") relies on it."""
    generator = connect("pulser", GENERATORS[generator_model], envelope=PULSER_ENVELOPE)
    generator.timeout(0.3)
    generator.configure_dc(level_v=0.3)
    generator.set_output_enabled(True)
    faults_of(bench, "pulser").inject(loss())      # the next reply: SYST:ERR? after the switch-off
    generator.set_output_enabled(False)            # returns normally
    channel = instrument(bench)
    assert not channel.output, f"set_output_enabled(False) returned with the output on at {channel.offset_v} V DC"


@pytest.mark.parametrize("loss", [drop, withhold], ids=["dropped", "withheld"])
def test_configure_dc_that_returns_leaves_the_dc_function(connect, bench, generator_model, loss):
    """Pulsing (0..0.5 V, output on); configure_dc(0.6) and the error-queue reply after its
    function write lost with the link: the reconnect re-applies the *previous* (pulse)
    configuration, the rest of configure_dc writes the offset onto it, and the verb returns with
    the instrument pulsing between 0.35 and 0.85 V instead of holding 0.6 V DC."""
    generator = connect("pulser", GENERATORS[generator_model], envelope=PULSER_ENVELOPE)
    generator.timeout(0.3)
    generator.configure_pulse(**PULSE)
    generator.set_output_enabled(True)
    faults_of(bench, "pulser").inject(loss())      # SYST:ERR? after the DC function
    generator.configure_dc(level_v=0.6)
    channel = instrument(bench)
    assert (channel.function, channel.offset_v) == ("DC", 0.6), (channel.function, channel.offset_v,
                                                                 channel.amplitude_vpp)


# --------------------------------------------------------------------------- link losses

def on_reply_to(bench, query: str, action, then=None):
    """The reply to the next message that is exactly `query` gets `action`; `then()` runs first
    (a person at the front panel while the link is down)."""
    device, plan = bench.device("pulser"), faults_of(bench, "pulser")
    original_write, original_reply = device.write_bytes, plan.before_reply
    state = {"last": None, "armed": True}

    def write_bytes(data: bytes) -> None:
        state["last"] = bytes(data).decode("ascii", "replace").strip()
        original_write(data)

    def before_reply(message: bytes):
        if state["armed"] and state["last"] == query:
            state["armed"] = False
            if then is not None:
                then()
            return action()
        return original_reply(message)

    device.write_bytes, plan.before_reply = write_bytes, before_reply
    return state


#: the pulse period query, the third reply of a first configure_pulse (after two error-queue reads)
PERIOD_QUERY = {"keysight_33522b": "SOURce1:FUNCtion:PULSe:PERiod?", "keysight_81160a": ":PULSe:PERiod1?"}
PANEL_CHANGES = {"load 10 ohm": ":OUTP1:LOAD 10", "reset": "*RST"}


def at_the_line_v(channel) -> list[float]:
    """The levels channel 1 puts across the matched 50 ohm line (the panel's levels are into the
    load it is told of, behind its 50 ohm source)."""
    from math import isinf
    scale = 0.5 / (1.0 if isinf(channel.load_ohm) else channel.load_ohm / (channel.load_ohm + 50.0))
    if channel.function == "DC":
        return [channel.offset_v * scale]
    return [(channel.offset_v + channel.amplitude_vpp / 2) * scale,
            (channel.offset_v - channel.amplitude_vpp / 2) * scale]


@pytest.mark.parametrize("change", PANEL_CHANGES.values(), ids=PANEL_CHANGES.keys())
def test_a_first_configuration_cut_by_a_link_loss_is_written_whole(connect, bench, generator_model, change):
    """The session's first configure_pulse: it writes `:OUTP1:LOAD 50` and the pulse function,
    then the reply to its period query is lost with the link; meanwhile, at the panel, the load
    is set to 10 ohm (or the generator reset: a sine). The reconnect has no configuration to
    re-apply yet (`_last_config` is None): it switches the output off and writes nothing else; the
    verb goes on with the timing and levels and returns normally, the load and function it wrote
    before the loss never written again. The guard does not follow the load, and takes the
    unknown function for a pulse: set_output_enabled(True) (after the stock `pulse_width`
    parameter, which the 33500B needs: its period write made the width unknown) switches the
    output on, at 3 x the level at the chip (10 ohm), or with a sine."""
    generator = connect("pulser", GENERATORS[generator_model], envelope=PULSER_ENVELOPE)
    generator.timeout(0.3)
    panel = bench.device("pulser")
    on_reply_to(bench, PERIOD_QUERY[generator_model], drop,
                then=lambda: panel.write_bytes(f"{change}\n".encode()))
    generator.configure_pulse(**PULSE)              # returns normally
    outcomes = []
    for step in (lambda: generator.role_channel.pulse_width(50e-9), lambda: generator.set_output_enabled(True)):
        try:
            step()
            outcomes.append("ok")
        except EnvelopeError as error:
            outcomes.append(f"refused: {error}")
    channel = instrument(bench)
    if channel.output:
        assert channel.function in ("PULS", "DC"), (outcomes, f"output on with function {channel.function}")
        levels = at_the_line_v(channel)
        assert max(abs(v) for v in levels) <= PULSER_ENVELOPE.limit("pulse_amplitude_max_v"), (
            outcomes, f"output on at {levels} V at the chip's 50 ohm line (load set to {channel.load_ohm} ohm)")


def test_a_link_lost_in_a_resynchronisation_is_not_left_live(connect, bench, generator_model):
    """Configured (0..0.5 V pulses), output off. set_output_enabled(True): its last error-queue
    reply arrives garbled, so the next read resynchronises; the resynchronisation's *IDN? reply is
    lost with the link, and meanwhile, at the panel, the amplitude is set to 5 Vpp. The link is
    reopened bare (a resynchronisation re-applies nothing; the link loss only marks the settings
    pending for the next exchange), and the verb returns normally with the output on at
    -2.25..2.75 V (limit 1.2 V). A dropped reply anywhere else re-applies at once, starting with
    the output off."""
    from sim_backend.faults.plan import garble

    generator = connect("pulser", GENERATORS[generator_model], envelope=PULSER_ENVELOPE)
    generator.timeout(0.3)
    generator.configure_pulse(**PULSE)
    plan, device = faults_of(bench, "pulser"), bench.device("pulser")
    amplitude = ":SOUR1:VOLT 5" if generator_model == "keysight_33522b" else ":VOLT1 5"
    original_write, original_reply = device.write_bytes, plan.before_reply
    seen = {"last": None, "error_reads": 0, "stage": 0}

    def write_bytes(data: bytes) -> None:
        seen["last"] = bytes(data).decode("ascii", "replace").strip()
        original_write(data)

    def before_reply(message: bytes):
        if seen["last"] == "SYST:ERR?" and seen["stage"] == 0:
            seen["error_reads"] += 1
            if seen["error_reads"] == 2:              # the verb's own check, after the switch-on's
                seen["stage"] = 1
                return garble()
        if seen["last"] == "*IDN?" and seen["stage"] == 1:
            seen["stage"] = 2
            original_write(f"{amplitude}\n".encode())  # at the panel, the link down
            return drop()
        return original_reply(message)

    device.write_bytes, plan.before_reply = write_bytes, before_reply
    generator.set_output_enabled(True)               # returns normally
    assert seen["stage"] == 2, seen
    channel = instrument(bench)
    levels = at_the_line_v(channel)
    assert not (channel.output and max(abs(v) for v in levels) > PULSER_ENVELOPE.limit("pulse_amplitude_max_v")), (
        f"set_output_enabled(True) returned with the output on at {levels} V; links lost {generator.links_lost}, "
        f"settings pending {generator._link_lost_pending}")
