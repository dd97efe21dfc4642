"""The run's clock. Procedures never sleep or read the wall clock: they wait through this.

On real instruments lab time is wall time. On an emulated station it runs `acceleration` times
faster (the station file's `clock.acceleration`, the same number the emulator runs on).
"""

from __future__ import annotations

import time


class LabTime:
    def __init__(self, acceleration: float = 1.0) -> None:
        if acceleration <= 0:
            raise ValueError(f"clock acceleration must be > 0, got {acceleration!r}")
        self.acceleration = acceleration
        self._origin = time.monotonic()

    def now_s(self) -> float:
        """Lab seconds since the clock was made."""
        return (time.monotonic() - self._origin) * self.acceleration

    def wall_s(self, duration_s: float) -> float:
        """The wall time duration_s of lab time takes."""
        return duration_s / self.acceleration

    def sleep(self, duration_s: float) -> None:
        """Let duration_s of lab time pass."""
        if duration_s > 0:
            time.sleep(self.wall_s(duration_s))
