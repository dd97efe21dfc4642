"""A TCP port served with one thread per connection, and a cap: the newcomer past
`max_connections` is reset at once (RST), so its client reports a refused connection instead
of waiting on one that is never served; only while a slot is emptying (its client gone, the
server finishing with it) does the newcomer wait for it, up to ENDING_SLOT_WAIT_S. With `evict_idle_s`, a full port first gives the
newcomer the slot of the connection idle longest, if that one has been idle that long, so
clients that connect and do nothing lock the port out for no longer. The raw SCPI, VXI-11
(ONC RPC) and HiSLIP servers build on it; what a connection carries is the `serve` function's
business."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from sim_backend.transport.socket_ops import TICK_S, listen, peer_gone, reset, shutdown

log = logging.getLogger(__name__)

# Per-connection limits every LAN server applies (each server's docstring says how).
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
#: A client that accepts no reply bytes for this long is treated as gone.
DEFAULT_SEND_STALL_S = 30.0
#: A message left unfinished this long closes its connection.
DEFAULT_IDLE_TIMEOUT_S = 10.0
#: A connection whose client has left holds its slot until the instrument has dropped what it
#: held for it (`ConnectionServer`). A newcomer at a full port waits up to this long for such a
#: slot instead of being refused: a client that closes and reconnects at once (pyvisa's reopen)
#: would otherwise meet a full port that is emptying.
ENDING_SLOT_WAIT_S = 2.0


@dataclass(eq=False)
class Connection:
    sock: socket.socket
    peer: tuple[str, int]
    thread: threading.Thread | None = None
    last_active_s: float = field(default_factory=time.monotonic)  # last input, or last reply done
    evicted: bool = False  # closed to make room for a newcomer; its thread is ending

    def gone(self) -> bool:
        """The client closed or reset its end (never blocks)."""
        return peer_gone(self.sock)


class ConnectionServer:
    """Run `serve(connection)` in a thread per connection on `host:port` (0: any free port)
    until `stop()`. Sockets come with a `TICK_S` timeout, so `serve` can watch `stopping`.
    A connection counts (and holds its slot) until `serve` has returned."""

    def __init__(self, serve: Callable[[Connection], None], *, host: str = "127.0.0.1",
                 port: int = 0, max_connections: int = 16, name: str = "tcp",
                 evict_idle_s: float | None = None) -> None:
        self._serve = serve
        self.max_connections = max_connections
        self.name = name
        self.evict_idle_s = evict_idle_s
        self.stopping = threading.Event()
        self._requested = (host, port)
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: dict[socket.socket, Connection] = {}
        self._guard = threading.Lock()
        self._slot_freed = threading.Condition(self._guard)

    def start(self) -> ConnectionServer:
        if self._listener is not None:
            raise RuntimeError("server already started")
        self._listener = listen(self._requested, self.max_connections)
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"{self.name}-accept-{self.port}", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the port and every connection; returns when their threads have ended."""
        self.stopping.set()
        with self._guard:
            self._slot_freed.notify_all()      # a newcomer waiting for a slot stops waiting
        if self._accept_thread is not None:
            self._accept_thread.join(timeout_s)
        with self._guard:
            connections = list(self._connections.values())
        for connection in connections:
            shutdown(connection.sock)  # wakes a thread blocked in recv/send at once
        for connection in connections:
            if connection.thread is not None:
                connection.thread.join(timeout_s)
        if self._listener is not None:
            self._listener.close()

    @property
    def host(self) -> str:
        return self._bound()[0]

    @property
    def port(self) -> int:
        return self._bound()[1]

    @property
    def connection_count(self) -> int:
        with self._guard:
            return len(self._connections)

    def _bound(self) -> tuple[str, int]:
        if self._listener is None:
            raise RuntimeError("server not started")
        return self._listener.getsockname()[:2]

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self.stopping.is_set():
            try:
                conn, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with self._guard:
                connection = self._admit(conn, peer)
                deadline = time.monotonic() + ENDING_SLOT_WAIT_S
                while (connection is None and self._one_ending() and time.monotonic() < deadline
                       and not self.stopping.is_set()):
                    self._slot_freed.wait(deadline - time.monotonic())
                    connection = self._admit(conn, peer)
            if connection is None:
                log.warning("%s port %d: refusing %s, %d connections open", self.name, self.port,
                            peer, self.max_connections)
                reset(conn)
            else:
                assert connection.thread is not None
                connection.thread.start()

    def _admit(self, conn: socket.socket, peer: tuple[str, int]) -> Connection | None:
        """Under the guard: the newcomer's connection, its thread made but not started (so
        `stop` finds it), or None when the port is full."""
        live = [c for c in self._connections.values() if not c.evicted]
        if len(live) >= self.max_connections and not self._evict_idlest(live, peer):
            return None
        conn.settimeout(TICK_S)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = Connection(conn, peer)
        connection.thread = threading.Thread(
            target=self._run, args=(connection,), name=f"{self.name}-{self.port}-{peer[1]}",
            daemon=True)
        self._connections[conn] = connection
        return connection

    def _one_ending(self) -> bool:
        """Under the guard: a connection holding a slot has been closed by its client (or shut by
        this server, timed out), so its slot is about to be free."""
        return any(c.gone() for c in self._connections.values() if not c.evicted)

    def _evict_idlest(self, live: list[Connection], peer: tuple[str, int]) -> bool:
        """Close the connection idle longest if it has been idle `evict_idle_s`; True: its
        slot is the newcomer's."""
        idlest = min(live, key=lambda c: c.last_active_s, default=None)
        if self.evict_idle_s is None or idlest is None or (
                time.monotonic() - idlest.last_active_s < self.evict_idle_s):
            return False
        log.warning("%s port %d: full, closing the connection idle longest for %s", self.name,
                    self.port, peer)
        idlest.evicted = True
        shutdown(idlest.sock)  # its thread sees EOF and ends within a tick
        return True

    def _run(self, connection: Connection) -> None:
        try:
            self._serve(connection)
        except OSError as exc:  # reset by peer, broken pipe: that client is gone
            log.debug("%s port %d: connection ended: %s", self.name, self.port, exc)
        finally:
            shutdown(connection.sock)
            with self._guard:
                self._connections.pop(connection.sock, None)
                self._slot_freed.notify_all()
            connection.sock.close()


class ProtocolServer:
    """A protocol served on one `ConnectionServer` port (`self.connections`): started, stopped
    and used as a with-block through it, on its bound host and port."""

    connections: ConnectionServer

    def start(self) -> Self:
        self.connections.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the port and every connection; returns when their threads have ended."""
        self.connections.stop(timeout_s)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return self.connections.host

    @property
    def port(self) -> int:
        return self.connections.port
