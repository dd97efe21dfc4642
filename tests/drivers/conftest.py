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

from driver_helpers import Received, station_address


@pytest.fixture(params=["inproc", "tcp"])
def transport(request) -> str:
    return request.param


@pytest.fixture
def connect(bench, visalib, transport) -> Iterator[Callable[..., object]]:
    from sim_backend.transport.bench_server import BenchServer

    servers: list[BenchServer] = []
    drivers = []

    def _connect(role_name: str, driver_class: type, **kwargs: object):
        if transport == "tcp":
            if not servers:
                servers.append(BenchServer(bench).start())
            served = next(s for s in servers[0].instruments if s.role == role_name)
            address, library = served.server.visa_address, "@py"
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
