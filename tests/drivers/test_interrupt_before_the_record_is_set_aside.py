"""A stop signal in a reconnect before the write guard's record is set aside.

A failed link sets aside what the guard recorded (the instrument's front panel may have been used
meanwhile). A stop as that began (at `_reconnect`, `_set_aside_after_link_loss`, the guard's
`commit_uncertain`) once left the record from before the failure standing for good: later
reconnects found the loss already pending and never set it aside. Here the link to a Lake Shore
drops while it regulates at 4.2 K, the stop lands, someone sets the setpoint to 300 K at the
front panel, and the run's safe state switches the heater off; a heater range asked through a
stock QCoDeS parameter must then be refused (the guard no longer knows the setpoint), not let
through to regulate towards 300 K against a 1.5–12 K window. Real driver, both transports.
"""

from __future__ import annotations

import pytest
from driver_helpers import ENVELOPES, station_address
from stop_points import DRIVERS_DIR, stopped_at

from contracts.envelope import EnvelopeError
from drivers.lakeshore_336 import Lakeshore336
from sim_backend.faults.plan import drop

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def bench_models() -> dict[str, str]:
    return {"cryostat": "lakeshore_336"}


def _first_in_the_reconnect(where: str):
    """An entry function naming only the entries of the drivers' `where` from the reconnect's
    start on: the first is where the stop lands, however many exchanges came before it."""
    began = [False]

    def entry(frame) -> str | None:
        code = frame.f_code
        if not code.co_filename.startswith(DRIVERS_DIR):
            return None
        began[0] = began[0] or code.co_name == "_reconnect"
        return code.co_name if began[0] and code.co_name == where else None
    return entry


@pytest.mark.parametrize("where", ["_reconnect", "_set_aside_after_link_loss", "commit_uncertain", "_reopen"])
def test_a_stop_before_the_record_is_set_aside_leaves_it_set_aside(connect, bench, where):
    driver = connect("cryostat", Lakeshore336, envelope=ENVELOPES["cryostat"], sensor_input="A",
                     heater_output=1, heater_range="medium")
    driver.timeout(0.5)
    heater = bench.world.panels["cryostat"].outputs[1]
    faults = bench.faults_for(station_address(bench, "cryostat"))

    def dropped() -> None:
        faults.inject(drop())
        driver.set_setpoint_k(5.0)

    driver.set_setpoint_k(4.2)                  # the heater on; the guard read the setpoint and its units
    stop = stopped_at(1, dropped, _first_in_the_reconnect(where))
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
