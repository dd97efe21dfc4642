"""One open VISA session to an emulated instrument: read/write semantics, attributes, faults.

Reads follow viRead: a read ends at the end of a response message (the END indicator a GPIB,
USBTMC or VXI-11 instrument sends with the last byte), after the termination character when
VI_ATTR_TERMCHAR_EN is set, or after `count` bytes. With VI_ATTR_SUPPRESS_END_EN set (as
on a raw socket) message ends do not end a read. A read with nothing to return waits, in real
time, until its timeout and then fails with VI_ERROR_TMO: a shorter wait would let a driver
that forgets to send a query pass on the emulator and fail in the lab.

Writes follow viWrite: on an INSTR session (VXI-11, GPIB, USBTMC) each write ends with END while
VI_ATTR_SEND_END_EN is set, and END ends a program message as an LF does; a socket carries no
END, so there only the LF ends one.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from pyvisa import constants, rname
from pyvisa.constants import StatusCode

from sim_backend.scpi.device import MessageDevice
from sim_backend.faults.plan import FaultPlan
from sim_backend.transport.visa_attributes import (
    READ_ONLY,
    check_attribute_value,
    default_attributes,
)

A = constants.ResourceAttribute

#: Poll interval bounds while waiting for a reply: short first (a reply that another thread
#: is about to queue arrives promptly), then backing off so an idle wait costs no CPU.
_POLL_MIN_S = 0.0005
_POLL_MAX_S = 0.02

_DISCARD_READ = (
    constants.BufferOperation.discard_read_buffer
    | constants.BufferOperation.discard_read_buffer_no_io
)


class VisaSession:
    """State of one session: attributes, the reply being read, replies held back by a fault."""

    def __init__(
        self,
        parsed: rname.ResourceName,
        device: MessageDevice,
        lock: AbstractContextManager[Any],
        faults: Callable[[], FaultPlan],
    ) -> None:
        self.attributes = default_attributes(parsed)
        self._ends_each_write = parsed.resource_class == "INSTR"
        self._device = device
        self._lock = lock
        self._faults = faults
        self._unread = bytearray()  # rest of the reply being read
        self._unread_ends_message = False
        self._taken: deque[bytes] = deque()  # taken from the device, faults not yet applied
        self._late: tuple[float, bytes] | None = None  # (due, reply) held back by a delay
        self.connection_lost = False

    # -- attributes ------------------------------------------------------------------------

    def get_attribute(self, attribute: A) -> tuple[Any, StatusCode]:
        if attribute not in self.attributes:
            return None, StatusCode.error_nonsupported_attribute
        return self.attributes[attribute], StatusCode.success

    def set_attribute(self, attribute: A, value: Any) -> StatusCode:
        if attribute in READ_ONLY:
            return StatusCode.error_attribute_read_only
        if not check_attribute_value(attribute, value):
            return StatusCode.error_nonsupported_attribute_state
        self.attributes[attribute] = value
        return StatusCode.success

    def _timeout_s(self) -> float:
        timeout_ms = self.attributes[A.timeout_value]
        if timeout_ms == constants.VI_TMO_INFINITE:
            return float("inf")
        return timeout_ms / 1000.0

    # -- message exchange --------------------------------------------------------------------

    def write(self, data: bytes) -> tuple[int, StatusCode]:
        if self.connection_lost:
            return 0, StatusCode.error_connection_lost
        if self._ends_each_write and bool(self.attributes[A.send_end_enabled]) and not data.endswith(b"\n"):
            # END on the last byte ends the program message (IEEE 488.2), as the LF would: an
            # INSTR session's write carries it (VXI-11, GPIB, USBTMC), a socket's has none.
            data = bytes(data) + b"\n"
        with self._lock:
            self._device.write_bytes(bytes(data))
            # The replies this message produced are this session's, as on a socket: another
            # session's write must not take them (or make the instrument drop them, -410).
            while (reply := self._device.read_message()) is not None:
                self._taken.append(reply)
        return len(data), StatusCode.success

    def read(self, count: int) -> tuple[bytes, StatusCode]:
        if self.connection_lost:
            return b"", StatusCode.error_connection_lost
        deadline = time.monotonic() + self._timeout_s()
        use_termchar = bool(self.attributes[A.termchar_enabled])
        termchar = self.attributes[A.termchar]
        suppress_end = bool(self.attributes[A.suppress_end_enabled])
        out = bytearray()
        while True:
            if not self._unread and not self._wait_for_reply(deadline):
                lost = self.connection_lost
                return bytes(out), (
                    StatusCode.error_connection_lost if lost else StatusCode.error_timeout
                )
            room = count - len(out)
            stop = len(self._unread)
            if use_termchar:
                at = self._unread.find(termchar, 0, min(room, stop))
                if at >= 0:
                    stop = at + 1
            stop = min(stop, room)
            out += self._unread[:stop]
            del self._unread[:stop]
            if not self._unread and self._unread_ends_message and not suppress_end:
                return bytes(out), StatusCode.success
            if use_termchar and out and out[-1] == termchar:
                return bytes(out), StatusCode.success_termination_character_read
            if len(out) >= count:
                return bytes(out), StatusCode.success_max_count_read

    def _wait_for_reply(self, deadline: float) -> bool:
        """Fill `_unread` with the next reply that survives the fault plan; False on timeout
        or a dropped connection."""
        poll_s = _POLL_MIN_S
        while True:
            now = time.monotonic()
            if self._late is not None:
                due, message = self._late
                if due <= now:
                    self._late = None
                    self._unread[:] = message
                    self._unread_ends_message = True
                    return True
            else:
                message = self._take_from_device()
                if message is not None:
                    if self._receive(message, now):
                        return True
                    if self.connection_lost:
                        return False
                    continue
            if now >= deadline:
                return False
            wake = deadline if self._late is None else min(deadline, self._late[0])
            time.sleep(max(0.0, min(poll_s, wake - now)))
            poll_s = min(2 * poll_s, _POLL_MAX_S)

    def _take_from_device(self) -> bytes | None:
        if self._taken:
            return self._taken.popleft()
        with self._lock:
            return self._device.read_message()

    def _receive(self, message: bytes, now: float) -> bool:
        """Pass `message` through the fault plan; True when bytes are ready to read."""
        action = self._faults().before_reply(message)
        if action.kind == "drop":
            self.connection_lost = True
            return False
        if action.kind == "delay" and action.delay_s > 0:
            self._late = (now + action.delay_s, message)
            return False
        data = action.apply(message)
        if not data:
            return False  # withheld, or truncated to nothing: the read keeps waiting
        self._unread[:] = data
        self._unread_ends_message = True
        return True

    # -- control operations ----------------------------------------------------------------

    def clear(self) -> StatusCode:
        """viClear: device clear on the instrument, and this session's buffers emptied."""
        if self.connection_lost:
            return StatusCode.error_connection_lost
        with self._lock:
            self._device.device_clear()
        self._discard_replies()
        return StatusCode.success

    def flush(self, mask: int) -> StatusCode:
        if mask & _DISCARD_READ:
            self._discard_replies()
        return StatusCode.success

    def _discard_replies(self) -> None:
        self._unread.clear()
        self._taken.clear()
        self._late = None

    def assert_trigger(self) -> StatusCode:
        """A software trigger reaches the instrument as the IEEE 488.2 `*TRG` command
        (on GPIB the Group Execute Trigger message, which the standard makes equivalent)."""
        return self.write(b"*TRG\n")[1]

    def read_stb(self) -> tuple[int, StatusCode]:
        """Serial poll. A device may answer it itself (`serial_poll() -> int`); otherwise the
        status byte comes from `*STB?`, with MAV (bit 4) set when a reply is waiting, which
        `*STB?` cannot see since its own reply queues behind that one."""
        if self.connection_lost:
            return 0, StatusCode.error_connection_lost
        serial_poll = getattr(self._device, "serial_poll", None)
        if callable(serial_poll):
            with self._lock:
                return int(serial_poll()), StatusCode.success
        with self._lock:
            while (waiting := self._device.read_message()) is not None:
                self._taken.append(waiting)
            self._device.write_bytes(b"*STB?\n")
            reply = self._device.read_message()
        if reply is None:
            return 0, StatusCode.error_timeout
        try:
            stb = int(reply.strip())
        except ValueError:
            return 0, StatusCode.error_io
        mav = bool(self._unread or self._taken or self._late)
        return (stb | 0x10) if mav else (stb & ~0x10), StatusCode.success
