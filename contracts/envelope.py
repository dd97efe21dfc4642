"""The safe envelope of each instrument, from the station file, checked before any write.

A request outside the envelope raises `EnvelopeError` naming the limit, the value and the
station file; the caller must check before it writes anything, so a refusal changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

#: The limits each role may declare (all SI, names carry the unit).
ENVELOPE_FIELDS: dict[str, tuple[str, ...]] = {
    "temperature_controller": ("temperature_min_k", "temperature_max_k", "setpoint_ramp_max_k_per_min"),
    "pulse_generator": ("pulse_current_max_a", "pulse_width_max_s", "amplitude_max_v"),
    "oscilloscope": ("input_range_max_v",),
    "bias_source": ("bias_current_max_a", "bias_ramp_max_a_per_s", "compliance_max_v"),
}


class EnvelopeError(ValueError):
    """A request outside the station's safe envelope. Nothing was written."""


@dataclass(frozen=True)
class Envelope:
    role: str
    limits: dict[str, float] = field(default_factory=dict)
    where: str = "station file"

    def limit(self, name: str) -> float | None:
        return self.limits.get(name)

    def check_consistent(self, fail: Callable[[str, str], Exception]) -> None:
        low, high = self.limits.get("temperature_min_k"), self.limits.get("temperature_max_k")
        if low is not None and high is not None and low >= high:
            raise fail("temperature_min_k", f"must be below temperature_max_k ({low} >= {high})")

    def _refuse(self, what: str, value: float, unit: str, name: str, bound: str) -> EnvelopeError:
        return EnvelopeError(
            f"refused: {what} {value:.6g} {unit} is {bound} the safe envelope "
            f"({name} = {self.limits[name]:.6g} {unit}, {self.where}); nothing was written")

    def check_finite(self, value: float, what: str, unit: str) -> None:
        """Refuse NaN and infinities: every comparison with NaN is false, so no limit stops it."""
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise EnvelopeError(f"refused: {what} {value!r} {unit} is not a finite number; nothing was written")

    def check_at_most(self, name: str, value: float, what: str, unit: str) -> None:
        """Refuse |value| above the limit `name` (no limit declared: allowed)."""
        self.check_finite(value, what, unit)
        bound = self.limits.get(name)
        if bound is not None and abs(value) > bound * (1 + 1e-12):
            raise self._refuse(what, value, unit, name, "above")

    def check_temperature_k(self, temperature_k: float) -> None:
        self.check_finite(temperature_k, "setpoint", "K")
        low, high = self.limits.get("temperature_min_k"), self.limits.get("temperature_max_k")
        if low is not None and temperature_k < low:
            raise self._refuse("setpoint", temperature_k, "K", "temperature_min_k", "below")
        if high is not None and temperature_k > high:
            raise self._refuse("setpoint", temperature_k, "K", "temperature_max_k", "above")

    def check_bias(self, current_a: float, ramp_a_per_s: float) -> None:
        self.check_at_most("bias_current_max_a", current_a, "bias current", "A")
        self.check_finite(ramp_a_per_s, "bias ramp rate", "A/s")
        if ramp_a_per_s <= 0:
            raise EnvelopeError(f"refused: bias ramp rate must be > 0 A/s, got {ramp_a_per_s!r}; nothing was written")
        self.check_at_most("bias_ramp_max_a_per_s", ramp_a_per_s, "bias ramp rate", "A/s")

    def check_pulse(self, *, amplitude_v: float, width_s: float, chip_current_a: float | None) -> None:
        self.check_at_most("amplitude_max_v", amplitude_v, "pulse amplitude at the generator", "V")
        self.check_at_most("pulse_width_max_s", width_s, "pulse width", "s")
        if chip_current_a is not None:
            self.check_at_most("pulse_current_max_a", chip_current_a, "pulse current at the chip", "A")
