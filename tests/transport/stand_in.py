"""Small stand-in instruments and a stand-in bench for transport tests.

They implement the `MessageDevice` contract with a few SCPI-like commands, enough to check
that bytes, blocks, terminators and faults travel correctly; the real personalities are
tested on their own and through these transports elsewhere.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache

from sim_backend.faults.plan import NO_FAULTS, FaultPlan


@lru_cache(maxsize=16)
def block_payload(n_bytes: int) -> bytes:
    """Deterministic payload using every byte value, including LF and CR."""
    return bytes((i * 7 + 3) % 256 for i in range(n_bytes))


class EchoInstrument:
    """Line-oriented stand-in: `*IDN?`, `ECHO? <text>`, `BLOCK? <n>` (definite IEEE block),
    `BLOCK0? <n>` (indefinite `#0` block), `DATA #<d><len><bytes>` (binary write, then
    `DATA:LEN?`), `COUNT?` (messages executed), `*TRG`, `TRG:COUNT?`, `*STB?`."""

    def __init__(self, idn: str = "NWLAB,ECHO,0,1.0", terminator: bytes = b"\n") -> None:
        self.response_terminator = terminator
        self.idn = idn
        self._input = bytearray()
        self._output: list[bytes] = []
        self.executed = 0
        self.triggers = 0
        self.clears = 0
        self.data_len = 0

    def write_bytes(self, data: bytes) -> None:
        self._input += data
        while True:
            message = self._next_message()
            if message is None:
                return
            self._execute(message)

    def _next_message(self) -> bytes | None:
        buf = self._input
        if buf.upper().startswith(b"DATA #"):  # binary block: length decides, not LF
            digits = int(buf[6:7] or b"0")
            if len(buf) < 7 + digits:
                return None
            size = int(buf[7 : 7 + digits])
            end = 7 + digits + size
            if len(buf) < end + 1:
                return None
            message = bytes(buf[:end])
            del buf[: end + 1]
            return message
        at = buf.find(b"\n")
        if at < 0:
            return None
        message = bytes(buf[:at]).rstrip(b"\r")
        del buf[: at + 1]
        return message

    def _execute(self, message: bytes) -> None:
        self.executed += 1
        head, _, arg = message.partition(b" ")
        head = head.upper()
        t = self.response_terminator
        if head == b"*IDN?":
            self._output.append(self.idn.encode() + t)
        elif head == b"ECHO?":
            self._output.append(arg + t)
        elif head == b"BLOCK?":
            payload = block_payload(int(arg))
            size = str(len(payload)).encode()
            self._output.append(b"#" + str(len(size)).encode() + size + payload + t)
        elif head == b"BLOCK0?":
            self._output.append(b"#0" + block_payload(int(arg)) + t)
        elif head == b"DATA":
            self.data_len = len(arg) - 2 - int(arg[1:2])
        elif head == b"DATA:LEN?":
            self._output.append(str(self.data_len).encode() + t)
        elif head == b"COUNT?":
            self._output.append(str(self.executed).encode() + t)
        elif head == b"*TRG":
            self.triggers += 1
        elif head == b"TRG:COUNT?":
            self._output.append(str(self.triggers).encode() + t)
        elif head == b"*STB?":
            self._output.append(b"0" + t)

    def read_message(self) -> bytes | None:
        return self._output.pop(0) if self._output else None

    def device_clear(self) -> None:
        self.clears += 1
        self._input.clear()
        self._output.clear()


@dataclass
class Instrument:
    role: str
    model: str
    address: str


@dataclass
class StandInBench:
    """What `sim_backend.bench` provides, reduced to what the transports use."""

    devices: dict[str, EchoInstrument]
    #: address -> (role, model)
    roles: dict[str, tuple[str, str]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    faults: dict[str, FaultPlan] = field(default_factory=dict)

    def faults_for(self, address: str) -> FaultPlan:
        return self.faults.get(address, NO_FAULTS)

    @property
    def instruments(self) -> list[Instrument]:
        return [
            Instrument(*self.roles.get(address, (f"echo{i}", "ECHO")), address)
            for i, address in enumerate(self.devices)
        ]
