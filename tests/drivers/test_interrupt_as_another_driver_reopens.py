"""A reopen cut short by a stop signal closes what it had opened to its address, and only that.

Two drivers on one Lake Shore (a run's and a monitor's, in another thread): as the run's reopen
enters pyvisa's `open_resource`, the monitor resynchronises and opens its own new session, then
the stop lands. The run's cleanup once closed the monitor's new session too (pyvisa-py leaves a
closed session behind with no socket, and writing to it raises TypeError, no transport failure),
so the monitor's safe state failed and the heater stayed on. Real drivers, raw TCP.
"""

from __future__ import annotations

import sys
import threading

import pytest
from driver_helpers import ENVELOPES, station_address
from stop_points import Stop, _traced

from drivers.lakeshore_336 import Lakeshore336
from sim_backend.faults.plan import drop
from sim_backend.transport.bench_server import BenchServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def bench_models() -> dict[str, str]:
    return {"cryostat": "lakeshore_336"}


# A stop inside pyvisa's open leaves a half-built resource whose __del__ fails (pyvisa's own).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_reopen_cut_short_leaves_another_drivers_new_session_open(bench):
    with BenchServer(bench) as server:
        address = next(s for s in server.instruments if s.role == "cryostat").server.visa_address
        run = Lakeshore336("cryostat_run", address, visalib="@py", envelope=ENVELOPES["cryostat"])
        monitor = Lakeshore336("cryostat_monitor", address, visalib="@py", envelope=ENVELOPES["cryostat"])
        monitoring = threading.Thread(target=lambda: monitor.ask("*IDN?"))
        try:
            for driver in (run, monitor):
                driver.timeout(0.5)
            run.set_setpoint_k(4.2)                     # the heater on
            heater = bench.world.panels["cryostat"].outputs[1]
            faults = bench.faults_for(station_address(bench, "cryostat"))

            def trace(frame, event, arg):
                if event == "call" and frame.f_code.co_name == "open_resource":
                    sys.settrace(None)
                    monitor._unsynced = "the previous reply was garbled"     # its next exchange reopens
                    monitoring.start()
                    monitoring.join(1.0)                # the monitor's session opens meanwhile, if it may
                    raise Stop("at pyvisa open_resource")
                return None
            with pytest.raises(Stop):
                with _traced(trace):
                    faults.inject(drop())
                    run.set_setpoint_k(5.0)
            faults.clear()
            monitoring.join(10)
            assert heater.range_index != 0
            monitor.safe_state()                        # as a handler making every driver safe would
            assert heater.range_index == 0
            assert monitor.ask("*IDN?").count(",") == 3
        finally:
            monitoring.join(10) if monitoring.is_alive() else None
            for driver in (run, monitor):
                try:
                    driver.safe_state()
                finally:
                    driver.close()
