"""Safe states that complete when the instrument's report after a write is lost or garbled.

After a write that changes what the guard follows, the driver reads the instrument's report
(the SCPI error queue; a Lake Shore's *ESR?). A report lost with the link (and the reconnect
after it) or garbled on the way leaves what the write touched unknown to the guard: an output
possibly on. The generator's safe state once stopped there: its 0 V DC level was refused
("offset 0 V with output 1 on and its amplitude unknown") and the safe state reported a
failure, the level never written. Each safe state here must still end where it must, read from
the emulated instrument itself, and return: the generator off at 0 V DC, the SMU off at 0 A,
every heater range off.

Real drivers, both transports (in-process and TCP), the emulated bench; the reports are lost
through the bench's fault plan, which both transports consult before every reply.
"""

from __future__ import annotations

import re

import pytest
from driver_helpers import (
    ENVELOPES, PULSER_ENVELOPE, assert_generator_safe, enveloped_smu, faults_of, lose_reports_after,
)

from drivers.keysight_33500b import Keysight33500B
from drivers.keysight_81160a import Keysight81160A
from drivers.lakeshore_336 import Lakeshore336
from drivers.lakeshore_372 import Lakeshore372
from sim_backend.faults.plan import DELIVER, drop, garble, withhold

pytestmark = pytest.mark.timeout(60)

#: How a report is lost: with the link (a reconnect follows), never arriving (a timeout, then a
#: reconnect), or garbled on the way (read as an entry lost to noise, then a resynchronisation).
LOSSES = {"dropped": drop, "withheld": withhold, "garbled": garble}
#: Every 5th reply dropped, from each of the five places in the cycle (the report's fault).
PHASES = range(5)


def drop_every_fifth(bench, role: str, phase: int, replies: int = 200) -> None:
    """The next `replies` replies of `role`: every 5th dropped with the link, the first at 5 - phase."""
    faults_of(bench, role).inject(*(drop() if (k + phase) % 5 == 4 else DELIVER for k in range(replies)))


# --------------------------------------------------------------------------- pulse generators

GENERATORS = {"keysight_33522b": Keysight33500B, "keysight_81160a": Keysight81160A}
#: What the generator's safe state writes, as either model spells it (channel 1).
GENERATOR_WRITES = {
    "switch-off": r":?OUTP(?:UT)?1? (?:0|OFF)",
    "DC function": r":?(?:SOUR(?:CE)?1:)?FUNC(?:TION)?1? DC",
    "0 V offset": r":?(?:SOUR(?:CE)?1:)?VOLT(?:AGE)?1?:OFFS(?:ET)? [+-]?0(?:\.0*)?(?:E[+-]?0+)?",
}


@pytest.fixture(params=sorted(GENERATORS))
def generator_model(request) -> str:
    return request.param


@pytest.fixture
def bench_models(request) -> dict[str, str]:
    if "generator_model" in request.fixturenames:
        return {"pulser": request.getfixturevalue("generator_model")}
    if "controller_model" in request.fixturenames:
        return {"cryostat": request.getfixturevalue("controller_model")}
    return {}


def _pulsing(connect, generator_model: str):
    """A generator putting out 0.5 V pulses, 50 ns every 1 us, output on."""
    generator = connect("pulser", GENERATORS[generator_model], envelope=PULSER_ENVELOPE)
    generator.timeout(0.3)                        # a withheld reply times out quickly
    generator.configure_pulse(amplitude_v=0.5, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=1)
    generator.set_output_enabled(True)
    return generator


def test_generator_safe_state_is_one_message_of_what_its_verbs_write(connect, bench, generator_model):
    """The safe state's message holds what the driver's own verbs write for the output off and
    for 0 V DC (each unit declared once, in the driver's parameters), the switch-off first, every
    unit from the root; the instrument runs it to off at 0 V DC."""
    generator = _pulsing(connect, generator_model)
    sent = lose_reports_after(bench, "pulser", "$^", "", DELIVER)      # records, loses nothing
    generator.set_output_enabled(False)
    generator.configure_dc(level_v=0.0)
    one_by_one = [m for m in sent if not m.upper().startswith(("SYST:ERR?", ":OUTP1:LOAD"))]
    sent.clear()
    generator.set_output_enabled(True)
    generator.configure_pulse(amplitude_v=0.5, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=1)
    sent.clear()
    generator.safe_state()
    messages = [m for m in sent if m.upper() != "SYST:ERR?"]
    assert len(messages) == 1, messages
    assert messages[0].split(";") == [":" + unit.lstrip(":") for unit in one_by_one]
    assert re.fullmatch(GENERATOR_WRITES["switch-off"], messages[0].split(";")[0], re.IGNORECASE)
    assert_generator_safe(bench)


def test_gathered_writes_are_not_sent_and_are_only_this_thread_s(connect, bench, generator_model):
    """Inside `gathered_message` nothing reaches the instrument: a query is refused (its reply
    would be needed at once), and another thread's write waits until the gathering ends and then
    goes out on its own, not inside the gathered message."""
    import threading

    generator = _pulsing(connect, generator_model)
    sent = lose_reports_after(bench, "pulser", "$^", "", DELIVER)
    other = threading.Thread(target=lambda: generator.write("*CLS"))

    def write() -> None:
        generator.write(":OUTP1 OFF")
        with pytest.raises(RuntimeError, match=re.escape(repr(generator.name))):
            generator.ask("*OPC?")
        other.start()
        other.join(0.2)
        assert other.is_alive(), "the other thread's write did not wait"
    message = generator.gathered_message(write)
    other.join(5)
    generator.ask("*OPC?")         # answered after the instrument has read what came before it
    assert message == ":OUTP1 OFF" and sent == ["*CLS", "*OPC?"]
    assert bench.world.panels["pulser"].channels[1].output_enabled, "a gathered write was sent"


def test_held_writes_go_out_as_one_message_before_each_query_and_only_this_thread_s(connect, bench,
                                                                                    generator_model):
    """Inside `write_in_messages` the writes go out as one message, each unit from the root,
    before the next query and at the end, in the order written; another thread's write waits until
    the call returns and goes out on its own."""
    import threading

    generator = _pulsing(connect, generator_model)
    sent = lose_reports_after(bench, "pulser", "$^", "", DELIVER)
    other = threading.Thread(target=lambda: generator.write("*CLS"))

    def write() -> None:
        generator.write(":OUTP1:LOAD 50")
        generator.write("*CLS")
        generator.write("OUTP1 OFF")
        assert sent == [], "a held write was sent before a query or the end"
        generator.ask("*OPC?")
        generator.write(":OUTP1 OFF")
        other.start()
        other.join(0.2)
        assert other.is_alive(), "the other thread's write did not wait"
    generator.write_in_messages(write)
    other.join(5)
    generator.ask("*OPC?")         # answered after the instrument has read what came before it
    # (the error-queue reads after what the guard follows are the driver's own)
    assert [m for m in sent if m != "SYST:ERR?"] == [":OUTP1:LOAD 50;*CLS;:OUTP1 OFF", "*OPC?", ":OUTP1 OFF",
                                                     "*CLS", "*OPC?"], sent
    assert not bench.world.panels["pulser"].channels[1].output_enabled


def test_held_writes_are_not_sent_when_an_exception_leaves_the_call(connect, bench, generator_model):
    """What was held when an exception (an interrupt, a refused unit) left `write_in_messages` is
    dropped: the instrument gets none of it, and the next call starts empty."""
    generator = _pulsing(connect, generator_model)
    sent = lose_reports_after(bench, "pulser", "$^", "", DELIVER)

    def interrupted() -> None:
        generator.write(":OUTP1 OFF")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        generator.write_in_messages(interrupted)
    generator.write_in_messages(lambda: generator.write(":OUTP1:LOAD 50"))
    generator.ask("*OPC?")
    assert [m for m in sent if m != "SYST:ERR?"] == [":OUTP1:LOAD 50", "*OPC?"], sent
    assert bench.world.panels["pulser"].channels[1].output_enabled, "a dropped write was sent"


@pytest.mark.parametrize("loss", LOSSES.values(), ids=LOSSES.keys())
@pytest.mark.parametrize("write", GENERATOR_WRITES.values(), ids=GENERATOR_WRITES.keys())
def test_generator_safe_state_completes_when_a_report_is_lost(connect, bench, generator_model, write, loss):
    """The error-queue reply after the switch-off (or after the DC function, or the 0 V offset)
    lost or garbled: the safe state still ends with the output off and the generator at 0 V DC,
    and returns."""
    generator = _pulsing(connect, generator_model)
    sent = lose_reports_after(bench, "pulser", write, "SYST:ERR?", loss)
    generator.safe_state()
    assert_generator_safe(bench)
    assert any(re.search(write, message, re.IGNORECASE) for message in sent), sent


@pytest.mark.parametrize("phase", PHASES)
def test_generator_safe_state_completes_with_every_fifth_reply_dropped(connect, bench, generator_model, phase):
    """The link drops every 5th reply (the run's `drop_every: 5`), wherever in the cycle the safe
    state begins: it ends with the output off and the generator at 0 V DC, and returns."""
    generator = _pulsing(connect, generator_model)
    drop_every_fifth(bench, "pulser", phase)
    generator.safe_state()
    assert_generator_safe(bench)


#: Switching channel 1's output on at the front panel, as either model spells it.
PANEL_OUTPUT_ON = {"keysight_33522b": b"OUTP1 ON\n", "keysight_81160a": b":OUTP1 ON\n"}


def test_generator_safe_state_checks_again_after_a_link_lost_in_its_last_report(connect, bench, generator_model):
    """The safe state ran (the guard knows the generator off at 0 V DC); the link drops at the
    error-queue read that reports on it, and the output is switched on at the front panel while
    it is down. The reconnect sets the guard's record aside, so the safe state writes its message
    again: it once returned with the output on (and over HiSLIP, before the drop was taken for a
    lost link, it failed instead)."""
    generator = _pulsing(connect, generator_model)
    faults = faults_of(bench, "pulser")
    before_reply = faults.before_reply

    def switched_on_while_down(message):
        action = before_reply(message)
        if action.kind == "drop":
            bench.device("pulser").write_bytes(PANEL_OUTPUT_ON[generator_model])
        return action
    faults.before_reply = switched_on_while_down
    faults.inject(DELIVER, drop())     # the safe message's report, then raise_on_errors' read
    generator.safe_state()
    assert generator.links_lost >= 1
    assert_generator_safe(bench)


def test_generator_safe_state_that_cannot_confirm_fails_with_the_output_off(connect, bench, generator_model):
    """Every report after the switch-off lost with the link: the guard never learns the output
    off, so no level is written; the safe state gives up after a bounded number of attempts,
    naming the generator, and the output is off."""
    generator = _pulsing(connect, generator_model)
    sent = lose_reports_after(bench, "pulser", GENERATOR_WRITES["switch-off"], "SYST:ERR?", drop, times=100)
    with pytest.raises(Exception, match=re.escape(repr(generator.name))):
        generator.safe_state()
    assert not bench.world.panels["pulser"].channels[1].output_enabled
    assert sum(message == "SYST:ERR?" for message in sent) < 40, "bounded"


def test_generator_safe_state_refused_its_level_still_switches_the_output_off(connect, bench, generator_model):
    """An envelope that checks no level in volts (the station's own, not the channel's derived one)
    refuses the 0 V DC level, and with it the one message that holds the switch-off: the output,
    on from the front panel, is switched off alone, and the refusal reported."""
    from contracts.envelope import Envelope, EnvelopeError

    bench.device("pulser").write_bytes(b":OUTP1 ON\n")
    assert bench.world.panels["pulser"].channels[1].output_enabled
    generator = connect("pulser", GENERATORS[generator_model], envelope=Envelope("pulse_generator", {
        "pulse_current_max_a": 60e-6}))
    with pytest.raises(EnvelopeError, match="cannot check in volts"):
        generator.safe_state()
    assert not bench.world.panels["pulser"].channels[1].output_enabled


# --------------------------------------------------------------------------- the SMU

SMU_WRITES = {
    "ramp step": r":SOUR:CURR [+-]?[1-9][0-9.e+-]*",
    "0 A": r":SOUR:CURR [+-]?0(?:\.0*)?",
    "switch-off": r":OUTP OFF",
}


def assert_smu_safe(bench) -> None:
    panel = bench.world.panels["bias"]
    assert not panel.output_enabled and panel.current_level_a == 0.0, (panel.output_enabled,
                                                                         panel.current_level_a)


def _smu_at(connect, level_a: float):
    driver = enveloped_smu(connect)
    driver.timeout(0.3)
    driver.set_output_enabled(True)
    driver.set_current_a(level_a, ramp_a_per_s=ENVELOPES["bias"].limits["bias_ramp_max_a_per_s"])
    return driver


@pytest.mark.parametrize("loss", LOSSES.values(), ids=LOSSES.keys())
@pytest.mark.parametrize("write", SMU_WRITES.values(), ids=SMU_WRITES.keys())
def test_smu_safe_state_completes_when_a_report_is_lost(connect, bench, write, loss):
    """The error-queue reply after a ramp step, the 0 A level or the switch-off lost or garbled:
    the SMU still ends off at 0 A, and the safe state returns."""
    driver = _smu_at(connect, 5e-6)
    lose_reports_after(bench, "bias", write, "SYST:ERR?", loss)
    driver.safe_state()
    assert_smu_safe(bench)


@pytest.mark.parametrize("phase", PHASES)
def test_smu_safe_state_completes_with_every_fifth_reply_dropped(connect, bench, phase):
    driver = _smu_at(connect, 5e-6)
    drop_every_fifth(bench, "bias", phase)
    driver.safe_state()
    assert_smu_safe(bench)


# --------------------------------------------------------------------------- temperature controllers

#: model -> (driver, options, the panel's heater outputs)
CONTROLLERS = {
    "lakeshore_336": (Lakeshore336, dict(sensor_input="A", heater_output=1, heater_range="medium")),
    "lakeshore_372": (Lakeshore372, dict(sensor_input=6, heater_range="316μA")),
}


@pytest.fixture(params=sorted(CONTROLLERS))
def controller_model(request) -> str:
    return request.param


def _regulating(connect, controller_model: str):
    driver, options = CONTROLLERS[controller_model]
    controller = connect("cryostat", driver, envelope=ENVELOPES["cryostat"], **options)
    controller.timeout(0.3)
    controller.set_setpoint_k(4.2)
    return controller


def assert_heaters_off(bench) -> None:
    ranges = {n: output.range_index for n, output in bench.world.panels["cryostat"].outputs.items()}
    assert not any(ranges.values()), ranges


@pytest.mark.parametrize("loss", LOSSES.values(), ids=LOSSES.keys())
def test_controller_safe_state_completes_when_its_status_report_is_lost(connect, bench, controller_model, loss):
    """The *ESR? reply after the heater ranges are switched off lost or garbled: every range
    ends off, and the safe state returns."""
    controller = _regulating(connect, controller_model)
    lose_reports_after(bench, "cryostat", r"RANGE \d+,\s*0", "*ESR?", loss)
    controller.safe_state()
    assert_heaters_off(bench)


@pytest.mark.parametrize("phase", PHASES)
def test_controller_safe_state_completes_with_every_fifth_reply_dropped(connect, bench, controller_model, phase):
    controller = _regulating(connect, controller_model)
    drop_every_fifth(bench, "cryostat", phase)
    controller.safe_state()
    assert_heaters_off(bench)


def test_errors_a_verb_left_unreported_are_said_with_the_run_not_as_the_safe_states_failure(connect, bench,
                                                                                        generator_model):
    """Errors the instrument reported after a write are held for the verb's own check; a verb
    that ended before it (on a refusal) left them to the next check, and a clean safe state then
    raised them as its own failure."""
    generator = connect("pulser", GENERATORS[generator_model], envelope=PULSER_ENVELOPE)
    generator.configure_pulse(amplitude_v=0.3, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=2)
    generator.role_channel.level_low(0.5)          # above the high level: the instrument refuses it
    assert generator._held_errors, "the instrument took a low level above the high"
    generator.safe_state()
    assert_generator_safe(bench)
    assert any("before its safe state the instrument had reported" in note for note in generator.safety_notes)
