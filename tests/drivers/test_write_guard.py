"""The write-path guard: every way a level can be written to an instrument is checked at one place,
and a reply cut off by an interruption is never read as the answer to a later query.

Real drivers, real pyvisa transports (in-process backend and TCP on 127.0.0.1), the emulated
bench; `received` is what the instrument itself got.
"""

from __future__ import annotations

import copy
import math
import signal
import time

import pytest
from driver_helpers import (
    CHIP_AMPERES_PER_VOLT, ENVELOPES, PULSER_ENVELOPE, enveloped_smu, faults_of, pulser_problems,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers._write_guard import copy_state, program_units
from drivers.keithley_2450 import LEVEL_AGREEMENT_A, Keithley2450, clamped_to_envelope_a, ramp_start_a
from drivers.keysight_33500b import Keysight33500B
from drivers.keysight_81160a import Keysight81160A
from drivers.lakeshore_336 import Lakeshore336
from contracts.envelope import EnvelopeError

BIAS_MAX_A = ENVELOPES["bias"].limits["bias_current_max_a"]
PULSE_MAX_V = ENVELOPES["pulser"].limits["pulse_current_max_a"] / CHIP_AMPERES_PER_VOLT


@pytest.fixture
def bench_models() -> dict[str, str]:
    return {"pulser": "keysight_81160a"}


smu = enveloped_smu


# -- every path is checked -----------------------------------------------------------------------

SMU_REFUSED = {
    "compound path": lambda d: d.write(":SOUR:FUNC CURR;CURR 1"),
    "long form, lower case": lambda d: d.write(":source1:current:level:immediate:amplitude 1e-3"),
    "inside a query": lambda d: d.ask(":SOUR:CURR 31e-6;:SOUR:CURR?"),
    "keyword value": lambda d: d.write(":SOUR:CURR MAX"),
    "non-decimal value": lambda d: d.write(":SOUR:CURR #H1"),
    "stock parameter": lambda d: d.source.current(1.0),
    "voltage source": lambda d: d.write(":SOUR:FUNC VOLT"),
    "voltage level": lambda d: d.write(":SOUR:VOLT 1"),
    "list entry": lambda d: d.write(":SOUR:LIST:CURR 1e-6,1e-3"),
    "recalled setup": lambda d: d.write("*RCL 1"),
    "recalled source configuration": lambda d: d.write(':SOUR:CONF:LIST:REC "biases", 2'),
    # trigger-model blocks that apply a configuration list's stored source settings when it runs
    "configuration block": lambda d: d.write(':TRIG:BLOC:CONF:REC 3, "biases"'),
    "next configuration block": lambda d: d.write(':trigger:block:config:next 4, "biases"'),
    "compliance": lambda d: d.write(":SOUR:CURR:VLIM 20"),
    "linear sweep": lambda d: d.write(':SOUR:SWE:CURR:LIN 0, 1e-3, 10, 1e-3'),
    # a socket instrument may end the message at the line feed and run the rest
    "line feed in a string": lambda d: d.write(':DISP:USER1:TEXT "x\n:SOUR:CURR 1e-3\n"'),
}


@pytest.mark.parametrize("path", sorted(SMU_REFUSED))
def test_every_way_to_a_bias_level_is_checked_before_a_byte_is_written(connect, received, bench, path):
    driver = smu(connect)
    driver.set_output_enabled(True)
    driver.set_current_a(10e-6, ramp_a_per_s=100e-6)
    log = received("bias")
    with pytest.raises(EnvelopeError, match="refused"):
        SMU_REFUSED[path](driver)
    assert log.messages == [], f"{path}: reached the instrument: {log.messages}"
    assert bench.world.panels["bias"].current_level_a == pytest.approx(10e-6)


def test_a_bias_rise_faster_than_the_envelope_is_refused(connect, received):
    driver = smu(connect)
    driver.set_output_enabled(True)
    log = received("bias")
    with pytest.raises(EnvelopeError, match="largest ramp step"):
        driver.write(":SOUR:CURR 25e-6")                   # 25 uA at once; the limit is 100 uA/s
    assert log.messages == []
    driver.set_current_a(25e-6, ramp_a_per_s=100e-6)      # the same level, ramped, is fine
    assert driver.source_level_a() == pytest.approx(25e-6)


def test_output_on_with_an_unknown_level_is_refused(connect, received):
    driver = smu(connect)
    driver.write("*RST")
    driver.write(":SOUR:FUNC CURR")                        # the current level is now the instrument's
    log = received("bias")
    with pytest.raises(EnvelopeError, match="unknown"):
        driver.write(":OUTP ON")
    assert log.messages == []


def _sourcing_five_volts(connect, bench):
    """A 2450 left sourcing 5 V at the front panel, output off, and a driver that has not read it."""
    panel = bench.world.panels["bias"]
    panel.source_function, panel.voltage_level_v, panel.output_enabled = "voltage", 5.0, False
    return panel, connect("bias", Keithley2450, envelope=ENVELOPES["bias"])


def test_output_on_sourcing_voltage_is_refused_whatever_the_current_level(connect, received, bench):
    """A source function left at voltage (at the front panel, or by *RST) puts out its voltage
    level when the output goes on: refused until the function is set, or read twice alike, as
    current, though the current level, the compliance and the output state are all known."""
    panel, driver = _sourcing_five_volts(connect, bench)
    for _ in range(2):                                     # learnt from two replies alike
        assert float(driver.ask(":SOUR:CURR?")) == 0.0 and driver.ask(":OUTP?") == "0"
    driver.write(":SOUR:CURR:VLIM 0.5")
    log = received("bias")
    with pytest.raises(EnvelopeError, match="source function is not known to be current"):
        driver.write(":OUTP ON")
    assert log.messages == [] and not panel.output_enabled
    for _ in range(2):
        assert driver.ask(":SOUR:FUNC?") == "VOLT"
    with pytest.raises(EnvelopeError, match="source function is not known to be current"):
        driver.write(":OUTP ON")
    driver.write(":SOUR:FUNC CURR")
    driver.write(":SOUR:CURR 0")
    driver.write(":OUTP ON")
    assert panel.output_enabled and panel.source_function == "current"


def test_a_function_reply_garbled_into_current_does_not_switch_a_voltage_source_on(connect, received, bench):
    """`set_output_enabled(True)` on a 2450 left sourcing 5 V: its `:SOUR:FUNC?` answered `CURR`
    once (a valid reply, garbled). The verb reads until two replies agree, finds voltage, and
    switches to current with the output off before switching it on: 0 A, never 5 V."""
    from sim_backend.faults.plan import DELIVER, garble

    panel, driver = _sourcing_five_volts(connect, bench)
    driver.write(":SOUR:CURR:VLIM 0.5")
    faults = faults_of(bench, "bias")
    faults.inject(DELIVER)                                 # :SOUR:CURR:VLIM?
    faults.inject(garble(b"CURR\n"))                       # the first :SOUR:FUNC?
    log = received("bias")
    driver.set_output_enabled(True)
    assert panel.output_enabled and panel.source_function == "current" and panel.current_level_a == 0.0
    assert log.messages.index(":SOUR:FUNC CURR") < log.messages.index(":OUTP ON")


@pytest.mark.parametrize("command", [":SOUR:CURR:RANG 1", ":SOUR:CURR:RANG 1e-3", ":SOUR:CURR:RANG MAX",
                                     ":SOURce1:CURRent:RANGe 100.1e-6", ":SOUR:CURR:RANG -1e-3"])
def test_a_fixed_source_range_wider_than_the_envelope_needs_is_refused(connect, received, bench, command):
    """On a fixed 1 A range a 2450's level is accurate to ±0.9 mA and its output-off state limits at
    100 mA: ranges wider than the one the envelope's largest current (30 µA) needs, 100 µA, are
    refused, whatever the spelling or path."""
    driver = smu(connect)
    before = driver.ask(":SOUR:CURR:RANG?")
    log = received("bias")
    with pytest.raises(EnvelopeError, match="source range"):
        driver.write(command)
    assert log.messages == [] and driver.ask(":SOUR:CURR:RANG?") == before


def test_a_fixed_source_range_the_envelope_needs_passes(connect, bench):
    driver = smu(connect)
    for command in (":SOUR:CURR:RANG 100e-6", ":SOUR:CURR:RANG 30e-6", ":SOUR:CURR:RANG:AUTO ON"):
        driver.write(command)
    assert driver.ask(":SOUR:CURR:RANG:AUTO?") == "1"


def test_pulse_levels_by_any_path_are_checked(connect, received, bench):
    generator = connect("pulser", Keysight81160A, envelope=PULSER_ENVELOPE)
    generator.configure_pulse(amplitude_v=0.5 * PULSE_MAX_V, width_s=50e-9, edge_s=5e-9, period_s=1e-6, count=1)
    log = received("pulser")
    for write in (lambda: generator.ch1.level_high(2 * PULSE_MAX_V),       # a stock-style parameter
                  lambda: generator.write(f":VOLT1:OFFS {PULSE_MAX_V}"),  # offset moves both levels up
                  lambda: generator.write(":VOLT2:LOW -4"),                # another channel
                  lambda: generator.write(":PULS:WIDT1 5e-6"),
                  lambda: generator.write(":APPL1:PULS 1e6, 1, 0"),
                  # levels in amperes into the expected load (the emulator has no CURRent
                  # subsystem: the guard refuses it whole)
                  lambda: generator.write(":CURR1:HIGH 0.1"),
                  lambda: generator.write(":SOUR2:CURR:OFFS 0.02")):
        with pytest.raises(EnvelopeError, match="refused"):
            write()
    assert log.messages == []
    assert generator.write_guard.commanded(("levels", 1))["high"] == pytest.approx(0.5 * PULSE_MAX_V)


class TestKeysight33500B:
    @pytest.fixture
    def bench_models(self) -> dict[str, str]:
        return {"pulser": "keysight_33522b"}

    def test_an_amplitude_around_an_unknown_offset_is_refused_and_the_output_stays_off(self, connect, received):
        generator = connect("pulser", Keysight33500B, envelope=PULSER_ENVELOPE)
        log = received("pulser")
        with pytest.raises(EnvelopeError, match="refused"):
            generator.ch1.amplitude(0.1)                   # stock parameter: levels around an unknown offset
        generator.ch1.function_type("PULS")
        with pytest.raises(EnvelopeError, match="unknown"):
            generator.write("OUTP1 ON")                    # levels never set in this session
        assert not any("OUTP1 ON" in m or "VOLT 0.1" in m for m in log.messages), log.messages


#: What a generator offers that adds to a channel's output or copies levels between channels:
#: (model, bench model, message refused, the same switched off, which passes the guard). The
#: emulator implements none of these (it answers -113): the spellings are the programming
#: guides', and what is checked is that the guard stops the message before a byte is written.
ADDING_TO_THE_OUTPUT = {
    "33500b other channel fed in": (Keysight33500B, "keysight_33522b", ":SOUR1:COMB:FEED CH2", ":SOUR1:COMB:FEED NONE"),
    "33500b tracking": (Keysight33500B, "keysight_33522b", "SOURCE1:TRACK INVERTED", ":SOUR1:TRAC OFF"),
    "33500b coupled amplitudes": (Keysight33500B, "keysight_33522b", ":SOUR2:VOLT:COUP ON", ":SOUR2:VOLT:COUP:STAT 0"),
    "33500b sum modulation": (Keysight33500B, "keysight_33522b", ":SOUR1:SUM:STAT ON", ":SOUR1:SUM:STAT OFF"),
    "33500b amplitude modulation": (Keysight33500B, "keysight_33522b", "AM:STAT 1", "AM:STAT 0"),
    "33500b pulse width modulation": (Keysight33500B, "keysight_33522b", ":SOUR1:PWM:STAT ON", ":SOUR1:PWM:STAT OFF"),
    "33500b in a compound message": (Keysight33500B, "keysight_33522b", ":SOUR1:VOLT:HIGH 0.1;:SOUR1:FSK:STAT ON",
                                     ":SOUR1:FSK:STAT OFF"),
    "81160a amplitude modulation": (Keysight81160A, "keysight_81160a", ":AM1 ON", ":AM1 OFF"),
    "81160a pulse width modulation on SOURce": (Keysight81160A, "keysight_81160a", ":SOUR2:PWM:STAT 1", ":SOUR2:PWM 0"),
    "81160a 5 ohm source": (Keysight81160A, "keysight_81160a", ":OUTP1:IMP 5", ":OUTP1:IMP:INT 50"),
}


@pytest.mark.parametrize("case, bench_models", [(case, {"pulser": ADDING_TO_THE_OUTPUT[case][1]})
                                                 for case in sorted(ADDING_TO_THE_OUTPUT)])
def test_what_adds_to_a_generators_output_is_refused_unless_off(connect, received, case):
    model, _, message, switched_off = ADDING_TO_THE_OUTPUT[case]
    generator = connect("pulser", model, envelope=PULSER_ENVELOPE)
    log = received("pulser")
    with pytest.raises(EnvelopeError, match="would put out other than the levels"):
        generator.write(message)
    assert log.messages == []                              # nothing of the message was written
    generator.write(switched_off)                          # off is no risk: it reaches the instrument
    generator.ask("*OPC?")                                 # over TCP: the write has been run
    assert [m.strip() for m in log.messages][0] == switched_off


@pytest.mark.parametrize("model, bench_models", [(Keysight33500B, {"pulser": "keysight_33522b"}),
                                                  (Keysight81160A, {"pulser": "keysight_81160a"})])
def test_a_load_set_at_the_front_panel_is_put_back_before_levels_are_written(connect, bench, model):
    """The levels are written into the load the instrument is told of: 10 ohm set at its panel
    (before the session, or while the link was down) makes the same setting three times the
    level at the chip's matched line. Every configuration writes the load back first, and a
    reconnect re-applies the configuration."""
    from sim_backend.faults.plan import drop

    panel = bench.world.panels["pulser"].channels[1]
    at_the_panel = bench.device("pulser").write_bytes          # past the driver, as a person would
    at_the_panel(b":OUTP1:LOAD 10\n")                          # before the session
    assert panel.load_ohm == 10.0
    generator = connect("pulser", model, envelope=PULSER_ENVELOPE)
    generator.configure_pulse(amplitude_v=0.5 * PULSE_MAX_V, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=1)
    assert panel.load_ohm == 50.0
    generator.set_output_enabled(True)
    at_the_panel(b":OUTP1:LOAD 10\n")                          # while the link is down
    faults_of(bench, "pulser").inject(drop())
    generator.ask("*OPC?")                                      # dropped, reconnected, re-applied, asked again
    assert panel.load_ohm == 50.0
    assert not pulser_problems(generator, bench)


#: Spellings the 81160A takes for a width, a duty cycle, a load, an output or a channel that the
#: guard once let through (each one put a channel outside the envelope, or on unbeknown to it).
UNRULED_81160A = {
    "width under FUNCtion": [":PULS:PER1 1e-3", ":FUNC1:PULS:WIDT 1e-4"],
    "duty cycle under FUNCtion": [":PULS:PER1 1e-3", ":FUNC1:PULS:DCYC 50"],
    "hold under FUNCtion": [":FUNC1:PULS:HOLD DCYC", ":FREQ1 1000"],
    "external impedance": [":OUTP1:IMP:EXT INF"],
    "two channel suffixes": [":SOUR2:FUNC PULS", ":SOUR2:VOLT:HIGH 1.0", ":SOUR2:VOLT:LOW 0", ":OUTP2 ON",
                             ":SOUR2:VOLT1:OFFS 0.85"],
    "output NORMal": [":OUTP1 OFF", ":OUTP1:NORM ON"],
}


@pytest.mark.parametrize("attack", sorted(UNRULED_81160A))
def test_every_spelling_the_81160a_takes_is_checked(connect, bench, attack):
    generator = connect("pulser", Keysight81160A, envelope=PULSER_ENVELOPE)
    # Channel 1's pulse low enough that the offset read as its own stays inside the envelope.
    amplitude_v = (0.5 if attack == "two channel suffixes" else 0.8) * PULSE_MAX_V
    generator.configure_pulse(amplitude_v=amplitude_v, width_s=50e-9, edge_s=5e-9, period_s=1e-6, count=1)
    generator.set_output_enabled(True)
    outcomes = []
    for message in UNRULED_81160A[attack]:
        try:
            generator.write(message)
            outcomes.append((message, "sent"))
        except EnvelopeError:
            outcomes.append((message, "refused"))
    generator.ask(":SYST:ERR?")
    problems = pulser_problems(generator, bench)
    assert not problems, (outcomes, problems)


def test_two_threads_sharing_a_driver_are_checked_one_after_the_other(connect, bench):
    """Each message is checked against the level the one before it left: a write that waits for
    the driver while another's reply is delayed is checked after that one, so two steps each
    within the largest step, from one level, cannot make one twice as large."""
    import threading

    driver = smu(connect)
    driver.set_output_enabled(True)
    step_a = 0.99 * driver._largest_step_a()
    time.sleep(1.5 * step_a / ENVELOPES["bias"].limits["bias_ramp_max_a_per_s"])   # within the ramp rate too
    faults = bias_faults(bench)
    faults.reply_delay_s = 0.3
    outcomes: dict[str, str] = {}

    def up() -> None:
        try:
            driver.ask(f":SOUR:CURR {step_a:.6e};:SOUR:CURR?")
            outcomes["up"] = "sent"
        except Exception as error:  # noqa: BLE001 - the assertion below names it
            outcomes["up"] = repr(error)

    def down() -> None:
        try:
            driver.write(f":SOUR:CURR {-step_a:.6e}")
            outcomes["down"] = "sent"
        except EnvelopeError:
            outcomes["down"] = "refused"

    first = threading.Thread(target=up)
    first.start()
    time.sleep(0.1)                                       # the up step's reply is on its way
    second = threading.Thread(target=down)
    second.start()
    first.join(5)
    second.join(5)
    faults.reply_delay_s = 0.0
    assert outcomes == {"up": "sent", "down": "refused"}, outcomes
    assert bench.world.panels["bias"].current_level_a == pytest.approx(step_a)


def test_setpoints_by_any_path_are_checked(connect, received):
    controller = connect("cryostat", Lakeshore336, envelope=ENVELOPES["cryostat"])
    log = received("cryostat")
    for write in (lambda: controller.output_1.setpoint(300.0),            # stock parameter
                  lambda: controller.write("SETP 1,#H1F"),
                  lambda: controller.write("SETP 1,MIN"),
                  lambda: controller.write("SETP 1, 0.5"),
                  lambda: controller.write("RAMP 1,1,100"),
                  lambda: controller.write("MOUT 1,50"),
                  lambda: controller.write("HTRSET 1,2,0,2.0,1"),      # 2 A into 50 ohm: 200 W full scale
                  lambda: controller.write("TLIMIT A,0"),
                  lambda: controller.write("INCRV A,0"),
                  lambda: controller.write("CRVPT 21,1,0.1,300")):
        with pytest.raises(EnvelopeError, match="refused"):
            write()
    assert log.messages == []


def test_program_units_follow_the_compound_header_rule():
    units = program_units(":SOUR:FUNC CURR;CURR 5e-6;*OPC?;:OUTP ON;STAT 0")
    assert [u.header for u in units] == [":SOUR:FUNC", ":SOUR:CURR", "*OPC?", ":OUTP", ":STAT"]
    assert units[1].arguments == ("5e-6",)
    with pytest.raises(EnvelopeError, match="not a program unit"):
        program_units("SETP1,4.2")
    with pytest.raises(EnvelopeError, match="not a program unit"):    # refused again, not remembered
        program_units("SETP1,4.2")


def test_the_guards_state_copy_is_a_deep_copy():
    """What `admit` works on: a change to it (a nested pulse-level dict included) never reaches
    the state it was copied from, as with copy.deepcopy."""
    state = {("levels", 1): {"high": 0.5, "low": 0.0, "offset": None}, "level_a": 1e-6,
             "list_a": (1e-6, 2e-6), ("output_on", 1): True, "odd": [1.0, {"x": 2.0}]}
    copied = copy_state(state)
    assert copied == copy.deepcopy(state) == state
    copied[("levels", 1)]["high"] = 9.0
    copied["odd"][1]["x"] = 9.0
    copied["level_a"] = 9.0
    assert state[("levels", 1)]["high"] == 0.5 and state["odd"][1]["x"] == 2.0 and state["level_a"] == 1e-6


# -- an interrupted exchange ---------------------------------------------------------------------

def bias_faults(bench):
    """The SMU's fault plan, which both transports consult before every reply."""
    return faults_of(bench, "bias")


def interrupted_query(driver, query: str, after_s: float) -> None:
    """`query` with the reply delayed; a signal raises KeyboardInterrupt while it is awaited."""
    def fire(signum, frame):
        raise KeyboardInterrupt("test signal")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, after_s)
    try:
        with pytest.raises(KeyboardInterrupt):
            driver.ask(query)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_reply_left_by_an_interrupted_query_is_never_taken_for_a_later_one(connect, bench, received):
    """The Ctrl-C case of the issue: `:OUTP?` cut mid-reply; its `1` must not become the source
    level that the ramp to zero starts from (it ramped down from 1 A)."""
    driver = smu(connect)
    driver.set_output_enabled(True)
    driver.set_current_a(12e-6, ramp_a_per_s=100e-6)
    faults = bias_faults(bench)
    faults.reply_delay_s = 0.4
    interrupted_query(driver, ":OUTP?", after_s=0.1)
    faults.reply_delay_s = 0.0
    time.sleep(0.5)                                         # the stale "1" is now waiting
    log = received("bias")
    assert driver.source_level_a() == pytest.approx(12e-6)  # not 1 (the answer to :OUTP?)
    assert driver.resynchronisations == 1
    driver.safe_state()
    panel = bench.world.panels["bias"]
    assert panel.current_level_a == 0.0 and not panel.output_enabled
    levels = [float(m.split()[-1]) for m in log.messages if m.upper().startswith(":SOUR:CURR ")]
    assert levels and max(abs(x) for x in levels) <= 12e-6 * (1 + 1e-9), levels


# -- the ramp's start against any reading ---------------------------------------------------------

readings = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from([1.0, 0.98, -1.0, 0.0, 45e-6, 1e300, -1e-300]))
commanded = st.one_of(st.none(), st.floats(-BIAS_MAX_A, BIAS_MAX_A))


@settings(derandomize=True, max_examples=400, deadline=None)
@given(commanded_a=commanded, read_a=readings)
def test_the_ramp_to_zero_can_only_lower_the_current_whatever_the_reading(commanded_a, read_a):
    """Whatever the reply (garbage, desynchronised, another query's answer), every level of the
    ramp to 0 A lies in the envelope and, for every level the source might really be at (the one
    commanded, or a plausible reading), is no further from 0 A on the same side."""
    start_a, _ = ramp_start_a(commanded_a, read_a, BIAS_MAX_A)
    start_a, _ = clamped_to_envelope_a(start_a, BIAS_MAX_A)
    span = abs(start_a)
    steps = max(math.ceil(span / 1e-6), 1)
    levels = [start_a * (1 - k / steps) for k in range(steps + 1)]
    plausible = read_a is not None and math.isfinite(read_a) and abs(read_a) <= BIAS_MAX_A
    possible = [x for x in (commanded_a, read_a if plausible else None) if x is not None]
    for level in levels:
        assert abs(level) <= BIAS_MAX_A
        for true_a in possible:
            # Readings within the source's resolution agree: they are one level.
            same_side = math.copysign(1.0, level) == math.copysign(1.0, true_a) or abs(true_a) <= LEVEL_AGREEMENT_A
            assert level == 0 or (same_side and abs(level) <= abs(true_a) + LEVEL_AGREEMENT_A), (
                commanded_a, read_a, start_a, level)


@settings(derandomize=True, max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(level_fraction=st.floats(0.05, 1.0), cut_at=st.integers(0, 6), garble=st.booleans())
def test_safe_state_after_a_cut_exchange_and_garbage_stays_in_the_envelope(connect, bench, received, level_fraction,
                                                                         cut_at, garble):
    """A run interrupted at any of the exchanges of a bias change (its reply left unread), then
    safe state with a garbled reply on the way: every level the SMU got is in the envelope and
    the source ends at 0 A, output off."""
    from sim_backend.faults.plan import garble as garbled

    driver = smu(connect)
    driver.set_output_enabled(True)
    log = received("bias")
    log.clear()
    handle = driver.visa_handle
    original_read, reads = handle.read, [0]

    def read(*args, **kwargs):
        reads[0] += 1
        if reads[0] == cut_at + 1:
            raise KeyboardInterrupt("cut")               # the reply stays unread
        return original_read(*args, **kwargs)

    handle.read = read
    try:
        driver.set_current_a(level_fraction * BIAS_MAX_A,
                             ramp_a_per_s=ENVELOPES["bias"].limits["bias_ramp_max_a_per_s"])
    except KeyboardInterrupt:
        pass
    finally:
        handle.read = original_read
    if garble:
        bias_faults(bench).inject(garbled())
    try:
        driver.safe_state()
    finally:
        driver.close()          # each example's connection ends with it (a port serves 8 clients)
    panel = bench.world.panels["bias"]
    assert panel.current_level_a == 0.0 and not panel.output_enabled
    levels = [float(m.split()[-1]) for m in log.messages if m.upper().startswith(":SOUR:CURR ")]
    assert all(abs(x) <= BIAS_MAX_A * (1 + 1e-9) for x in levels), levels
