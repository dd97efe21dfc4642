"""Emulated lab time: the only source of "now" inside the emulator.

Lab time runs `acceleration` times faster than wall time, so a 20-minute thermal settle takes
seconds. Tests that need exact control use `acceleration=0` and move time with `advance`.
"""

from __future__ import annotations

import threading
import time


class LabClock:
    """Monotonic lab time in seconds since the bench was built."""

    def __init__(self, acceleration: float = 1.0, *, wall_clock=time.monotonic) -> None:
        if acceleration < 0:
            raise ValueError(f"clock acceleration must be >= 0, got {acceleration!r}")
        self.acceleration = float(acceleration)
        self._wall_clock = wall_clock
        self._wall_origin_s = wall_clock()
        self._offset_s = 0.0
        self._lock = threading.Lock()

    def now_s(self) -> float:
        with self._lock:
            wall_elapsed_s = self._wall_clock() - self._wall_origin_s
            return self._offset_s + self.acceleration * wall_elapsed_s

    def advance(self, duration_s: float) -> None:
        """Move lab time forward at once (e.g. an instrument busy for a known duration)."""
        if duration_s < 0:
            raise ValueError(f"lab time cannot run backwards (advance by {duration_s!r} s)")
        with self._lock:
            self._offset_s += duration_s
