"""The safe envelope of each instrument, from the station file, checked before any write.

A request outside the envelope raises `EnvelopeError` naming the limit, the value and the
station file; the caller must check before it writes anything, so a refusal changes nothing.

The station states a pulse generator's limits where they matter, at the chip
(`pulse_current_max_a`); its driver speaks generator volts only and is held to the envelope
contracts.wiring derives for its channel (`GENERATOR_FIELDS`), whose refusals name both the
volts and the chip-side limit they stand for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

#: The limits each role may declare (all SI, names carry the unit).
ENVELOPE_FIELDS: dict[str, tuple[str, ...]] = {
    "temperature_controller": ("temperature_min_k", "temperature_max_k", "setpoint_ramp_max_k_per_min"),
    "pulse_generator": ("pulse_current_max_a", "pulse_width_max_s", "amplitude_max_v"),
    "oscilloscope": ("input_range_max_v",),
    "bias_source": ("bias_current_max_a", "bias_ramp_max_a_per_s", "compliance_max_v"),
}
#: What a pulse generator's driver is held to, in its own units: `pulse_amplitude_max_v` is the
#: least of the station's `amplitude_max_v` and `pulse_current_max_a` through the wiring
#: (contracts.wiring derives it). No station file states these.
GENERATOR_FIELDS = ("pulse_amplitude_max_v", "pulse_width_max_s")


class EnvelopeError(ValueError):
    """A request outside the station's safe envelope. Nothing was written."""


@dataclass(frozen=True)
class DerivedLimit:
    """Where a limit in instrument units comes from, for the refusal that names it."""
    #: The station limits it is the least of, as text ("pulse_current_max_a = 0.00015 A at the chip, …").
    sources: str
    #: A value in the limit's units as it arrives at the chip (the wiring's conversion), and its unit.
    at_chip: Callable[[float], float] | None = None
    chip_unit: str = ""


@dataclass(frozen=True)
class Envelope:
    role: str
    limits: dict[str, float] = field(default_factory=dict)
    where: str = "station file"
    #: Limits derived from the station's through the wiring (GENERATOR_FIELDS), by name.
    derived: Mapping[str, DerivedLimit] = field(default_factory=dict)

    def limit(self, name: str) -> float | None:
        return self.limits.get(name)

    def check_consistent(self, fail: Callable[[str, str], Exception]) -> None:
        low, high = self.limits.get("temperature_min_k"), self.limits.get("temperature_max_k")
        if low is not None and high is not None and low >= high:
            raise fail("temperature_min_k", f"must be below temperature_max_k ({low} >= {high})")

    def _refuse(self, what: str, value: float, unit: str, name: str, bound: str) -> EnvelopeError:
        derived = self.derived.get(name)
        if derived is None:
            return EnvelopeError(
                f"refused: {what} {value:.6g} {unit} is {bound} the safe envelope "
                f"({name} = {self.limits[name]:.6g} {unit}, {self.where}); nothing was written")
        at_chip = ("" if derived.at_chip is None
                   else f" ({derived.at_chip(value):.6g} {derived.chip_unit} at the chip)")
        return EnvelopeError(
            f"refused: {what} {value:.6g} {unit}{at_chip} is {bound} the safe envelope "
            f"({name} = {self.limits[name]:.6g} {unit}, from {derived.sources}; {self.where}); nothing was written")

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

    def check_generator_level(self, level_v: float) -> None:
        """A level a pulse generator would put out, against the envelope derived for its channel.

        An envelope holding limits the generator cannot check in volts (the station's own, with
        `pulse_current_max_a` at the chip) refuses every level: a driver given the wrong one
        stops rather than writing unchecked."""
        self.check_finite(level_v, "pulse amplitude at the generator", "V")
        foreign = sorted(set(self.limits) - set(GENERATOR_FIELDS))
        if foreign:
            raise EnvelopeError(
                f"refused: the pulse generator's envelope states {', '.join(foreign)} ({self.where}), which it "
                "cannot check in volts; it needs the envelope contracts.wiring derives for its channel "
                "(pulse_amplitude_max_v); nothing was written")
        self.check_at_most("pulse_amplitude_max_v", level_v, "pulse amplitude at the generator", "V")

    def check_generator_pulse(self, *, amplitude_v: float, width_s: float) -> None:
        """A pulse request at a generator, in its own units (see `check_generator_level`)."""
        self.check_generator_level(amplitude_v)
        self.check_at_most("pulse_width_max_s", width_s, "pulse width", "s")

    def check_pulse(self, *, amplitude_v: float, width_s: float, chip_current_a: float | None) -> None:
        """A pulse request against the station's limits: at the generator and at the chip."""
        self.check_at_most("amplitude_max_v", amplitude_v, "pulse amplitude at the generator", "V")
        self.check_at_most("pulse_width_max_s", width_s, "pulse width", "s")
        if chip_current_a is not None:
            self.check_at_most("pulse_current_max_a", chip_current_a, "pulse current at the chip", "A")
