"""Electrothermal nanowire parameters and the constants derived from them (physics.md §2.1-2.3).

Written independently of the emulator's model so that agreement between the two means something.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

#: Sheet kinetic inductance L_sq = 1.38 ps*K * R_sq / Tc (Mattis-Bardeen, hbar R_sq/(pi 1.76 k_B Tc)).
_LK_PS_K = 1.38e-12

Retrap = Literal["a", "b"]


@dataclass(frozen=True)
class WireParams:
    """One nanowire; defaults are the `nanowireDynamic` defaults (NbN-like), 70 nH."""

    inductance_h: float = 70e-9
    nonlinear: bool = False
    width_m: float = 100e-9
    thickness_m: float = 4e-9
    sheet_resistance_ohm: float = 400.0
    tc_k: float = 10.5
    #: Substrate (bath) temperature: sets Tc - T in the Stekly parameter.
    tsub_k: float = 2.0
    #: Critical current density at tsub_k (the <=2020 model has no further temperature factor).
    jc_a_per_m2: float = 5e10
    constriction: float = 1.0
    kappa_w_per_m_k: float = 0.108
    heat_capacity_j_per_m3_k: float = 4400.0
    boundary_conductance_w_per_m2_k: float = 5e4
    delta: float = 0.005
    #: Switching current override (e.g. a stochastic draw); None means C*Jc*w*d.
    switching_current_override_a: float | None = None

    def __post_init__(self) -> None:
        for name in ("inductance_h", "width_m", "thickness_m", "sheet_resistance_ohm", "jc_a_per_m2"):
            if getattr(self, name) <= 0:
                raise ValueError(f"WireParams.{name} must be > 0")
        if not self.tsub_k < self.tc_k:
            raise ValueError("WireParams: tsub_k must be below tc_k")

    @property
    def switching_current_a(self) -> float:
        if self.switching_current_override_a is not None:
            return self.switching_current_override_a
        return self.constriction * self.jc_a_per_m2 * self.width_m * self.thickness_m

    @property
    def sheet_inductance_h(self) -> float:
        return _LK_PS_K * self.sheet_resistance_ohm / self.tc_k

    @property
    def squares(self) -> float:
        return self.inductance_h / self.sheet_inductance_h

    @property
    def normal_resistance_ohm(self) -> float:
        return self.sheet_resistance_ohm * self.squares

    @property
    def stekly(self) -> float:
        jd = self.jc_a_per_m2 * self.thickness_m
        return self.sheet_resistance_ohm * jd**2 / (
            self.boundary_conductance_w_per_m2_k * (self.tc_k - self.tsub_k)
        )

    @property
    def hotspot_current_a(self) -> float:
        return math.sqrt(2.0 / self.stekly) * self.switching_current_a

    @property
    def velocity_m_per_s(self) -> float:
        kappa_h = self.boundary_conductance_w_per_m2_k * self.kappa_w_per_m_k / self.thickness_m
        return math.sqrt(kappa_h) / self.heat_capacity_j_per_m3_k

    @property
    def growth_prefactor_ohm_per_s(self) -> float:
        """dR/dt = prefactor * u(I/I_sw): two S/N boundaries moving at v0*u each."""
        return 2.0 * self.sheet_resistance_ohm * self.velocity_m_per_s / self.width_m

    def inductance_at(self, current_a: float) -> float:
        """L(I) of the empirical S5 fit (linear wires return L0)."""
        if not self.nonlinear:
            return self.inductance_h
        x = min(max(0.6 * current_a / self.switching_current_a, -1.0), 1.0)
        return self.inductance_h / (2.0 * math.cos(0.67 * math.asin(x)) - 1.0)
