"""IEEE 488.2 status reporting: the error/event queue and the event status register.

The queue is first in, first out and bounded (SCPI-99 §21.8.2): when it is full the newest
entry is replaced by -350 "Queue overflow" and later errors are lost until it is read.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sim_backend.scpi.errors import esr_bit

# Status byte bits (IEEE 488.2 §11.2; EAV is SCPI's error/event queue summary).
STB_EAV = 0x04  # error/event queue not empty
STB_MAV = 0x10  # message available
STB_ESB = 0x20  # event status summary
STB_MSS = 0x40  # master summary status


@dataclass(frozen=True, slots=True)
class QueuedError:
    """One error/event queue entry."""

    code: int
    message: str

    def scpi(self) -> str:
        """As SYST:ERR? answers it: ``-113,"Undefined header"`` (``+0`` for no error)."""
        return f'{self.code:+d},"{self.message.replace(chr(34), chr(34) * 2)}"'


NO_ERROR = QueuedError(0, "No error")


class StatusRegisters:
    """Event status register, its enable mask, the service request enable mask, the error queue."""

    def __init__(self, queue_size: int) -> None:
        if queue_size < 2:
            raise ValueError("the error queue needs room for an error and the overflow marker")
        self.queue_size = queue_size
        self.errors: deque[QueuedError] = deque()
        self.esr = 0  # event status register
        self.ese = 0  # event status enable
        self.sre = 0  # service request enable

    def record(self, code: int, message: str, *, queue: bool) -> None:
        """Set the error's ESR bit and (if `queue`) append it, replacing the last on overflow."""
        self.esr |= esr_bit(code)
        if not queue:
            return
        if len(self.errors) < self.queue_size:
            self.errors.append(QueuedError(code, message))
        elif self.errors[-1].code != -350:
            self.esr |= esr_bit(-350)
            self.errors[-1] = QueuedError(-350, "Queue overflow")

    def next_error(self) -> QueuedError:
        """Oldest queued error (removed), or 'No error'."""
        return self.errors.popleft() if self.errors else NO_ERROR

    def read_esr(self) -> int:
        """*ESR?: the register's value; reading clears it."""
        value, self.esr = self.esr, 0
        return value

    def clear(self) -> None:
        """*CLS: clear event register and error queue (enable masks are kept)."""
        self.esr = 0
        self.errors.clear()

    def status_byte(self, message_available: bool, device_bits: int = 0) -> int:
        """*STB?: EAV, MAV, ESB, plus device bits; MSS when any enabled bit is set."""
        stb = device_bits & ~STB_MSS
        if self.errors:
            stb |= STB_EAV
        if message_available:
            stb |= STB_MAV
        if self.esr & self.ese:
            stb |= STB_ESB
        if stb & self.sre & ~STB_MSS:
            stb |= STB_MSS
        return stb
