"""A link failure inside a resynchronisation, hidden by a stop signal.

A garbled reply makes the next read resynchronise; the resynchronisation's identification (over
a raw socket, the old session's) is withheld, a timeout: the link counts as lost, and the write
guard's record is set aside. A stop as pyvisa raised that timeout, as the loss was being set
aside, or as the old socket was being reset, once skipped that, and the next resynchronisation
was bare again: the record from before the failure stood. Then, as in
`test_interrupt_before_the_record_is_set_aside.py`: someone sets the Lake Shore's setpoint to
300 K at the front panel, the safe state runs in the handler, and a heater range asked through a
stock QCoDeS parameter must be refused. Real driver over raw TCP, VXI-11 and HiSLIP on loopback.
"""

from __future__ import annotations

import pytest
from driver_helpers import ENVELOPES, SERVED, served_address, station_address
from stop_points import TIMEOUT_RAISED, first_after, stopped_at

from contracts.envelope import EnvelopeError
from drivers.lakeshore_336 import Lakeshore336
from sim_backend.faults.plan import garble, withhold
from sim_backend.transport.bench_server import BenchServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def bench_models() -> dict[str, str]:
    return {"cryostat": "lakeshore_336"}


@pytest.mark.parametrize(("link", "where"), [
    *((link, where) for link in SERVED for where in ("no stop", TIMEOUT_RAISED, "_set_aside_after_link_loss")),
    ("tcp", "_reset_on_close"),
])
def test_a_failed_resynchronisation_hidden_by_a_stop_leaves_the_record_set_aside(bench, link, where):
    with BenchServer(bench, **SERVED[link]) as server:
        served = next(s for s in server.instruments if s.role == "cryostat")
        address = served_address(served, link)
        driver = Lakeshore336(f"cryostat_{link}", address, visalib="@py", envelope=ENVELOPES["cryostat"],
                              sensor_input="A", heater_output=1, heater_range="medium")
        heater = bench.world.panels["cryostat"].outputs[1]
        faults = bench.faults_for(station_address(bench, "cryostat"))
        try:
            driver.timeout(0.5)
            driver.set_setpoint_k(4.2)              # the heater on; the guard read the setpoint

            def garbled_then_lost() -> None:
                faults.inject(garble(), *[withhold()] * 4)
                driver.read_parsed("SETP? 1", lambda: float(driver.ask("SETP? 1")))

            stop = None
            if where == "no stop":
                with pytest.raises(Exception):  # noqa: B017 - whichever: the link failed
                    garbled_then_lost()
            else:
                stop = stopped_at(1, garbled_then_lost, first_after(frozenset({"_resynchronise"}), where))
                assert stop is not None and str(stop) == f"at {where}", stop
            faults.clear()
            bench.device("cryostat").write_bytes(b"SETP 1,300\n")    # at the front panel
            driver.safe_state()                         # in the handler, the exception alive
            del stop
            assert heater.range_index == 0 and heater.setpoint_k == pytest.approx(300.0)
            with pytest.raises(EnvelopeError):
                driver.output_1.output_range("medium")  # a stock parameter, as a user would
            driver.ask("*OPC?")                         # anything written has run once this returns
            assert heater.range_index == 0
        finally:
            try:
                driver.safe_state()
            finally:
                driver.close()
