"""A source-measure unit's front panel (Keithley 2450 personality drives it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SourceFunction = Literal["current", "voltage"]


@dataclass
class SourceMeter:
    source_function: SourceFunction = "voltage"
    current_level_a: float = 0.0
    voltage_level_v: float = 0.0
    voltage_limit_v: float = 21.0       # compliance while sourcing current
    current_limit_a: float = 105e-6     # compliance while sourcing voltage
    output_enabled: bool = False
    sense_function: Literal["current", "voltage", "resistance"] = "current"
    #: Largest |current| the output has delivered since the last check (for envelope tests).
    peak_current_a: float = 0.0

    @property
    def sourced_current_a(self) -> float:
        """Current pushed into the load while sourcing current with the output on."""
        if not self.output_enabled or self.source_function != "current":
            return 0.0
        return self.current_level_a
