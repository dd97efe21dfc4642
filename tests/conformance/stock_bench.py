"""A fresh emulated bench with one model in its role, reached as a stock client reaches it:
through the in-process pyvisa backend, or over TCP from pyvisa-py (shared by the QCoDeS and
PyMeasure conformance walks)."""

from __future__ import annotations

import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "drivers"))
from driver_helpers import DRIVERS, write_station  # noqa: E402

#: The station role each emulated model stands in.
ROLES = {
    "keysight_33522b": "pulser", "keysight_33622a": "pulser", "keysight_81160a": "pulser",
    "lakeshore_336": "cryostat", "lakeshore_372": "cryostat", "keithley_2450": "bias",
    "keysight_infiniium": "scope", "tektronix_dpo7254": "scope",
}


@dataclass
class Reached:
    """Where a stock client finds the instrument: `address` opened with `visa_library`."""

    address: str
    visa_library: str
    bench: object
    server: object | None            # the TCP server to stop, if any

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def reach(model: str, transport: str, tmp_path: Path, *, acceleration: float = 1.0) -> Reached:
    """A bench with `model` in its role, for this caller only, its lab clock `acceleration`
    times the wall clock; the instrument's address over `transport`."""
    from sim_backend.clock import LabClock
    from sim_backend.emulator import build_bench
    from sim_backend.transport._bench_lookup import set_bench_opener
    from sim_backend.transport.bench_server import BenchServer

    role = ROLES[model]
    station = write_station(tmp_path, {role: model}) if model in DRIVERS else _with_model(tmp_path, role, model)
    bench = build_bench(str(station), clock=LabClock(acceleration))
    set_bench_opener(lambda path: bench)          # the caller's own bench (callers restore the opener)
    if transport == "inproc":
        address = next(e.address for e in bench.instruments if e.role == role)
        return Reached(address, f"{station}#conformance-{uuid.uuid4().hex[:8]}@nwlab", bench, None)
    server = BenchServer(bench).start()
    return Reached(next(s.server.visa_address for s in server.instruments if s.role == role), "@py", bench, server)


def no_nagle(resource) -> None:
    """NI-VISA's default on a TCP session; pyvisa-py leaves Nagle on (40 ms per write pair)."""
    interface = getattr(resource.visalib.sessions[resource.session], "interface", None)
    if isinstance(interface, socket.socket):
        interface.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _with_model(tmp_path: Path, role: str, model: str) -> Path:
    """A station with a model driver_helpers has no nwlab driver entry for (a 33500 variant)."""
    import yaml

    path = write_station(tmp_path, {})
    tree = yaml.safe_load(path.read_text())
    tree["instruments"][role]["emulator"]["model"] = model
    tree["instruments"][role]["driver"] = "drivers.keysight_33500b.Keysight33500B"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path
