"""First come, first served access to a bench's lock for the TCP server's threads.

Every instrument of a bench shares one world and so one lock. A plain lock is not fair: a
thread that releases it and takes it again at once (between the units of a long message) wins
nearly every time, and the other instruments wait for the whole message. The gate hands the
lock out in arrival order, and `let_others_in` (called between units) steps aside only when
someone is waiting, so an uncontended message pays one comparison per unit.

Only threads that go through the gate queue; anything else taking the bench lock directly (the
in-process backend) still just waits for it.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any


class BenchGate:
    """Ticket lock in front of `lock`. Not re-entrant: a holder must not enter it again."""

    def __init__(self, lock: AbstractContextManager[Any] | None = None) -> None:
        self._lock = lock if lock is not None else threading.RLock()
        self._turns = threading.Condition(threading.Lock())
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> BenchGate:
        self._acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release()

    @property
    def waiting(self) -> int:
        """Threads queued behind the holder."""
        with self._turns:
            return max(0, self._next_ticket - self._serving - 1)

    def let_others_in(self) -> None:
        """Called by the holder: if anyone is queued, let them all have a turn, then resume."""
        if self.waiting:
            self._release()
            self._acquire()

    def _acquire(self) -> None:
        with self._turns:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._turns.wait()
        self._lock.__enter__()

    def _release(self) -> None:
        self._lock.__exit__(None, None, None)
        with self._turns:
            self._serving += 1
            self._turns.notify_all()
