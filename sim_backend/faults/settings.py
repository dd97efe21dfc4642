"""Transport faults of one emulated instrument, from its station file entry or set at run time.

Station file (`instruments.<role>.emulator.faults`), every key optional:

    reply_delay_s: 0.05      # every reply arrives this much later (real time)
    withhold_every: 7        # every 7th reply never arrives (the controller times out)
    drop_every: 50           # every 50th reply: the connection drops instead
    garble_every: 11         # every 11th reply arrives with its bytes scrambled
    truncate_every: 13       # every 13th reply arrives cut to half its length
    scpi_error_every: 17     # every 17th reply, the instrument also queues -200 "Execution error"

World-level faults are read by the bench (sim_backend/emulator.py), under the instrument they
concern:

    latch_nanowire: {element: wc, after_s: 600}          # bias source: wire stuck resistive
                                                         # (repeat: true: again whenever re-biased)
    fridge_excursion: {after_s: 900, duration_s: 300, heat_w: 2.0}   # temperature controller

At run time, `inject(*actions)` queues one-off actions for the next replies and
`set_persistent(action)` applies one to every reply until cleared. Faults that are not about the
transport live where they act: queued SCPI errors on the personality, a latched nanowire on the
chip, a fridge excursion on the temperature controller.
"""

from __future__ import annotations

import threading
from typing import Any

from sim_backend.faults.plan import DELIVER, ReplyAction, delay, drop, garble, truncate, withhold

_PERIODIC_KEYS = ("withhold_every", "drop_every", "garble_every", "truncate_every", "scpi_error_every")
WORLD_KEYS = ("latch_nanowire", "fridge_excursion")


class InstrumentFaults:
    """A FaultPlan: consulted by the transport once per reply."""

    def __init__(self, *, reply_delay_s: float = 0.0, queue_error=None, **every: int) -> None:
        self.reply_delay_s = reply_delay_s
        self.queue_error = queue_error     # the personality's error queue, for scpi_error_every
        self.every = {key: every.get(key, 0) for key in _PERIODIC_KEYS}
        self.replies = 0
        self._queued: list[ReplyAction] = []
        self._persistent: ReplyAction | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: dict[str, Any], *, where: str, queue_error=None) -> InstrumentFaults:
        unknown = set(settings) - {"reply_delay_s", *_PERIODIC_KEYS, *WORLD_KEYS}
        if unknown:
            raise ValueError(f"{where}: unknown fault {sorted(unknown)[0]!r}; "
                             f"known: reply_delay_s, {', '.join(_PERIODIC_KEYS + WORLD_KEYS)}")
        delay_s = settings.get("reply_delay_s", 0.0)
        if not isinstance(delay_s, (int, float)) or delay_s < 0:
            raise ValueError(f"{where}.reply_delay_s: must be a number >= 0, got {delay_s!r}")
        every = {}
        for key in _PERIODIC_KEYS:
            value = settings.get(key, 0)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{where}.{key}: must be a whole number >= 0, got {value!r}")
            every[key] = value
        return cls(reply_delay_s=float(delay_s), queue_error=queue_error, **every)

    def inject(self, *actions: ReplyAction) -> None:
        """Apply `actions` to the next replies, in order."""
        with self._lock:
            self._queued.extend(actions)

    def set_persistent(self, action: ReplyAction | None) -> None:
        """Apply `action` to every reply until called with None."""
        with self._lock:
            self._persistent = action

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()
            self._persistent = None

    def before_reply(self, message: bytes) -> ReplyAction:
        with self._lock:
            self.replies += 1
            if self._queued:
                return self._queued.pop(0)
            if self._persistent is not None:
                return self._persistent
            every = self.every["scpi_error_every"]
            if every and self.queue_error is not None and self.replies % every == 0:
                self.queue_error(-200, "Execution error;injected fault")
            for key, action in (("drop_every", drop), ("withhold_every", withhold), ("garble_every", garble),
                                ("truncate_every", lambda: truncate(max(len(message) // 2, 1)))):
                if self.every[key] and self.replies % self.every[key] == 0:
                    return action()     # made only when due: this runs for every reply
            return delay(self.reply_delay_s) if self.reply_delay_s else DELIVER
