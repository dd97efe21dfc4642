"""How a test tells that the server closed or refused a raw TCP connection (shared by the
transport and reliability tests: `from tests.transport.socket_checks import ...`)."""

from __future__ import annotations

import socket


def closed_within(sock: socket.socket, within_s: float) -> bool:
    """True when the server ends the connection (EOF or reset) within `within_s`."""
    sock.settimeout(within_s)
    try:
        return sock.recv(10) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def refused_at(host: str, port: int, within_s: float = 2.0) -> bool:
    """A connection past the limit is reset: during connect when the reset comes first, else
    at the first read."""
    try:
        sock = socket.create_connection((host, port), timeout=within_s)
    except (ConnectionResetError, ConnectionRefusedError):
        return True
    with sock:
        return closed_within(sock, within_s)
