"""ONC RPC (RFC 5531) over TCP, as VXI-11 needs it: record marking, call headers, replies, and
the port mapper (program 100000 version 2, RFC 1833) that VXI-11 clients ask first.

XDR packing and the protocol's numbers come from pyvisa-py's RPC module (a maintained
dependency; its own server scaffolding serves one connection at a time with shared packers, so
the serving is here). One thread per connection, as in the raw socket server: a client that
sends half a record and goes silent delays nobody else.

A malformed call gets the protocol's reply (RPC version mismatch, program unavailable or
mismatched, procedure unavailable, garbage arguments) and one log line; a record whose header
declares more than `max_record_bytes`, or one left unfinished `idle_timeout_s`, closes its
connection. A newcomer past `max_connections` is reset at once (RST).
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pyvisa_py.protocols import xdrlib
from pyvisa_py.protocols.rpc import (
    IPPROTO_TCP,
    PMAP_PORT,
    PMAP_PROG,
    PMAP_VERS,
    RPCVERSION,
    AcceptStatus,
    AuthorizationFlavor,
    MessagegType,
    Packer,
    PortMapperVersion,
    RejectStatus,
    ReplyStatus,
    Unpacker,
)

from sim_backend.transport.connection_server import (
    DEFAULT_IDLE_TIMEOUT_S, DEFAULT_SEND_STALL_S, Connection, ConnectionServer, ProtocolServer,
)
from sim_backend.transport.socket_ops import RECV_BYTES, TICK_S, ack_now, send_all

log = logging.getLogger(__name__)

_LAST_FRAGMENT = 0x8000_0000
#: A call header without credentials is 40 bytes; credentials and verifier are at most 400 each.
HEADER_ALLOWANCE_BYTES = 1024


class GarbageArgs(Exception):
    """A procedure could not decode its arguments."""


class ProcedureUnavailable(Exception):
    """The program has no such procedure."""


@dataclass(frozen=True)
class Call:
    xid: int
    prog: int
    vers: int
    proc: int
    args: Unpacker


class Session(Protocol):
    """One connection's state for one program; `call` returns the packed result."""

    def call(self, proc: int, args: Unpacker) -> bytes: ...

    def close(self) -> None: ...


class Program(Protocol):
    prog: int
    vers: int

    def open(self, connection: Connection) -> Session:
        """A session for a new connection (VXI-11: the links it will create)."""


# -- records and replies -----------------------------------------------------------------------

def record(message: bytes) -> bytes:
    """`message` as one last fragment (RFC 5531 §11)."""
    return struct.pack(">I", _LAST_FRAGMENT | len(message)) + message


class RecordReader:
    """Accumulates bytes of one connection; `feed` returns the records they complete."""

    def __init__(self, max_record_bytes: int) -> None:
        self.max_record_bytes = max_record_bytes
        self._buf = bytearray()
        self._record = bytearray()

    @property
    def mid_record(self) -> bool:
        return bool(self._buf or self._record)

    def feed(self, data: bytes) -> list[bytes]:
        """Records completed by `data`; ValueError when one would pass `max_record_bytes`."""
        self._buf += data
        records = []
        while len(self._buf) >= 4:
            (mark,) = struct.unpack_from(">I", self._buf)
            size = mark & ~_LAST_FRAGMENT
            if len(self._record) + size > self.max_record_bytes:
                raise ValueError(f"a record over {self.max_record_bytes} bytes")
            if len(self._buf) < 4 + size:
                break
            self._record += self._buf[4:4 + size]
            del self._buf[:4 + size]
            if mark & _LAST_FRAGMENT:
                records.append(bytes(self._record))
                self._record.clear()
        return records


class BadCall(ValueError):
    """A record that is a call, but one this server cannot take (its xid is known)."""

    def __init__(self, xid: int, why: str, rpc_mismatch: bool = False) -> None:
        super().__init__(why)
        self.xid = xid
        self.rpc_mismatch = rpc_mismatch


def parse_call(message: bytes) -> Call:
    """The call in `message`; ValueError (with the xid when one could be read) if it is none."""
    args = Unpacker(message)
    try:
        xid = args.unpack_uint()
    except EOFError:
        raise ValueError("a record shorter than a call header") from None
    try:
        if args.unpack_enum() != MessagegType.call:
            raise BadCall(xid, "not a CALL")
        rpcvers = args.unpack_uint()
        if rpcvers != RPCVERSION:
            raise BadCall(xid, f"RPC version {rpcvers}", rpc_mismatch=True)
        prog, vers, proc = args.unpack_uint(), args.unpack_uint(), args.unpack_uint()
        for _ in range(2):  # credentials, verifier: accepted whatever they are (AUTH_NONE here)
            args.unpack_enum()
            args.unpack_opaque()
    except (EOFError, ValueError, xdrlib.Error) as exc:
        if isinstance(exc, BadCall):
            raise
        raise BadCall(xid, f"a malformed call header ({_why(exc)})") from None
    return Call(xid, prog, vers, proc, args)


def _why(exc: Exception) -> str:
    return str(exc) or {"EOFError": "cut short"}.get(type(exc).__name__, type(exc).__name__)


def accepted_reply(xid: int, status: AcceptStatus = AcceptStatus.success, body: bytes = b"") -> bytes:
    reply = Packer()
    reply.pack_uint(xid)
    reply.pack_enum(MessagegType.reply)
    reply.pack_enum(ReplyStatus.accepted)
    reply.pack_auth((AuthorizationFlavor.null, b""))
    reply.pack_enum(status)
    return reply.get_buffer() + body


def mismatch_body(low: int, high: int) -> bytes:
    body = Packer()
    body.pack_uint(low)
    body.pack_uint(high)
    return body.get_buffer()


def rpc_mismatch_reply(xid: int) -> bytes:
    reply = Packer()
    reply.pack_uint(xid)
    reply.pack_enum(MessagegType.reply)
    reply.pack_enum(ReplyStatus.denied)
    reply.pack_enum(RejectStatus.rpc_mismatch)
    return reply.get_buffer() + mismatch_body(RPCVERSION, RPCVERSION)


def answer(program: Program, session: Session, message: bytes, label: str) -> bytes | None:
    """The reply to one record, or None when it deserves none (not a call at all)."""
    try:
        call = parse_call(message)
    except BadCall as exc:
        log.warning("%s: %s, refused", label, exc)
        return rpc_mismatch_reply(exc.xid) if exc.rpc_mismatch else accepted_reply(
            exc.xid, AcceptStatus.garbage_args)
    except ValueError as exc:
        log.warning("%s: %s, ignored", label, exc)
        return None
    if call.prog != program.prog:
        log.warning("%s: call for program %d, not served here", label, call.prog)
        return accepted_reply(call.xid, AcceptStatus.program_unavailable)
    if call.vers != program.vers:
        log.warning("%s: call for version %d of program %d", label, call.vers, call.prog)
        return accepted_reply(call.xid, AcceptStatus.program_mismatch,
                              mismatch_body(program.vers, program.vers))
    try:
        return accepted_reply(call.xid, body=session.call(call.proc, call.args))
    except ProcedureUnavailable:
        log.warning("%s: procedure %d of program %d is not served", label, call.proc, call.prog)
        return accepted_reply(call.xid, AcceptStatus.procedure_unavailable)
    except (GarbageArgs, EOFError, ValueError, xdrlib.Error) as exc:
        log.warning("%s: procedure %d got arguments it cannot decode (%s)", label, call.proc,
                    _why(exc))
        return accepted_reply(call.xid, AcceptStatus.garbage_args)


# -- serving a program over TCP ----------------------------------------------------------------

class RpcTcpServer(ProtocolServer):
    """Serve `program` on `host:port` (0: any free port) until `stop()`."""

    def __init__(self, program: Program, *, host: str = "127.0.0.1", port: int = 0,
                 max_connections: int = 16, max_record_bytes: int = 1 << 20,
                 idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
                 send_stall_s: float = DEFAULT_SEND_STALL_S, name: str = "rpc") -> None:
        self.program = program
        self.max_record_bytes = max_record_bytes
        self.idle_timeout_s = idle_timeout_s
        self.send_stall_s = send_stall_s
        self.connections = ConnectionServer(self._serve, host=host, port=port,
                                            max_connections=max_connections, name=name)
        self.stopping = self.connections.stopping

    def _serve(self, connection: Connection) -> None:
        label = f"{self.connections.name} port {self.port}"
        session = self.program.open(connection)
        try:
            self._exchange(connection, session, label)
        finally:
            session.close()

    def _exchange(self, connection: Connection, session: Session, label: str) -> None:
        reader = RecordReader(self.max_record_bytes + HEADER_ALLOWANCE_BYTES)
        conn = connection.sock
        while not self.stopping.is_set():
            try:
                chunk = conn.recv(RECV_BYTES)
            except TimeoutError:
                if reader.mid_record and (
                        time.monotonic() - connection.last_active_s >= self.idle_timeout_s):
                    log.warning("%s: a record left unfinished %.0f s, closing that connection",
                                label, self.idle_timeout_s)
                    return
                continue
            if not chunk:
                return
            connection.last_active_s = time.monotonic()
            ack_now(conn)
            try:
                records = reader.feed(chunk)
            except ValueError as exc:
                log.warning("%s: %s, closing that connection", label, exc)
                return
            for message in records:
                reply = answer(self.program, session, message, label)
                if reply is not None and not send_all(conn, record(reply), self.stopping,
                                                      self.send_stall_s):
                    return
                connection.last_active_s = time.monotonic()


# -- the port mapper ---------------------------------------------------------------------------

class PortMapper:
    """Program 100000 version 2: answers GETPORT (and DUMP) for the programs it was given;
    SET and UNSET from clients are refused (False), the table is the server's own."""

    prog = PMAP_PROG
    vers = PMAP_VERS

    def __init__(self, ports: Callable[[], dict[tuple[int, int], int]]) -> None:
        self._ports = ports  # (prog, vers) -> TCP port, asked at each call

    def open(self, connection: Connection | None) -> PortMapper:
        return self  # no per-connection state

    def close(self) -> None:
        pass

    def call(self, proc: int, args: Unpacker) -> bytes:
        out = Packer()
        if proc == PortMapperVersion.null:
            pass
        elif proc in (PortMapperVersion.set, PortMapperVersion.unset):
            args.unpack_farray(4, args.unpack_uint)
            out.pack_bool(False)
        elif proc == PortMapperVersion.get_port:
            prog, vers, protocol, _ = args.unpack_farray(4, args.unpack_uint)
            port = self._ports().get((prog, vers), 0) if protocol == IPPROTO_TCP else 0
            out.pack_uint(port)
        elif proc == PortMapperVersion.dump:
            for (prog, vers), port in self._ports().items():
                out.pack_uint(1)
                out.pack_farray(4, [prog, vers, IPPROTO_TCP, port], out.pack_uint)
            out.pack_uint(0)
        else:
            raise ProcedureUnavailable(proc)
        return out.get_buffer()


class PortMapperServer:
    """The port mapper on TCP and UDP port 111 (`port`), the port clients ask without being
    told. Binding 111 needs privileges and a free port: `start()` raises OSError otherwise."""

    def __init__(self, ports: Callable[[], dict[tuple[int, int], int]], host: str = "127.0.0.1",
                 port: int = PMAP_PORT) -> None:
        self.mapper = PortMapper(ports)
        self.tcp = RpcTcpServer(self.mapper, host=host, port=port, name="portmapper")
        self._host = host
        self._udp: socket.socket | None = None
        self._udp_thread: threading.Thread | None = None

    def start(self) -> PortMapperServer:
        self.tcp.start()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind((self._host, self.tcp.port))
        except OSError as exc:  # pyvisa-py asks over TCP; UDP (discovery broadcasts) is a bonus
            log.info("port mapper: no UDP on port %d (%s)", self.tcp.port, exc)
            udp.close()
            return self
        udp.settimeout(TICK_S)
        self._udp = udp
        self._udp_thread = threading.Thread(target=self._serve_udp, name="portmapper-udp",
                                            daemon=True)
        self._udp_thread.start()
        return self

    def stop(self) -> None:
        self.tcp.stop()
        if self._udp_thread is not None:
            self._udp_thread.join(5.0)
        if self._udp is not None:
            self._udp.close()

    @property
    def port(self) -> int:
        return self.tcp.port

    def _serve_udp(self) -> None:
        assert self._udp is not None
        while not self.tcp.stopping.is_set():
            try:
                message, sender = self._udp.recvfrom(8192)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = answer(self.mapper, self.mapper, message, f"portmapper udp {self.port}")
            if reply is not None:
                try:
                    self._udp.sendto(reply, sender)
                except OSError as exc:
                    log.info("port mapper: cannot answer %s over UDP: %s", sender, exc)
