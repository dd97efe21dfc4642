"""The connection cap of `ConnectionServer` on real sockets: a slot whose client has left is the
newcomer's once the server has finished with it, even when that takes a while."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from sim_backend.transport.connection_server import ENDING_SLOT_WAIT_S, Connection, ConnectionServer
from tests.transport.socket_checks import closed_within, refused_at

#: How long the serve function below takes after its client has left: what a bench instrument
#: takes to drop what it held for that client, made long enough to be sure to be in the way.
CLEAN_UP_S = 0.5


def _echo_then_clean_up(served: list[float]):
    def serve(connection: Connection) -> None:
        sock = connection.sock
        while True:
            try:
                data = sock.recv(100)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            sock.sendall(data)
        time.sleep(CLEAN_UP_S)
        served.append(time.monotonic())
    return serve


@pytest.fixture
def server():
    served: list[float] = []
    srv = ConnectionServer(_echo_then_clean_up(served), max_connections=2, name="test").start()
    srv.served = served
    yield srv
    srv.stop()


def _echoes(sock: socket.socket, within_s: float = 3.0) -> bool:
    sock.settimeout(within_s)
    sock.sendall(b"ping")
    return sock.recv(100) == b"ping"


def test_a_newcomer_takes_the_slot_a_leaving_client_frees_instead_of_being_refused(server):
    first = socket.create_connection(("127.0.0.1", server.port), timeout=3)
    second = socket.create_connection(("127.0.0.1", server.port), timeout=3)
    try:
        assert _echoes(first) and _echoes(second)
        assert refused_at("127.0.0.1", server.port)            # full, and nobody is leaving
        first.close()
        time.sleep(0.05)                                      # the server sees the close ...
        left_s = time.monotonic()
        newcomer = socket.create_connection(("127.0.0.1", server.port), timeout=3)
        with newcomer:                                        # ... and cleans up for CLEAN_UP_S
            assert _echoes(newcomer), "the newcomer was refused while a slot was emptying"
            waited_s = time.monotonic() - left_s
            assert server.served and waited_s >= CLEAN_UP_S * 0.8   # it waited for the slot
            assert _echoes(second)
    finally:
        second.close()


def test_a_full_port_nobody_leaves_still_refuses_at_once(server):
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=3) for _ in range(2)]
    try:
        assert all(_echoes(sock) for sock in held)
        started = time.monotonic()
        assert refused_at("127.0.0.1", server.port)
        assert time.monotonic() - started < ENDING_SLOT_WAIT_S / 2
    finally:
        for sock in held:
            sock.close()


def test_a_newcomer_waits_no_longer_than_the_bound_for_a_slot_that_does_not_free(server):
    """A client that shut its sending side but is still being served (a reply outstanding)
    looks like one leaving: the newcomer waits at most ENDING_SLOT_WAIT_S, then is refused."""
    stuck = threading.Event()

    def serve(connection: Connection) -> None:
        stuck.wait(10)                                        # never reads: holds its slot

    srv = ConnectionServer(serve, max_connections=1, name="held").start()
    try:
        half_closed = socket.create_connection(("127.0.0.1", srv.port), timeout=3)
        half_closed.shutdown(socket.SHUT_WR)
        time.sleep(0.05)
        started = time.monotonic()
        newcomer = socket.create_connection(("127.0.0.1", srv.port), timeout=ENDING_SLOT_WAIT_S + 3)
        with newcomer:
            assert closed_within(newcomer, ENDING_SLOT_WAIT_S + 3)
        assert ENDING_SLOT_WAIT_S * 0.9 <= time.monotonic() - started < ENDING_SLOT_WAIT_S + 2
        half_closed.close()
    finally:
        stuck.set()
        srv.stop()
