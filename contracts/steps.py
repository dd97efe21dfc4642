"""The steps a procedure's plan yields. Frozen dataclasses with SI units in their names.

A plan is a generator: it yields a step, the runner carries it out against the roles and sends
back the reply (documented per step), so a plan can react to what it measured. The same plan
walks in a dry run, where replies are stand-ins, to list its steps, check them against the
safety envelope and estimate its duration before any instrument is touched. Quantities at the
chip (currents, node voltages) are converted to and from instrument units by the runner,
through the station's wiring.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contracts.records import Quantized, Result, TableRows, TraceBlock


@dataclass(frozen=True)
class SetTemperature:
    """Regulate the stage at setpoint_k (ramping the setpoint at ramp_k_per_min). Reply: None."""
    setpoint_k: float
    ramp_k_per_min: float | None = None


@dataclass(frozen=True)
class ReadTemperature:
    """Reply: the stage temperature in K."""


@dataclass(frozen=True)
class WaitTemperatureStable:
    """Wait until the stage stays within tolerance_k of setpoint_k for hold_s.

    Reply: the final temperature (K). Raises if timeout_s passes first."""
    setpoint_k: float
    tolerance_k: float
    hold_s: float
    timeout_s: float
    poll_s: float = 5.0


@dataclass(frozen=True)
class SetBias:
    """Ramp the bias current into the chip to current_a at ramp_a_per_s. Reply: None.

    `port`: the chip port (a synapse's `weight`, a second neuron's `bias_post`) whose bias source
    ramps; None: the neuron's bias, the station's primary bias line."""
    current_a: float
    ramp_a_per_s: float
    port: str | None = None


@dataclass(frozen=True)
class CycleBias:
    """Ramp the bias to 0 A, hold dwell_s, read the port there, ramp back to the present level:
    what frees a latched nanowire (one stuck resistive by its own bias current's heat).

    Reply: the port voltage read at 0 A (V), which should be ~0 V."""
    dwell_s: float = 0.1


@dataclass(frozen=True)
class MeasureBiasVoltage:
    """Reply: the voltage across the chip's bias port (V), line resistance removed.

    `port`: the further chip port (a synapse's `weight`) whose source reads; None: the neuron's
    bias. A superconducting port reads ~0 V; a wire held resistive shows its voltage."""
    port: str | None = None


@dataclass(frozen=True)
class SweepBias:
    """Let the bias source step through levels_a itself, dwell_s per level, one reading each.

    Reply: np.ndarray of the voltages across the chip's bias port (V, line resistance
    removed), one per level. The steepest step (from the present bias on) over dwell_s must
    respect the ramp limit. The bias stays at the last level."""
    levels_a: tuple[float, ...]
    dwell_s: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels_a", tuple(float(v) for v in np.asarray(self.levels_a, dtype=float).ravel()))


@dataclass(frozen=True)
class ConfigurePulses:
    """A burst of `count` input pulses of current_a at the chip, fired by `FirePulses`.

    Reply: None. The runner converts current to generator volts through the wiring."""
    current_a: float
    width_s: float
    edge_s: float
    period_s: float
    count: int = 1


@dataclass(frozen=True)
class ConfigureDcInput:
    """A constant input current current_a into the chip's input port. Reply: None."""
    current_a: float


@dataclass(frozen=True)
class SetInputEnabled:
    """Connect or disconnect the input pulse generator. Reply: None."""
    enabled: bool


@dataclass(frozen=True)
class ConfigureCapture:
    """Scope set-up in chip units: which chip nodes to record, the record and the trigger.

    node_ranges_v gives each recorded chip node's full-scale range at the chip (the runner
    scales it by the readout gain). The input current is always recorded through the input
    monitor with full scale input_range_a. The trigger is on the input monitor
    (`trigger_on="input"`, `trigger_level` a fraction of the configured pulse current) or on a
    chip node (`trigger_on="<node>"`, `trigger_level` in volts at the chip). Reply: None."""
    node_ranges_v: Mapping[str, float]
    input_range_a: float
    record_length: int
    sample_rate_hz: float
    pretrigger_s: float
    trigger_on: str = "input"
    trigger_level: float = 0.5
    average_count: int = 1


@dataclass(frozen=True)
class Capture:
    """Arm one acquisition, fire the input burst (if fire=True) and fetch the record.

    Reply: `ChipTraces`, or None when no trigger came within timeout_s (lab time, as every
    duration a procedure gives: on an emulated station the wait is that over its acceleration)."""
    fire: bool = True
    timeout_s: float = 2.0


@dataclass(frozen=True)
class ChipTraces:
    """A scope record scaled back to the chip through the wiring."""
    time_s: np.ndarray                       # relative to the trigger
    node_voltage_v: Mapping[str, np.ndarray]  # chip node -> volts at the chip
    input_a: np.ndarray                      # current into the chip's input port
    #: the same records as ADC codes scaled to the chip (what the archive keeps), when the scope gave them
    node_quantized: Mapping[str, Quantized] = field(default_factory=dict)
    input_quantized: Quantized | None = None


@dataclass(frozen=True)
class Wait:
    """Let lab time pass (through the station's clock). Reply: None."""
    duration_s: float


@dataclass(frozen=True)
class Archive:
    """Hand a record (traces, table rows, result) to the archive. Reply: None."""
    record: TraceBlock | TableRows | Result


@dataclass(frozen=True)
class Progress:
    """Tell the runner how far the plan is (0..1, in the procedure's own units: events collected
    of events wanted, widths measured of widths planned) and what it is doing (a person reads
    `message` beside the bar). Between two reports the runner moves the bar by the dry run's
    expected time of the steps carried out, and never back. Reply: None."""
    fraction: float
    message: str = ""


@dataclass(frozen=True)
class Note:
    """Free metadata for the run record (e.g. a derived setting). Reply: None."""
    values: Mapping[str, Any] = field(default_factory=dict)


Step = (SetTemperature | ReadTemperature | WaitTemperatureStable | SetBias | CycleBias | MeasureBiasVoltage | SweepBias
        | ConfigurePulses | ConfigureDcInput | SetInputEnabled | ConfigureCapture | Capture | Wait
        | Archive | Progress | Note)
Plan = Generator[Step, Any, None]
