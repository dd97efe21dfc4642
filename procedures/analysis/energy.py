"""Energy delivered to the chip, from node voltages and the currents into its ports.

E = ∫ (V_m·I_in + V_c·I_bias) dt over a window: the power delivered by the input current into
node m plus that of the DC bias into node c. Below threshold the chip is linear, so a capture at
amplitude A₀ predicts the baseline at A: the input term scales as (A/A₀)² (V and I both ∝ A);
the bias term, a fixed current against a voltage ∝ A, scales as A/A₀ (and integrates to ~0
when the window covers the whole relaxation, since the circuit returns to where it started).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contracts.records import Uncertainty
from procedures.analysis.spikes import in_window
from procedures.analysis.statistics import CONFIDENCE_LEVEL
from procedures.analysis.distributions import t_quantile


def integrate_j(time_s: np.ndarray, power_w: np.ndarray, window_s: tuple[float, float] | None = None) -> float:
    """Trapezoidal ∫ P dt over the samples inside the window (0 for fewer than two samples)."""
    time_s = np.asarray(time_s, dtype=float)
    power_w = np.asarray(power_w, dtype=float)
    if window_s is not None:
        mask = in_window(time_s, window_s)
        time_s, power_w = time_s[mask], power_w[mask]
    if time_s.size < 2:
        return 0.0
    return float(np.sum(0.5 * (power_w[1:] + power_w[:-1]) * np.diff(time_s)))


@dataclass(frozen=True)
class PortEnergy:
    """Energy delivered through the input port and through the bias port (J)."""
    input_j: float
    bias_j: float

    @property
    def total_j(self) -> float:
        return self.input_j + self.bias_j


def port_energy(time_s: np.ndarray, input_node_v: np.ndarray, input_a: np.ndarray,
                bias_node_v: np.ndarray | None, bias_a: float,
                window_s: tuple[float, float] | None = None) -> PortEnergy:
    """∫ V_in·I_in dt and ∫ V_bias·I_bias dt over the window."""
    input_j = integrate_j(time_s, np.asarray(input_node_v) * np.asarray(input_a), window_s)
    bias_j = 0.0 if bias_node_v is None else integrate_j(time_s, np.asarray(bias_node_v) * bias_a, window_s)
    return PortEnergy(input_j, bias_j)


def baseline_j(reference: PortEnergy, amplitude_a: float, reference_amplitude_a: float) -> float:
    """The linear (sub-threshold) energy at amplitude_a predicted from a capture at A₀."""
    if reference_amplitude_a == 0:
        return 0.0
    ratio = amplitude_a / reference_amplitude_a
    return ratio**2 * reference.input_j + ratio * reference.bias_j


def spike_energy_j(measured: PortEnergy, reference: PortEnergy, amplitude_a: float,
                   reference_amplitude_a: float) -> float:
    """Energy of a spike: what was delivered minus the linear baseline at the same amplitude."""
    return measured.total_j - baseline_j(reference, amplitude_a, reference_amplitude_a)


def ratio_uncertainty(energies_j, counts, level: float = CONFIDENCE_LEVEL) -> Uncertainty:
    """Interval on R = Σ energy / Σ count over N captures (energy per spike when captures hold
    different numbers of spikes): the ratio estimator's linearised standard error
    √(Σ(e − R·n)² / (N(N−1))) / mean(n), with a Student t quantile at N − 1 degrees of freedom.
    NaN bounds below two captures or without a count."""
    e = np.asarray(energies_j, dtype=float)
    n = np.asarray(counts, dtype=float)
    keep = np.isfinite(e) & np.isfinite(n)
    e, n = e[keep], n[keep]
    size = int(e.size)
    method = f"ratio estimator, linearised standard error, Student t interval (N = {size} captures)"
    if size < 2 or n.sum() <= 0:
        return Uncertainty(method, level, math.nan, math.nan, math.nan)
    ratio = e.sum() / n.sum()
    standard = math.sqrt(np.sum((e - ratio * n) ** 2) / (size * (size - 1))) / n.mean()
    half = t_quantile(0.5 + level / 2, size - 1) * standard
    return Uncertainty(method, level, ratio - half, ratio + half, standard)


def combined_uncertainty(estimate: float, parts, level: float = CONFIDENCE_LEVEL,
                         method: str = "Student t interval") -> Uncertainty:
    """Student t interval on a sum of independent estimates, from each one's standard
    uncertainty and degrees of freedom [(standard, dof), ...]: standard = √Σu², degrees of
    freedom by Welch–Satterthwaite (an energy above the baseline: the mean of the captures'
    energies and the baseline's mean, each from its own captures). NaN bounds when a part is
    not finite or has no degree of freedom."""
    parts = [(float(u), int(dof)) for u, dof in parts]
    if not parts or any(not math.isfinite(u) or dof < 1 for u, dof in parts):
        return Uncertainty(method, level, math.nan, math.nan, math.nan)
    variance = sum(u**2 for u, _ in parts)
    if variance == 0.0:
        return Uncertainty(method, level, estimate, estimate, 0.0)
    dof = variance**2 / sum(u**4 / d for u, d in parts)
    half = t_quantile(0.5 + level / 2, dof) * math.sqrt(variance)
    return Uncertainty(method, level, estimate - half, estimate + half, math.sqrt(variance))
