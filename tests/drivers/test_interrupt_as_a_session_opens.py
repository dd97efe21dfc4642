"""A stop signal inside pyvisa's `open_resource` as a reconnect opens the new session, on an
instrument that serves one client at a time (many raw-socket SMUs and controllers do).

pyvisa-py connects the socket before `open_resource` returns the resource: a stop in between
left that connection open and unreachable until the exception was gone, so the safe state, run
in the handler while the exception is alive, found the instrument's one slot taken, failed every
reconnect attempt, and left the bias on. Every entry of pyvisa's and pyvisa-py's code from
`open_resource` on to its return is tried; after each stop the safe state in the handler must
leave the output off or at 0 A, and the next ramp must land exactly. Real driver, raw TCP.
"""

from __future__ import annotations

import gc

import pytest
from driver_helpers import ENVELOPES, station_address
from stop_points import client_entry, entries_during, stopped_at

from drivers.keithley_2450 import Keithley2450
from sim_backend.faults.plan import drop
from sim_backend.transport.bench_server import BenchServer

pytestmark = pytest.mark.timeout(120)

START_A, TARGET_A, RAMP_A_PER_S = 2e-6, 3e-6, 100e-6


@pytest.fixture
def bench_models() -> dict[str, str]:
    return {"bias": "keithley_2450"}


def _inside_open_resource(names: list[str]) -> list[int]:
    """Entry numbers (from 1) inside the first `open_resource`: from it to the driver's next entry."""
    first = names.index("pyvisa open_resource") + 1
    last = next(index for index in range(first + 1, len(names) + 1) if not names[index - 1].startswith("pyvisa "))
    return list(range(first, last))


# A stop inside pyvisa's Resource.__init__ leaves a half-built resource whose __del__ fails (pyvisa's own).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_as_the_new_session_opens_leaves_the_one_slot_free_for_the_safe_state(bench):
    with BenchServer(bench, max_clients=1) as server:
        address = next(s for s in server.instruments if s.role == "bias").server.visa_address
        smu = Keithley2450("bias_one_client", address, visalib="@py", envelope=ENVELOPES["bias"])
        try:
            smu.timeout(0.5)
            smu.set_compliance_v(0.5)
            failures = _trials(smu, bench)
        finally:
            smu.close()
    assert not failures, "\n".join(failures)


def _trials(smu: Keithley2450, bench) -> list[str]:
    faults = bench.faults_for(station_address(bench, "bias"))
    panel = bench.world.panels["bias"]

    def biased() -> None:
        smu.set_output_enabled(True)
        smu.set_current_a(START_A, ramp_a_per_s=RAMP_A_PER_S)

    def dropped() -> None:
        faults.inject(drop())
        smu.set_current_a(TARGET_A, ramp_a_per_s=RAMP_A_PER_S)

    biased()
    names, _ = entries_during(dropped)
    picks = _inside_open_resource(names)
    assert len(picks) > 10, names
    failures: list[str] = []
    for index in picks:
        try:
            smu.safe_state()
            biased()
        except Exception as error:  # noqa: BLE001 - the instrument is out of reach: no later trial can run
            failures.append(f"before the trial at entry {index}: {type(error).__name__}: {error}")
            break
        stop = stopped_at(index, dropped, client_entry)
        faults.clear()
        where = f"stop at entry {index} ({names[index - 1]})"
        if stop is None:
            failures.append(f"{where}: not reached")
            continue
        try:
            smu.safe_state()                # in the handler: the exception is alive
            if panel.output_enabled and panel.sourced_current_a != 0.0:
                failures.append(f"{where}: the safe state left {panel.sourced_current_a:.3g} A on")
        except Exception as error:  # noqa: BLE001 - every trial is reported
            failures.append(f"{where}: the safe state failed: {type(error).__name__}: {error}")
        finally:
            del stop
            gc.collect()                    # what a stop left unreachable is gone before the next trial
        try:
            biased()
            smu.set_current_a(TARGET_A, ramp_a_per_s=RAMP_A_PER_S)
            if not (panel.output_enabled and panel.current_level_a == pytest.approx(TARGET_A, abs=1e-12)):
                failures.append(f"after a {where}: the next ramp ended at {panel.current_level_a:.3g} A")
        except Exception as error:  # noqa: BLE001 - every trial is reported
            failures.append(f"after a {where}: {type(error).__name__}: {error}")
    try:
        smu.safe_state()
    except Exception as error:  # noqa: BLE001 - reported with the trials
        failures.append(f"after the trials, the safe state failed: {type(error).__name__}: {error}")
    return failures
