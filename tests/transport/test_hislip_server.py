"""The HiSLIP server, driven by stock pyvisa-py clients (`@py`) and, for what a stock client
cannot send, by raw HiSLIP messages on 127.0.0.1 (pyvisa-py's own message packing)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest
import pyvisa
from lan_bench import (  # noqa: F401  (the rm and echo fixtures)
    StockClientsOverLan, check_freed_slot_is_served, check_idn_of_every_instrument,
    check_others_still_served, check_refused_at_once, echo_instrument, echo_instruments, held_sessions,
    module_resource_manager, served_station)
from pyvisa.constants import ResourceAttribute
from pyvisa_py.protocols.hislip import FATALERRORCODE, HEADER_FORMAT, HEADER_SIZE, MESSAGETYPE_STR
from stand_in import block_payload

from sim_backend.transport.hislip_server import HislipServer, message

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def station():
    with served_station(hislip=True) as server:
        yield server


@pytest.fixture
def echo_server(echo) -> Iterator[HislipServer]:
    with HislipServer(echo_instruments(echo, ("hislip0", "hislip1")), max_sessions=2) as server:
        yield server


def receive(sock: socket.socket) -> tuple[str, int, int, bytes]:
    """(type, control code, message parameter, payload) of the next message."""
    header = b""
    while len(header) < HEADER_SIZE:
        chunk = sock.recv(HEADER_SIZE - len(header))
        assert chunk, "connection closed"
        header += chunk
    _, kind, control, parameter, size = struct.unpack(HEADER_FORMAT, header)
    payload = b""
    while len(payload) < size:
        payload += sock.recv(size - len(payload))
    return MESSAGETYPE_STR[kind], control, parameter, payload


def initialize(server: HislipServer, sub_address: bytes) -> tuple[socket.socket, tuple]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=3)
    sock.sendall(struct.pack("!2sBBBB2sQ", b"HS", 0, 0, 1, 0, b"xx", len(sub_address)) + sub_address)
    return sock, receive(sock)


# -- the emulated station through stock clients -----------------------------------------------

def test_every_emulated_instrument_answers_without_read_termination(rm, station):
    port = station.hislip.port
    addresses = [served.hislip_address for served in station.instruments]
    assert addresses == [f"TCPIP0::127.0.0.1::hislip{i},{port}::INSTR" for i in range(len(addresses))]
    check_idn_of_every_instrument(rm, station, "hislip")


class TestStockClientsOverHislip(StockClientsOverLan):
    transport = "hislip"


# -- protocol behaviour, with stand-in instruments --------------------------------------------

def test_messages_split_at_the_clients_maximum_size(rm, echo_server):
    res = rm.open_resource(echo_server.visa_address("hislip0"), timeout=2000)
    other = rm.open_resource(echo_server.visa_address("HISLIP1"), timeout=2000)  # names: any case
    try:
        res.set_visa_attribute(ResourceAttribute.tcpip_hislip_max_message_kb, 1)  # AsyncMaxMsgSize
        text = "x" * 5000        # over 1 KiB both ways: Data, Data, …, DataEnd
        assert res.query(f"ECHO? {text}") == text + "\n"
        assert res.query_binary_values("BLOCK? 40000", datatype="B", container=bytes) == (
            block_payload(40000))
        assert other.query("*IDN?") == "NWLAB,OTHER,0,1\n"
        assert res.read_stb() == 0                    # AsyncStatusQuery
    finally:
        res.close()
        other.close()


def test_trigger_message_reaches_the_instrument(echo_server, echo):
    sync, (kind, _, parameter, _) = initialize(echo_server, b"hislip0")
    try:
        assert kind == "InitializeResponse"
        sync.sendall(message("Trigger", 0, 0xFFFF_FF00))
        sync.sendall(message("DataEnd", 0, 0xFFFF_FF02, b"TRG:COUNT?\n"))
        assert receive(sync) == ("DataEnd", 0, 0xFFFF_FF02, b"1\n")
        assert echo.triggers == 1
    finally:
        sync.close()


def test_device_clear_drops_pending_input(echo_server, echo):
    """AsyncDeviceClear / DeviceClearComplete: a half-sent message is gone afterwards."""
    sync, (_, _, parameter, _) = initialize(echo_server, b"hislip0")
    asynchronous = socket.create_connection(("127.0.0.1", echo_server.port), timeout=3)
    try:
        asynchronous.sendall(message("AsyncInitialize", 0, parameter & 0xFFFF))
        assert receive(asynchronous)[0] == "AsyncInitializeResponse"
        sync.sendall(message("Data", 0, 0xFFFF_FF00, b"ECHO? half"))
        asynchronous.sendall(message("AsyncDeviceClear"))
        assert receive(asynchronous)[0] == "AsyncDeviceClearAcknowledge"
        sync.sendall(message("DeviceClearComplete"))
        assert receive(sync)[0] == "DeviceClearAcknowledge"
        sync.sendall(message("DataEnd", 0, 0xFFFF_FF00, b"ECHO? fresh\n"))
        assert receive(sync) == ("DataEnd", 0, 0xFFFF_FF00, b"fresh\n")
        assert echo.clears == 1
    finally:
        sync.close()
        asynchronous.close()


def test_unknown_sub_address_is_refused(rm, echo_server):
    sock, (kind, control, _, payload) = initialize(echo_server, b"hislip9")
    sock.close()
    assert (kind, control) == ("FatalError", FATALERRORCODE["Invalid Initialization sequence"])
    assert b"hislip9" in payload and b"hislip0, hislip1" in payload
    with pytest.raises(pyvisa.VisaIOError):
        rm.open_resource(echo_server.visa_address("hislip9"), timeout=2000)
    assert echo_server.session_count == 0


def test_client_past_the_limit_is_refused_not_dropped(rm, echo_server):
    address = echo_server.visa_address("hislip0")
    with held_sessions(rm, address, 2) as held:
        sock, (kind, control, _, _) = initialize(echo_server, b"hislip0")
        sock.close()
        assert (kind, control) == ("FatalError", FATALERRORCODE[
            "Server refused connection due to maximum number of clients exceeded"])
        check_refused_at_once(rm, held, address, pyvisa.VisaIOError)
        check_freed_slot_is_served(rm, held, address, lambda: echo_server.session_count <= 1)


def test_garbage_gets_a_fatal_error_and_others_are_served(rm, echo_server):
    res = rm.open_resource(echo_server.visa_address("hislip0"), timeout=2000)
    try:
        with socket.create_connection(("127.0.0.1", echo_server.port), timeout=3) as bad:
            bad.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            kind, control, _, _ = receive(bad)
            assert (kind, control) == ("FatalError", FATALERRORCODE["Poorly formed message header"])
            assert bad.recv(10) == b""                                # then closed
        sync, (_, _, _, _) = initialize(echo_server, b"hislip1")
        with sync:
            sync.sendall(message("AsyncLockInfo"))                # an async message on sync
            assert receive(sync)[0] == "Error"
            sync.sendall(struct.pack(HEADER_FORMAT, b"HS", 7, 0, 0, 1 << 40))  # a 1 TiB DataEnd
            assert receive(sync)[0] == "FatalError"
            assert sync.recv(10) == b""
        check_others_still_served(rm, res, echo_server.visa_address("hislip1"), "*IDN?",
                                  "NWLAB,OTHER,0,1\n")
    finally:
        res.close()
