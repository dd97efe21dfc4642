"""Raw SCPI socket server for one emulated instrument (the LAN port 5025 protocol).

Each connection frames its own input (`MessageFramer`, LF outside blocks and strings ends a
message) and the instrument's `write_bytes` only ever gets whole program messages, one per call,
so two clients of one instrument never interleave inside a message and nothing a client left
unfinished — a half line, a half-received `#<d><len>` block header — outlives its connection.
Messages reach the instrument through its `InstrumentAccess` (shared with its VXI-11 and HiSLIP
servers): every reply goes back to the client whose message produced it, and when that client
goes, the instrument gets a device clear. There is no END on a socket: clients find the end of a reply by its
terminator (pyvisa `read_termination`) or, for binary blocks, by the block length.

Limits, per connection:

* input: `max_message_bytes` (8 MiB) for a message in progress, counting the length a block
  header declares, so `#9999999999` closes the connection at once instead of buffering toward it;
* idle: a connection that stopped sending mid-message for `idle_timeout_s` (10 s) is closed —
  a controller writes a message in one go, so a half line left that long is a client that went
  away. A connection with nothing unfinished may stay open and silent for hours (QCoDeS and
  pyvisa sessions do), but once the port is full, a newcomer takes the slot of the connection
  idle longest, if that one has been idle `idle_timeout_s`. So a port is locked out at most
  `idle_timeout_s` by clients that connect and do nothing. A newcomer that finds the port full
  otherwise is reset at once (RST), so its client reports a refused connection, not a timeout;
* output: a client that accepts no reply bytes for `send_stall_s` (30 s) is closed.

Fairness: all instruments of a bench share its lock. A message runs under its instrument's own
lock (one message at a time per instrument, as on the real one), and takes the bench lock
through the bench's `BenchGate`, which between the message's units lets any waiting instrument
run first, so a 5000-unit message delays the other instruments by one command, not by itself.
Between units the server also looks (every tick) whether the message's client is still there;
if it has gone, the rest of the message is dropped, so a client that sends a long message and
leaves does not keep its instrument busy for nobody.

Threads, not asyncio: every device call is a blocking call into the bench (a physics solve
can take milliseconds), serialised by the bench's `threading.RLock` that the in-process
backend shares; under asyncio each call would go to an executor anyway. One thread per
connection (capped per port) keeps a silent, half-open or slow client from delaying any
other client, and a fault's reply delay is a plain wait in that client's own thread.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sim_backend.faults.plan import NO_FAULTS, FaultPlan
from sim_backend.scpi.device import MessageDevice
from sim_backend.scpi.framing import InputOverrun, MessageFramer
from sim_backend.transport.bench_gate import BenchGate
from sim_backend.transport.connection_server import (
    DEFAULT_IDLE_TIMEOUT_S, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_SEND_STALL_S, Connection,
    ConnectionServer, ProtocolServer)
from sim_backend.transport.instrument_access import ClientGone, InstrumentAccess
from sim_backend.transport.socket_ops import RECV_BYTES, ack_now, peer_gone, send_all, shutdown

log = logging.getLogger(__name__)

DEFAULT_MAX_CLIENTS = 8


@dataclass
class _Client:
    """One connection and everything its client has sent that is not executed yet."""

    connection: Connection
    framer: MessageFramer
    pending: bytearray = field(default_factory=bytearray)  # after the last LF received

    @property
    def mid_message(self) -> bool:
        return bool(self.pending) or self.framer.needed_bytes > 0


class ScpiSocketServer(ProtocolServer):
    """Serve `device` on `host:port` (port 0 picks a free one) until `stop()`.

    `faults()` is asked for the instrument's fault plan before every reply, so a plan the
    bench swaps at run time applies to the next reply. `lock` is the bench's lock, or the
    `BenchGate` in front of it that every server of the bench shares. `access`, when given,
    replaces all three: the instrument's access shared with its other servers (BenchServer).
    """

    def __init__(
        self,
        device: MessageDevice,
        *,
        lock: AbstractContextManager[Any] | BenchGate | None = None,
        faults: Callable[[], FaultPlan] = lambda: NO_FAULTS,
        host: str = "127.0.0.1",
        port: int = 0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        send_stall_s: float = DEFAULT_SEND_STALL_S,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        access: InstrumentAccess | None = None,
    ) -> None:
        self._access = access if access is not None else InstrumentAccess(
            device, lock if isinstance(lock, BenchGate) else BenchGate(lock), faults)
        self.max_message_bytes = max_message_bytes
        self.send_stall_s = send_stall_s
        self.idle_timeout_s = idle_timeout_s
        self.connections = ConnectionServer(
            self._serve, host=host, port=port, max_connections=max_clients, name="scpi",
            evict_idle_s=idle_timeout_s)
        self._stopping = self.connections.stopping

    @property
    def visa_address(self) -> str:
        return f"TCPIP0::{self.host}::{self.port}::SOCKET"

    @property
    def max_clients(self) -> int:
        return self.connections.max_connections

    @property
    def client_count(self) -> int:
        return self.connections.connection_count

    # -- connections -------------------------------------------------------------------------

    def _new_framer(self) -> MessageFramer:
        # Never raises in practice: input is checked against max_message_bytes after every
        # chunk, so the framer holds at most that plus one chunk plus what it was just fed.
        return MessageFramer(limit_bytes=2 * self.max_message_bytes + 2 * RECV_BYTES)

    def _serve(self, connection: Connection) -> None:
        try:
            self._exchange(_Client(connection, self._new_framer()))
        finally:
            shutdown(connection.sock)  # the client sees the close before the instrument is cleared
            # The connection counts as gone only once this returns, after the instrument has
            # dropped what it held for it: a newcomer admitted before would meet that (a held
            # *OPC? answered with -410).
            self._access.forget(connection.sock)

    def _exchange(self, client: _Client) -> None:
        conn = client.connection.sock
        while not self._stopping.is_set():
            try:
                chunk = conn.recv(RECV_BYTES)
            except TimeoutError:
                if client.mid_message and (
                        time.monotonic() - client.connection.last_active_s >= self.idle_timeout_s):
                    log.warning("port %d: a message left unfinished %.0f s, closing that "
                                "connection", self.port, self.idle_timeout_s)
                    return
                # Idle: hand over replies the instrument queued late to its last writer.
                if self._access.is_last_writer(conn) and not self._send_replies(client, b""):
                    return
                continue
            if not chunk:
                return  # client closed its end
            client.connection.last_active_s = time.monotonic()
            ack_now(conn)
            if not self._take(client, chunk):
                return

    def _take(self, client: _Client, chunk: bytes) -> bool:
        """Frame `chunk`, run the messages it completes; False: close the client."""
        pending = client.pending
        pending += chunk
        end = pending.rfind(b"\n") + 1  # an LF last in what is fed may end a block or string
        if end:
            try:
                with memoryview(pending) as view:  # no copy: a message may be megabytes
                    messages = client.framer.feed(view[:end])
            except InputOverrun:
                messages = None
            del pending[:end]
            if messages is None:
                return self._too_long()
            for message in messages:
                if not self._send_replies(client, message + b"\n"):
                    return False
            client.connection.last_active_s = time.monotonic()
        if len(pending) + client.framer.needed_bytes > self.max_message_bytes:
            return self._too_long()
        return True

    def _too_long(self) -> bool:
        log.warning("port %d: message over %d bytes, closing that connection",
                    self.port, self.max_message_bytes)
        return False

    def _send_replies(self, client: _Client, data: bytes) -> bool:
        """Write one whole message (or nothing) to the instrument, send back what it queued;
        False: close the client."""
        conn = client.connection.sock
        try:
            replies = self._access.exchange(conn, data, lambda: self._client_gone(client))
        except ClientGone:
            log.info("port %d: client left during a message, the rest of it is dropped", self.port)
            return False
        for reply in replies:
            action = self._access.fault_action(reply)
            if action.kind == "drop":
                log.info("port %d: fault plan drops the connection", self.port)
                return False
            if action.kind == "delay" and self._stopping.wait(action.delay_s):
                return False
            out = action.apply(reply)
            if out and not self._send_all(conn, out):
                return False
        return True

    def _client_gone(self, client: _Client) -> bool:
        """Asked every tick while the client's message runs: busy is not idle."""
        client.connection.last_active_s = time.monotonic()
        return self._stopping.is_set() or peer_gone(client.connection.sock)

    def _send_all(self, conn: socket.socket, data: bytes) -> bool:
        if send_all(conn, data, self._stopping, self.send_stall_s):
            return True
        if not self._stopping.is_set():
            log.warning("port %d: client reads nothing, closing it", self.port)
        return False

