"""One small Protocol per instrument role. Procedures talk to these; drivers satisfy them.

Drivers satisfy the Protocols structurally (they need not import `lab`), so the same
procedure runs against any model that fills the role, real or emulated. Every verb carries its
units in its name; every role can be brought to a safe state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from contracts.records import Quantized


def role_key(role: str, chip_port: str | None = None) -> str:
    """Where a run's roles mapping holds the driver filling `role`: under the role's name for the
    instrument on its primary path (chip_port None), under `<role>:<chip_port>` for an instrument
    driving a further chip port (a synapse's weight source)."""
    return role if chip_port is None else f"{role}:{chip_port}"


class NoExtremesCapture(RuntimeError):
    """The temperature controller keeps no capture of its control sensor's lowest and highest
    reading (its text says why): the stage can only be read, reading by reading."""


@runtime_checkable
class TemperatureController(Protocol):
    """Holds the sample stage at a temperature (Lake Shore 336, 372)."""

    def read_temperature_k(self) -> float:
        """The control sensor's temperature now."""

    def set_setpoint_k(self, temperature_k: float, *, ramp_k_per_min: float | None = None) -> None:
        """Regulate at temperature_k, ramping the setpoint at ramp_k_per_min (None: step)."""

    def heater_output_pct(self) -> float:
        """Heater output in percent of the active range."""

    def reset_temperature_extremes(self) -> None:
        """Start the controller's own capture of the control sensor's lowest and highest
        temperature afresh (a min/max capture, kept by the instrument between readings);
        writes no level. NoExtremesCapture when the controller keeps none."""

    def temperature_extremes_k(self) -> tuple[float, float]:
        """(lowest, highest) temperature of the control sensor since reset_temperature_extremes,
        as the controller captured it, however briefly it was there. NoExtremesCapture when the
        controller keeps no such capture."""

    def safe_state(self) -> None:
        """Heater off (range 0): the stage drifts to the cryocooler's base temperature."""


@runtime_checkable
class PulseGenerator(Protocol):
    """Fires input pulses into the chip (Keysight 33500B/33600A, 81160A)."""

    def configure_pulse(
        self, *, amplitude_v: float, width_s: float, edge_s: float, period_s: float, count: int,
    ) -> None:
        """A burst of `count` pulses from 0 V to amplitude_v at the generator's output, started
        by `trigger()`; edge_s is the 10-90 % transition of both edges."""

    def configure_dc(self, *, level_v: float) -> None:
        """A constant output level (for firing-rate measurements under DC input)."""

    def set_output_enabled(self, enabled: bool) -> None:
        """Connect or disconnect the output."""

    def trigger(self) -> None:
        """Start the configured burst now."""

    def safe_state(self) -> None:
        """Output off, level zero."""


class AcquisitionLost(RuntimeError):
    """The armed acquisition ended before its record was read: the link to the scope was
    re-established meanwhile, and re-applying its settings ends an acquisition. Capture again."""


@dataclass(frozen=True)
class Traces:
    """Scope records scaled to volts at the scope input, on a common time axis."""

    time_s: np.ndarray                       # relative to the trigger
    voltage_v: Mapping[int, np.ndarray]      # scope channel -> volts
    #: scope channel -> the same record as the ADC's codes and scaling to volts (the archive
    #: keeps the codes); empty from a scope that does not give them
    quantized_v: Mapping[int, Quantized] = field(default_factory=dict)


@runtime_checkable
class Oscilloscope(Protocol):
    """Captures the chip's output (Keysight Infiniium, Tektronix DPO/MSO 5000/7000/70000)."""

    #: bits of the ADC codes a record carries (`Traces.quantized_v`): what the archive stores per sample
    adc_bits: int

    def configure_acquisition(
        self, *, channel_ranges_v: Mapping[int, float], record_length: int, sample_rate_hz: float,
        pretrigger_s: float, trigger_channel: int, trigger_level_v: float,
        trigger_slope: Literal["rising", "falling"] = "rising", average_count: int = 1,
    ) -> None:
        """Vertical full-scale range per channel (centred on 0 V), horizontal record and trigger."""

    def arm_single(self) -> None:
        """Arm one acquisition; it completes on the next trigger."""

    def wait_acquired(self, timeout_s: float) -> bool:
        """True once the armed acquisition has completed, False if timeout_s passed first
        (no trigger); AcquisitionLost if it can no longer complete."""

    def fetch_traces(self, channels: Sequence[int]) -> Traces:
        """The last acquisition of each channel, in volts and seconds; AcquisitionLost if the
        records read may not be the armed acquisition's."""

    def safe_state(self) -> None:
        """Stop acquiring."""


@runtime_checkable
class BiasSource(Protocol):
    """DC-biases the nanowires and measures the voltage across them (Keithley 2450)."""

    def set_compliance_v(self, voltage_v: float) -> None:
        """Voltage limit while sourcing current."""

    def set_current_a(self, current_a: float, *, ramp_a_per_s: float) -> None:
        """Ramp the sourced current to current_a at no more than ramp_a_per_s."""

    def current_a(self) -> float:
        """The current being sourced now."""

    def measure_voltage_v(self) -> float:
        """One voltage reading across the load."""

    def sweep_current_a(self, levels_a: Sequence[float], *, dwell_s: float) -> np.ndarray:
        """Step the sourced current through levels_a on the instrument itself, holding each for
        dwell_s before one voltage reading; the readings, in order. The steepest step (from the
        present level on) over dwell_s is a ramp rate, refused like set_current_a's before
        anything is written. Afterwards the output is at the last level."""

    def set_output_enabled(self, enabled: bool) -> None:
        """Connect or disconnect the output (the current is ramped to zero first)."""

    def safe_state(self) -> None:
        """Bias ramped to zero, output off."""


ROLE_PROTOCOLS: dict[str, type] = {
    "temperature_controller": TemperatureController,
    "pulse_generator": PulseGenerator,
    "oscilloscope": Oscilloscope,
    "bias_source": BiasSource,
}
