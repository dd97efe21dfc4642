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
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sim_backend.faults.plan import NO_FAULTS, FaultPlan
from sim_backend.scpi.device import MessageDevice
from sim_backend.scpi.framing import InputOverrun, MessageFramer
from sim_backend.transport.bench_gate import BenchGate
from sim_backend.transport.instrument_access import ClientGone, InstrumentAccess
from sim_backend.transport.socket_ops import TICK_S, ack_now, listen, peer_gone, reset, send_all, shutdown

log = logging.getLogger(__name__)

_RECV_BYTES = 65536
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_CLIENTS = 8
#: A client that accepts no reply bytes for this long is treated as gone.
DEFAULT_SEND_STALL_S = 30.0
#: A message left unfinished this long closes its connection; see the module docstring.
DEFAULT_IDLE_TIMEOUT_S = 10.0


@dataclass
class _Connection:
    """One client: its socket, its thread and everything it has sent that is not executed yet."""

    sock: socket.socket
    framer: MessageFramer
    thread: threading.Thread | None = None
    pending: bytearray = field(default_factory=bytearray)  # after the last LF received
    last_active_s: float = field(default_factory=time.monotonic)  # last input, or last reply done
    evicted: bool = False  # closed to make room; its thread is ending

    @property
    def mid_message(self) -> bool:
        return bool(self.pending) or self.framer.needed_bytes > 0


class ScpiSocketServer:
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
        self._requested = (host, port)
        self.max_message_bytes = max_message_bytes
        self.max_clients = max_clients
        self.send_stall_s = send_stall_s
        self.idle_timeout_s = idle_timeout_s
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._clients: dict[socket.socket, _Connection] = {}
        self._clients_guard = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ScpiSocketServer:
        if self._listener is not None:
            raise RuntimeError("server already started")
        self._listener = listen(self._requested, self.max_clients)
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"scpi-accept-{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the port and every connection; returns when all threads have ended."""
        self._stop.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout_s)
        with self._clients_guard:
            clients = list(self._clients.items())
        for conn, _ in clients:
            shutdown(conn)  # wakes a thread blocked in recv/send at once
        for _, client in clients:
            if client.thread is not None:
                client.thread.join(timeout_s)
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> ScpiSocketServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return self._bound()[0]

    @property
    def port(self) -> int:
        return self._bound()[1]

    @property
    def visa_address(self) -> str:
        return f"TCPIP0::{self.host}::{self.port}::SOCKET"

    @property
    def client_count(self) -> int:
        with self._clients_guard:
            return len(self._clients)

    def _bound(self) -> tuple[str, int]:
        if self._listener is None:
            raise RuntimeError("server not started")
        return self._listener.getsockname()[:2]

    # -- connections -------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with self._clients_guard:
                live = [c for c in self._clients.values() if not c.evicted]
                full = len(live) >= self.max_clients
                idlest = min(live, key=lambda c: c.last_active_s, default=None)
                if full and idlest is not None and (
                        time.monotonic() - idlest.last_active_s >= self.idle_timeout_s):
                    log.warning("port %d: full, closing the connection idle longest for %s",
                                self.port, peer)
                    idlest.evicted = True
                    shutdown(idlest.sock)  # its thread sees EOF and ends within a tick
                    full = False
                if not full:
                    conn.settimeout(TICK_S)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    client = _Connection(conn, self._new_framer())
                    client.thread = thread = threading.Thread(
                        target=self._serve, args=(client,), name=f"scpi-{self.port}-{peer[1]}",
                        daemon=True,
                    )
                    self._clients[conn] = client
            if full:
                log.warning("port %d: refusing %s, %d clients connected", self.port, peer,
                            self.max_clients)
                reset(conn)
            else:
                thread.start()

    def _new_framer(self) -> MessageFramer:
        # Never raises in practice: input is checked against max_message_bytes after every
        # chunk, so the framer holds at most that plus one chunk plus what it was just fed.
        return MessageFramer(limit_bytes=2 * self.max_message_bytes + 2 * _RECV_BYTES)

    def _serve(self, client: _Connection) -> None:
        conn = client.sock
        try:
            self._exchange(client)
        except OSError as exc:  # reset by peer, broken pipe: that client is gone
            log.debug("port %d: connection ended: %s", self.port, exc)
        finally:
            shutdown(conn)
            self._access.forget(conn)
            # Counted as gone only once the instrument has dropped what it held for it: a
            # newcomer admitted before would meet that (a held *OPC? answered with -410).
            with self._clients_guard:
                self._clients.pop(conn, None)
            conn.close()

    def _exchange(self, client: _Connection) -> None:
        conn = client.sock
        while not self._stop.is_set():
            try:
                chunk = conn.recv(_RECV_BYTES)
            except TimeoutError:
                if client.mid_message and (
                        time.monotonic() - client.last_active_s >= self.idle_timeout_s):
                    log.warning("port %d: a message left unfinished %.0f s, closing that "
                                "connection", self.port, self.idle_timeout_s)
                    return
                # Idle: hand over replies the instrument queued late to its last writer.
                if self._access.is_last_writer(conn) and not self._send_replies(client, b""):
                    return
                continue
            if not chunk:
                return  # client closed its end
            client.last_active_s = time.monotonic()
            ack_now(conn)
            if not self._take(client, chunk):
                return

    def _take(self, client: _Connection, chunk: bytes) -> bool:
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
            client.last_active_s = time.monotonic()
        if len(pending) + client.framer.needed_bytes > self.max_message_bytes:
            return self._too_long()
        return True

    def _too_long(self) -> bool:
        log.warning("port %d: message over %d bytes, closing that connection",
                    self.port, self.max_message_bytes)
        return False

    def _send_replies(self, client: _Connection, data: bytes) -> bool:
        """Write one whole message (or nothing) to the instrument, send back what it queued;
        False: close the client."""
        conn = client.sock
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
            if action.kind == "delay" and self._stop.wait(action.delay_s):
                return False
            out = action.apply(reply)
            if out and not self._send_all(conn, out):
                return False
        return True

    def _client_gone(self, client: _Connection) -> bool:
        """Asked every tick while the client's message runs: busy is not idle."""
        client.last_active_s = time.monotonic()
        return self._stop.is_set() or peer_gone(client.sock)

    def _send_all(self, conn: socket.socket, data: bytes) -> bool:
        if send_all(conn, data, self._stop, self.send_stall_s):
            return True
        if not self._stop.is_set():
            log.warning("port %d: client reads nothing, closing it", self.port)
        return False

