"""Transport faults: a dropped connection is survived, a dead instrument gives a clear error fast.

Each case names a driver, how to open it, a role verb that reads from the instrument and what
the emulator must show afterwards (the role settings re-applied after reconnecting).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from driver_helpers import ENVELOPES, PULSER_ENVELOPE, station_address

from drivers._common import InstrumentConnectionError
from drivers.keithley_2450 import Keithley2450
from drivers.keysight_33500b import Keysight33500B
from drivers.keysight_81160a import Keysight81160A
from drivers.keysight_infiniium import KeysightInfiniium
from drivers.lakeshore_336 import Lakeshore336
from drivers.lakeshore_372 import Lakeshore372
from drivers.tektronix_dpo import TektronixDPO
from sim_backend.faults import plan as faults

pytestmark = pytest.mark.timeout(30)

#: QCoDeS timeouts are seconds (pyvisa's are ms): short, so a dead instrument is noticed fast.
#: Set only once the fault is armed: opening a stock driver over TCP on a loaded machine can take
#: longer than this, and a failure there would say nothing about the fault handling under test.
TIMEOUT_S = 0.05
#: While the link is whole (connecting, configuring, answering again after the fault).
WORKING_TIMEOUT_S = 5.0
#: A dropped reply over TCP shows as a timeout; the reconnect's own traffic runs at it too.
DROP_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class Case:
    role_name: str
    driver: type
    kwargs: dict[str, Any]
    configure: Callable[[Any], None]     # role settings to be re-applied after a reconnect
    read: Callable[[Any], Any]           # a verb that needs a reply
    check: Callable[[Any], None]         # the bench state those settings produce


CASES = {
    "lakeshore_336": Case(
        "cryostat", Lakeshore336, dict(envelope=ENVELOPES["cryostat"]),
        lambda d: d.set_setpoint_k(4.5), lambda d: d.read_temperature_k(),
        lambda bench: bench.world.panels["cryostat"].outputs[1].setpoint_k == pytest.approx(4.5)),
    "keysight_33500b": Case(
        "pulser", Keysight33500B, dict(envelope=PULSER_ENVELOPE),
        lambda d: d.configure_pulse(amplitude_v=0.6, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=2),
        lambda d: d.set_output_enabled(True),
        lambda bench: bench.world.panels["pulser"].channels[1].burst_cycles == 2),
    "keysight_81160a": Case(
        "pulser", Keysight81160A, dict(envelope=PULSER_ENVELOPE),
        lambda d: d.configure_pulse(amplitude_v=0.6, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=2),
        lambda d: d.set_output_enabled(True),
        lambda bench: bench.world.panels["pulser"].channels[1].burst_cycles == 2),
    "lakeshore_372": Case(
        "cryostat", Lakeshore372, dict(envelope=ENVELOPES["cryostat"], sensor_input=6),
        lambda d: d.set_setpoint_k(4.5), lambda d: d.read_temperature_k(),
        lambda bench: bench.world.panels["cryostat"].outputs[0].setpoint_k == pytest.approx(4.5)),
    "keysight_infiniium": Case(
        "scope", KeysightInfiniium, dict(envelope=ENVELOPES["scope"]),
        lambda d: d.configure_acquisition(channel_ranges_v={1: 0.4}, record_length=1000, sample_rate_hz=10e9,
                                          pretrigger_s=10e-9, trigger_channel=1, trigger_level_v=0.01),
        lambda d: d.wait_acquired(0.01),
        lambda bench: bench.world.panels["scope"].record_length == 1000),
    "tektronix_dpo7254": Case(
        "scope", TektronixDPO, dict(envelope=ENVELOPES["scope"]),
        lambda d: d.configure_acquisition(channel_ranges_v={1: 0.4}, record_length=1000, sample_rate_hz=10e9,
                                          pretrigger_s=10e-9, trigger_channel=1, trigger_level_v=0.01),
        lambda d: d.wait_acquired(0.01),
        lambda bench: bench.world.panels["scope"].record_length == 1000),
    "keithley_2450": Case(
        "bias", Keithley2450, dict(envelope=ENVELOPES["bias"]),
        lambda d: d.set_compliance_v(0.7), lambda d: d.current_a(),
        lambda bench: bench.world.panels["bias"].voltage_limit_v == pytest.approx(0.7)),
}


MODELS = {"lakeshore_336": "lakeshore_336", "keysight_33500b": "keysight_33522b", "keithley_2450": "keithley_2450",
          "keysight_81160a": "keysight_81160a", "lakeshore_372": "lakeshore_372",
          "keysight_infiniium": "keysight_infiniium", "tektronix_dpo7254": "tektronix_dpo7254"}


@pytest.fixture(params=sorted(CASES))
def case(request) -> Case:
    return CASES[request.param]


@pytest.fixture
def bench_models(case) -> dict[str, str]:
    return {case.role_name: MODELS[next(k for k, c in CASES.items() if c is case)]}


def test_reconnects_after_a_dropped_connection(case, connect, bench):
    driver = connect(case.role_name, case.driver, timeout=WORKING_TIMEOUT_S, **case.kwargs)
    case.configure(driver)
    plan = bench.faults_for(station_address(bench, case.role_name))
    replies_before = plan.replies
    driver.timeout(DROP_TIMEOUT_S)
    plan.inject(faults.drop())
    case.read(driver)                       # the reply is lost with the link; the driver reconnects
    assert plan.replies > replies_before + 1  # the dropped reply, then the reconnect's traffic
    assert case.check(bench) is not False
    case.read(driver)                       # and keeps working


class TestOverTheLanProtocols:
    """The same drop over VXI-11 and HiSLIP, which the drivers reach through pyvisa-py.
    - Its HiSLIP client reports a connection the server closed as a plain RuntimeError, not a
      VISA error: once taken for an instrument's error, the call failed without a reconnect.
    - Its VXI-11 close asks the instrument to destroy the link, and waited its own 5 s for the
      reply a dead link never gives (pyvisa logged the close's timeout), at every reconnect."""

    @pytest.fixture(params=["vxi11", "hislip"])
    def transport(self, request) -> str:
        return request.param

    def test_reconnects_after_a_dropped_connection(self, case, connect, bench, caplog):
        driver = connect(case.role_name, case.driver, timeout=WORKING_TIMEOUT_S, **case.kwargs)
        case.configure(driver)
        links_lost = driver.links_lost
        with caplog.at_level("ERROR", logger="pyvisa"):
            test_reconnects_after_a_dropped_connection(case, lambda *args, **kwargs: driver, bench)
        assert driver.reconnects == 1 and driver.links_lost == links_lost + 1
        waited = [r.getMessage() for r in caplog.records if "stopped responding" in r.getMessage()]
        assert not waited, waited


class TestAConnectionClosedByTheInstrument:
    @pytest.fixture
    def transport(self) -> str:
        return "tcp"        # a socket the emulator's server closes (in-process, the fault is the backend's)

    def test_is_told_at_once_not_waited_out(self, case, connect, bench, caplog):
        """pyvisa-py reads on after the peer closed a socket until its timeout: with a minute's
        timeout the reconnect must still start from the close itself (its cause names it)."""
        driver = connect(case.role_name, case.driver, timeout=WORKING_TIMEOUT_S, **case.kwargs)
        case.configure(driver)
        driver.timeout(60.0)
        bench.faults_for(station_address(bench, case.role_name)).inject(faults.drop())
        with caplog.at_level("WARNING", logger="drivers._common"):
            case.read(driver)
        causes = [r.getMessage() for r in caplog.records if "reconnecting" in r.getMessage()]
        assert causes and all("closed the connection" in cause for cause in causes), causes
        case.read(driver)


def test_persistent_timeout_gives_a_clear_error_not_a_hang(case, connect, bench):
    driver = connect(case.role_name, case.driver, timeout=WORKING_TIMEOUT_S, **case.kwargs)
    driver.reconnect_backoff_s = 0.01   # the bound below follows it
    case.configure(driver)
    address = station_address(bench, case.role_name)
    driver.timeout(TIMEOUT_S)
    bench.faults_for(address).set_persistent(faults.withhold())
    start = time.monotonic()
    with pytest.raises(InstrumentConnectionError) as info:
        case.read(driver)
    elapsed_s = time.monotonic() - start
    message = str(info.value)
    assert driver.name in message and "reconnect attempts failed" in message
    assert "timeout" in message.lower()
    # The original timeout, a socket's old session waited for (one timeout), then each attempt's
    # *IDN? timeout plus its backoff: bounded.
    attempts = driver.reconnect_attempts
    bound_s = (attempts + 2) * TIMEOUT_S + driver.reconnect_backoff_s * 2 ** attempts + 2.0
    assert elapsed_s < bound_s
    bench.faults_for(address).set_persistent(None)
    driver.timeout(WORKING_TIMEOUT_S)
    case.read(driver)                       # once the instrument answers again, so does the driver
