"""A stop signal in a reconnect before the write guard's record is set aside.

A failed link sets aside what the guard recorded (the instrument's front panel may have been used
meanwhile). A stop as that began (at `_reconnect`, `_set_aside_after_link_loss`, the guard's
`commit_uncertain`) once left the record from before the failure standing for good: later
reconnects found the loss already pending and never set it aside. A stop as the failure was being
recognised (`is_transport_failure`), or as pyvisa raised it, left the loss unknown, and over
VXI-11, whose resynchronisation asks the old link nothing, the record stood. Here the link to a
Lake Shore drops while it regulates at 4.2 K, the stop lands, someone sets the setpoint to 300 K
at the front panel, and the run's safe state switches the heater off; a heater range asked
through a stock QCoDeS parameter must then be refused (the guard no longer knows the setpoint),
not let through to regulate towards 300 K against a 1.5–12 K window. Real driver: in-process,
raw TCP and VXI-11.
"""

from __future__ import annotations

import pytest
from driver_helpers import ENVELOPES, station_address
from stop_points import TIMEOUT_RAISED, first_after, stopped_at

from contracts.envelope import EnvelopeError
from drivers.lakeshore_336 import Lakeshore336
from sim_backend.faults.plan import drop
from sim_backend.transport.bench_server import BenchServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def bench_models() -> dict[str, str]:
    return {"cryostat": "lakeshore_336"}


@pytest.mark.parametrize("where", ["is_transport_failure", "_reconnect", "_set_aside_after_link_loss",
                                   "commit_uncertain", "_reopen"])
def test_a_stop_before_the_record_is_set_aside_leaves_it_set_aside(connect, bench, where):
    driver = connect("cryostat", Lakeshore336, envelope=ENVELOPES["cryostat"], sensor_input="A",
                     heater_output=1, heater_range="medium")
    _stop_then_use_the_front_panel(driver, bench, where)


@pytest.mark.parametrize("where", ["is_transport_failure", TIMEOUT_RAISED])
def test_over_vxi11_a_stop_as_the_failure_is_raised_or_recognised_leaves_the_record_set_aside(bench, where):
    """Over VXI-11 (an INSTR address, as many labs give their SMUs and generators) a
    resynchronisation asks the old link nothing: a stop as pyvisa raised the timeout, or as
    `guarded` entered `is_transport_failure`, left the failure unknown, and the record from before
    it stood after the bare reopen."""
    with BenchServer(bench, vxi11=True, portmapper_port=None) as server:
        address = next(s for s in server.instruments if s.role == "cryostat").vxi11_address
        driver = Lakeshore336("cryostat_vxi11", address, visalib="@py", envelope=ENVELOPES["cryostat"],
                              sensor_input="A", heater_output=1, heater_range="medium")
        try:
            _stop_then_use_the_front_panel(driver, bench, where)
        finally:
            driver.close()


def _stop_then_use_the_front_panel(driver: Lakeshore336, bench, where: str) -> None:
    driver.timeout(0.5)
    heater = bench.world.panels["cryostat"].outputs[1]
    faults = bench.faults_for(station_address(bench, "cryostat"))

    def dropped() -> None:
        faults.inject(drop())
        driver.set_setpoint_k(5.0)

    driver.set_setpoint_k(4.2)                  # the heater on; the guard read the setpoint and its units
    # from the failure's recognition (`is_transport_failure`, before the reconnect) on
    began_at = frozenset() if where == TIMEOUT_RAISED else frozenset({"is_transport_failure", "_reconnect"})
    stop = stopped_at(1, dropped, first_after(began_at, where))
    faults.clear()
    assert stop is not None and str(stop) == f"at {where}", stop
    bench.device("cryostat").write_bytes(b"SETP 1,300\n")    # at the front panel, the link down
    driver.safe_state()                         # in the handler, the exception alive
    del stop
    assert heater.range_index == 0 and heater.setpoint_k == pytest.approx(300.0)
    with pytest.raises(EnvelopeError):
        driver.output_1.output_range("medium")  # a stock parameter, as a user would
    driver.ask("*OPC?")                         # over TCP: anything written has run once this returns
    assert heater.range_index == 0
