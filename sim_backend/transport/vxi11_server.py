"""VXI-11 (TCP/IP Instrument Protocol) core channel for a bench's emulated instruments.

One core channel serves every instrument of the bench, each under its device name (`inst0`,
`inst1`, …), as a LAN/GPIB gateway serves `gpib0,5`: the port mapper hands out one port per RPC
program, so a host has one core port. Stock clients find it through the port mapper on port 111
(`TCPIP0::host::inst0::INSTR`); where 111 cannot be had, `visa_address` names the core port
itself (`TCPIP0::host,PORT::inst0::INSTR`, which pyvisa-py accepts).

Messages end where the protocol says: device_write with the END flag completes a program message
(an LF is added when it does not end with one, as END alone terminates a message in IEEE 488.2),
and device_read marks the last byte of each reply with END (reason bit 4), so clients need no
read termination. Messages reach the instrument through its `InstrumentAccess`, shared with its
raw socket server: the same turn-taking, reply ownership and device clear on leaving.

Limits: `max_links` links per instrument; create_link past it is refused with error 9 (out of
resources), so the client sees the refusal instead of a link that is dropped later. An unknown
device name gets error 3 (device not accessible). A message in progress over
`max_message_bytes` is dropped with error 17 (I/O error). Locks (device_lock, create_link with
lockDevice) hold off other VXI-11 links; raw socket clients know nothing of them. The abort
channel and interrupts are not served (create_link reports abort port 0).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyvisa_py.protocols.rpc import Packer, Unpacker
from pyvisa_py.protocols.vxi11 import (
    CREATE_INTR_CHAN,
    CREATE_LINK,
    DESTROY_INTR_CHAN,
    DESTROY_LINK,
    DEVICE_CLEAR,
    DEVICE_CORE_PROG,
    DEVICE_CORE_VERS,
    DEVICE_DOCMD,
    DEVICE_ENABLE_SRQ,
    DEVICE_LOCAL,
    DEVICE_LOCK,
    DEVICE_READ,
    DEVICE_READSTB,
    DEVICE_REMOTE,
    DEVICE_TRIGGER,
    DEVICE_UNLOCK,
    DEVICE_WRITE,
    OP_FLAG_END,
    OP_FLAG_TERMCHAR_SET,
    OP_FLAG_WAIT_BLOCK,
    RX_CHR,
    RX_END,
    RX_REQCNT,
    ErrorCodes,
)

from sim_backend.transport.connection_server import (
    DEFAULT_IDLE_TIMEOUT_S, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_SEND_STALL_S,
)
from sim_backend.transport.instrument_access import ClientGone, InstrumentAccess
from sim_backend.transport.onc_rpc import (
    Connection,
    PortMapperServer,
    ProcedureUnavailable,
    RpcTcpServer,
)
from sim_backend.transport.socket_ops import shutdown

log = logging.getLogger(__name__)

DEFAULT_MAX_LINKS = 8
#: maxRecvSize announced by create_link: the most one device_write carries.
DEFAULT_MAX_RECV_BYTES = 1 << 20
#: io_timeout meaning "wait for ever" (VI_TMO_INFINITE as pyvisa-py sends it).
_FOREVER_MS = 0xFFFF_FFFF
#: A read waiting for a reply looks for it this often, backing off to the maximum.
_POLL_MIN_S = 0.0005
_POLL_MAX_S = 0.02


@dataclass(eq=False)
class _Link:
    """One link: a client's session with one instrument. Hashed by identity (the access's
    client token)."""

    id: int
    name: str
    access: InstrumentAccess
    connection: Connection
    pending: bytearray = field(default_factory=bytearray)  # written, no END yet
    replies: deque[tuple[float, bytes]] = field(default_factory=deque)  # (due_s, bytes) to read
    unread: bytearray = field(default_factory=bytearray)  # rest of the reply being read
    dropped: bool = False  # the fault plan dropped the connection


class _LinkError(Exception):
    def __init__(self, code: ErrorCodes) -> None:
        super().__init__(code.name)
        self.code = code


class Vxi11Server:
    """Serve `instruments` (device name -> access) over VXI-11 until `stop()`.

    `port` is the core channel's (0: any free one); `portmapper_port` the port mapper's (None:
    none). When the port mapper cannot bind, the server runs without it and says why in
    `portmapper_error`."""

    def __init__(self, instruments: Mapping[str, InstrumentAccess], *, host: str = "127.0.0.1",
                 port: int = 0, portmapper_port: int | None = 111,
                 max_links: int = DEFAULT_MAX_LINKS, max_recv_bytes: int = DEFAULT_MAX_RECV_BYTES,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
                 send_stall_s: float = DEFAULT_SEND_STALL_S) -> None:
        self.instruments = {name.lower(): access for name, access in instruments.items()}
        self.max_links = max_links
        self.max_recv_bytes = max_recv_bytes
        self.max_message_bytes = max_message_bytes
        self.core = RpcTcpServer(
            _CoreProgram(self), host=host, port=port,
            # Room for every link, and for as many again to be told "out of resources".
            max_connections=max_links * (len(self.instruments) + 1),
            max_record_bytes=max_recv_bytes, idle_timeout_s=idle_timeout_s,
            send_stall_s=send_stall_s, name="vxi11")
        self._portmapper_port = portmapper_port
        self.portmapper: PortMapperServer | None = None
        self.portmapper_error: str | None = None
        self._links: dict[int, _Link] = {}
        self._next_link_id = 1
        self._locks: dict[str, _Link] = {}  # device name -> the link holding its lock
        self._links_changed = threading.Condition()

    def start(self) -> Vxi11Server:
        self.core.start()
        if self._portmapper_port is not None:
            mapper = PortMapperServer(
                lambda: {(DEVICE_CORE_PROG, DEVICE_CORE_VERS): self.core.port},
                host=self.core.host, port=self._portmapper_port)
            try:
                self.portmapper = mapper.start()
            except OSError as exc:
                self.portmapper_error = f"port mapper port {self._portmapper_port}: {exc.strerror or exc}"
                log.warning("VXI-11 without a port mapper (%s); clients must name port %d",
                            self.portmapper_error, self.core.port)
        return self

    def stop(self) -> None:
        if self.portmapper is not None:
            self.portmapper.stop()
        self.core.stop()

    def __enter__(self) -> Vxi11Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def visa_address(self, name: str) -> str:
        """The VISA resource name of instrument `name`: the stock form when the port mapper
        runs on port 111, else one naming the core port."""
        host = self.core.host
        if self.portmapper is None or self.portmapper.port != 111:
            host = f"{host},{self.core.port}"
        return f"TCPIP0::{host}::{name}::INSTR"

    @property
    def link_count(self) -> int:
        with self._links_changed:
            return len(self._links)

    # -- links and locks (shared by every connection) ----------------------------------------

    def create_link(self, connection: Connection, name: str, lock_device: bool,
                    lock_timeout_ms: int) -> _Link:
        access = self.instruments.get(name.lower())
        if access is None:
            log.warning("vxi11: create_link for %r refused: no such device (served: %s)", name,
                        ", ".join(self.instruments))
            raise _LinkError(ErrorCodes.device_not_accessible)
        with self._links_changed:
            if sum(link.name == name.lower() for link in self._links.values()) >= self.max_links:
                log.warning("vxi11: create_link for %s refused: %d links open", name, self.max_links)
                raise _LinkError(ErrorCodes.out_of_resources)
            link = _Link(self._next_link_id, name.lower(), access, connection)
            self._next_link_id = (self._next_link_id % 0x7FFF_FFFF) + 1
            self._links[link.id] = link
        if lock_device:
            try:
                self.lock(link, lock_timeout_ms)
            except _LinkError:
                self.destroy_link(link)
                raise
        return link

    def destroy_link(self, link: _Link) -> None:
        with self._links_changed:
            self._links.pop(link.id, None)
            if self._locks.get(link.name) is link:
                del self._locks[link.name]
            self._links_changed.notify_all()
        link.access.forget(link)

    def link(self, connection: Connection, link_id: int) -> _Link:
        link = self._links.get(link_id)
        if link is None or link.connection is not connection:
            raise _LinkError(ErrorCodes.invalid_link_identifier)
        return link

    def lock(self, link: _Link, timeout_ms: int) -> None:
        deadline = time.monotonic() + timeout_ms / 1000
        with self._links_changed:
            while self._locks.setdefault(link.name, link) is not link:
                left = deadline - time.monotonic()
                if left <= 0 or self.core.stopping.is_set():
                    raise _LinkError(ErrorCodes.device_locked_by_another_link)
                self._links_changed.wait(min(left, 0.05))

    def unlock(self, link: _Link) -> None:
        with self._links_changed:
            if self._locks.get(link.name) is not link:
                raise _LinkError(ErrorCodes.no_lock_held_by_this_link)
            del self._locks[link.name]
            self._links_changed.notify_all()

    def wait_unlocked(self, link: _Link, flags: int, timeout_ms: int) -> None:
        """Return when no other link holds the device's lock; with the wait-lock flag clear,
        fail at once (VXI-11 B.6.1)."""
        with self._links_changed:
            holder = self._locks.get(link.name)
            if holder is None or holder is link:
                return
        if not flags & OP_FLAG_WAIT_BLOCK:
            raise _LinkError(ErrorCodes.device_locked_by_another_link)
        deadline = time.monotonic() + timeout_ms / 1000
        with self._links_changed:
            while self._locks.get(link.name) not in (None, link):
                left = deadline - time.monotonic()
                if left <= 0 or self.core.stopping.is_set():
                    raise _LinkError(ErrorCodes.device_locked_by_another_link)
                self._links_changed.wait(min(left, 0.05))


class _CoreProgram:
    prog = DEVICE_CORE_PROG
    vers = DEVICE_CORE_VERS

    def __init__(self, server: Vxi11Server) -> None:
        self.server = server

    def open(self, connection: Connection) -> _CoreSession:
        return _CoreSession(self.server, connection)


class _CoreSession:
    """The core channel's procedures for one connection; its links end with it."""

    def __init__(self, server: Vxi11Server, connection: Connection) -> None:
        self.server = server
        self.connection = connection
        self.links: list[_Link] = []

    def close(self) -> None:
        for link in self.links:
            self.server.destroy_link(link)
        self.links.clear()

    def call(self, proc: int, args: Unpacker) -> bytes:
        handler = self._procedures.get(proc)
        if handler is None:
            raise ProcedureUnavailable(proc)
        out = Packer()
        handler(self, args, out)
        return out.get_buffer()

    # Every reply starts with a Device_ErrorCode; a _LinkError becomes that code, with the
    # rest of the reply zero / empty as the spec's structures require.

    def _create_link(self, args: Unpacker, out: Packer) -> None:
        args.unpack_int()  # clientId: for the client's own bookkeeping
        lock_device = args.unpack_bool()
        lock_timeout_ms = args.unpack_uint()
        name = args.unpack_string().decode("ascii", "replace")
        try:
            link = self.server.create_link(self.connection, name, lock_device, lock_timeout_ms)
        except _LinkError as exc:
            _pack_error(out, exc.code, "iII")
            return
        self.links.append(link)
        out.pack_int(ErrorCodes.no_error)
        out.pack_int(link.id)
        out.pack_uint(0)  # abort port: no abort channel
        out.pack_uint(self.server.max_recv_bytes)

    def _destroy_link(self, args: Unpacker, out: Packer) -> None:
        try:
            link = self.server.link(self.connection, args.unpack_int())
        except _LinkError as exc:
            out.pack_int(exc.code)
            return
        self.links.remove(link)
        self.server.destroy_link(link)
        out.pack_int(ErrorCodes.no_error)

    def _device_write(self, args: Unpacker, out: Packer) -> None:
        link_id, _io_timeout_ms, lock_timeout_ms = args.unpack_int(), args.unpack_uint(), args.unpack_uint()
        flags = args.unpack_int()
        data = args.unpack_opaque()
        try:
            link = self._usable(link_id, flags, lock_timeout_ms)
            link.pending += data
            if len(link.pending) > self.server.max_message_bytes:
                link.pending.clear()
                log.warning("vxi11 %s: a message over %d bytes, dropped", link.name,
                            self.server.max_message_bytes)
                raise _LinkError(ErrorCodes.io_error)
            if flags & OP_FLAG_END:
                message = bytes(link.pending)
                link.pending.clear()
                self._run(link, message if message.endswith(b"\n") else message + b"\n")
        except _LinkError as exc:
            _pack_error(out, exc.code, "I")
            return
        out.pack_int(ErrorCodes.no_error)
        out.pack_uint(len(data))

    def _device_read(self, args: Unpacker, out: Packer) -> None:
        link_id, request_size, io_timeout_ms = args.unpack_int(), args.unpack_uint(), args.unpack_uint()
        lock_timeout_ms, flags, term_char = args.unpack_uint(), args.unpack_int(), args.unpack_int()
        try:
            link = self._usable(link_id, flags, lock_timeout_ms)
            if not self._reply_ready(link, io_timeout_ms):
                raise _LinkError(ErrorCodes.io_timeout)
        except _LinkError as exc:
            _pack_error(out, exc.code, "io")
            return
        size = min(request_size, len(link.unread))
        reason = 0
        if flags & OP_FLAG_TERMCHAR_SET:
            at = link.unread.find(bytes([term_char & 0xFF]), 0, size)
            if at >= 0:
                size, reason = at + 1, RX_CHR
        data = bytes(link.unread[:size])
        del link.unread[:size]
        if not link.unread:
            reason |= RX_END
        elif size == request_size:
            reason |= RX_REQCNT
        out.pack_int(ErrorCodes.no_error)
        out.pack_int(reason)
        out.pack_opaque(data)

    def _device_readstb(self, args: Unpacker, out: Packer) -> None:
        link_id, flags, lock_timeout_ms, _io_timeout_ms = _generic(args)
        try:
            link = self._usable(link_id, flags, lock_timeout_ms)
        except _LinkError as exc:
            _pack_error(out, exc.code, "I")
            return
        stb, taken = link.access.status_byte(link, bool(link.unread or link.replies))
        self._receive(link, taken)
        out.pack_int(ErrorCodes.no_error)
        out.pack_uint(stb & 0xFF)

    def _device_trigger(self, args: Unpacker, out: Packer) -> None:
        self._generic_op(args, out, lambda link: self._receive(
            link, link.access.trigger(link, self._gone)))

    def _device_clear(self, args: Unpacker, out: Packer) -> None:
        def clear(link: _Link) -> None:
            link.access.clear(link)
            link.pending.clear()
            link.unread.clear()
            link.replies.clear()
        self._generic_op(args, out, clear)

    def _device_remote_or_local(self, args: Unpacker, out: Packer) -> None:
        self._generic_op(args, out, lambda link: None)  # no front panel to lock out

    def _device_lock(self, args: Unpacker, out: Packer) -> None:
        link_id, flags, lock_timeout_ms = args.unpack_int(), args.unpack_int(), args.unpack_uint()
        try:
            link = self.server.link(self.connection, link_id)
            self.server.lock(link, lock_timeout_ms if flags & OP_FLAG_WAIT_BLOCK else 0)
        except _LinkError as exc:
            out.pack_int(exc.code)
            return
        out.pack_int(ErrorCodes.no_error)

    def _device_unlock(self, args: Unpacker, out: Packer) -> None:
        try:
            self.server.unlock(self.server.link(self.connection, args.unpack_int()))
        except _LinkError as exc:
            out.pack_int(exc.code)
            return
        out.pack_int(ErrorCodes.no_error)

    def _device_enable_srq(self, args: Unpacker, out: Packer) -> None:
        link_id = args.unpack_int()
        args.unpack_bool()
        if len(args.unpack_opaque()) > 40:
            raise ValueError("an SRQ handle over 40 bytes")
        try:
            self.server.link(self.connection, link_id)
        except _LinkError as exc:
            out.pack_int(exc.code)
            return
        out.pack_int(ErrorCodes.no_error)  # accepted; no interrupt channel ever fires

    def _device_docmd(self, args: Unpacker, out: Packer) -> None:
        for unpack in (args.unpack_int, args.unpack_int, args.unpack_uint, args.unpack_uint,
                       args.unpack_int, args.unpack_bool, args.unpack_int, args.unpack_opaque):
            unpack()
        _pack_error(out, ErrorCodes.operation_not_supported, "o")

    def _create_intr_chan(self, args: Unpacker, out: Packer) -> None:
        for _ in range(4):
            args.unpack_uint()
        args.unpack_int()
        out.pack_int(ErrorCodes.operation_not_supported)

    def _destroy_intr_chan(self, args: Unpacker, out: Packer) -> None:
        out.pack_int(ErrorCodes.operation_not_supported)

    _procedures = {
        CREATE_LINK: _create_link,
        DEVICE_WRITE: _device_write,
        DEVICE_READ: _device_read,
        DEVICE_READSTB: _device_readstb,
        DEVICE_TRIGGER: _device_trigger,
        DEVICE_CLEAR: _device_clear,
        DEVICE_REMOTE: _device_remote_or_local,
        DEVICE_LOCAL: _device_remote_or_local,
        DEVICE_LOCK: _device_lock,
        DEVICE_UNLOCK: _device_unlock,
        DEVICE_ENABLE_SRQ: _device_enable_srq,
        DEVICE_DOCMD: _device_docmd,
        DESTROY_LINK: _destroy_link,
        CREATE_INTR_CHAN: _create_intr_chan,
        DESTROY_INTR_CHAN: _destroy_intr_chan,
    }

    # -- helpers ---------------------------------------------------------------------------

    def _usable(self, link_id: int, flags: int, lock_timeout_ms: int) -> _Link:
        link = self.server.link(self.connection, link_id)
        self.server.wait_unlocked(link, flags, lock_timeout_ms)
        return link

    def _generic_op(self, args: Unpacker, out: Packer, operation) -> None:
        link_id, flags, lock_timeout_ms, _io_timeout_ms = _generic(args)
        try:
            operation(self._usable(link_id, flags, lock_timeout_ms))
        except _LinkError as exc:
            out.pack_int(exc.code)
            return
        out.pack_int(ErrorCodes.no_error)

    def _gone(self) -> bool:
        return self.server.core.stopping.is_set() or self.connection.gone()

    def _run(self, link: _Link, message: bytes) -> None:
        try:
            replies = link.access.exchange(link, message, self._gone)
        except ClientGone:
            log.info("vxi11 %s: client left during a message, the rest of it is dropped", link.name)
            raise _LinkError(ErrorCodes.io_error) from None
        self._receive(link, replies)

    def _receive(self, link: _Link, replies: list[bytes]) -> None:
        """Queue `replies` for reading as the bench's fault plan shapes them."""
        for reply in replies:
            action = link.access.fault_action(reply)
            if action.kind == "drop":
                log.info("vxi11 %s: fault plan drops the connection", link.name)
                link.dropped = True
                shutdown(self.connection.sock)  # the client sees a lost connection
                return
            data = action.apply(reply)
            if data:
                due_s = time.monotonic() + (action.delay_s if action.kind == "delay" else 0.0)
                link.replies.append((due_s, data))

    def _reply_ready(self, link: _Link, io_timeout_ms: int) -> bool:
        """Wait until `link.unread` holds (the rest of) a reply; False at the timeout."""
        forever = io_timeout_ms == _FOREVER_MS
        deadline = time.monotonic() + io_timeout_ms / 1000
        poll_s = _POLL_MIN_S
        while not link.unread:
            now = time.monotonic()
            if link.replies and link.replies[0][0] <= now:
                link.unread += link.replies.popleft()[1]
                break
            if not link.replies and link.access.is_last_writer(link):  # a reply queued late
                self._receive(link, link.access.exchange(link, b"", self._gone))
                if link.replies:
                    continue
            if link.dropped or self._gone() or (not forever and now >= deadline):
                return False
            wake = now + poll_s if forever else min(deadline, now + poll_s)
            if link.replies:
                wake = min(wake, link.replies[0][0])
            time.sleep(max(0.0, wake - now))
            poll_s = min(2 * poll_s, _POLL_MAX_S)
        return True


def _generic(args: Unpacker) -> tuple[int, int, int, int]:
    """Device_GenericParms: link, flags, lock_timeout, io_timeout."""
    return args.unpack_int(), args.unpack_int(), args.unpack_uint(), args.unpack_uint()


def _pack_error(out: Packer, code: ErrorCodes, fields: str) -> None:
    """A reply structure of error `code` followed by zero / empty `fields`: 'i', 'I' integers,
    'o' opaque."""
    out.pack_int(code)
    for kind in fields:
        if kind == "o":
            out.pack_opaque(b"")
        elif kind == "I":
            out.pack_uint(0)
        else:
            out.pack_int(0)
