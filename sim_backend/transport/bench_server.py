"""Serve every instrument of a bench over TCP, one port each."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sim_backend.transport._bench_lookup import (
    BenchLike,
    bench_instruments,
    device_table,
    faults_for,
    lookup_key,
)
from sim_backend.transport.bench_gate import BenchGate
from sim_backend.transport.tcp_server import ScpiSocketServer


@dataclass(frozen=True)
class ServedInstrument:
    role: str
    model: str
    #: The instrument's address in the station file.
    station_address: str
    server: ScpiSocketServer


class BenchServer:
    """One `ScpiSocketServer` per bench instrument; `base_port` 0 lets the OS pick ports,
    otherwise instruments get `base_port`, `base_port + 1`, ... in station order."""

    def __init__(self, bench: BenchLike, host: str = "127.0.0.1", base_port: int = 0,
                 **server_options: object) -> None:
        self.bench = bench
        self.host = host
        self.base_port = base_port
        self._options = server_options
        self.instruments: list[ServedInstrument] = []

    def start(self) -> BenchServer:
        table = device_table(self.bench)
        gate = BenchGate(self.bench.lock)  # one queue for the bench: instruments take turns
        try:
            for index, (role, model, address) in enumerate(bench_instruments(self.bench)):
                found = table[lookup_key(address)]
                server = ScpiSocketServer(
                    found.device,
                    lock=gate,
                    faults=lambda bench=self.bench, key=found.bench_key: faults_for(bench, key),
                    host=self.host,
                    port=self.base_port + index if self.base_port else 0,
                    **self._options,  # type: ignore[arg-type]
                )
                self.instruments.append(ServedInstrument(role, model, address, server))
                server.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
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
