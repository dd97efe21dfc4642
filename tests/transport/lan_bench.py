"""What the transport tests of the LAN servers share: the `rm` and `echo` fixtures (a module
imports them to have them), the emulated station served over every transport with the
stock-client tests that compare a LAN transport (VXI-11, HiSLIP) with the raw socket one, and
the stand-in instruments and checks of the VXI-11 and HiSLIP protocol tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import pyvisa

from sim_backend.clock import LabClock
from sim_backend.emulator import build_bench
from sim_backend.transport.bench_server import BenchServer
from sim_backend.transport.instrument_access import InstrumentAccess
from stand_in import EchoInstrument
from tests.personalities.personality_helpers import infiniium_trace

EMULATED_STATION = Path(__file__).resolve().parents[2] / "stations" / "emulated.yaml"
#: 1 mV/div and 2000 points: a capture of the scope's input noise, as the stock-driver tests take.
SCOPE_RANGE_V = 8e-3
SCOPE_POINTS = 2000


@pytest.fixture(scope="module", name="rm")
def module_resource_manager() -> Iterator[pyvisa.ResourceManager]:
    """`rm`, one pyvisa-py resource manager for a test module: import this to have it."""
    manager = pyvisa.ResourceManager("@py")
    yield manager
    manager.close()


@contextmanager
def served_station(**lan: object) -> Iterator[BenchServer]:
    """The emulated station (lab time at wall speed) served on 127.0.0.1 over raw sockets and
    the LAN transports `lan` asks for (BenchServer's vxi11=/hislip= options)."""
    bench = build_bench(EMULATED_STATION, clock=LabClock(1.0))
    with BenchServer(bench, **lan) as server:
        yield server


def require_portmapper(server: BenchServer) -> None:
    """Stock VXI-11 addresses (no port named) need the port mapper on port 111."""
    assert server.vxi11 is not None
    if server.vxi11.portmapper is None:
        pytest.skip("stock VXI-11 addresses need the port mapper on port 111, which this machine "
                    f"does not give this process: {server.vxi11.portmapper_error}")


@pytest.fixture(name="echo")
def echo_instrument() -> EchoInstrument:
    """`echo`, a fresh stand-in instrument for a test: import this to have it."""
    return EchoInstrument()


def echo_instruments(echo: EchoInstrument, names: tuple[str, str]) -> dict[str, InstrumentAccess]:
    """Two stand-in instruments for a LAN server: `echo` under the first name, and one that
    answers *IDN? with NWLAB,OTHER,0,1 under the second."""
    first, second = names
    return {first: InstrumentAccess(echo),
            second: InstrumentAccess(EchoInstrument("NWLAB,OTHER,0,1"))}


@contextmanager
def held_sessions(rm: pyvisa.ResourceManager, address: str, count: int) -> Iterator[list]:
    """`count` sessions open on `address`; whichever are in the list at the end are closed."""
    held = [rm.open_resource(address, timeout=2000) for _ in range(count)]
    try:
        yield held
    finally:
        for res in held:
            res.close()


def check_refused_at_once(rm: pyvisa.ResourceManager, held: list, address: str,
                          error: type[Exception], match: str | None = None) -> None:
    """Opening `address` past the server's limit fails with `error` at once, not on a
    timeout, and the echo sessions `held` open are still served."""
    started = time.monotonic()
    with pytest.raises(error, match=match):
        rm.open_resource(address, timeout=2000)
    assert time.monotonic() - started < 1.5
    assert all(res.query("*IDN?") == "NWLAB,ECHO,0,1.0\n" for res in held)


def check_freed_slot_is_served(rm: pyvisa.ResourceManager, held: list, address: str,
                               freed: Callable[[], bool] = lambda: True) -> None:
    """Closing one of the echo sessions `held` lets a newcomer on `address` in (once `freed()`
    says the server has seen the close), and it is served."""
    held.pop().close()
    deadline = time.monotonic() + 5
    while not freed() and time.monotonic() < deadline:
        time.sleep(0.01)
    again = rm.open_resource(address, timeout=2000)
    held.append(again)
    assert again.query("*IDN?") == "NWLAB,ECHO,0,1.0\n"


def check_others_still_served(rm: pyvisa.ResourceManager, res, address: str, query: str,
                              reply: str) -> None:
    """After a misbehaving client: the echo session `res` opened before it is still served,
    and so is a fresh session on `address` (`query` answered with `reply`)."""
    assert res.query("*IDN?") == "NWLAB,ECHO,0,1.0\n"
    fresh = rm.open_resource(address, timeout=2000)
    try:
        assert fresh.query(query) == reply
    finally:
        fresh.close()


def socket_resource(rm: pyvisa.ResourceManager, served, **options):
    return rm.open_resource(served.server.visa_address, read_termination="\n",
                            write_termination="\n", timeout=5000, **options)


def check_idn_of_every_instrument(rm: pyvisa.ResourceManager, server: BenchServer,
                                  transport: str) -> None:
    """Each instrument's *IDN? over the LAN address, no read termination set, is the one the
    raw socket gives, with the instrument's own terminator and END after it."""
    for served in server.instruments:
        lan = rm.open_resource(getattr(served, f"{transport}_address"), timeout=5000)
        raw = socket_resource(rm, served)
        try:
            over_lan = lan.query("*IDN?")
            over_socket = raw.query("*IDN?")
            assert over_lan.rstrip("\r\n") == over_socket.rstrip("\r") and over_socket.count(",") == 3
            assert over_lan.endswith("\n")
        finally:
            lan.close()
            raw.close()


class StockClientsOverLan:
    """The emulated station through stock clients over the LAN transport `transport` names
    ("vxi11", "hislip"): a test module subclasses this as `Test…` and gives the `station`
    fixture (the station served with that transport) and `rm`."""

    transport: str

    def test_stock_infiniium_waveform_arrives_intact(self, rm: pyvisa.ResourceManager,
                                                     station: BenchServer) -> None:
        """The stock QCoDeS Infiniium driver digitizes and reads its trace over the LAN
        address, and the `:WAV:DATA?` block arrives byte for byte as the raw socket gives it."""
        from qcodes.instrument_drivers.Keysight import KeysightInfiniium

        served = next(s for s in station.instruments if s.model == "keysight_infiniium")
        address = getattr(served, f"{self.transport}_address")
        scope = KeysightInfiniium(f"scope_{self.transport}", address, timeout=5)
        raw = socket_resource(rm, served)
        try:
            scope.ch1.range(SCOPE_RANGE_V)
            scope.acquire_points(SCOPE_POINTS)
            scope.sample_rate(10e9)
            scope.digitize()                     # :DIGitize;*OPC?, read until "1": the driver's own
            volts = infiniium_trace(scope, scope.ch1)
            assert volts.shape == (SCOPE_POINTS,) and np.all(np.isfinite(volts)) and volts.std() > 0
            # A plain session (no read termination: the driver's "\n" would end a read at the
            # first LF byte of the data) reads the block as one reply: it ends at END, LF bytes
            # and all.
            plain = rm.open_resource(address, timeout=5000)
            try:
                plain.write(":WAV:DATA?")
                block = plain.read_raw()
            finally:
                plain.close()
            assert block.startswith(b"#0") and block.endswith(b"\n")
            assert len(block) == 2 + 2 * SCOPE_POINTS + 1     # #0, 16-bit words, LF
            raw.write(":WAV:DATA?")
            assert raw.read_bytes(len(block)) == block
            assert scope.ask(":SYST:ERR?") == '+0,"No error"'
        finally:
            raw.close()
            scope.close()

    def test_stock_lakeshore_driver_works_unchanged(self, station: BenchServer) -> None:
        """The stock QCoDeS Lake Shore 336 driver (it sets "\\r\\n" read termination, so reads
        end at the termination character) sets and reads back a setpoint."""
        from qcodes.instrument_drivers.Lakeshore import LakeshoreModel336

        served = next(s for s in station.instruments if s.model == "lakeshore_336")
        cryostat = LakeshoreModel336(f"cryostat_{self.transport}",
                                     getattr(served, f"{self.transport}_address"))
        try:
            cryostat.output_1.setpoint(4.5)
            assert cryostat.output_1.setpoint() == 4.5
            assert cryostat.IDN()["vendor"] is not None
        finally:
            cryostat.close()

    def test_device_clear_drops_a_held_reply(self, rm: pyvisa.ResourceManager,
                                             station: BenchServer) -> None:
        """A scope waiting for a trigger holds its *OPC? reply; device clear drops it, so the
        next query gets its own reply (without the clear it waits behind the *OPC? and times
        out)."""
        served = next(s for s in station.instruments if s.model == "keysight_infiniium")
        scope = rm.open_resource(getattr(served, f"{self.transport}_address"), timeout=3000)
        try:
            scope.write(":TRIG:SWE TRIG")
            scope.write(":DIGITIZE;*OPC?")        # nothing fires: the *OPC? reply is held
            scope.clear()
            assert scope.query("*IDN?").startswith("KEYSIGHT")
            assert isinstance(scope.read_stb(), int)
        finally:
            scope.close()
