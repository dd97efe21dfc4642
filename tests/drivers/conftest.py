"""Driver tests: real drivers over real pyvisa transports into a fresh emulated bench.

`connect(role_name, driver_class, **kwargs)` opens a driver on the bench instrument serving
`role_name` (the station file key) through the transport of the test's parameter: the
in-process pyvisa backend or TCP sockets on 127.0.0.1. `received(role_name)` records every
message the instrument's personality gets from then on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from driver_helpers import EMULATED_STATION, SERVED, Received, served_address, station_address, write_station


@pytest.fixture
def bench_models() -> dict[str, str]:
    """Emulator models behind the station's instruments; test modules override this."""
    return {}


@pytest.fixture
def bench_path(tmp_path, bench_models) -> str:
    """A station with `bench_models`, and a bench id no other test uses."""
    return f"{write_station(tmp_path, bench_models)}#test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def bench(bench_path):
    """The emulated bench of `stations/emulated.yaml` with lab time at wall speed.

    Driver tests check commands and panel state, not settling, and at the station's 600x the
    stage's thermal model costs more wall time than it simulates once the heater is on (each
    reply slower than the last). Every library path a test opens gets its own such bench.
    """
    from sim_backend.clock import LabClock
    from sim_backend.emulator import build_bench
    from sim_backend.transport._bench_lookup import set_bench_opener

    benches: dict[str, object] = {}

    def open_bench(library_path: str):
        if library_path not in benches:
            station_path = library_path.split("#", 1)[0] or str(EMULATED_STATION)
            benches[library_path] = build_bench(station_path, clock=LabClock(1.0))
        return benches[library_path]

    previous = set_bench_opener(open_bench)
    try:
        yield open_bench(bench_path)
    finally:
        set_bench_opener(previous)


@pytest.fixture(params=["inproc", "tcp"])
def transport(request) -> str:
    """The in-process backend or a key of driver_helpers.SERVED; a module or class overrides it
    for others (VXI-11, HiSLIP)."""
    return request.param


@pytest.fixture
def connect(bench, visalib, transport) -> Iterator[Callable[..., object]]:
    from sim_backend.transport.bench_server import BenchServer

    servers: list[BenchServer] = []
    drivers = []

    def _connect(role_name: str, driver_class: type, **kwargs: object):
        if transport in SERVED:
            if not servers:
                servers.append(BenchServer(bench, **SERVED[transport]).start())
            served = next(s for s in servers[0].instruments if s.role == role_name)
            address, library = served_address(served, transport), "@py"
        else:
            address, library = station_address(bench, role_name), visalib
        driver = driver_class(f"{role_name}_{uuid.uuid4().hex[:8]}", address, visalib=library, **kwargs)
        drivers.append(driver)
        return driver

    yield _connect
    for driver in drivers:
        driver.close()
    for server in servers:
        server.stop()


@pytest.fixture
def received(bench) -> Callable[[str], Received]:
    def _start(role_name: str) -> Received:
        device = bench.device(role_name)
        log = Received()
        original = device.write_bytes

        def write_bytes(data: bytes) -> None:
            log.feed(bytes(data))
            original(data)

        device.write_bytes = write_bytes  # the transports look it up on the instance
        return log

    return _start
