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
from stop_points import stops_in_the_reconnect

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

    def left_safe(where: str) -> list[str]:
        smu.safe_state()                    # in the handler: the exception is alive
        on = panel.output_enabled and panel.sourced_current_a != 0.0
        return [f"{where}: the safe state left {panel.sourced_current_a:.3g} A on"] if on else []

    def ramps_exactly() -> None:
        biased()
        smu.set_current_a(TARGET_A, ramp_a_per_s=RAMP_A_PER_S)
        assert panel.output_enabled and panel.current_level_a == pytest.approx(TARGET_A, abs=1e-12)

    biased()
    failures = stops_in_the_reconnect(smu, faults, dropped_at_the_first_reply, prepare=biased, spread=SPREAD,
                                      left_safe=left_safe, follow=ramps_exactly)
    assert not failures, "\n".join(failures)
    bias_max_a = ENVELOPES["bias"].limits["bias_current_max_a"]
    assert max(abs(current_a) for _, current_a in events) <= bias_max_a, "a level above the envelope"
    assert_no_step_above_the_largest(smu, events, failures)
    smu.safe_state()
