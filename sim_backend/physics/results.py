"""What a transient simulation returns: ground truth for tests, benchmarks and the bench."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Mapping, NamedTuple

import numpy as np


@dataclass(frozen=True)
class CircuitState:
    """Everything needed to continue a simulation later.

    ``threshold_z``: the standard-normal draw behind each wire's current switching threshold
    (threshold = I_sw(T) + σ·z); NaN means "draw a new one" (see transient.simulate).
    """

    time_s: float = 0.0
    branch_current_a: Mapping[str, float] = field(default_factory=dict)
    hotspot_resistance_ohm: Mapping[str, float] = field(default_factory=dict)
    resistive: Mapping[str, bool] = field(default_factory=dict)
    threshold_z: Mapping[str, float] = field(default_factory=dict)


class SwitchEvent(NamedTuple):
    """A wire's transition. For a retrap, ``hotspot_energy_j`` is the energy its hotspot
    dissipated since the matching switch (NaN for switches and for a retrap whose switch
    happened in an earlier call). A named tuple: a bias sweep's simulations make ~10⁵ of them."""

    element: str
    time_s: float
    kind: Literal["switch", "retrap"]
    hotspot_energy_j: float = math.nan


@dataclass(frozen=True)
class EnergyReport:
    """Energies over the run. Balance: sum(delivered) = sum(dissipated) + stored_end − stored_start."""

    dissipated_j: Mapping[str, float]
    delivered_j: Mapping[str, float]
    stored_start_j: float
    stored_end_j: float

    @property
    def total_dissipated_j(self) -> float:
        return float(sum(self.dissipated_j.values()))

    @property
    def total_delivered_j(self) -> float:
        return float(sum(self.delivered_j.values()))

    @property
    def balance_error_j(self) -> float:
        return self.total_delivered_j - self.total_dissipated_j - (self.stored_end_j - self.stored_start_j)


@dataclass(frozen=True, eq=False)
class TransientResult:
    """Samples on ``time_s``. Branch currents cover every element (sign conventions in circuit.py).
    ``cumulative_dissipated_j`` / ``cumulative_delivered_j`` are running energy integrals from the
    start of the run, sampled on the same grid (for energy in a window: difference of two samples).
    ``hotspot_resistance_ohm``: each superconducting-capable wire's hotspot resistance (0 when
    superconducting)."""

    time_s: np.ndarray
    node_voltage_v: Mapping[str, np.ndarray]
    branch_current_a: Mapping[str, np.ndarray]
    cumulative_dissipated_j: Mapping[str, np.ndarray]
    cumulative_delivered_j: Mapping[str, np.ndarray]
    hotspot_resistance_ohm: Mapping[str, np.ndarray]
    events: tuple[SwitchEvent, ...]
    energy: EnergyReport
    final_state: CircuitState
    solver_steps: Mapping[str, int] = field(default_factory=dict)

    def switch_times_s(self, element: str) -> np.ndarray:
        return np.array([e.time_s for e in self.events if e.element == element and e.kind == "switch"])

    def retrap_events(self, element: str) -> list[SwitchEvent]:
        return [e for e in self.events if e.element == element and e.kind == "retrap"]
