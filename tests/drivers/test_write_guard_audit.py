"""An audit of the write guard against what the emulated instruments accept (2026-12-05): each
message here was once let through and left an instrument outside the envelope, or on at a level
or width the guard did not know. Each test asserts the safe outcome; each failed on the code
before the fix (docs/reliability.md).

Real drivers, both transports (in-process and TCP), the emulated bench, as test_write_guard.py.
`trace_smu` only watches the emulated SMU's panel: every change of its sourced current, in order.
"""

from __future__ import annotations

import pytest
from driver_helpers import (CHIP_AMPERES_PER_VOLT, ENVELOPES, PULSER_ENVELOPE, assert_no_step_above_the_largest,
                            enveloped_smu, pulser_problems, send, smu_at, trace_smu)

from contracts.envelope import EnvelopeError
from drivers.keysight_33500b import Keysight33500B
from drivers.keysight_81160a import Keysight81160A

BIAS_MAX_A = ENVELOPES["bias"].limits["bias_current_max_a"]
COMPLIANCE_MAX_V = ENVELOPES["bias"].limits["compliance_max_v"]
PULSE_MAX_V = ENVELOPES["pulser"].limits["pulse_current_max_a"] / CHIP_AMPERES_PER_VOLT


# --------------------------------------------------------------------------- Keithley 2450

def test_smu_block_with_a_quote_hides_a_level(connect, bench):
    """The guard splits units outside quotes but knows no IEEE 488.2 blocks: a `'` inside a
    definite block opens a 'string' for the guard that swallows the rest of the message,
    which the instrument executes."""
    driver = smu_at(connect, 10e-6)
    outcome = send(driver, """:TRIG:LOAD "Empty",#11';:SOUR:CURR 100e-6""")
    errors = driver.ask(":SYST:ERR?")
    panel = bench.world.panels["bias"]
    assert not (panel.output_enabled and abs(panel.current_level_a) > BIAS_MAX_A), (
        outcome, errors, f"output on at {panel.current_level_a:.3g} A (limit {BIAS_MAX_A:.3g} A); "
        f"guard believes {driver.write_guard.commanded('source_level_a')!r} A")


def test_smu_output_on_at_a_level_set_while_off_is_one_step(connect, bench):
    driver = enveloped_smu(connect)
    driver.set_output_enabled(True)
    events = trace_smu(bench)
    outcomes = [send(driver, m) for m in (":OUTP OFF", ":SOUR:CURR 25e-6", ":OUTP ON")]
    assert_no_step_above_the_largest(driver, events, outcomes)


def test_smu_reset_leaves_a_compliance_outside_the_envelope(connect, bench):
    driver = enveloped_smu(connect)                     # compliance 0.5 V
    outcomes = [send(driver, "*RST")]
    try:
        driver.set_output_enabled(True)                 # the role verb itself
        outcomes.append("on")
    except EnvelopeError as error:
        outcomes.append(f"refused: {error}")
    panel = bench.world.panels["bias"]
    assert not (panel.output_enabled and panel.voltage_limit_v > COMPLIANCE_MAX_V), (
        outcomes, f"output on ({panel.source_function}) with compliance {panel.voltage_limit_v} V, "
        f"limit {COMPLIANCE_MAX_V} V")


@pytest.mark.parametrize("way_on", [("*RST", ":SOUR:FUNC CURR", ":SOUR:CURR 0", ":OUTP ON"),
                                    ("*RST", ":SOUR:FUNC CURR", ":SOUR:CURR 0", ":SOUR:LIST:CURR 0",
                                     ':SOUR:SWE:CURR:LIST 1, 1e-3, 1, OFF, "defbuffer1"', ":INIT")])
@pytest.mark.parametrize("asked", [False, True])     # the compliance read back, and so learnt
def test_smu_reset_then_raw_output_on_with_default_compliance(connect, bench, way_on, asked):
    driver = enveloped_smu(connect)
    outcomes = [send(driver, way_on[0])]
    if asked:
        outcomes.append(driver.ask(":SOUR:CURR:VLIM?"))
    outcomes += [send(driver, m) for m in way_on[1:]]
    panel = bench.world.panels["bias"]
    assert not (panel.output_enabled and panel.voltage_limit_v > COMPLIANCE_MAX_V), (
        outcomes, f"output on with compliance {panel.voltage_limit_v} V, limit {COMPLIANCE_MAX_V} V")


def _pulsing(connect, model: type, edge_s: float = 10e-9):
    """A generator on, pulsing at half the envelope's amplitude."""
    generator = connect("pulser", model, envelope=PULSER_ENVELOPE)
    generator.configure_pulse(amplitude_v=0.5 * PULSE_MAX_V, width_s=50e-9, edge_s=edge_s, period_s=1e-6, count=1)
    generator.set_output_enabled(True)
    return generator


def test_smu_a_second_initiate_reruns_a_list_sweep_unchecked(connect, bench):
    driver = smu_at(connect, 25e-6)
    outcomes = [send(driver, m) for m in (":SOUR:LIST:CURR 25e-6,0",
                                          ':SOUR:SWE:CURR:LIST 1, 5e-05, 1, OFF, "defbuffer1"', ":INIT")]
    driver.ask("*OPC?")
    events = trace_smu(bench)
    outcomes.append(send(driver, ":INIT"))             # the same sweep again: from 0 A to 25 uA at once
    driver.ask("*OPC?")
    assert_no_step_above_the_largest(driver, events, outcomes)


def test_smu_list_sweep_count_rounded_differently(connect, bench):
    """The guard reads the count with int() (1.5 -> 1); the instrument rounds (1.5 -> 2)."""
    driver = smu_at(connect, 25e-6)
    outcomes = [send(driver, ":SOUR:LIST:CURR 25e-6,0"),
                send(driver, ':SOUR:SWE:CURR:LIST 1, 5e-05, 1.5, OFF, "defbuffer1"')]
    events = trace_smu(bench)
    outcomes.append(send(driver, ":INIT"))
    driver.ask("*OPC?")
    assert_no_step_above_the_largest(driver, events, outcomes)


# --------------------------------------------------------------------------- pulse generators

def test_81160a_block_with_a_quote_hides_a_level(connect, bench):
    generator = _pulsing(connect, Keysight81160A, edge_s=5e-9)
    # Two DAC codes, 0x0127 and 0x0101 (within +-8191); the second byte is a `'`.
    outcome = send(generator, ":DATA1:DAC VOLATILE,#14\x01'\x01\x01;:VOLT1:HIGH 4;:VOLT1:LOW 0")
    errors = generator.ask(":SYST:ERR?")
    problems = pulser_problems(generator, bench)
    assert not problems, (outcome, errors, problems)


class TestKeysight33500B:
    @pytest.fixture
    def bench_models(self) -> dict[str, str]:
        return {"pulser": "keysight_33522b"}

    def test_block_with_a_quote_hides_a_level(self, connect, bench):
        generator = _pulsing(connect, Keysight33500B)
        # Eight DAC codes (0x6127, 0x6161 ...), one byte a `'`.
        outcome = send(generator, ":SOUR1:DATA:ARB:DAC AUDIT,#216a'aaaaaaaaaaaaaa;:SOUR1:VOLT:HIGH 4")
        errors = generator.ask("SYST:ERR?")
        problems = pulser_problems(generator, bench)
        assert not problems, (outcome, errors, problems)

    def test_output_on_with_a_width_never_commanded(self, connect, bench):
        """The guard wants the levels known before an output goes on, not the width: the
        33500B's power-on/*RST width is 100 us."""
        generator = connect("pulser", Keysight33500B, envelope=PULSER_ENVELOPE)
        outcomes = [send(generator, m) for m in ("*RST", "SOUR1:FUNC PULS", "SOUR1:VOLT:HIGH 0.5",
                                                 "SOUR1:VOLT:LOW 0", "OUTP1 ON")]
        errors = generator.ask("SYST:ERR?")
        problems = pulser_problems(generator, bench)
        assert not problems, (outcomes, errors, problems)


# -- framing: where the guard and an instrument on a socket could end a message differently ---------
# A second attack (2026-12-05) found each of these let a level through, over TCP (where the
# emulator's framing, like a socket instrument's, sees no END: a `#0` block or a string runs on
# past a line feed) or with a multi-byte encoding set on the VISA resource.

def indefinite_then_definite(hidden: str, copies: int) -> str:
    """A `#0` block ended, for the guard, by a line feed, then a definite block whose data are lines
    that an instrument still reading the `#0` block past that line feed runs as commands."""
    payload = f"\n{hidden}" * copies                                    # several 64 KiB socket reads
    return f":DISP:TEXT #0x\n:DISP:TEXT #6{len(payload):06d}{payload}"


#: name -> (writes, in order; the encoding set on the VISA resource for them)
SMU_FRAMING = {
    "indefinite block": ([indefinite_then_definite(":SOUR:CURR 1e-3", 20_000)], "ascii"),
    # the first write busy long enough for the next two to arrive in one socket read
    "string closed by the next write": ([";".join([":SENS:COUN 1"] * 10_000), ":TRAC:MAKE 'a",
                                         ":TRAC:MAKE ', 100;:SOUR:CURR 1e-3"], "ascii"),
    # é is one character and two bytes: the instrument's 32-byte block ends before the guard's
    "block length in bytes": ([':TRIG:LOAD "Empty",#232' + "\u00e9" * 16 + ";:SOUR:CURR 1e-3"], "utf-8"),
}


@pytest.mark.parametrize("case", sorted(SMU_FRAMING))
def test_smu_framing_cannot_hide_a_level(connect, bench, case):
    driver = smu_at(connect, 10e-6)
    writes, encoding = SMU_FRAMING[case]
    driver.visa_handle.encoding = encoding
    outcomes = [send(driver, message) for message in writes]
    driver.visa_handle.encoding = "ascii"
    driver.ask("*OPC?")
    panel = bench.world.panels["bias"]
    assert panel.current_level_a == pytest.approx(10e-6), (case, [o[:120] for o in outcomes])
    assert outcomes[-1].startswith("refused"), outcomes[-1][:120]


@pytest.mark.parametrize("bench_models", [{"pulser": "keysight_81160a"}, {"pulser": "keysight_33522b"}],
                         ids=["81160a", "33522b"])
def test_generator_indefinite_block_cannot_hide_a_level(connect, bench, bench_models):
    generator = _pulsing(connect, Keysight81160A if bench_models["pulser"] == "keysight_81160a" else Keysight33500B)
    outcome = send(generator, indefinite_then_definite(":SOUR1:VOLT:HIGH 4", 15_000))
    generator.ask("*OPC?")
    assert outcome.startswith("refused") and not pulser_problems(generator, bench), outcome[:120]
