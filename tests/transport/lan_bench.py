"""What the VXI-11 and HiSLIP tests share: the emulated station served over every transport,
and the checks that compare a LAN transport with the raw socket one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import pyvisa

from sim_backend.clock import LabClock
from sim_backend.emulator import build_bench
from sim_backend.transport.bench_server import BenchServer
from tests.personalities.personality_helpers import infiniium_trace

EMULATED_STATION = Path(__file__).resolve().parents[2] / "stations" / "emulated.yaml"
#: 1 mV/div and 2000 points: a capture of the scope's input noise, as the stock-driver tests take.
SCOPE_RANGE_V = 8e-3
SCOPE_POINTS = 2000


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


def check_stock_infiniium_waveform(rm: pyvisa.ResourceManager, server: BenchServer,
                                   transport: str) -> None:
    """The stock QCoDeS Infiniium driver digitizes and reads its trace over the LAN address,
    and the `:WAV:DATA?` block arrives byte for byte as the raw socket gives it."""
    from qcodes.instrument_drivers.Keysight import KeysightInfiniium

    served = next(s for s in server.instruments if s.model == "keysight_infiniium")
    scope = KeysightInfiniium(f"scope_{transport}", getattr(served, f"{transport}_address"),
                              timeout=5)
    raw = socket_resource(rm, served)
    try:
        scope.ch1.range(SCOPE_RANGE_V)
        scope.acquire_points(SCOPE_POINTS)
        scope.sample_rate(10e9)
        scope.digitize()                     # :DIGitize;*OPC?, read until "1": the driver's own
        volts = infiniium_trace(scope, scope.ch1)
        assert volts.shape == (SCOPE_POINTS,) and np.all(np.isfinite(volts)) and volts.std() > 0
        # A plain session (no read termination: the driver's "\n" would end a read at the first
        # LF byte of the data) reads the block as one reply: it ends at END, LF bytes and all.
        plain = rm.open_resource(getattr(served, f"{transport}_address"), timeout=5000)
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


def check_stock_lakeshore(server: BenchServer, transport: str) -> None:
    """The stock QCoDeS Lake Shore 336 driver (it sets "\\r\\n" read termination, so reads end at
    the termination character) sets and reads back a setpoint."""
    from qcodes.instrument_drivers.Lakeshore import LakeshoreModel336

    served = next(s for s in server.instruments if s.model == "lakeshore_336")
    cryostat = LakeshoreModel336(f"cryostat_{transport}", getattr(served, f"{transport}_address"))
    try:
        cryostat.output_1.setpoint(4.5)
        assert cryostat.output_1.setpoint() == 4.5
        assert cryostat.IDN()["vendor"] is not None
    finally:
        cryostat.close()


def check_clear_drops_held_reply(rm: pyvisa.ResourceManager, server: BenchServer,
                                 transport: str) -> None:
    """A scope waiting for a trigger holds its *OPC? reply; device clear drops it, so the next
    query gets its own reply (without the clear it waits behind the *OPC? and times out)."""
    served = next(s for s in server.instruments if s.model == "keysight_infiniium")
    scope = rm.open_resource(getattr(served, f"{transport}_address"), timeout=3000)
    try:
        scope.write(":TRIG:SWE TRIG")
        scope.write(":DIGITIZE;*OPC?")        # nothing fires: the *OPC? reply is held
        scope.clear()
        assert scope.query("*IDN?").startswith("KEYSIGHT")
        assert isinstance(scope.read_stb(), int)
    finally:
        scope.close()
