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
from driver_helpers import (ENVELOPES, assert_no_step_above_the_largest, enveloped_smu, smu_level_change,
                            station_address, trace_smu)
from stop_points import stops_in_the_reconnect

pytestmark = pytest.mark.timeout(120)

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
    events = trace_smu(bench)
    trial = smu_level_change(smu, bench)
    trial.prepare()
    failures = stops_in_the_reconnect(smu, bench.faults_for(station_address(bench, "bias")), trial.dropped,
                                      prepare=trial.prepare, spread=SPREAD, left_safe=trial.left_safe,
                                      follow=trial.follow)
    assert not failures, "\n".join(failures)
    bias_max_a = ENVELOPES["bias"].limits["bias_current_max_a"]
    assert max(abs(current_a) for _, current_a in events) <= bias_max_a, "a level above the envelope"
    assert_no_step_above_the_largest(smu, events, failures)
    smu.safe_state()
