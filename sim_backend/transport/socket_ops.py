"""Socket chores every LAN server of the emulator shares: listening, refusing, closing, noticing
a gone peer, acknowledging promptly and sending under a stall limit."""

from __future__ import annotations

import select
import socket
import struct
import threading

#: How often blocked threads look at the stop flag; bounds shutdown latency.
TICK_S = 0.05
#: The most one recv takes: a multi-megabyte message arrives in few calls.
RECV_BYTES = 65536


def listen(address: tuple[str, int], backlog: int) -> socket.socket:
    """A TCP socket listening on `address` (port 0: any free one), its accept polled every tick."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Rebinding a just-released port must work (a restart on the same port).
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
        listener.listen(backlog)
    except OSError:
        listener.close()
        raise
    listener.settimeout(TICK_S)
    return listener


def reset(conn: socket.socket) -> None:
    """Close with a reset (RST), not an orderly end: the client's next read or write fails at
    once as a refused connection, where an orderly close reads as a reply that never comes."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    conn.close()


def shutdown(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or never connected


def peer_gone(conn: socket.socket) -> bool:
    """True when the peer has closed (EOF) or reset the connection; never blocks."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except ValueError:  # a descriptor select() cannot watch: cannot tell, keep going
        return False
    except OSError:
        return True


def ack_now(conn: socket.socket) -> None:
    """Acknowledge at once instead of delaying the ACK (Linux re-arms delayed ACKs, so after
    every recv). pyvisa-py leaves Nagle on: a client write that follows a write waits for the
    ACK of the first, which a delayed ACK holds back ~40 ms per command."""
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        except OSError:
            pass


def send_all(conn: socket.socket, data: bytes, stop: threading.Event, stall_s: float) -> bool:
    """Send `data` on a socket with a `TICK_S` timeout; False when the server stops or the
    client accepts no bytes for `stall_s` (treated as gone)."""
    view = memoryview(data)
    stalled_s = 0.0
    while view and not stop.is_set():
        try:
            sent = conn.send(view)
        except TimeoutError:
            stalled_s += TICK_S
            if stalled_s >= stall_s:
                return False
            continue
        view = view[sent:]
        stalled_s = 0.0
    return not view
