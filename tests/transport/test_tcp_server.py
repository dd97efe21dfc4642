"""The TCP SCPI server, driven by pyvisa-py SOCKET resources and by raw sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import pyvisa
from lan_bench import module_resource_manager  # noqa: F401  (the rm fixture)
from pyvisa.constants import StatusCode
from stand_in import EchoInstrument, block_payload

from sim_backend.transport.bench_gate import BenchGate
from sim_backend.transport.tcp_server import ScpiSocketServer
from tests.transport.socket_checks import closed_within, refused_at

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def device() -> EchoInstrument:
    return EchoInstrument()


@pytest.fixture
def server(device: EchoInstrument) -> Iterator[ScpiSocketServer]:
    with ScpiSocketServer(device, max_message_bytes=64 * 1024, max_clients=4) as srv:
        yield srv


def open_socket(rm, server, **options):
    settings = dict(read_termination="\n", write_termination="\n", timeout=1000)
    settings.update(options)
    return rm.open_resource(server.visa_address, **settings)


def raw_client(server: ScpiSocketServer) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=5)
    return sock


def recv_line(sock: socket.socket) -> bytes:
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def wait_until(condition, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_binds_loopback_by_default(server):
    assert server.host == "127.0.0.1"
    assert server.visa_address == f"TCPIP0::127.0.0.1::{server.port}::SOCKET"


def test_query_write_read_raw(rm, server, device):
    res = open_socket(rm, server)
    try:
        assert res.query("*IDN?") == "NWLAB,ECHO,0,1.0"
        res.write("ECHO? over tcp")
        assert res.read_raw() == b"over tcp\n"
        res.write("*TRG")
        assert res.query("TRG:COUNT?") == "1"
        assert device.executed == 4
    finally:
        res.close()


def test_binary_blocks(rm, server):
    res = open_socket(rm, server)
    try:
        data = res.query_binary_values("BLOCK? 40000", datatype="B", container=bytes)
        assert data == block_payload(40000)
        words = res.query_binary_values(
            "BLOCK0? 4000", datatype="h", container=np.ndarray, data_points=2000,
            expect_termination=True,
        )
        assert np.array_equal(words, np.frombuffer(block_payload(4000), dtype="<i2"))
        # A binary block sent to the instrument, LF bytes and all.
        res.write_binary_values("DATA ", list(block_payload(5000)), datatype="B")
        assert res.query("DATA:LEN?") == "5000"
    finally:
        res.close()


def test_read_with_nothing_queued_times_out(rm, server):
    res = open_socket(rm, server, timeout=300)
    try:
        start = time.monotonic()
        with pytest.raises(pyvisa.VisaIOError) as info:
            res.read()
        assert info.value.error_code == StatusCode.error_timeout
        assert 0.29 <= time.monotonic() - start < 2.0
        assert res.query("ECHO? after timeout") == "after timeout"
    finally:
        res.close()


def test_concurrent_clients_get_their_own_replies(rm, server):
    errors: list[str] = []

    def worker(tag: int) -> None:
        res = open_socket(rm, server, timeout=5000)
        try:
            for i in range(200):
                reply = res.query(f"ECHO? {tag}-{i}")
                if reply != f"{tag}-{i}":
                    errors.append(reply)
        finally:
            res.close()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(25)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_half_lines_from_two_clients_do_not_interleave(server):
    a, b = raw_client(server), raw_client(server)
    with a, b:
        a.sendall(b"ECHO? from")
        b.sendall(b"ECHO? other")
        time.sleep(0.1)  # both halves reach the server before either line ends
        a.sendall(b" a\n")
        b.sendall(b" b\n")
        assert recv_line(a) == b"from a\n"
        assert recv_line(b) == b"other b\n"


def test_idle_half_open_client_does_not_block_others(rm, server):
    idle = raw_client(server)
    idle.sendall(b"ECHO? never finished")  # no LF, never read
    try:
        res = open_socket(rm, server)
        try:
            start = time.monotonic()
            assert res.query("*IDN?") == "NWLAB,ECHO,0,1.0"
            assert time.monotonic() - start < 0.5
        finally:
            res.close()
    finally:
        idle.close()


def test_oversized_message_closes_only_that_connection(rm, server):
    under = raw_client(server)
    with under:  # just under the limit is served
        payload = b"y" * (server.max_message_bytes - 100)
        under.sendall(b"ECHO? " + payload + b"\n")
        assert recv_line(under) == payload + b"\n"
    big = raw_client(server)
    with big:
        with _closed_by_peer(big):
            big.sendall(b"ECHO? " + b"x" * (server.max_message_bytes + 10))
            # The server closes the connection: the next recv sees EOF (or a reset).
            assert big.recv(10) == b""
    res = open_socket(rm, server)
    try:
        assert res.query("*IDN?") == "NWLAB,ECHO,0,1.0"
    finally:
        res.close()


class _closed_by_peer:
    """Accept either way a peer's close shows up: EOF or ECONNRESET/EPIPE."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, tb) -> bool:
        return kind is not None and issubclass(kind, (ConnectionResetError, BrokenPipeError))


def test_abrupt_disconnects_leave_the_server_serving(rm, server):
    for _ in range(5):
        sock = raw_client(server)
        sock.sendall(b"BLOCK? 200000\n")  # a reply nobody will read
        # SO_LINGER 0: close with RST, like a killed process
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    assert wait_until(lambda: server.client_count == 0)
    res = open_socket(rm, server)
    try:
        assert res.query("ECHO? alive") == "alive"
    finally:
        res.close()


def test_clients_beyond_the_limit_are_refused(server):
    clients = [raw_client(server) for _ in range(server.max_clients)]
    try:
        assert wait_until(lambda: server.client_count == server.max_clients)
        assert refused(server)
        clients[0].sendall(b"ECHO? served\n")
        assert recv_line(clients[0]) == b"served\n"
    finally:
        for c in clients:
            c.close()


def test_stop_closes_clients_and_releases_the_port(device):
    srv = ScpiSocketServer(device).start()
    port = srv.port
    client = raw_client(srv)
    client.sendall(b"ECHO? partial")  # a connection in the middle of a message
    start = time.monotonic()
    srv.stop()
    assert time.monotonic() - start < 2.0
    with client, _closed_by_peer(client):
        assert client.recv(10) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    again = ScpiSocketServer(device, port=port).start()  # the same port binds again
    try:
        assert again.port == port
    finally:
        again.stop()


def test_qcodes_visa_instrument_over_a_socket(server):
    from qcodes.instrument import VisaInstrument

    inst = VisaInstrument("echo_tcp", server.visa_address, visalib="@py", terminator="\n",
                          timeout=1.0)
    try:
        assert inst.get_idn()["model"] == "ECHO"
        assert inst.ask("ECHO? 4.2") == "4.2"
    finally:
        inst.close()


def test_messages_split_anywhere_and_several_per_packet(server):
    sock = raw_client(server)
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in b"ECHO? one byte at a time\n":
            sock.send(bytes([byte]))
        assert recv_line(sock) == b"one byte at a time\n"
        sock.sendall(b"ECHO? a\nECHO? b\r\n*IDN?\n")
        replies = b""
        while replies.count(b"\n") < 3:
            replies += sock.recv(4096)
        assert replies == b"a\nb\nNWLAB,ECHO,0,1.0\n"


# -- a connection's state dies with it -----------------------------------------------------------

class LateEcho(EchoInstrument):
    """`LATE? <text>` answers <text> only `delay_s` after it was asked, like a scope's *OPC?
    that waits for its acquisition: the reply is still inside the instrument when asked for."""

    def __init__(self, delay_s: float = 0.2) -> None:
        super().__init__()
        self.delay_s = delay_s
        self._late: list[tuple[float, bytes]] = []

    def write_bytes(self, data: bytes) -> None:
        if data.upper().startswith(b"LATE? "):
            self._late.append((time.monotonic() + self.delay_s, data[6:].rstrip(b"\r\n") + b"\n"))
            return
        super().write_bytes(data)

    def read_message(self) -> bytes | None:
        if self._late and self._late[0][0] <= time.monotonic():
            return self._late.pop(0)[1]
        return super().read_message()

    def device_clear(self) -> None:
        super().device_clear()
        self._late.clear()


def lines_within(sock: socket.socket, window_s: float) -> bytes:
    """Everything the server sends in `window_s` (a stale reply would show up here)."""
    sock.settimeout(0.05)
    data = bytearray()
    deadline = time.monotonic() + window_s
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    return bytes(data)


@pytest.mark.parametrize("query", [b"BLOCK? 200000\n", b"ECHO? stale\n", b"LATE? stale\n"])
def test_a_reply_queued_for_a_closed_connection_never_reaches_the_next(query):
    device = LateEcho(delay_s=0.2)
    with ScpiSocketServer(device) as server:
        for _ in range(2):
            gone = raw_client(server)
            gone.sendall(query)
            gone.close()                                    # without reading anything
            assert wait_until(lambda: server.client_count == 0)
            time.sleep(device.delay_s)                      # a late reply would be due by now
            with raw_client(server) as fresh:
                fresh.sendall(b"*IDN?\n")
                assert lines_within(fresh, 0.3) == b"NWLAB,ECHO,0,1.0\n"


def test_a_fresh_connection_starts_with_an_empty_parser(server, device):
    left_behind = [
        b"ECHO? half a line",                               # no LF
        b"DATA #6100000" + b"x" * 10 + b"\n" + b"y" * 5,     # half a block, an LF inside it
        b"*IDN? #9999999",                                  # half a block header
    ]
    for leftover in left_behind:
        gone = raw_client(server)
        gone.sendall(leftover)
        time.sleep(0.05)                                    # it reaches the server first
        gone.close()
        assert wait_until(lambda: server.client_count == 0)
        with raw_client(server) as fresh:
            fresh.sendall(b"*IDN?\nDATA:LEN?\n")
            assert lines_within(fresh, 0.3) == b"NWLAB,ECHO,0,1.0\n0\n", leftover
    assert device.executed == 2 * len(left_behind)         # none of the leftovers ran


def test_a_block_header_over_the_limit_closes_the_connection_at_once(server, device):
    bad = raw_client(server)
    with bad, _closed_by_peer(bad):
        started = time.monotonic()
        bad.sendall(b"*IDN? #9999999999\n")
        assert bad.recv(10) == b""                          # closed, nothing answered
        assert time.monotonic() - started < 1.0
    assert device.executed == 0
    with raw_client(server) as fresh:
        fresh.sendall(b"*IDN?\n")
        assert recv_line(fresh) == b"NWLAB,ECHO,0,1.0\n"


# -- idle connections ----------------------------------------------------------------------------

def refused(server: ScpiSocketServer) -> bool:
    return refused_at(server.host, server.port)


def test_a_message_left_unfinished_times_out_a_finished_one_does_not(device):
    with ScpiSocketServer(device, idle_timeout_s=0.3, max_clients=4) as server:
        quiet = raw_client(server)                          # a session that has nothing to say
        quiet.sendall(b"ECHO? hello\n")
        assert recv_line(quiet) == b"hello\n"
        half = raw_client(server)
        started = time.monotonic()
        half.sendall(b"ECHO? never finish")
        with half:
            assert closed_within(half, 3.0)
        assert 0.3 <= time.monotonic() - started < 2.0
        with quiet:                                         # idle but whole: still served
            quiet.sendall(b"ECHO? still here\n")
            assert recv_line(quiet) == b"still here\n"


def test_a_full_port_gives_the_slot_of_the_idlest_connection_to_a_newcomer(device):
    idle_timeout_s = 1.0
    with ScpiSocketServer(device, idle_timeout_s=idle_timeout_s, max_clients=3) as server:
        started = time.monotonic()
        held = [raw_client(server) for _ in range(3)]
        assert wait_until(lambda: server.client_count == 3)
        assert refused(server)                              # nobody idle long enough yet
        assert time.monotonic() - started < idle_timeout_s, "too slow to test the early refusal"
        for sock in held[1:]:                               # these two keep talking
            sock.sendall(b"ECHO? busy\n")
            assert recv_line(sock) == b"busy\n"
        time.sleep(idle_timeout_s)                          # held[0] now idle past the timeout
        with raw_client(server) as newcomer:
            newcomer.sendall(b"*IDN?\n")
            assert recv_line(newcomer) == b"NWLAB,ECHO,0,1.0\n"
            assert closed_within(held[0], 2.0)              # the idlest gave up its slot
            for sock in held[1:]:
                sock.sendall(b"ECHO? kept\n")
                assert recv_line(sock) == b"kept\n"
        for sock in held:
            sock.close()


# -- instruments take turns ----------------------------------------------------------------------

def test_the_bench_gate_lets_a_waiting_thread_in_between_units():
    gate = BenchGate()
    order: list[str] = []

    def other_instrument() -> None:
        with gate:
            order.append("other")

    with gate:
        gate.let_others_in()                                # nobody waits: carries on
        order.append("unit 1")
        other = threading.Thread(target=other_instrument)
        other.start()
        assert wait_until(lambda: gate.waiting == 1)
        gate.let_others_in()                                # the waiting one runs here
        order.append("unit 2")
    other.join(5)
    assert order == ["unit 1", "other", "unit 2"]
