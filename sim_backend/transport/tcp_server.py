"""Raw SCPI socket server for one emulated instrument (the LAN port 5025 protocol).

Bytes a client sends go to the instrument's `write_bytes` in whole lines (up to the last LF
received), so two clients of one instrument never interleave inside a line; every reply the
instrument queues goes back to the client whose message produced it. There is no END on a
socket: clients find the end of a reply by its terminator (pyvisa `read_termination`) or, for
binary blocks, by the block length.

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
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sim_backend.scpi.device import MessageDevice
from sim_backend.transport.faults import NO_FAULTS, FaultPlan

log = logging.getLogger(__name__)

#: How often blocked threads look at the stop flag; bounds shutdown latency.
_TICK_S = 0.05
_RECV_BYTES = 65536
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_CLIENTS = 8
#: A client that accepts no reply bytes for this long is treated as gone.
DEFAULT_SEND_STALL_S = 30.0


class ScpiSocketServer:
    """Serve `device` on `host:port` (port 0 picks a free one) until `stop()`.

    `faults()` is asked for the instrument's fault plan before every reply, so a plan the
    bench swaps at run time applies to the next reply.
    """

    def __init__(
        self,
        device: MessageDevice,
        *,
        lock: AbstractContextManager[Any] | None = None,
        faults: Callable[[], FaultPlan] = lambda: NO_FAULTS,
        host: str = "127.0.0.1",
        port: int = 0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        send_stall_s: float = DEFAULT_SEND_STALL_S,
    ) -> None:
        self._device = device
        self._lock = lock if lock is not None else threading.RLock()
        self._faults = faults
        self._requested = (host, port)
        self.max_message_bytes = max_message_bytes
        self.max_clients = max_clients
        self.send_stall_s = send_stall_s
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._clients: dict[socket.socket, threading.Thread] = {}
        self._clients_guard = threading.Lock()
        self._last_writer: socket.socket | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ScpiSocketServer:
        if self._listener is not None:
            raise RuntimeError("server already started")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Rebinding a just-released port must work (restart on the same --base-port).
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(self._requested)
            listener.listen(self.max_clients)
        except OSError:
            listener.close()
            raise
        listener.settimeout(_TICK_S)
        self._listener = listener
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
            _shutdown(conn)  # wakes a thread blocked in recv/send at once
        for _, thread in clients:
            thread.join(timeout_s)
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
                full = len(self._clients) >= self.max_clients
                if not full:
                    conn.settimeout(_TICK_S)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    thread = threading.Thread(
                        target=self._serve, args=(conn,), name=f"scpi-{self.port}-{peer[1]}",
                        daemon=True,
                    )
                    self._clients[conn] = thread
            if full:
                log.warning("port %d: refusing %s, %d clients connected", self.port, peer,
                            self.max_clients)
                _shutdown(conn)
                conn.close()
            else:
                thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._exchange(conn)
        except OSError as exc:  # reset by peer, broken pipe: that client is gone
            log.debug("port %d: connection ended: %s", self.port, exc)
        finally:
            with self._clients_guard:
                self._clients.pop(conn, None)
                if self._last_writer is conn:
                    self._last_writer = None
            _shutdown(conn)
            conn.close()

    def _exchange(self, conn: socket.socket) -> None:
        pending = bytearray()  # bytes after the last LF: an unfinished message
        while not self._stop.is_set():
            try:
                chunk = conn.recv(_RECV_BYTES)
            except TimeoutError:
                # Idle: hand over replies the instrument queued late to its last writer.
                if self._last_writer is conn and not self._send_replies(conn, b""):
                    return
                continue
            if not chunk:
                return  # client closed its end
            _ack_now(conn)
            pending += chunk
            end = pending.rfind(b"\n") + 1
            if end:
                complete = bytes(pending[:end])
                del pending[:end]
                if not self._send_replies(conn, complete):
                    return
            if len(pending) > self.max_message_bytes:
                log.warning("port %d: message over %d bytes, closing that connection",
                            self.port, self.max_message_bytes)
                return

    def _send_replies(self, conn: socket.socket, data: bytes) -> bool:
        """Write `data` to the instrument, send back what it queued; False: close the client."""
        replies = []
        with self._lock:
            if data:
                self._device.write_bytes(data)
                self._last_writer = conn
            while (reply := self._device.read_message()) is not None:
                replies.append(reply)
        for reply in replies:
            action = self._faults().before_reply(reply)
            if action.kind == "drop":
                log.info("port %d: fault plan drops the connection", self.port)
                return False
            if action.kind == "delay" and self._stop.wait(action.delay_s):
                return False
            out = action.apply(reply)
            if out and not self._send_all(conn, out):
                return False
        return True

    def _send_all(self, conn: socket.socket, data: bytes) -> bool:
        view = memoryview(data)
        stalled_s = 0.0
        while view and not self._stop.is_set():
            try:
                sent = conn.send(view)
            except TimeoutError:
                stalled_s += _TICK_S
                if stalled_s >= self.send_stall_s:
                    log.warning("port %d: client reads nothing, closing it", self.port)
                    return False
                continue
            view = view[sent:]
            stalled_s = 0.0
        return not view


def _shutdown(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or never connected


def _ack_now(conn: socket.socket) -> None:
    """Acknowledge at once instead of delaying the ACK (Linux re-arms delayed ACKs, so after
    every recv). pyvisa-py leaves Nagle on: a client write that follows a write waits for the
    ACK of the first, which a delayed ACK holds back ~40 ms per command."""
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        except OSError:
            pass
