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

import pytest
from driver_helpers import ENVELOPES, smu_level_change, station_address
from stop_points import stops_in_the_reconnect

from drivers.keithley_2450 import Keithley2450
from sim_backend.transport.bench_server import BenchServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def bench_models() -> dict[str, str]:
    return {"bias": "keithley_2450"}


def _inside_open_resource(names: list[str], reconnects: list[tuple[int, int]]) -> list[int]:
    """Entry numbers (from 1) inside the reconnect's `open_resource`: from it to the driver's next entry."""
    first = names.index("pyvisa open_resource", reconnects[0][0] - 1) + 1
    last = next(index for index in range(first + 1, len(names) + 1) if not names[index - 1].startswith("pyvisa "))
    picks = list(range(first, last))
    assert len(picks) > 10, names[first - 1:last]
    return picks


# A stop inside pyvisa's Resource.__init__ leaves a half-built resource whose __del__ fails (pyvisa's own).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_as_the_new_session_opens_leaves_the_one_slot_free_for_the_safe_state(bench):
    with BenchServer(bench, max_clients=1) as server:
        address = next(s for s in server.instruments if s.role == "bias").server.visa_address
        smu = Keithley2450("bias_one_client", address, visalib="@py", envelope=ENVELOPES["bias"])
        try:
            smu.timeout(0.5)
            smu.set_compliance_v(0.5)
            trial = smu_level_change(smu, bench)
            trial.prepare()
            failures = stops_in_the_reconnect(smu, bench.faults_for(station_address(bench, "bias")), trial.dropped,
                                              prepare=trial.prepare, picks=_inside_open_resource,
                                              left_safe=trial.left_safe, follow=trial.follow)
            smu.safe_state()
        finally:
            smu.close()
    assert not failures, "\n".join(failures)
