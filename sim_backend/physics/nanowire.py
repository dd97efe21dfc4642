"""Electrothermal nanowire model (physics.md §2; S3 as coded in S5 `nanowireDynamic`).

Parameters are a frozen dataclass; every derived quantity is a pure function of it and of the
substrate temperature. Conventions:

* Jc is the critical current density *at* ``jc_reference_temperature_k`` (the S5 ≤2020 convention
  takes Jc at Tsub = 2 K with no temperature factor). The zero-temperature switching current is
  therefore I_sw(0) = C·Jc·w·d / (1−(T_ref/Tc)²)^{3/2} and I_sw(T) = I_sw(0)·(1−(T/Tc)²)^{3/2}
  (§2.5), so I_sw(T_ref) = C·Jc·w·d exactly. Jc(T) follows the same factor.
* The Stekly parameter and the hotspot current use the same temperature:
  ψ(T) = R□(Jc(T)·d)²/(h_c(Tc−T)) and I_hs(T) = √(2/ψ(T))·I_sw(T).
* Kinetic inductance is taken as temperature independent (the ≤2020 model has no L(T)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


# L□ = 1.38 ps·K · R□ / Tc  (ħ/(π·1.76·k_B) = 1.38e-12 s·K)
KINETIC_INDUCTANCE_CONSTANT_S_K = 1.38e-12
# Retrap variant (a) compares the hotspot voltage with I_hs times this resistance (S5 ≤2020).
RETRAP_REFERENCE_RESISTANCE_OHM = 1.0

# The L(I) fit diverges at I = I_sw/0.6; beyond 0.99/0.6·I_sw it is held (L ≤ 6.6·L₀).
MAX_FIT_RATIO = 0.99 / 0.6

RetrapMode = Literal["voltage", "current"]


@dataclass(frozen=True)
class NanowireParams:
    """One superconducting nanowire. Defaults are the S5 `nanowireDynamic` (NbN-like) values.

    ``retrap``: "voltage" = variant (a), S5 ≤2020 (default): back to superconducting when
    max(R,0)·|I| < I_hs·1 Ω; "current" = variant (b), S5 2025: when |I| < I_hs.
    ``sigma_isw_a``: standard deviation of the per-attempt switching threshold (0 = deterministic).
    """

    inductance_h: float = 100e-9
    width_m: float = 100e-9
    thickness_m: float = 4e-9
    sheet_resistance_ohm: float = 400.0
    tc_k: float = 10.5
    jc_a_per_m2: float = 5e10
    jc_reference_temperature_k: float = 2.0
    constriction: float = 1.0
    thermal_conductivity_w_per_m_k: float = 0.108
    heat_capacity_j_per_m3_k: float = 4400.0
    boundary_conductance_w_per_m2_k: float = 5e4
    delta: float = 0.005
    nonlinear_inductance: bool = False
    retrap: RetrapMode = "voltage"
    sigma_isw_a: float = 0.0

    def __post_init__(self) -> None:
        positive = (
            "inductance_h", "width_m", "thickness_m", "sheet_resistance_ohm", "tc_k",
            "jc_a_per_m2", "constriction", "thermal_conductivity_w_per_m_k",
            "heat_capacity_j_per_m3_k", "boundary_conductance_w_per_m2_k", "delta",
        )
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"NanowireParams.{name} must be a positive finite number, got {value!r}")
        if not 0 <= self.jc_reference_temperature_k < self.tc_k:
            raise ValueError("NanowireParams.jc_reference_temperature_k must lie in [0, tc_k)")
        if not (math.isfinite(self.sigma_isw_a) and self.sigma_isw_a >= 0):
            raise ValueError(f"NanowireParams.sigma_isw_a must be >= 0, got {self.sigma_isw_a!r}")
        if self.retrap not in ("voltage", "current"):
            raise ValueError(f"NanowireParams.retrap must be 'voltage' or 'current', got {self.retrap!r}")


def _temperature_factor(t_k: float, tc_k: float) -> float:
    if t_k >= tc_k:
        return 0.0
    return (1.0 - (t_k / tc_k) ** 2) ** 1.5


def switching_current_a(p: NanowireParams, temperature_k: float | None = None) -> float:
    """I_sw(T) = I_sw(0)·(1−(T/Tc)²)^{3/2}; at the Jc reference temperature it is C·Jc·w·d."""
    t_k = p.jc_reference_temperature_k if temperature_k is None else temperature_k
    isw_ref_a = p.constriction * p.jc_a_per_m2 * p.width_m * p.thickness_m
    return isw_ref_a * _temperature_factor(t_k, p.tc_k) / _temperature_factor(
        p.jc_reference_temperature_k, p.tc_k
    )


def inductance_per_square_h(p: NanowireParams) -> float:
    """L□ = 1.38 ps·K · R□ / Tc."""
    return KINETIC_INDUCTANCE_CONSTANT_S_K * p.sheet_resistance_ohm / p.tc_k


def squares(p: NanowireParams) -> float:
    """Number of squares n = L_k / L□ (the wire is specified by its inductance, as in S5 ≤2020)."""
    return p.inductance_h / inductance_per_square_h(p)


def length_m(p: NanowireParams) -> float:
    return squares(p) * p.width_m


def normal_resistance_ohm(p: NanowireParams) -> float:
    """R_n = R□·n: the cap on the hotspot resistance and the wire's resistance above Tc."""
    return p.sheet_resistance_ohm * squares(p)


def stekly_parameter(p: NanowireParams, temperature_k: float | None = None) -> float:
    """ψ(T) = R□(Jc(T)·d)²/(h_c(Tc−T))."""
    t_k = p.jc_reference_temperature_k if temperature_k is None else temperature_k
    if t_k >= p.tc_k:
        return 0.0
    jc_t = switching_current_a(p, t_k) / (p.constriction * p.width_m * p.thickness_m)
    return p.sheet_resistance_ohm * (jc_t * p.thickness_m) ** 2 / (
        p.boundary_conductance_w_per_m2_k * (p.tc_k - t_k)
    )


def hotspot_current_a(p: NanowireParams, temperature_k: float | None = None) -> float:
    """I_hs(T) = √(2/ψ(T))·I_sw(T) (= w·√(2h_c(Tc−T)/R□) for C = 1); 0 above Tc."""
    psi = stekly_parameter(p, temperature_k)
    if psi <= 0.0:
        return 0.0
    return math.sqrt(2.0 / psi) * switching_current_a(p, temperature_k)


def characteristic_velocity_m_per_s(p: NanowireParams) -> float:
    """v₀ = √(h_c·κ/d)/c_v."""
    return math.sqrt(
        p.boundary_conductance_w_per_m2_k * p.thermal_conductivity_w_per_m_k / p.thickness_m
    ) / p.heat_capacity_j_per_m3_k


def growth_prefactor_ohm_per_s(p: NanowireParams) -> float:
    """2R□v₀/w: dR/dt = this · u(i)."""
    return 2.0 * p.sheet_resistance_ohm * characteristic_velocity_m_per_s(p) / p.width_m


def boundary_velocity_factor(x_hs: float, delta: float) -> float:
    """u(i) = (ψi²−2)/(√max(ψi²−1,0)+δ), written with ψi² = 2·(I/I_hs)² (x_hs = I/I_hs); the
    solver's own function, so that the law is written once."""
    from sim_backend.physics._kernel_network import boundary_velocity  # it imports this module

    return float(boundary_velocity(float(x_hs), float(delta)))


def growth_rate_ohm_per_s(p: NanowireParams, current_a: float, temperature_k: float | None = None) -> float:
    """dR_hs/dt in the resistive state at a given current (ValueError at or above Tc: no hotspot)."""
    ihs = hotspot_current_a(p, temperature_k)
    if ihs <= 0.0:
        t_k = p.jc_reference_temperature_k if temperature_k is None else temperature_k
        raise ValueError(f"no hotspot growth at {t_k:g} K: at or above Tc = {p.tc_k:g} K the wire is normal")
    return growth_prefactor_ohm_per_s(p) * boundary_velocity_factor(abs(current_a) / ihs, p.delta)


def inductance_ratio(current_a: float, isw_a: float) -> float:
    """L(I)/L₀ = 1/(2cos(0.67·asin(0.6·I/I_sw))−1) (S5 empirical fit; |I|/I_sw held at
    MAX_FIT_RATIO above it); the solver's own fit, so that it is written once."""
    from sim_backend.physics._kernel_network import fit_denominator  # it imports this module

    return 1.0 / fit_denominator(min(abs(float(current_a)) / float(isw_a), MAX_FIT_RATIO))


def flux_wb(p: NanowireParams, current_a: float, isw_a: float | None = None) -> float:
    """Φ(I) = L(I)·I (linear wires: L₀·I). I_sw for the fit is the reference-temperature value;
    the solver's own flux."""
    from sim_backend.physics._kernel_network import flux  # it imports this module

    isw = switching_current_a(p) if isw_a is None else isw_a
    return float(flux(p.inductance_h, int(p.nonlinear_inductance), float(isw), float(current_a)))


def stored_energy_j(p: NanowireParams, current_a: float) -> float:
    """∫₀^I I' dΦ(I') (= ½L₀I² for linear wires)."""
    return inductive_energy_j(p.inductance_h, p.nonlinear_inductance, switching_current_a(p), current_a)


def inductive_energy_j(l0_h: float, nonlinear: bool, isw_a: float, current_a: float) -> float:
    """∫₀^I I' dΦ(I') = I·Φ(I) − ∫₀^I Φ(I') dI' (= ½L₀I² for linear wires); the solver's own."""
    from sim_backend.physics._kernel_network import inductive_energy  # it imports this module

    return float(inductive_energy(float(l0_h), int(bool(nonlinear)), float(isw_a), float(current_a)))
