"""Attacks on the write-path guard (drivers/_write_guard.py and the per-model rules): header and
value spellings, commands that change what a level means, state the guard could not see, replies
split by line noise, safe state against garbled or unexpected replies. Each test tries to get a
level outside the envelope to an emulated instrument through a real driver over a real
transport, or a stale reply read as a later one; the bench panels are what the instrument got.
"""

from __future__ import annotations

import time

import pytest
from driver_helpers import (CHIP_AMPERES_PER_VOLT, ENVELOPES, PULSER_ENVELOPE, enveloped_smu, faults_of,
                            largest_rise_a, trace_smu)

from drivers.keithley_2450 import Keithley2450
from drivers.keysight_33500b import Keysight33500B
from drivers.keysight_81160a import Keysight81160A
from contracts.envelope import EnvelopeError

BIAS_MAX_A = ENVELOPES["bias"].limits["bias_current_max_a"]            # 30 uA
RAMP_MAX_A_PER_S = ENVELOPES["bias"].limits["bias_ramp_max_a_per_s"]   # 100 uA/s
PULSE_MAX_V = ENVELOPES["pulser"].limits["pulse_current_max_a"] / CHIP_AMPERES_PER_VOLT
WIDTH_MAX_S = ENVELOPES["pulser"].limits["pulse_width_max_s"]


@pytest.fixture
def bench_models() -> dict[str, str]:
    return {"pulser": "keysight_81160a"}


smu = enveloped_smu


def try_write(driver, message: str) -> None:
    """Send `message`; a refusal by the guard is the correct outcome, not an error. Then wait
    until the instrument has run it (over TCP a write returns before the server runs it)."""
    try:
        driver.write(message)
    except EnvelopeError:
        pass
    driver.ask("*ESR?" if hasattr(driver, "role_output") else "*OPC?")


# -- Keithley 2450: header spellings the emulator accepts and the guard does not recognise -------

@pytest.mark.parametrize("message", [":SOUR01:CURR 1e-3", ":SOURce001:CURRent:LEVel 1e-3"])
def test_smu_a_suffix_with_leading_zeros_is_still_a_source_level(connect, bench, message):
    """`[:SOURce[1]]` in the guard matches SOUR/SOUR1 only; the 2450 (and its emulator) take
    SOUR01 as suffix 1. The guard sees no rule and the level goes through unchecked."""
    driver = smu(connect)
    driver.set_output_enabled(True)
    try_write(driver, message)
    assert abs(bench.world.panels["bias"].current_level_a) <= BIAS_MAX_A, (
        f"{message!r} set the source to {bench.world.panels['bias'].current_level_a} A")


def test_smu_output_on_with_a_leading_zero_suffix_is_checked(connect, bench):
    """`:OUTP01 ON` is not matched by `:OUTPut[1][:STATe]`: the output goes on with the level
    unknown to the guard (here after *RST, which the guard's own rule says makes it unknown)."""
    driver = smu(connect)
    driver.write("*RST")
    try_write(driver, ":OUTP01 ON")
    assert not bench.world.panels["bias"].output_enabled


# -- several program messages in one write ---------------------------------------------------------

@pytest.mark.parametrize("message", ["*CLS\n:SOUR:CURR 1e-3", ":SYST:ERR?\n:SOUR:CURR 1e-3"])
def test_smu_a_second_message_after_an_embedded_newline_is_checked(connect, bench, message):
    """The guard splits only at `;` and reads everything after the first header as its
    arguments; the instrument frames at LF, so the text after `\\n` is a message of its own."""
    driver = smu(connect)
    driver.set_output_enabled(True)
    try_write(driver, message)
    assert abs(bench.world.panels["bias"].current_level_a) <= BIAS_MAX_A, (
        f"{message!r} set the source to {bench.world.panels['bias'].current_level_a} A")


# -- state the guard does not follow ---------------------------------------------------------------

def test_smu_appending_to_a_list_the_guard_never_saw_is_refused(connect, bench):
    """The instrument still holds a source list from before this session (another program, a
    station with a wider envelope). `:SOUR:LIST:CURR:APP` adds to it; the guard records only the
    appended values as the list, admits the list sweep, and :INIT plays the old 1 mA entry."""
    smu_model = bench.device("bias")
    smu_model.source_list = [1e-3]                    # left by an earlier session
    driver = smu(connect)
    driver.set_output_enabled(True)
    try_write(driver, ":SOUR:LIST:CURR:APP 0")
    try_write(driver, ':SOUR:SWE:CURR:LIST 1, 10, 1, OFF, "defbuffer1"')
    try_write(driver, ":INIT")
    peak = bench.world.panels["bias"].peak_current_a
    assert peak <= BIAS_MAX_A, f"the list sweep put {peak} A through the chip"


def test_smu_initiate_counts_as_switching_the_output_on(connect, bench):
    """:INIT switches the output on (the 2450 does; so does the emulator) but the guard does not
    know: with OUTPUT_ON false it skips the ramp-rate check, so the next level jumps at once."""
    driver = smu(connect)
    driver.set_output_enabled(False)
    driver.write(":SOUR:LIST:CURR 0")
    driver.write(':SOUR:SWE:CURR:LIST 1, 0.001, 1, OFF, "defbuffer1"')
    driver.write(":INIT")
    driver.ask("*ESR?" if hasattr(driver, "role_output") else "*OPC?")
    assert bench.world.panels["bias"].output_enabled        # the instrument's output is on now
    try_write(driver, f":SOUR:CURR {BIAS_MAX_A:.6g}")         # 0 -> 30 uA at once; limit 100 uA/s
    assert bench.world.panels["bias"].current_level_a == 0.0, "a 30 uA step got past the ramp-rate check"


@pytest.mark.parametrize("programmed_a", [2e-6, 0.6e-6])
def test_smu_a_list_sweep_with_the_output_off_starts_from_0_a(connect, bench, programmed_a):
    """With the output off, a level may be programmed (nothing flows); :INIT then switches the
    output on at it and steps to the first point at once. The sweep's check started from the
    programmed level as if it were flowing: 0 -> 2 uA went through in one step, above the largest
    ramp step (1.2 uA here). A level within one step is let through, as switching the output on
    at it would be, and the first point then at no faster than the rate allows: none at once."""
    driver = smu(connect)
    driver.set_output_enabled(False)
    panel = bench.world.panels["bias"]
    levels = trace_smu(bench)
    try_write(driver, f":SOUR:CURR {programmed_a:.6g}")
    try_write(driver, f":SOUR:LIST:CURR {programmed_a:.6g},{programmed_a + 1e-6:.6g}")
    try_write(driver, ':SOUR:SWE:CURR:LIST 1, 0.01, 1, OFF, "defbuffer1"')
    try_write(driver, ":INIT")
    assert largest_rise_a(levels) <= driver._largest_step_a() * (1 + 1e-9), [a for _, a in levels]
    assert not panel.output_enabled or programmed_a <= driver._largest_step_a()


def test_smu_an_unknown_output_state_at_connect_counts_as_on(connect, bench):
    """A session that opens an SMU left on (a killed run) knows neither the output state nor
    the level: a stock parameter set jumps straight to the envelope's edge."""
    panel = bench.world.panels["bias"]
    panel.source_function, panel.output_enabled, panel.current_level_a = "current", True, 0.0
    driver = connect("bias", Keithley2450, envelope=ENVELOPES["bias"])
    try_write(driver, f":SOUR:CURR {BIAS_MAX_A:.6g}")
    assert panel.current_level_a == 0.0, "a 30 uA step at once, with the output on"


def test_smu_a_full_scale_step_after_idling_is_refused(connect, bench, received):
    """The rate check compares a rise with the time since the last level was admitted, so after
    0.35 s at 0 A with the output on, one write jumps the source 0 -> 30 uA at once (the driver's
    own ramps take 1 uA steps); dI/dt at the instrument is unbounded."""
    driver = smu(connect)
    driver.set_output_enabled(True)
    time.sleep(0.35)
    try_write(driver, f":SOUR:CURR {BIAS_MAX_A:.6g}")
    assert bench.world.panels["bias"].current_level_a == 0.0, "one 30 uA step with the output on"


# -- a garbled reply that splits into two lines ----------------------------------------------------

def test_smu_a_reply_split_by_line_noise_is_never_taken_for_the_next(connect, bench):
    """Line noise that turns one byte of `+1.200000E-05` into LF: the driver reads `+1.20000`
    (a float), the rest stays unread and becomes the answer to the next query, and every later
    reply is one behind. No resynchronisation: the exchange counted as complete."""
    from sim_backend.faults.plan import garble

    driver = smu(connect)
    driver.set_output_enabled(True)
    driver.set_current_a(12e-6, ramp_a_per_s=RAMP_MAX_A_PER_S)
    faults_of(bench, "bias").inject(garble(b"+1.20000\n0E-05\n"))
    driver.source_level_a()
    identity = driver.ask("*IDN?")
    assert "KEITHLEY" in identity, f"*IDN? answered {identity!r} (a stale reply)"


def test_smu_safe_state_survives_garbled_function_replies(connect, bench):
    """`_ensure_current_source` takes any `:SOUR:FUNC?` reply other than CURR as "voltage mode"
    and, the output being on, refuses: a garbled reply (`CU\\x12R`) is not read
    again. Two in a row (one per attempt of the runner's make_safe) leave the bias on at 12 uA."""
    from lab.execution.runner import make_safe
    from sim_backend.faults.plan import garble

    driver = smu(connect)
    driver.set_output_enabled(True)
    driver.set_current_a(12e-6, ramp_a_per_s=RAMP_MAX_A_PER_S)
    faults = faults_of(bench, "bias")
    original_ask = driver.ask

    def ask(cmd):                     # garble the reply to each `:SOUR:FUNC?`, nothing else
        if cmd == ":SOUR:FUNC?":
            faults.inject(garble(b"CU\x12R\n"))   # one byte hit by noise
        return original_ask(cmd)

    driver.ask = ask
    problems = make_safe({"bias": driver})
    panel = bench.world.panels["bias"]
    assert not panel.output_enabled and panel.current_level_a == 0.0, (
        f"after safe state: output {panel.output_enabled}, {panel.current_level_a} A; {problems}")


def test_smu_a_sign_reversal_counts_as_a_rise(connect, bench):
    """`_check_rise` only looks at |I|: from +30 uA, one write of -30 uA (a 60 uA swing through
    zero, at once) has no larger magnitude and skips the ramp-rate check."""
    driver = smu(connect)
    driver.set_output_enabled(True)
    driver.set_current_a(BIAS_MAX_A, ramp_a_per_s=RAMP_MAX_A_PER_S)
    try_write(driver, f":SOUR:CURR {-BIAS_MAX_A:.6g}")
    assert bench.world.panels["bias"].current_level_a == pytest.approx(BIAS_MAX_A), "+30 -> -30 uA at once"


def test_smu_safe_state_switches_off_an_output_found_sourcing_voltage(connect, bench):
    """An SMU found sourcing voltage with its output on (left so by another program): the
    guard rightly refuses `:SOUR:FUNC CURR`, but safe_state then raises before `:OUTP OFF`, so
    no ending ever switches the output off."""
    from lab.execution.runner import make_safe

    panel = bench.world.panels["bias"]
    driver = connect("bias", Keithley2450, envelope=ENVELOPES["bias"])
    driver.write(":OUTP OFF")
    driver.ask("*OPC?")
    panel.source_function, panel.voltage_level_v, panel.output_enabled = "voltage", 0.2, True
    problems = make_safe({"bias": driver})
    assert not panel.output_enabled, f"output still on, sourcing {panel.voltage_level_v} V: {problems}"


# -- Keysight 81160A -------------------------------------------------------------------------------

def generator_81160a(connect) -> Keysight81160A:
    generator = connect("pulser", Keysight81160A, envelope=PULSER_ENVELOPE)
    generator.configure_pulse(amplitude_v=0.5 * PULSE_MAX_V, width_s=50e-9, edge_s=5e-9, period_s=1e-6, count=1)
    return generator


@pytest.mark.parametrize("message", [":VOLT1:LEV:HIGH 4", ":VOLT:LEV:IMM:HIGH 4", ":SOUR2:VOLT:HIGH 4",
                                     ":VOLT:LEV:OFFS 3"])
def test_81160a_every_spelling_of_a_level_header_is_checked(connect, bench, message):
    """The guard's 81160A spellings lack `[:LEVel][:IMMediate]` before HIGH/LOW/OFFSet and the
    SOURce node's channel suffix; the instrument has both."""
    generator = generator_81160a(connect)
    try_write(generator, message)
    for number, channel in bench.world.panels["pulser"].channels.items():
        assert max(abs(channel.high_v), abs(channel.low_v)) <= PULSE_MAX_V * (1 + 1e-9), (
            f"{message!r}: channel {number} at {channel.low_v}..{channel.high_v} V, limit {PULSE_MAX_V} V")


def test_81160a_a_load_setting_that_scales_the_levels_is_refused(connect, bench):
    """`OUTP1:LOAD INF` keeps the output voltage but the displayed (= chip-side, in this world)
    levels double; the guard still believes the levels it admitted."""
    generator = connect("pulser", Keysight81160A, envelope=PULSER_ENVELOPE)
    generator.configure_pulse(amplitude_v=0.8 * PULSE_MAX_V, width_s=50e-9, edge_s=5e-9, period_s=1e-6, count=1)
    try_write(generator, ":OUTP1:LOAD INF")
    channel = bench.world.panels["pulser"].channels[1]
    assert channel.high_v <= PULSE_MAX_V * (1 + 1e-9), f"high level {channel.high_v} V, limit {PULSE_MAX_V} V"


@pytest.mark.parametrize("messages", [(":FUNC1 SQU", ":FREQ1 1000"), (":PULS:HOLD1 DCYC", ":FREQ1 1000")])
def test_81160a_a_width_set_without_a_width_command_is_refused(connect, bench, messages):
    """The pulse width envelope is checked only on :PULS:WIDT. A square wave (width = half the
    period) or a held duty cycle turns a frequency change into a width of 0.5 ms / 5 us."""
    generator = generator_81160a(connect)
    generator.set_output_enabled(True)
    for message in messages:
        try_write(generator, message)
    width = bench.world.panels["pulser"].channels[1].pulse_width_s
    assert width <= WIDTH_MAX_S, f"{messages}: pulses {width} s wide reach the chip, limit {WIDTH_MAX_S} s"


# -- Keysight 33500B -------------------------------------------------------------------------------

class TestKeysight33500B:
    @pytest.fixture
    def bench_models(self) -> dict[str, str]:
        return {"pulser": "keysight_33522b"}

    @pytest.mark.parametrize("message", [":VOLT:LEV:HIGH 4", ":SOUR1:VOLT:LEV:IMM:OFFS 3"])
    def test_33500b_every_spelling_of_a_level_header_is_checked(self, connect, bench, message):
        generator = connect("pulser", Keysight33500B, envelope=PULSER_ENVELOPE)
        generator.configure_pulse(amplitude_v=0.5 * PULSE_MAX_V, width_s=100e-9, edge_s=10e-9,
                                  period_s=1e-6, count=1)
        try_write(generator, message)
        channel = bench.world.panels["pulser"].channels[1]
        assert max(abs(channel.high_v), abs(channel.low_v)) <= PULSE_MAX_V * (1 + 1e-9), (
            f"{message!r}: {channel.low_v}..{channel.high_v} V, limit {PULSE_MAX_V} V")

    def test_33500b_an_amplitude_unit_other_than_vpp_is_refused(self, connect, bench):
        """The guard reads every amplitude as Vpp; after `VOLT:UNIT VRMS` the same number means
        2.83x the peak-to-peak swing of a sine (0.9 Vrms = 2.55 Vpp around the 0.3 V middle).
        Back to Vpp and pulses, the guard still holds its 0.75 V high level and lets the output
        on; the chip gets 1.57 V pulses. Only stock QCoDeS parameters are used."""
        generator = connect("pulser", Keysight33500B, envelope=PULSER_ENVELOPE)
        generator.configure_pulse(amplitude_v=0.5 * PULSE_MAX_V, width_s=100e-9, edge_s=10e-9,
                                  period_s=1e-6, count=1)
        ch1 = generator.ch1
        for step in (lambda: ch1.function_type("SIN"), lambda: ch1.amplitude_unit("VRMS"),
                     lambda: ch1.amplitude(0.9), lambda: ch1.amplitude_unit("VPP"),
                     lambda: ch1.function_type("PULS"), lambda: ch1.output("ON")):
            try:
                step()
            except EnvelopeError:
                pass
        generator.ask("*OPC?")
        channel = bench.world.panels["pulser"].channels[1]
        assert max(abs(channel.high_v), abs(channel.low_v)) <= PULSE_MAX_V * (1 + 1e-9), (
            f"{channel.function}, output {channel.output_enabled}: {channel.low_v}..{channel.high_v} V, "
            f"limit {PULSE_MAX_V} V")


# -- the commanded state after an exchange that reached the instrument but did not complete --------

def test_smu_an_output_on_cut_by_a_signal_counts_as_on(connect, bench):
    """`:OUTP ON;*OPC?` is interrupted while its reply is awaited: the instrument switched on,
    the guard never committed it (OUTPUT_ON stays false), so the next level skips the ramp-rate
    check and jumps 0 -> 30 uA at once."""
    import signal

    driver = smu(connect)
    driver.set_output_enabled(False)
    driver.write(":SOUR:CURR 0")
    faults = faults_of(bench, "bias")
    faults.reply_delay_s = 0.4

    def fire(signum, frame):
        raise KeyboardInterrupt("test signal")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    try:
        with pytest.raises(KeyboardInterrupt):
            driver.ask(":OUTP ON;*OPC?")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    faults.reply_delay_s = 0.0
    assert bench.world.panels["bias"].output_enabled
    try_write(driver, f":SOUR:CURR {BIAS_MAX_A:.6g}")
    assert bench.world.panels["bias"].current_level_a == 0.0, "a 30 uA step at once, with the output on"


# -- a garbled binary block ------------------------------------------------------------------------

class TestScopeBlock:
    @pytest.fixture
    def bench_models(self) -> dict[str, str]:
        return {"scope": "keysight_infiniium"}

    @pytest.mark.parametrize("payload", [b"#14\x01\x00\x02\x00\x03\x00\x04\x00\n",   # length digit garbled
                                         b"#18\x01\x00\x02"])                       # cut mid-block: timeout
    def test_a_garbled_or_cut_block_is_never_read_as_a_later_reply(self, connect, bench, payload):
        """Guarantee that held: a block whose length digit was garbled (8 -> 4, tail left
        unread) or that stops mid-way (timeout) is followed by a resynchronisation, so the
        next query gets its own answer."""
        from drivers._common import MalformedReplyError
        from drivers.keysight_infiniium import KeysightInfiniium
        from contracts.envelope import Envelope
        from sim_backend.faults.plan import garble

        scope = connect("scope", KeysightInfiniium, envelope=Envelope("oscilloscope", {"input_range_max_v": 2.0}))
        scope.timeout(0.5)
        faults_of(bench, "scope").inject(garble(payload))
        try:
            scope._read_int16_block("*IDN?", 1, 4, "the test")   # any query answered by a block
        except MalformedReplyError:
            pass
        identity = scope.ask("*IDN?")
        assert identity.count(",") == 3 and "KEYSIGHT" in identity.upper(), f"*IDN? answered {identity!r}"


# -- Lake Shore 336 --------------------------------------------------------------------------------

def test_lakeshore_changing_an_inputs_units_is_refused(connect, bench):
    """The 336 takes SETP in the control input's preferred units (INTYPE's last field, 2 = C).
    The guard reads every setpoint as kelvin: after `INTYPE A,...,2`, `SETP 1,10` passes as
    10 K (inside 1.5..12 K) and the loop heats the stage toward 283 K."""
    from drivers.lakeshore_336 import Lakeshore336

    controller = connect("cryostat", Lakeshore336, envelope=ENVELOPES["cryostat"])
    mode = controller.ask("OUTMODE? 1").split(",")
    letter = "0ABCD"[int(mode[1])]
    fields = controller.ask(f"INTYPE? {letter}").split(",")
    try_write(controller, f"INTYPE {letter},{','.join(fields[:4])},2")
    try_write(controller, "SETP 1,10")
    setpoint_k = bench.world.panels["cryostat"].outputs[1].setpoint_k
    assert setpoint_k <= ENVELOPES["cryostat"].limits["temperature_max_k"], f"loop setpoint {setpoint_k} K"
