"""How the LAN servers hand a client's message to an emulated instrument and take its replies.

Every server of one instrument (raw socket, VXI-11, HiSLIP) goes through its one
`InstrumentAccess`, so whatever transport a client uses:

* one message runs at a time on the instrument (its own lock, as on the real one), under the
  bench's `BenchGate`, which between the message's units lets other instruments take a turn;
* a message whose client has gone stops at the next unit (`ClientGone`), instead of running its
  thousands of units for nobody while the instrument stays busy;
* replies go to the client whose message produced them (the last writer); when that client
  goes, the instrument gets a device clear, so a reply it held back (a scope's *OPC?) never
  reaches a later client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

from sim_backend.faults.plan import NO_FAULTS, FaultPlan, ReplyAction
from sim_backend.scpi.device import MessageDevice, interleaving
from sim_backend.transport.bench_gate import BenchGate
from sim_backend.transport.socket_ops import TICK_S

#: Status byte bit 4: a reply is waiting to be read (IEEE 488.2 MAV).
MAV = 0x10


class ClientGone(Exception):
    """Raised between the units of a message whose client has gone."""


class InstrumentAccess:
    """One instrument as the LAN servers reach it. A client is any hashable token its server
    picks (a socket, a VXI-11 link, a HiSLIP session)."""

    def __init__(self, device: MessageDevice, gate: BenchGate | None = None,
                 faults: Callable[[], FaultPlan] = lambda: NO_FAULTS) -> None:
        self.device = device
        self._gate = gate if gate is not None else BenchGate()
        self._faults = faults
        self._device_lock = threading.Lock()  # one message at a time on this instrument
        self._last_writer: Hashable | None = None
        #: Replies taken from the instrument for a client other than the one asking (a serial
        #: poll takes what is queued before its own `*STB?`); handed out at that client's next turn.
        self._held: dict[Hashable, list[bytes]] = {}

    def is_last_writer(self, client: Hashable) -> bool:
        """True when the instrument's queued replies (if any) are `client`'s; cheap, no lock."""
        return self._last_writer is client or client in self._held

    def exchange(self, client: Hashable, message: bytes, client_gone: Callable[[], bool]) -> list[bytes]:
        """Run one whole program message of `client` (b"": none) and return the replies the
        instrument has queued since, when they are this client's. `client_gone` is asked about
        every `TICK_S` while the message runs; True abandons the rest (ClientGone)."""
        with self._device_lock, self._gate, interleaving(self._unit_gap(client_gone)):
            held = self._held.pop(client, [])
            if message:
                self._last_writer = client
                self.device.write_bytes(message)
            elif self._last_writer is not client:
                return held  # whatever is queued belongs to another client
            return held + self._queued()

    def fault_action(self, reply: bytes) -> ReplyAction:
        """What the bench's fault plan does to `reply` (asked once per reply, when it goes out)."""
        return self._faults().before_reply(reply)

    def trigger(self, client: Hashable, client_gone: Callable[[], bool]) -> list[bytes]:
        """A LAN trigger (VXI-11 device_trigger, HiSLIP Trigger) reaches the instrument as the
        IEEE 488.2 `*TRG` command, which the standard makes equivalent to GPIB's GET."""
        return self.exchange(client, b"*TRG\n", client_gone)

    def clear(self, client: Hashable) -> None:
        """Device clear asked by `client`: the instrument drops pending input and output."""
        with self._device_lock, self._gate:
            self._last_writer = None
            self._held.pop(client, None)
            self.device.device_clear()

    def forget(self, client: Hashable) -> None:
        """`client` has gone: what the instrument still holds for it goes too."""
        if not self.is_last_writer(client):
            return
        with self._device_lock, self._gate:
            self._held.pop(client, None)
            if self._last_writer is client:
                self._last_writer = None
                self.device.device_clear()

    def status_byte(self, client: Hashable, reply_waiting: bool) -> tuple[int, list[bytes]]:
        """Serial poll for `client`: (status byte, replies of this client taken from the
        instrument on the way, for its server to hand out). A device may answer the poll itself
        (`serial_poll() -> int`); otherwise `*STB?` is asked, and MAV is set from what waits for
        `client` (`reply_waiting`, or replies taken here), which `*STB?` cannot see since its
        own reply queues behind them."""
        with self._device_lock, self._gate:
            serial_poll = getattr(self.device, "serial_poll", None)
            if callable(serial_poll):
                return int(serial_poll()), []
            taken = self._held.pop(client, [])
            queued = self._queued()
            if self._last_writer is client:
                taken += queued
            elif queued and self._last_writer is not None:
                self._held.setdefault(self._last_writer, []).extend(queued)
            self.device.write_bytes(b"*STB?\n")
            answer = self.device.read_message()
        try:
            stb = int((answer or b"").strip())
        except ValueError:
            stb = 0
        mav = reply_waiting or bool(taken)
        return (stb | MAV) if mav else (stb & ~MAV), taken

    def _queued(self) -> list[bytes]:
        replies = []
        while (reply := self.device.read_message()) is not None:
            replies.append(reply)
        return replies

    def _unit_gap(self, client_gone: Callable[[], bool]) -> Callable[[], None]:
        """What runs between two units of a message: other instruments get their turn, and
        every tick the client is looked for."""
        checked_s = time.monotonic()

        def gap() -> None:
            nonlocal checked_s
            self._gate.let_others_in()
            now = time.monotonic()
            if now - checked_s >= TICK_S:
                checked_s = now
                if client_gone():
                    raise ClientGone

        return gap
