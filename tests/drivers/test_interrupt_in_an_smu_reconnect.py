"""A stop signal anywhere in the reconnect that follows a link dropped while a Keithley 2450
biases the chip, as in `test_interrupt_in_the_write_path.py` for the generators.

The link drops at the first reply of a level change with the output on; the stop (a
KeyboardInterrupt) lands at an entry of the drivers' or pyvisa's code in the reconnect: every entry
of its reopen, old-session check and re-applied settings, and entries spread over the rest. After
each: nothing held, the exchange lock free, the safe state called in the handler (the exception
alive) leaves the output off or at 0 A, and the next ramp lands exactly. Over all trials, at every
change of the emulated panel: never a level above the envelope's bias maximum, and never a rise
larger than one step of the driver's ramp. Real driver, both transports."""

from __future__ import annotations

import pytest
from driver_helpers import ENVELOPES, assert_no_step_above_the_largest, enveloped_smu, station_address, trace_smu
from stop_points import entries_during, lock_is_free, reconnect_picks, stopped_at

from sim_backend.faults.plan import drop

pytestmark = pytest.mark.timeout(120)

START_A, TARGET_A, RAMP_A_PER_S = 2e-6, 3e-6, 100e-6   # small levels: short ramps at the envelope's rate
#: Trials per transport spread over the rest of the reconnect's entries.
SPREAD = 12


@pytest.fixture
def bench_models() -> dict[str, str]:
    return {"bias": "keithley_2450"}


# A stop inside pyvisa's Resource.__init__ leaves a half-built resource whose __del__ fails (pyvisa's own).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_anywhere_in_an_smu_reconnect_leaves_the_bias_safe(connect, bench):
    smu = enveloped_smu(connect)
    smu.timeout(0.5)
    faults = bench.faults_for(station_address(bench, "bias"))
    panel = bench.world.panels["bias"]
    events = trace_smu(bench)

    def biased() -> None:
        smu.set_output_enabled(True)
        smu.set_current_a(START_A, ramp_a_per_s=RAMP_A_PER_S)

    def dropped_at_the_first_reply() -> None:
        faults.inject(drop())
        smu.set_current_a(TARGET_A, ramp_a_per_s=RAMP_A_PER_S)

    biased()
    names, reconnects = entries_during(dropped_at_the_first_reply)
    picks = reconnect_picks(names, reconnects, SPREAD)
    failures = []
    for index in picks:
        smu.safe_state()
        biased()
        stop = stopped_at(index, dropped_at_the_first_reply)
        faults.clear()                      # a drop the stop came before is not left for the next trial
        where = f"stop at entry {index} ({names[index - 1]})"
        if stop is None:
            failures.append(f"{where}: not reached")
            continue
        try:
            if smu._held is not None:
                failures.append(f"{where}: writes left held: {smu._held}")
            if not lock_is_free(smu):
                failures.append(f"{where}: the exchange lock is held")
                continue
            smu.safe_state()                # in the handler: the exception is alive
            if panel.output_enabled and panel.sourced_current_a != 0.0:
                failures.append(f"{where}: the safe state left {panel.sourced_current_a:.3g} A on")
        except Exception as error:  # noqa: BLE001 - every trial is reported, not the first only
            failures.append(f"{where}: {type(error).__name__}: {error}")
        finally:
            del stop                        # the handler ends
        try:
            biased()
            smu.set_current_a(TARGET_A, ramp_a_per_s=RAMP_A_PER_S)
            assert panel.output_enabled and panel.current_level_a == pytest.approx(TARGET_A, abs=1e-12)
        except Exception as error:  # noqa: BLE001 - every trial is reported
            failures.append(f"after a {where}: {type(error).__name__}: {error}")
    assert not failures, "\n".join(failures)
    bias_max_a = ENVELOPES["bias"].limits["bias_current_max_a"]
    assert max(abs(current_a) for _, current_a in events) <= bias_max_a, "a level above the envelope"
    assert_no_step_above_the_largest(smu, events, failures)
    smu.safe_state()
