"""Serve every instrument of a bench over TCP: a raw SCPI port each, and optionally VXI-11
(device names inst0, inst1, … in station order) and HiSLIP (hislip0, hislip1, …)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from sim_backend.transport._bench_lookup import (
    BenchLike,
    bench_instruments,
    device_table,
    faults_for,
    lookup_key,
)
from sim_backend.transport.bench_gate import BenchGate
from sim_backend.transport.hislip_server import HislipServer
from sim_backend.transport.instrument_access import InstrumentAccess
from sim_backend.transport.tcp_server import DEFAULT_MAX_CLIENTS, ScpiSocketServer
from sim_backend.transport.vxi11_server import Vxi11Server

#: Options of the raw socket server the LAN servers take too (with their own names).
_LAN_OPTIONS = ("max_message_bytes", "idle_timeout_s", "send_stall_s")


@dataclass(frozen=True)
class ServedInstrument:
    role: str
    model: str
    #: The instrument's address in the station file.
    station_address: str
    server: ScpiSocketServer
    #: Its VXI-11 and HiSLIP addresses, when the bench is served over those too.
    vxi11_address: str | None = None
    hislip_address: str | None = None


class BenchServer:
    """One `ScpiSocketServer` per bench instrument; `base_port` 0 lets the OS pick ports,
    otherwise instruments get `base_port`, `base_port + 1`, ... in station order.

    `vxi11=True` serves the bench's instruments over VXI-11 too (core channel on `vxi11_port`,
    0: any free one; the port mapper on `portmapper_port`, None: none), `hislip=True` over HiSLIP
    on `hislip_port`. All transports of an instrument share its `InstrumentAccess`."""

    def __init__(self, bench: BenchLike, host: str = "127.0.0.1", base_port: int = 0, *,
                 vxi11: bool = False, vxi11_port: int = 0, portmapper_port: int | None = 111,
                 hislip: bool = False, hislip_port: int = 0, **server_options: object) -> None:
        self.bench = bench
        self.host = host
        self.base_port = base_port
        self._options = server_options
        self._vxi11 = dict(port=vxi11_port, portmapper_port=portmapper_port) if vxi11 else None
        self._hislip = dict(port=hislip_port) if hislip else None
        self.instruments: list[ServedInstrument] = []
        self.vxi11: Vxi11Server | None = None
        self.hislip: HislipServer | None = None

    def start(self) -> BenchServer:
        table = device_table(self.bench)
        gate = BenchGate(self.bench.lock)  # one queue for the bench: instruments take turns
        accesses = []
        try:
            for index, (role, model, address) in enumerate(bench_instruments(self.bench)):
                found = table[lookup_key(address)]
                access = InstrumentAccess(
                    found.device, gate,
                    lambda bench=self.bench, key=found.bench_key: faults_for(bench, key))
                server = ScpiSocketServer(
                    found.device,
                    access=access,
                    host=self.host,
                    port=self.base_port + index if self.base_port else 0,
                    **self._options,  # type: ignore[arg-type]
                )
                accesses.append(access)
                self.instruments.append(ServedInstrument(role, model, address, server))
                server.start()
            self._start_lan_servers(accesses)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_lan_servers(self, accesses: list[InstrumentAccess]) -> None:
        lan = {name: self._options[name] for name in _LAN_OPTIONS if name in self._options}
        limit = int(self._options.get("max_clients", DEFAULT_MAX_CLIENTS))  # type: ignore[arg-type]
        if self._vxi11 is not None:
            self.vxi11 = Vxi11Server({f"inst{i}": a for i, a in enumerate(accesses)}, host=self.host,
                                     max_links=limit, **self._vxi11, **lan).start()
        if self._hislip is not None:
            self.hislip = HislipServer({f"hislip{i}": a for i, a in enumerate(accesses)},
                                       host=self.host, max_sessions=limit, **self._hislip, **lan).start()
        self.instruments = [replace(
            served,
            vxi11_address=self.vxi11.visa_address(f"inst{i}") if self.vxi11 else None,
            hislip_address=self.hislip.visa_address(f"hislip{i}") if self.hislip else None,
        ) for i, served in enumerate(self.instruments)]

    def stop(self) -> None:
        for lan_server in (self.hislip, self.vxi11):
            if lan_server is not None:
                lan_server.stop()
        self.hislip = self.vxi11 = None
        for served in self.instruments:
            served.server.stop()
        self.instruments.clear()

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
