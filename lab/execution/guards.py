"""The stage temperature a run measures at: a window checked while measuring.

A capture, a bias sweep or a bias reading is a measurement at the stage temperature; one taken
while the stage is outside its window (a fridge excursion, a heater fault) would be archived as
if it were not. So before and after each measurement (at most every `check_interval_s` of lab
time) the run reads the stage. Outside the window it stops measuring: the executor ramps the
bias to 0 A and switches the input off (a wire above Tc with bias on only heats), waits for the
stage to be back inside for `excursion_hold_s`, restores both and takes the measurement again
(at most `retakes` times in a row); if the stage is not back
within `excursion_wait_s` the run fails, saying where the stage went. Readings are
`check_interval_s` apart: measurements taken since the last reading inside are kept.

Two readings cannot see an excursion that begins and ends between them, within one long
measurement (a bias sweep of thousands of lab seconds). So around each measurement the run also
uses the temperature controller's own min/max capture (Lake Shore 336: `MNMXRST` before,
`MDAT?` after; the role verbs `reset_temperature_extremes`, `temperature_extremes_k`): the
controller follows the stage between the two, and a lowest or highest temperature outside the
window is an excursion exactly like a reading outside it, said to be caught by the capture. A
controller without one (NoExtremesCapture, e.g. the Lake Shore 372) leaves the readings alone
doing it; the run's record says so, once, at its first measurement.

The window is the station file's `guards.temperature_window_k` (default: the temperature
controller's envelope), narrowed to setpoint ± tolerance once a run has waited for a setpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from contracts.clock import LabTime
from contracts.files.station import GuardSettings
from contracts.roles import NoExtremesCapture


class TemperatureExcursionError(RuntimeError):
    """The stage left its window and did not come back in time."""


@dataclass(frozen=True)
class Excursion:
    """The stage found outside its window: by a reading, or by the controller's min/max capture
    over a measurement (`extreme` "highest" or "lowest")."""

    temperature_k: float
    extreme: str = ""

    @property
    def captured(self) -> bool:
        return bool(self.extreme)

    def found(self) -> str:
        """How it was found, for messages: "read 5 K" or "highest 5.93 K in the min/max capture"."""
        if not self.captured:
            return f"read {self.temperature_k:.4g} K"
        return f"{self.extreme} {self.temperature_k:.4g} K in the min/max capture"


class TemperatureWatch:
    """Reads the stage through the temperature controller role, on the lab clock."""

    def __init__(self, settings: GuardSettings, controller, clock: LabTime) -> None:
        self.settings = settings
        self.controller = controller
        self.clock = clock
        self.window_k = settings.temperature_window_k
        self._held_at: tuple[float, float] | None = None
        self._last_check_s: float | None = None
        #: Why the controller's min/max capture is not used ("" while it is, or before the first try).
        self.no_capture = ""
        self._capturing = False

    def hold_at(self, setpoint_k: float, tolerance_k: float) -> None:
        """The run waited for setpoint_k: measure only within the tolerance of it, inside the
        station's window (which a setpoint may lie outside: see measurable)."""
        tolerance_k = max(tolerance_k, self.settings.temperature_tolerance_k)
        low_k, high_k = self.settings.temperature_window_k
        self.window_k = (max(low_k, setpoint_k - tolerance_k), min(high_k, setpoint_k + tolerance_k))
        self._held_at = (setpoint_k, tolerance_k)

    def measurable(self) -> None:
        """TemperatureExcursionError when the run holds a setpoint outside the station's window:
        a measurement there could never be taken (a warm-up that measures nothing is fine)."""
        if self.window_k[0] > self.window_k[1]:
            setpoint_k, tolerance_k = self._held_at
            low_k, high_k = self.settings.temperature_window_k
            raise TemperatureExcursionError(
                f"the run holds the stage at {setpoint_k:g} K ± {tolerance_k:g} K, outside the station's "
                f"measurement window [{low_k:g}, {high_k:g}] K (guards.temperature_window_k): no measurement "
                "can be taken there")

    def release(self) -> None:
        """A new setpoint is on its way: back to the station's window."""
        self.window_k, self._held_at = self.settings.temperature_window_k, None

    def outside(self) -> float | None:
        """Before a measurement: the stage temperature if it lies outside the window. Read every
        time while the controller's min/max capture guards the measurements (so the exchanges
        with the controller do not depend on timing: a recorded session replays), else when a
        reading is due."""
        temperature_k = self._reading() if self._capturing else self._due_reading()
        return None if temperature_k is None or self._inside(temperature_k) else temperature_k

    def _reading(self) -> float:
        self._last_check_s = self.clock.now_s()
        return self.controller.read_temperature_k()

    def _due_reading(self) -> float | None:
        """A reading of the stage, if one is due (check_interval_s after the last)."""
        now_s = self.clock.now_s()
        if self._last_check_s is not None and now_s - self._last_check_s < self.settings.check_interval_s:
            return None
        return self._reading()

    # --- the controller's min/max capture around one measurement --------------------------------
    def start_capture(self) -> str:
        """Before a measurement: the controller's min/max capture starts afresh. Returns why
        there is none the first time that turns out (the caller says so, once), else ""."""
        if self.no_capture:
            return ""
        self._capturing = False
        reset = getattr(self.controller, "reset_temperature_extremes", None)
        try:
            if reset is None:
                raise NoExtremesCapture(f"the temperature controller ({type(self.controller).__name__}) "
                                        "offers no min/max capture")
            reset()
        except NoExtremesCapture as missing:
            self.no_capture = str(missing) or type(missing).__name__
            return self.no_capture
        self._capturing = True
        return ""

    def after_measurement(self) -> Excursion | None:
        """After a measurement: the capture's lowest or highest temperature since start_capture
        outside the window (the one further out); without a capture, the reading (if due)
        outside it."""
        if not self._capturing:
            reading_k = self._due_reading()
            return Excursion(reading_k) if reading_k is not None and not self._inside(reading_k) else None
        self._capturing = False
        low_k, high_k = self.controller.temperature_extremes_k()
        outside = [(high_k, "highest"), (low_k, "lowest")]
        outside = [(k, which) for k, which in outside if not self._inside(k)]
        if not outside:
            return None
        temperature_k, which = max(outside, key=lambda found: self._distance_k(found[0])
                                   if math.isfinite(found[0]) else math.inf)
        return Excursion(temperature_k, extreme=which)

    def wait_back(self, left_at_k: float, found: str = "") -> tuple[float, float]:
        """Poll until the stage has been inside for excursion_hold_s; (lab seconds waited,
        temperature). TemperatureExcursionError once excursion_wait_s has passed; `found` says
        how the excursion was found (Excursion.found; default "read <left_at_k> K")."""
        s = self.settings
        # Several readings over the hold, but never faster than the check interval's own pace.
        poll_s = min(s.check_interval_s, s.excursion_hold_s / 5) or s.check_interval_s
        held, waited_s, readings_k = hold_inside(self.controller.read_temperature_k, self._inside, self.clock,
                                                 hold_s=s.excursion_hold_s, timeout_s=s.excursion_wait_s,
                                                 poll_s=poll_s)
        if not held:
            furthest_k = max([left_at_k, *readings_k], key=self._distance_k)
            raise TemperatureExcursionError(
                f"the stage left its measurement window {self.describe_window()} "
                f"({found or f'read {left_at_k:.4g} K'}, "
                f"furthest {furthest_k:.4g} K) and was not back for {s.excursion_hold_s:g} s within "
                f"{s.excursion_wait_s:g} s of lab time (last reading {readings_k[-1]:.4g} K); bias left at 0 A")
        self._last_check_s = self.clock.now_s()
        return waited_s, readings_k[-1]

    def describe_window(self) -> str:
        low_k, high_k = self.window_k
        return f"[{low_k:.4g}, {high_k:.4g}] K"

    def _distance_k(self, temperature_k: float) -> float:
        low_k, high_k = self.window_k
        return max(low_k - temperature_k, temperature_k - high_k, 0.0)

    def _inside(self, temperature_k: float) -> bool:
        low_k, high_k = self.window_k
        return math.isfinite(temperature_k) and low_k <= temperature_k <= high_k


def hold_inside(read_k: Callable[[], float], inside: Callable[[float], bool], clock: LabTime, *,
                hold_s: float, timeout_s: float, poll_s: float) -> tuple[bool, float, list[float]]:
    """Read every poll_s of lab time until the readings have been `inside` for hold_s, or
    timeout_s has passed: (held, lab seconds waited, the readings in order)."""
    start_s = clock.now_s()
    inside_since_s = None
    readings_k: list[float] = []
    while True:
        readings_k.append(read_k())
        now_s = clock.now_s()
        if inside(readings_k[-1]):
            inside_since_s = now_s if inside_since_s is None else inside_since_s
            if now_s - inside_since_s >= hold_s:
                return True, now_s - start_s, readings_k
        else:
            inside_since_s = None
        if now_s - start_s > timeout_s:
            return False, now_s - start_s, readings_k
        clock.sleep(poll_s)
