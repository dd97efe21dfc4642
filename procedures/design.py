"""Design values of the chip under test, read from its chip file (PlanContext.chip_design).

Plans pick their ranges from these (bisection brackets, pulse amplitudes, record lengths).
A chip file that lacks a value — or a dry run without one — falls back to the documented
defaults below, which are the scale of the reconstructed neuron of physics reference §5 C8.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Fallbacks (reference neuron C8: I_sw 20 µA, 20 µA bias, 20 Ω shunts, ~10 aJ per spike).
FALLBACK_THRESHOLD_A = 15e-6
FALLBACK_PULSE_WIDTH_S = 2e-9
FALLBACK_REFRACTORY_S = 5e-9
FALLBACK_ENERGY_J = 10e-18
FALLBACK_SWITCHING_CURRENT_A = 20e-6
FALLBACK_BIAS_A = 20e-6
FALLBACK_SPIKE_AMPLITUDE_V = 0.4e-3


def _walk(tree: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from _walk(value, path + (str(key).lower(),))
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from _walk(value, path + (str(index),))
    else:
        yield path, tree


def find_number(tree: Mapping[str, Any], *names: str, within: str | None = None) -> float | None:
    """The first finite number whose key is one of `names` (case-blind), anywhere in the tree,
    optionally only below a key containing `within`."""
    wanted = [n.lower() for n in names]
    for name in wanted:
        for path, value in _walk(tree):
            if not path or path[-1] != name:
                continue
            if within is not None and not any(within in part for part in path[:-1]):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return float(value)
    return None


def find_text(tree: Mapping[str, Any], *names: str) -> str | None:
    wanted = [n.lower() for n in names]
    for name in wanted:
        for path, value in _walk(tree):
            if path and path[-1] == name and isinstance(value, str):
                return value
    return None


@dataclass(frozen=True)
class DesignHints:
    threshold_a: float            # firing threshold for a pulse of threshold_width_s
    threshold_width_s: float
    refractory_s: float
    energy_per_spike_j: float
    switching_current_a: float    # of the wire that switches first at the bias port
    bias_a: float                 # operating DC bias into the bias port
    spike_amplitude_v: float      # at the output node
    output_node: str = "m"
    bias_node: str = "c"

    @classmethod
    def from_chip(cls, design: Mapping[str, Any] | None) -> DesignHints:
        d = design or {}

        def pick(fallback: float, *names: str, within: str | None = None) -> float:
            value = find_number(d, *names, within=within)
            return fallback if value is None or value <= 0 else value

        return cls(
            threshold_a=pick(FALLBACK_THRESHOLD_A, "threshold_a", "firing_threshold_a", "threshold_current_a"),
            threshold_width_s=pick(FALLBACK_PULSE_WIDTH_S, "threshold_pulse_width_s", "pulse_width_s",
                                   "width_s", within="threshold"),
            refractory_s=pick(FALLBACK_REFRACTORY_S, "refractory_s", "refractory_period_s",
                              "refractory_window_s"),
            energy_per_spike_j=pick(FALLBACK_ENERGY_J, "energy_per_spike_j", "spike_energy_j"),
            switching_current_a=pick(FALLBACK_SWITCHING_CURRENT_A, "bias_port_switching_current_a",
                                     "switching_current_a", "i_sw_a", "isw_a"),
            bias_a=pick(FALLBACK_BIAS_A, "bias_a", "operating_bias_a", "bias_current_a"),
            spike_amplitude_v=pick(FALLBACK_SPIKE_AMPLITUDE_V, "spike_amplitude_v", "spike_peak_v"),
            output_node=find_text(d, "output_node") or "m",
            bias_node=find_text(d, "bias_node") or "c",
        )
