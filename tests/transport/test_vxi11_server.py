"""The VXI-11 server, driven by stock pyvisa-py clients (`@py`) and, for what a stock client
cannot send, by raw ONC RPC records on 127.0.0.1.

Stock VXI-11 addresses (`TCPIP0::127.0.0.1::inst0::INSTR`) need the port mapper on port 111:
those tests skip, saying why, where this process cannot bind it. The others name the core port
(`TCPIP0::127.0.0.1,PORT::inst0::INSTR`) and run anywhere.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvisa
from lan_bench import (  # noqa: F401  (the rm and echo fixtures)
    StockClientsOverLan, check_freed_slot_is_served, check_idn_of_every_instrument,
    check_others_still_served, check_refused_at_once, echo_instrument, echo_instruments,
    held_sessions, module_resource_manager, require_portmapper, served_station)
from pyvisa_py.protocols import rpc, vxi11
from pyvisa_py.tcpip import Vxi11CoreClient

from sim_backend.transport.vxi11_server import Vxi11Server
from tests.transport.socket_checks import refused_at

pytestmark = pytest.mark.timeout(60)

HERE = Path(__file__).parent


@pytest.fixture
def station():
    with served_station(vxi11=True) as server:
        require_portmapper(server)
        yield server


@pytest.fixture
def echo_server(echo) -> Iterator[Vxi11Server]:
    """Two stand-in instruments, two links each, no port mapper: addresses name the core port."""
    with Vxi11Server(echo_instruments(echo, ("inst0", "inst1")), portmapper_port=None,
                     max_links=2) as server:
        yield server


def core_client(server: Vxi11Server) -> Vxi11CoreClient:
    return Vxi11CoreClient("127.0.0.1", server.core.port, 2000)


# -- the emulated station through stock clients -----------------------------------------------

def test_stock_addresses_reach_every_emulated_instrument(rm, station):
    addresses = [served.vxi11_address for served in station.instruments]
    assert addresses == [f"TCPIP0::127.0.0.1::inst{i}::INSTR" for i in range(len(addresses))]
    check_idn_of_every_instrument(rm, station, "vxi11")


class TestStockClientsOverVxi11(StockClientsOverLan):
    transport = "vxi11"


def test_port_mapper_names_the_core_port(station):
    mapper = rpc.TCPPortMapperClient("127.0.0.1", 2000)
    try:
        core = (vxi11.DEVICE_CORE_PROG, vxi11.DEVICE_CORE_VERS, rpc.IPPROTO_TCP, 0)
        assert mapper.get_port(core) == station.vxi11.core.port
        assert mapper.get_port((vxi11.DEVICE_ASYNC_PROG, 1, rpc.IPPROTO_TCP, 0)) == 0
        assert not mapper.set((123456, 1, rpc.IPPROTO_TCP, 999))  # the table is the server's
    finally:
        mapper.close()


def test_serve_cli_prints_vxi11_and_hislip_addresses(rm):
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "serve_stand_in.py"), "--vxi11", "--hislip"],
        cwd=HERE.parents[1], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"})
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().split() for _ in range(6)]
        assert all(len(line) == 3 for line in lines), proc.stderr.read() if proc.poll() else lines
        by_transport = [lines[0:2], lines[2:4], lines[4:6]]
        assert all(address.endswith("::SOCKET") for _, _, address in by_transport[0])
        assert [address.split("::")[2] for _, _, address in by_transport[1]] == ["inst0", "inst1"]
        assert [address.split("::")[2].split(",")[0] for _, _, address in by_transport[2]] == [
            "hislip0", "hislip1"]
        for key, _, address in lines[2:]:
            idn = "PULSER" if key == "pulse_generator" else "SCOPE"
            res = rm.open_resource(address, timeout=3000)
            assert res.query("*IDN?") == f"NWLAB,{idn},0,1\n"
            res.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


# -- protocol behaviour, with stand-in instruments --------------------------------------------

def test_core_port_address_without_port_mapper(rm, echo_server):
    address = echo_server.visa_address("inst0")
    assert address == f"TCPIP0::127.0.0.1,{echo_server.core.port}::inst0::INSTR"
    res = rm.open_resource(address, timeout=2000)
    other = rm.open_resource(echo_server.visa_address("INST1"), timeout=2000)  # names: any case
    try:
        assert res.query("*IDN?") == "NWLAB,ECHO,0,1.0\n"
        assert other.query("*IDN?") == "NWLAB,OTHER,0,1\n"
        data = res.query_binary_values("BLOCK? 40000", datatype="B", container=bytes)
        assert len(data) == 40000
        res.assert_trigger()                       # device_trigger: *TRG on the instrument
        assert res.query("TRG:COUNT?") == "1\n"
        assert res.read_stb() == 0
    finally:
        res.close()
        other.close()


def test_reads_end_at_request_size_and_at_the_end_of_a_reply(echo_server):
    client = core_client(echo_server)
    try:
        error, link, _, _ = client.create_link(1, False, 0, "inst0")
        assert error == 0
        client.device_write(link, 1000, 0, vxi11.OP_FLAG_END, b"ECHO? abcdef")  # END, no LF
        assert client.device_read(link, 4, 1000, 0, 0, 0) == (0, vxi11.RX_REQCNT, b"abcd")
        assert client.device_read(link, 100, 1000, 0, 0, 0) == (0, vxi11.RX_END, b"ef\n")
        error, reason, data = client.device_read(link, 100, 200, 0, 0, 0)   # nothing queued
        assert (error, data) == (vxi11.ErrorCodes.io_timeout, b"")
        # A message written in pieces runs once the piece with END arrives.
        assert client.device_write(link, 1000, 0, 0, b"ECHO? in ") == (0, 9)
        client.device_write(link, 1000, 0, vxi11.OP_FLAG_END, b"pieces\n")
        assert client.device_read(link, 100, 1000, 0, vxi11.OP_FLAG_TERMCHAR_SET, ord(" ")) == (
            0, vxi11.RX_CHR, b"in ")
        assert client.device_read(link, 100, 1000, 0, 0, 0) == (0, vxi11.RX_END, b"pieces\n")
        assert client.destroy_link(link) == 0
        assert client.device_read(link, 100, 200, 0, 0, 0)[0] == vxi11.ErrorCodes.invalid_link_identifier
    finally:
        client.close()


def test_device_clear_drops_an_unread_reply(rm, echo_server, echo):
    res = rm.open_resource(echo_server.visa_address("inst0"), timeout=2000)
    try:
        res.write("ECHO? stale")
        res.clear()
        assert res.query("ECHO? fresh") == "fresh\n"
        assert echo.clears >= 1
    finally:
        res.close()


def test_unknown_device_name_is_refused(rm, echo_server):
    client = core_client(echo_server)
    try:
        error, link, _, _ = client.create_link(1, False, 0, "inst9")
        assert error == vxi11.ErrorCodes.device_not_accessible and link == 0
    finally:
        client.close()
    with pytest.raises(Exception, match="error creating link: 3"):
        rm.open_resource(echo_server.visa_address("inst9"), timeout=2000)
    assert echo_server.link_count == 0


def test_client_past_the_limit_is_refused_not_dropped(rm, echo_server):
    address = echo_server.visa_address("inst0")
    with held_sessions(rm, address, 2) as held:
        check_refused_at_once(rm, held, address, Exception,
                              match="error creating link: 9")   # out of resources
        # Another instrument of the bench still has its own links free.
        other = rm.open_resource(echo_server.visa_address("inst1"), timeout=2000)
        other.close()
        check_freed_slot_is_served(rm, held, address)


def test_connections_past_every_link_are_reset(echo_server):
    """Connections that never create a link: past the core port's cap they are reset at once."""
    cap = echo_server.core.connections.max_connections
    held = [socket.create_connection(("127.0.0.1", echo_server.core.port), timeout=2)
            for _ in range(cap)]
    try:
        deadline = time.monotonic() + 5
        while echo_server.core.connections.connection_count < cap and time.monotonic() < deadline:
            time.sleep(0.01)
        assert refused_at("127.0.0.1", echo_server.core.port)
    finally:
        for sock in held:
            sock.close()


def test_locks_hold_off_other_links(rm, echo_server):
    first = rm.open_resource(echo_server.visa_address("inst0"), timeout=2000)
    second = rm.open_resource(echo_server.visa_address("inst0"), timeout=2000)
    try:
        first.lock_excl()
        with pytest.raises(pyvisa.VisaIOError):
            second.query("*IDN?")                     # error 11: locked by another link
        assert first.query("*IDN?") == "NWLAB,ECHO,0,1.0\n"
        first.unlock()
        assert second.query("*IDN?") == "NWLAB,ECHO,0,1.0\n"
    finally:
        first.close()
        second.close()


def _record(body: bytes) -> bytes:
    return struct.pack(">I", 0x8000_0000 | len(body)) + body


def _reply_status(sock: socket.socket) -> tuple[int, int, int]:
    """(xid, reply_stat, accept_stat or reject_stat) of the next reply record."""
    header = sock.recv(4)
    size = struct.unpack(">I", header)[0] & 0x7FFF_FFFF
    body = b""
    while len(body) < size:
        body += sock.recv(size - len(body))
    xid, _, reply_stat = struct.unpack_from(">III", body)
    if reply_stat == 0:                          # accepted: verifier, then accept_stat
        return xid, 0, struct.unpack_from(">I", body, 20)[0]
    return xid, 1, struct.unpack_from(">I", body, 12)[0]


def test_garbage_records_get_protocol_errors_and_others_are_served(rm, echo_server):
    res = rm.open_resource(echo_server.visa_address("inst0"), timeout=2000)
    try:
        with socket.create_connection(("127.0.0.1", echo_server.core.port), timeout=3) as bad:
            call = struct.pack(">IIIIII", 77, 0, 2, vxi11.DEVICE_CORE_PROG, 1,
                               vxi11.CREATE_LINK) + bytes(16)
            bad.sendall(_record(call + b"\xff\xff"))                  # arguments cut short
            assert _reply_status(bad) == (77, 0, rpc.AcceptStatus.garbage_args)
            bad.sendall(_record(struct.pack(">IIII", 78, 0, 3, 0)))   # RPC version 3
            assert _reply_status(bad) == (78, 1, rpc.RejectStatus.rpc_mismatch)
            bad.sendall(_record(call.replace(struct.pack(">I", vxi11.CREATE_LINK), struct.pack(">I", 99))))
            assert _reply_status(bad)[2] == rpc.AcceptStatus.procedure_unavailable
            bad.sendall(_record(struct.pack(">IIIIII", 79, 0, 2, 424242, 1, 0) + bytes(16)))
            assert _reply_status(bad) == (79, 0, rpc.AcceptStatus.program_unavailable)
            assert res.query("*IDN?") == "NWLAB,ECHO,0,1.0\n"
            bad.sendall(struct.pack(">I", 0xFFFF_FFFF) + os.urandom(64))   # a 2 GiB fragment
            bad.settimeout(3)
            assert bad.recv(10) == b""                                    # closed, not buffered
        with socket.create_connection(("127.0.0.1", echo_server.core.port), timeout=3) as noise:
            noise.sendall(os.urandom(4096))
        check_others_still_served(rm, res, echo_server.visa_address("inst0"),
                                  "ECHO? still serving", "still serving\n")
    finally:
        res.close()
