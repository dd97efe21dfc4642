"""A further audit of the write guard: ramps cut midway, the error-queue check after a write,
reconnects, and what the guard believes afterwards against what the emulated instrument did.

Real drivers, both transports (in-process and TCP), the emulated bench, as
test_write_guard_audit.py; each test asserts what the instrument must stay inside, or that a
legitimate flow (safe state) still ends where it must.
"""

from __future__ import annotations

import time

import pytest
from driver_helpers import ENVELOPES, assert_no_step_above_the_largest, send, smu_at, trace_smu
from test_write_guard import bias_faults

from sim_backend.faults.plan import withhold

RAMP_MAX_A_PER_S = ENVELOPES["bias"].limits["bias_ramp_max_a_per_s"]


@pytest.fixture
def bench_models() -> dict[str, str]:
    return {}


def cut_at_read(driver, n: int):
    """Make the driver's n-th VISA read from now raise KeyboardInterrupt (its reply left
    unread), as a signal arriving then would; returns a function that undoes it."""
    handle = driver.visa_handle
    original, reads = handle.read, [0]

    def read(*args, **kwargs):
        reads[0] += 1
        if reads[0] == n:
            raise KeyboardInterrupt("cut")
        return original(*args, **kwargs)

    handle.read = read
    return lambda: setattr(handle, "read", original)


# --------------------------------------------------------------------------- the error queue

def test_safe_state_with_an_old_error_in_the_queue_ends_off_at_zero(connect, bench):
    """An error left in the queue by an earlier, unrelated message (here an undefined header)
    is read after the first step of safe state's ramp to 0 A: the guard takes that step's level
    as unknown, and the next step, from an unknown level to 19 uA, is refused: the output stays
    on at 19 uA."""
    driver = smu_at(connect, 20e-6)
    outcomes = [send(driver, ":NOSUCH:HEADER 1")]          # changes nothing the guard follows
    try:
        driver.safe_state()
        outcomes.append("safe")
    except Exception as error:  # noqa: BLE001 - the assertion names it
        outcomes.append(repr(error)[:300])
    panel = bench.world.panels["bias"]
    assert not panel.output_enabled and panel.current_level_a == 0.0, (
        outcomes, f"after safe_state: output {'on' if panel.output_enabled else 'off'} at "
        f"{panel.current_level_a:.3g} A")


def test_an_error_reply_lost_with_the_link_is_not_a_clean_queue(connect, bench):
    """The instrument refuses a level (source autorange off: above 10.5 uA, -222) and pops the
    error for a `SYST:ERR?` whose reply is lost (the read times out); after the reconnect the
    query is asked again and the queue reports 0: the guard takes the refused level as set.
    Stepping up that way, the guard's level climbs while the source stays at 10 uA; autorange
    on, the next step is many steps at once."""
    driver = smu_at(connect, 10e-6)
    driver.timeout(0.3)
    faults = bias_faults(bench)
    outcomes = [send(driver, ":SOUR:CURR:RANG:AUTO OFF")]
    level = 10e-6
    for _ in range(5):
        level += 1.2e-6
        time.sleep(0.02)                          # within the ramp rate
        faults.inject(withhold())                 # the reply to the SYST:ERR? after the step
        outcomes.append(send(driver, f":SOUR:CURR {level:.6g}"))
    faults.clear()                                # those left by steps the guard refused
    outcomes.append(send(driver, ":SOUR:CURR:RANG:AUTO ON"))
    time.sleep(0.02)
    events = trace_smu(bench)
    outcomes.append(send(driver, f":SOUR:CURR {level + 1.2e-6:.6g}"))
    driver.ask("*OPC?")
    assert_no_step_above_the_largest(driver, events, outcomes)


# --------------------------------------------------------------------------- a ramp cut midway

@pytest.mark.parametrize("cut", [3, 6, 9])
def test_a_level_after_a_cut_ramp_cannot_reverse_the_current(connect, bench, cut):
    """`set_current_a(20 uA)` from 10 uA cut by a signal at one of its reads: the step's level
    becomes unknown, which the guard counts as 0 A, so -1.2 uA (one largest step from 0 A) is
    let through while the source is at 10..20 uA: a reversal of 11 uA or more at once."""
    driver = smu_at(connect, 10e-6)
    undo = cut_at_read(driver, cut)
    try:
        driver.set_current_a(20e-6, ramp_a_per_s=RAMP_MAX_A_PER_S)
        outcomes = ["ramp completed"]
    except KeyboardInterrupt:
        outcomes = ["ramp cut"]
    finally:
        undo()
    events = trace_smu(bench)
    outcomes.append(send(driver, f":SOUR:CURR {-0.99 * driver._largest_step_a():.6g}"))
    driver.ask("*OPC?")
    assert_no_step_above_the_largest(driver, events, outcomes)


# --------------------------------------------------------------------------- a reconnect

def test_a_reconnect_after_a_power_cycle_does_not_trust_the_old_output_state(connect, bench):
    """The link drops while the SMU is power-cycled (output off, 0 A, compliance 21 V); the
    driver reconnects and re-applies its compliance, as it expects after a power cycle. A guard
    that still held the output on at 20 uA took `:SOUR:CURR 21e-6` for a 1 uA step and `:OUTP
    ON` for no change: the source went from 0 to 21 uA at once. The reconnect sets that record
    aside: from an unknown level only 0 A may be written."""
    from sim_backend.faults.plan import drop

    driver = smu_at(connect, 20e-6)
    bench.device("bias").write_bytes(b"*RST\n")            # the power cycle
    bias_faults(bench).inject(drop())
    outcomes = [driver.ask("*OPC?")]                       # dropped, reconnected, asked again
    events = trace_smu(bench)
    time.sleep(0.02)
    outcomes += [send(driver, m) for m in (":SOUR:CURR 21e-6", ":OUTP ON")]
    driver.ask("*OPC?")
    assert_no_step_above_the_largest(driver, events, outcomes)
