"""A further audit of the write guard: the guard's record of what it commanded against what the
emulated instrument really did.

The guard commits a message's effect once the exchange completes, whether or not the
instrument executed it. An instrument refuses a unit it cannot execute (a settings conflict, a
parameter out of range, an undefined header earlier in the message, after which it runs
nothing more of that message) and keeps its old settings; the guard then follows levels the
instrument never took, and a later write that is relative to them (an amplitude around the
offset, a step from the present level, a sweep set earlier) is checked against the wrong state.

Real drivers, both transports (in-process and TCP), the emulated bench, as
test_write_guard_audit.py; each test asserts what the instrument must stay inside.
"""

from __future__ import annotations

import time

import pytest
from driver_helpers import PULSER_ENVELOPE, assert_no_step_above_the_largest, pulser_problems, send, smu_at, trace_smu

from drivers.keysight_33500b import Keysight33500B
from drivers.keysight_81160a import Keysight81160A


# --------------------------------------------------------------------------- pulse generators

GENERATORS = {"81160a": ("keysight_81160a", Keysight81160A, ":VOLT1"),
              "33522b": ("keysight_33522b", Keysight33500B, ":SOUR1:VOLT")}


@pytest.fixture
def bench_models(generator_model) -> dict[str, str]:
    return {"pulser": GENERATORS[generator_model][0]}


per_generator = pytest.mark.parametrize("generator_model", sorted(GENERATORS))


#: A message the instrument refuses with the generator pulsing at 1.0..1.2 V, and the amplitude
#: then asked for around the offset the guard recorded from it.
REFUSED_LEVELS = {
    # the high level must exceed the low (-221): the guard recorded -1.2..1.0 V (offset -0.1 V),
    # the instrument stays at offset 1.1 V, so 2.2 V around it is 0..2.2 V
    "high_below_low": ("{prefix}:HIGH -1.2", 2.2),
    # the instrument runs nothing of a message after an undefined header (-113): the guard
    # recorded offset 0 V, the instrument stays at 1.1 V, so 2.4 V around it is -0.1..2.3 V
    "after_an_undefined_header": (":NOSUCH:HEADER 1;{prefix}:OFFS 0", 2.4),
}


@per_generator
@pytest.mark.parametrize("refused", sorted(REFUSED_LEVELS))
def test_generator_amplitude_around_levels_the_instrument_refused(connect, bench, generator_model, refused):
    """A setting the instrument refused is not the offset an amplitude is checked around."""
    _, model, prefix = GENERATORS[generator_model]
    message, amplitude_v = REFUSED_LEVELS[refused]
    generator = connect("pulser", model, envelope=PULSER_ENVELOPE)
    generator.configure_pulse(amplitude_v=0.5, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=1)
    outcomes = [send(generator, f"{prefix}:HIGH 1.2"), send(generator, f"{prefix}:LOW 1.0")]
    generator.set_output_enabled(True)
    assert not pulser_problems(generator, bench), outcomes
    outcomes.append(send(generator, message.format(prefix=prefix)))
    outcomes.append(generator.ask("SYST:ERR?"))
    outcomes.append(send(generator, f"{prefix}:AMPL {amplitude_v}"))
    generator.ask("*OPC?")                                  # over TCP: the write has been run
    problems = pulser_problems(generator, bench)
    assert not problems, (outcomes, problems)


# --------------------------------------------------------------------------- Keithley 2450

class TestKeithley2450:
    @pytest.fixture
    def bench_models(self) -> dict[str, str]:
        return {}

    def test_a_refused_list_sweep_leaves_the_old_one_to_play(self, connect, bench):
        """`:SOUR:SWE:CURR:LIST 1, 5e-05, 0, …`: the guard reads count 0 as 1 and records the new
        sweep (0 A); the instrument refuses the count (-222) and keeps the sweep set before
        (25 uA, 0 A), which the next `:INIT` plays: 0 -> 25 uA in one step."""
        driver = smu_at(connect, 25e-6)
        outcomes = [send(driver, m) for m in (":SOUR:LIST:CURR 25e-6,0",
                                              ':SOUR:SWE:CURR:LIST 1, 5e-05, 1, OFF, "defbuffer1"', ":INIT")]
        driver.ask("*OPC?")
        outcomes += [send(driver, m) for m in (":SOUR:LIST:CURR 0",
                                               ':SOUR:SWE:CURR:LIST 1, 5e-05, 0, OFF, "defbuffer1"')]
        outcomes.append(driver.ask(":SYST:ERR?"))
        events = trace_smu(bench)
        outcomes.append(send(driver, ":INIT"))
        driver.ask("*OPC?")
        assert_no_step_above_the_largest(driver, events, outcomes)

    def test_output_off_the_instrument_never_ran(self, connect, bench):
        """`:NOSUCH;:OUTP OFF`: the instrument stops at the undefined header, its output stays on
        at 10 uA; the guard believes it off and lets any level within the limit through at once."""
        driver = smu_at(connect, 10e-6)
        outcomes = [send(driver, ":NOSUCH:HEADER 1;:OUTP OFF"), driver.ask(":SYST:ERR?")]
        events = trace_smu(bench)
        outcomes.append(send(driver, ":SOUR:CURR 29e-6"))
        driver.ask("*OPC?")
        assert_no_step_above_the_largest(driver, events, outcomes)

    def test_levels_the_fixed_source_range_refused(self, connect, bench):
        """With source autorange off at 10 uA, every level above 10.5 uA is refused (-222) and the
        guard records it anyway: ramped up in steps the instrument never took, the guard's level
        reaches 29 uA while the source stays at 10 uA; autorange on, then 29 uA is one step."""
        driver = smu_at(connect, 10e-6)
        outcomes = [send(driver, ":SOUR:CURR:RANG:AUTO OFF")]
        level = 10e-6
        while level < 29e-6 - 1e-12:
            level = min(level + 1e-6, 29e-6)
            time.sleep(0.012)
            outcomes.append(send(driver, f":SOUR:CURR {level:.6g}"))
        outcomes.append(driver.ask(":SYST:ERR?"))
        outcomes.append(send(driver, ":SOUR:CURR:RANG:AUTO ON"))
        events = trace_smu(bench)
        outcomes.append(send(driver, ":SOUR:CURR 29e-6"))
        driver.ask("*OPC?")
        assert_no_step_above_the_largest(driver, events, outcomes)

    def test_a_trigger_model_loaded_after_a_sweep(self, connect, bench):
        """`:TRIG:LOAD "SimpleLoop", 1` replaces the list sweep set before; the guard still plays
        that sweep at `:INIT` and records its last level (0 A) while the source stays at 25 uA: a
        step to -1 uA, one small step for the guard, is a 26 uA reversal."""
        driver = smu_at(connect, 25e-6)
        outcomes = [send(driver, m) for m in (":SOUR:LIST:CURR 25e-6,0",
                                              ':SOUR:SWE:CURR:LIST 1, 5e-05, 1, OFF, "defbuffer1"',
                                              ':TRIG:LOAD "SimpleLoop", 1', ":INIT")]
        driver.ask("*OPC?")
        outcomes += [driver.ask(":SYST:ERR?"), driver.ask(":SOUR:CURR?")]
        time.sleep(0.05)                 # 1 uA at 100 uA/s needs 10 ms: the rate does not refuse it
        events = trace_smu(bench)
        outcomes.append(send(driver, ":SOUR:CURR -1e-6"))
        driver.ask("*OPC?")
        assert_no_step_above_the_largest(driver, events, outcomes)


# --------------------------------------------------------------------------- Infiniium

class TestInfiniium:
    @pytest.fixture
    def bench_models(self) -> dict[str, str]:
        return {"scope": "keysight_infiniium"}

    @pytest.mark.parametrize("message", [":CHAN1:SCAL 1", ":CHANnel1:SCALe 0.5", ":CHAN2:SCAL 1"])
    def test_a_channel_scale_is_a_range_too(self, connect, bench, message):
        """The Infiniium's `:CHANnel<n>:SCALe` sets the range as well (range = 8 x scale); the
        guard checks only `:CHANnel<n>:RANGe`: 1 V/div is an 8 V full scale (limit 2 V)."""
        from contracts.envelope import Envelope
        from drivers.keysight_infiniium import KeysightInfiniium

        limit_v = 2.0
        scope = connect("scope", KeysightInfiniium, envelope=Envelope("oscilloscope", {"input_range_max_v": limit_v}))
        outcome = send(scope, message)
        scope.ask("*OPC?")
        ranges = {n: ch.range_v for n, ch in bench.world.panels["scope"].channels.items()}
        assert max(ranges.values()) <= limit_v, (outcome, f"full-scale ranges {ranges} V, limit {limit_v} V")
