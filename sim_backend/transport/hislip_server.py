"""HiSLIP (IVI-6.1) server for a bench's emulated instruments, one sub-address each
(`hislip0`, `hislip1`, …) on one port.

A client opens two connections: the synchronous channel (Initialize names the sub-address and
gets a session id) carries Data / DataEnd messages, DataEnd ending a program message, and the
replies, each sent back as DataEnd with the message id of the message that produced it, so
clients need no read termination; the asynchronous channel (AsyncInitialize with that session
id) carries the maximum message size, device clear, status queries (the status byte), lock and
remote/local requests. Synchronized mode only (no overlap), no TLS.

Messages reach the instrument through its `InstrumentAccess`, shared with its raw socket and
VXI-11 servers. Replies go out as soon as the instrument queues them (the client reads them
from its socket); a reply the instrument queues late (a scope's *OPC?) is looked for every tick.

Limits: `max_sessions` per instrument; an Initialize past it gets FatalError 4 (maximum number
of clients exceeded) and its connection is closed, so the client's open fails at once. An
unknown sub-address gets FatalError 3 naming the served ones. A header without the "HS"
prologue, a message over `max_message_bytes`, or a message left unfinished `idle_timeout_s`
gets a FatalError (or just the close) and one log line; other clients are not affected. Locks
are kept as the protocol reports them (AsyncLock, AsyncLockInfo); as on real HiSLIP servers
they are advisory, for cooperating clients.
"""

from __future__ import annotations

import itertools
import logging
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyvisa_py.protocols.hislip import (
    FATALERRORCODE,
    HEADER_FORMAT,
    HEADER_SIZE,
    MESSAGETYPE,
    MESSAGETYPE_STR,
    PORT,
)

from sim_backend.transport.connection_server import (
    DEFAULT_IDLE_TIMEOUT_S, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_SEND_STALL_S, Connection,
    ConnectionServer, ProtocolServer)
from sim_backend.transport.instrument_access import ClientGone, InstrumentAccess
from sim_backend.transport.socket_ops import RECV_BYTES, TICK_S, ack_now, send_all, shutdown

log = logging.getLogger(__name__)

DEFAULT_MAX_SESSIONS = 8
#: Protocol version 1.0 as InitializeResponse reports it (major, minor bytes).
_PROTOCOL_VERSION = 0x0100
_VENDOR_ID = int.from_bytes(b"\0\0NW", "big")
_ERROR_UNRECOGNIZED_TYPE = 1
_ERROR_TOO_LARGE = 4
_LOCK_FAILURE, _LOCK_SUCCESS, _LOCK_ERROR = 0, 1, 3


def message(kind: str, control: int = 0, parameter: int = 0, payload: bytes = b"") -> bytes:
    return struct.pack(HEADER_FORMAT, b"HS", MESSAGETYPE[kind], control, parameter,
                       len(payload)) + payload


@dataclass(frozen=True)
class Message:
    kind: str
    control: int
    parameter: int
    payload: bytes


class ProtocolError(Exception):
    """The peer broke the framing; `code` names the FatalError to send before closing."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class MessageReader:
    """Accumulates a channel's bytes; `feed` returns the messages they complete."""

    def __init__(self, max_payload_bytes: int) -> None:
        self.max_payload_bytes = max_payload_bytes
        self._buf = bytearray()

    @property
    def mid_message(self) -> bool:
        return bool(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        messages = []
        while len(self._buf) >= HEADER_SIZE:
            prologue, kind, control, parameter, size = struct.unpack_from(HEADER_FORMAT, self._buf)
            if prologue != b"HS":
                raise ProtocolError("Poorly formed message header", f"prologue {bytes(prologue)!r}, not b'HS'")
            if size > self.max_payload_bytes:
                raise ProtocolError("Unidentified error", f"a message of {size} bytes, over the "
                                    f"{self.max_payload_bytes}-byte maximum")
            if len(self._buf) < HEADER_SIZE + size:
                break
            payload = bytes(self._buf[HEADER_SIZE:HEADER_SIZE + size])
            del self._buf[:HEADER_SIZE + size]
            messages.append(Message(MESSAGETYPE_STR.get(kind, str(kind)), control, parameter, payload))
        return messages


@dataclass(eq=False)
class _Session:
    """One client: its two channels' state. Hashed by identity (the access's client token)."""

    id: int
    name: str
    access: InstrumentAccess
    sync: Connection
    async_channel: Connection | None = None
    pending: bytearray = field(default_factory=bytearray)  # Data so far, no DataEnd yet
    message_id: int = 0xFFFF_FFFF  # of the last message received: replies carry it
    client_max_bytes: int = 1 << 20  # AsyncMaxMsgSize: largest message the client takes
    send_guard: threading.Lock = field(default_factory=threading.Lock)  # sync channel writes
    state_guard: threading.Lock = field(default_factory=threading.Lock)  # clear vs. data
    clearing: bool = False  # between AsyncDeviceClear and DeviceClearComplete
    clears: int = 0  # device clears so far: a reply taken before one is never sent after it


class HislipServer(ProtocolServer):
    """Serve `instruments` (sub-address -> access) over HiSLIP on `host:port` (0: any free port;
    4880 is the standard one) until `stop()`."""

    def __init__(self, instruments: Mapping[str, InstrumentAccess], *, host: str = "127.0.0.1",
                 port: int = 0, max_sessions: int = DEFAULT_MAX_SESSIONS,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
                 send_stall_s: float = DEFAULT_SEND_STALL_S) -> None:
        self.instruments = {name.lower(): access for name, access in instruments.items()}
        self.max_sessions = max_sessions
        self.max_message_bytes = max_message_bytes
        self.idle_timeout_s = idle_timeout_s
        self.send_stall_s = send_stall_s
        # Two connections a session, room for as many again to be refused with a FatalError.
        self.connections = ConnectionServer(
            self._serve, host=host, port=port, name="hislip",
            max_connections=2 * max_sessions * (len(self.instruments) + 1))
        self._sessions: dict[int, _Session] = {}
        self._locks: dict[str, _Session] = {}  # sub-address -> the session holding its lock
        self._guard = threading.Condition()
        self._session_ids = itertools.cycle(range(1, 0x10000))

    @property
    def session_count(self) -> int:
        with self._guard:
            return len(self._sessions)

    def visa_address(self, name: str) -> str:
        suffix = "" if self.port == PORT else f",{self.port}"
        return f"TCPIP0::{self.host}::{name}{suffix}::INSTR"

    # -- a connection: the first message says which channel it is ----------------------------

    def _serve(self, connection: Connection) -> None:
        reader = MessageReader(self.max_message_bytes)
        session: _Session | None = None
        is_async = False
        try:
            for received in self._messages(connection, reader, lambda: session):
                if session is None:
                    session, is_async = self._open(connection, received)
                elif is_async:
                    self._on_async(session, received)
                else:
                    self._on_sync(session, received)
        except ProtocolError as exc:
            log.warning("hislip port %d: %s, closing that connection", self.port, exc)
            self._send(connection, message("FatalError", FATALERRORCODE[exc.code], 0,
                                           str(exc).encode()))
        finally:
            if session is not None:
                self._close(session)

    def _messages(self, connection: Connection, reader: MessageReader, session):
        """The messages of one channel, until it closes; on idle ticks a synchronous channel
        hands out replies the instrument queued late."""
        conn = connection.sock
        while not self.connections.stopping.is_set():
            try:
                chunk = conn.recv(RECV_BYTES)
            except TimeoutError:
                if reader.mid_message and (
                        time.monotonic() - connection.last_active_s >= self.idle_timeout_s):
                    log.warning("hislip port %d: a message left unfinished %.0f s, closing that "
                                "connection", self.port, self.idle_timeout_s)
                    return
                current = session()
                if current is not None and current.sync is connection and (
                        current.access.is_last_writer(current)):
                    self._run(current, b"")
                continue
            if not chunk:
                return
            connection.last_active_s = time.monotonic()
            ack_now(conn)
            yield from reader.feed(chunk)

    def _open(self, connection: Connection, first: Message) -> tuple[_Session, bool]:
        if first.kind == "Initialize":
            return self._initialize(connection, first), False
        if first.kind == "AsyncInitialize":
            return self._async_initialize(connection, first), True
        raise ProtocolError("Invalid Initialization sequence",
                            f"{first.kind} before Initialize or AsyncInitialize")

    def _initialize(self, connection: Connection, init: Message) -> _Session:
        name = init.payload.decode("ascii", "replace").lower() or "hislip0"
        access = self.instruments.get(name)
        if access is None:
            raise ProtocolError("Invalid Initialization sequence",
                                f"no device {name!r} (served: {', '.join(self.instruments)})")
        with self._guard:
            if sum(s.name == name for s in self._sessions.values()) >= self.max_sessions:
                raise ProtocolError(
                    "Server refused connection due to maximum number of clients exceeded",
                    f"{name}: {self.max_sessions} sessions open")
            session = _Session(next(self._session_ids), name, access, connection)
            self._sessions[session.id] = session
        self._send(connection, message("InitializeResponse", 0,
                                       _PROTOCOL_VERSION << 16 | session.id))
        return session

    def _async_initialize(self, connection: Connection, init: Message) -> _Session:
        with self._guard:
            session = self._sessions.get(init.parameter & 0xFFFF)
            if session is None or session.async_channel is not None:
                raise ProtocolError("Invalid Initialization sequence",
                                    f"AsyncInitialize for session {init.parameter} that has no "
                                    "synchronous channel waiting")
            session.async_channel = connection
        self._send(connection, message("AsyncInitializeResponse", 0, _VENDOR_ID))
        return session

    def _close(self, session: _Session) -> None:
        """Either channel closing ends the session: the other is closed too."""
        with self._guard:
            if self._sessions.pop(session.id, None) is None:
                return
            if self._locks.get(session.name) is session:
                del self._locks[session.name]
            self._guard.notify_all()
        for channel in (session.sync, session.async_channel):
            if channel is not None:
                shutdown(channel.sock)
        session.access.forget(session)

    # -- synchronous channel -----------------------------------------------------------------

    def _on_sync(self, session: _Session, received: Message) -> None:
        if received.kind in ("Data", "DataEnd"):
            with session.state_guard:
                if session.clearing:
                    return  # sent before the client learned of the clear: discarded
                session.message_id = received.parameter
                session.pending += received.payload
                if len(session.pending) > self.max_message_bytes:
                    session.pending.clear()
                    self._error(session, _ERROR_TOO_LARGE,
                                f"a message over {self.max_message_bytes} bytes, dropped")
                    return
                if received.kind == "Data":
                    return
                data = bytes(session.pending)
                session.pending.clear()
            self._run(session, data if data.endswith(b"\n") else data + b"\n")
        elif received.kind == "Trigger":
            session.message_id = received.parameter
            self._deliver(session, self._guarded(session, lambda: session.access.trigger(
                session, lambda: self._gone(session))))
        elif received.kind == "DeviceClearComplete":
            with session.state_guard:
                session.clearing = False
            self._send(session.sync, message("DeviceClearAcknowledge", 0), session)
        else:
            self._error(session, _ERROR_UNRECOGNIZED_TYPE,
                        f"{received.kind} is not a synchronous channel message")

    def _run(self, session: _Session, data: bytes) -> None:
        self._deliver(session, self._guarded(session, lambda: session.access.exchange(
            session, data, lambda: self._gone(session))))

    def _guarded(self, session: _Session, operation) -> list[bytes]:
        try:
            return operation()
        except ClientGone:
            log.info("hislip %s: client left during a message, the rest of it is dropped",
                     session.name)
            return []

    def _deliver(self, session: _Session, replies: list[bytes]) -> None:
        """Send `replies` as the bench's fault plan shapes them, each one DataEnd-terminated."""
        clears = session.clears
        for reply in replies:
            action = session.access.fault_action(reply)
            if action.kind == "drop":
                log.info("hislip %s: fault plan drops the connection", session.name)
                shutdown(session.sync.sock)
                return
            if action.kind == "delay" and self.connections.stopping.wait(action.delay_s):
                return
            data = action.apply(reply)
            if not data:
                continue
            with session.state_guard:
                if session.clearing or session.clears != clears:
                    return  # a device clear discards what was queued before it
            chunk = max(1, session.client_max_bytes - HEADER_SIZE)
            parts = [data[at:at + chunk] for at in range(0, len(data), chunk)]
            out = b"".join(message("Data", 0, session.message_id, part) for part in parts[:-1])
            self._send(session.sync, out + message("DataEnd", 0, session.message_id, parts[-1]),
                       session)

    def _gone(self, session: _Session) -> bool:
        return self.connections.stopping.is_set() or session.sync.gone()

    # -- asynchronous channel ----------------------------------------------------------------

    def _on_async(self, session: _Session, received: Message) -> None:
        channel = session.async_channel
        assert channel is not None
        kind = received.kind
        if kind == "AsyncMaxMsgSize":
            if len(received.payload) != 8:
                raise ProtocolError("Poorly formed message header", "AsyncMaxMsgSize without its "
                                    "8-byte size")
            session.client_max_bytes = max(HEADER_SIZE + 1, struct.unpack("!Q", received.payload)[0])
            self._send(channel, message("AsyncMaxMsgSizeResponse", 0, 0,
                                        struct.pack("!Q", self.max_message_bytes)))
        elif kind == "AsyncDeviceClear":
            with session.state_guard:
                session.clearing = True
                session.clears += 1
                session.pending.clear()
            session.access.clear(session)
            self._send(channel, message("AsyncDeviceClearAcknowledge", 0))
        elif kind == "AsyncStatusQuery":
            stb, taken = session.access.status_byte(session, False)
            self._send(channel, message("AsyncStatusResponse", stb & 0xFF))
            self._deliver(session, taken)
        elif kind == "AsyncLock":
            self._send(channel, message("AsyncLockResponse", self._lock(session, received)))
        elif kind == "AsyncLockInfo":
            with self._guard:
                held = self._locks.get(session.name)
            self._send(channel, message("AsyncLockInfoResponse", int(held is session),
                                        int(held is not None)))
        elif kind == "AsyncRemoteLocalControl":
            self._send(channel, message("AsyncRemoteLocalResponse", 0))  # no front panel
        else:
            self._error(session, _ERROR_UNRECOGNIZED_TYPE,
                        f"{kind} is not an asynchronous channel message", channel)

    def _lock(self, session: _Session, request: Message) -> int:
        with self._guard:
            if request.control == 0:  # release
                if self._locks.get(session.name) is not session:
                    return _LOCK_ERROR
                del self._locks[session.name]
                self._guard.notify_all()
                return _LOCK_SUCCESS
            deadline = time.monotonic() + request.parameter / 1000
            while self._locks.setdefault(session.name, session) is not session:
                left = deadline - time.monotonic()
                if left <= 0 or self.connections.stopping.is_set():
                    return _LOCK_FAILURE
                self._guard.wait(min(left, TICK_S))
            return _LOCK_SUCCESS

    # -- sending -----------------------------------------------------------------------------

    def _error(self, session: _Session, code: int, detail: str,
               channel: Connection | None = None) -> None:
        log.warning("hislip %s: %s", session.name, detail)
        self._send(channel or session.sync, message("Error", code, 0, detail.encode()),
                   None if channel else session)

    def _send(self, channel: Connection, data: bytes, session: _Session | None = None) -> None:
        """Send on `channel`; the synchronous channel's writers (its own thread, the async
        channel's status query) go through the session's guard so messages never interleave."""
        if session is None:
            ok = send_all(channel.sock, data, self.connections.stopping, self.send_stall_s)
        else:
            with session.send_guard:
                ok = send_all(channel.sock, data, self.connections.stopping, self.send_stall_s)
        if not ok and not self.connections.stopping.is_set():
            log.warning("hislip port %d: client reads nothing, closing it", self.port)
            shutdown(channel.sock)
