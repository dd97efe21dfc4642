"""Cryostat sample stage as one thermal node: heat capacity, cold-head cooling, heater, parasitics.

Energy balance  dH/dt = P_heater + P_parasitic - P_cool(T),  H(T) = integral of C(T) dT.

Heat capacity of the stage (copper) = electronic term + full Debye lattice term:
    C(T) = n * (gamma * T + 9 R (T/Theta)^3 * int_0^{Theta/T} x^4 e^x / (e^x - 1)^2 dx) + c_extra * T
The Debye form reduces to the T^3 law (12 pi^4/5 R (T/Theta)^3) below ~Theta/10 and to
Dulong-Petit (3R) at room temperature, so one expression covers a cooldown from 300 K.
Copper: gamma = 0.695 mJ/(mol K^2), Theta_D = 343 K (C. Kittel, Introduction to Solid State
Physics, 8th ed., ch. 5 table 1 and ch. 6 table 2). `c_extra` lumps other linear terms, e.g. the
liquid helium in a dilution-fridge mixing chamber (Fermi liquid, C/(nRT) ~ 2.8 /K for 3He,
D. S. Greywall, Phys. Rev. B 27, 2747 (1983)).

Integration is implicit (backward Euler on the enthalpy H) with adaptive sub-steps, so any dt
(microseconds to hours) is stable, and every sub-step conserves energy exactly:
H(T_new) - H(T_old) = dt * (P_heater + P_parasitic - P_cool(T_new)). Pure: time is an argument.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

GAS_CONSTANT_J_PER_MOL_K = 8.314462618
COPPER_MOLAR_MASS_KG = 63.546e-3
COPPER_GAMMA_J_PER_MOL_K2 = 0.695e-3
COPPER_DEBYE_K = 343.0

# Gauss-Legendre nodes for the Debye integrals on [0, min(Theta/T, X_CUT)]; beyond X_CUT the
# integrands are below e^-40 of their peak, so the integrals equal their limits.
_X_CUT = 45.0
_GL_X, _GL_W = np.polynomial.legendre.leggauss(96)
_DEBYE_C_LIMIT = 4.0 * math.pi**4 / 15.0  # int_0^inf x^4 e^x/(e^x-1)^2 dx
_DEBYE_U_LIMIT = math.pi**4 / 15.0  # int_0^inf x^3/(e^x-1) dx

#: `step` (error-controlled) leaves a stage whose temperature would move by at most this (its
#: rate times the step) where it is: a stage at its base temperature drifts in one call per
#: reading, thousands of times in a sweep.
AT_REST_K = 1e-12


def _debye_integrals(x_max: float) -> tuple[float, float]:
    """(int_0^x x^4 e^x/(e^x-1)^2, int_0^x x^3/(e^x-1)) for the heat capacity and energy."""
    if x_max >= _X_CUT:
        return _DEBYE_C_LIMIT, _DEBYE_U_LIMIT
    half = 0.5 * x_max
    x = half * (_GL_X + 1.0)
    em1 = np.expm1(x)
    c = half * float(np.sum(_GL_W * x**4 * (em1 + 1.0) / em1**2))
    u = half * float(np.sum(_GL_W * x**3 / em1))
    return c, u


class Cooler(Protocol):
    """Net cooling power of the cold head at the stage temperature (negative below its base)."""

    def power_w(self, temperature_k: float) -> float: ...

    def slope_w_per_k(self, temperature_k: float) -> float: ...


@dataclass(frozen=True)
class TabulatedCooler:
    """Cooling power interpolated linearly in a load map (T, P); extrapolated linearly.

    The curve must rise with temperature (it does for pulse-tube and GM coolers), which makes the
    implicit step's equation monotone and its root unique.
    """

    temperatures_k: tuple[float, ...]
    powers_w: tuple[float, ...]

    def __post_init__(self) -> None:
        t, p = np.asarray(self.temperatures_k), np.asarray(self.powers_w)
        if t.shape != p.shape or t.size < 2:
            raise ValueError("load map needs matching temperature and power lists of >= 2 points")
        if np.any(np.diff(t) <= 0) or np.any(np.diff(p) <= 0):
            raise ValueError("load map temperatures and powers must both strictly increase")

    def _segment(self, temperature_k: float) -> int:
        # bisect on the tuple: called thousands of times per second of wall time by the loop.
        i = bisect.bisect_left(self.temperatures_k, temperature_k) - 1
        return min(max(i, 0), len(self.temperatures_k) - 2)

    def slope_w_per_k(self, temperature_k: float) -> float:
        i = self._segment(temperature_k)
        t, p = self.temperatures_k, self.powers_w
        return (p[i + 1] - p[i]) / (t[i + 1] - t[i])

    def power_w(self, temperature_k: float) -> float:
        i = self._segment(temperature_k)
        return self.powers_w[i] + self.slope_w_per_k(temperature_k) * (
            temperature_k - self.temperatures_k[i]
        )


@dataclass(frozen=True)
class DilutionCooler:
    """Mixing-chamber cooling power P = k * n_dot * (T^2 - T_limit^2).

    k = 84 J/(mol K^2): the ideal-heat-exchanger form of n_dot (95 T_mc^2 - 11 T_ex^2) with
    T_ex = T_mc (F. Pobell, Matter and Methods at Low Temperatures, 3rd ed., sec. 7.3).
    T_limit stands for the heat-exchanger and viscous-heating limit that sets the no-load base.
    Valid below ~0.7 K, where the dilution cycle runs.
    """

    circulation_mol_per_s: float
    limit_temperature_k: float
    coefficient_j_per_mol_k2: float = 84.0

    def power_w(self, temperature_k: float) -> float:
        k = self.coefficient_j_per_mol_k2 * self.circulation_mol_per_s
        return k * (temperature_k**2 - self.limit_temperature_k**2)

    def slope_w_per_k(self, temperature_k: float) -> float:
        return 2.0 * self.coefficient_j_per_mol_k2 * self.circulation_mol_per_s * temperature_k


@dataclass(frozen=True)
class StageParams:
    """A sample stage: its copper mass, extra linear heat capacity, cooler and parasitic load."""

    name: str
    copper_mass_kg: float
    cooler: TabulatedCooler | DilutionCooler
    parasitic_w: float
    extra_gamma_j_per_k2: float = 0.0
    debye_k: float = COPPER_DEBYE_K
    electronic_gamma_j_per_mol_k2: float = COPPER_GAMMA_J_PER_MOL_K2
    #: Relative temperature error allowed per sub-step (local error estimate of backward Euler).
    rtol: float = 2e-4

    def __post_init__(self) -> None:
        if self.copper_mass_kg <= 0 or self.parasitic_w < 0 or self.extra_gamma_j_per_k2 < 0:
            raise ValueError(f"{self.name}: mass must be > 0, parasitic load and extra C >= 0")

    @property
    def moles(self) -> float:
        return self.copper_mass_kg / COPPER_MOLAR_MASS_KG


@dataclass(frozen=True)
class ThermalState:
    """Stage temperature plus the running energy ledger (for conservation checks and reports)."""

    temperature_k: float
    time_s: float = 0.0
    heater_energy_j: float = 0.0
    parasitic_energy_j: float = 0.0
    cooling_energy_j: float = 0.0  # heat removed by the cold head (net)


def heat_capacity_j_per_k(params: StageParams, temperature_k: float) -> float:
    t = max(temperature_k, 0.0)
    lattice = 0.0
    if t > 0.0:
        c_int, _ = _debye_integrals(params.debye_k / t)
        lattice = 9.0 * GAS_CONSTANT_J_PER_MOL_K * (t / params.debye_k) ** 3 * c_int
    per_mol = params.electronic_gamma_j_per_mol_k2 * t + lattice
    return params.moles * per_mol + params.extra_gamma_j_per_k2 * t


def enthalpy_j(params: StageParams, temperature_k: float) -> float:
    """Heat content relative to 0 K: exact integral of `heat_capacity_j_per_k`."""
    t = max(temperature_k, 0.0)
    lattice = 0.0
    if t > 0.0:
        _, u_int = _debye_integrals(params.debye_k / t)
        lattice = 9.0 * GAS_CONSTANT_J_PER_MOL_K * t * (t / params.debye_k) ** 3 * u_int
    per_mol = 0.5 * params.electronic_gamma_j_per_mol_k2 * t * t + lattice
    return params.moles * per_mol + 0.5 * params.extra_gamma_j_per_k2 * t * t


def net_power_w(params: StageParams, temperature_k: float, heater_power_w: float) -> float:
    return heater_power_w + params.parasitic_w - params.cooler.power_w(temperature_k)


def equilibrium_temperature_k(params: StageParams, heater_power_w: float) -> float:
    """Temperature where the cooler removes exactly heater + parasitic power (bisection)."""
    lo, hi = 0.0, 1.0
    while net_power_w(params, hi, heater_power_w) > 0.0:
        hi *= 2.0
        if hi > 1e5:
            raise ValueError(f"{params.name}: no equilibrium for {heater_power_w} W")
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if net_power_w(params, mid, heater_power_w) > 0.0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


def _implicit_solve(params: StageParams, t_old: float, h_old: float, p_in: float, dt: float) -> float:
    """Root of H(T) - H_old - dt*(p_in - P_cool(T)) = 0, monotone in T: safeguarded Newton."""

    def g(t: float) -> float:
        return enthalpy_j(params, t) - h_old - dt * (p_in - params.cooler.power_w(t))

    lo, hi = 0.0, max(t_old, 1e-3)
    while g(hi) < 0.0:
        lo, hi = hi, hi * 2.0
        if hi > 1e5:
            raise ValueError(f"{params.name}: runaway temperature (heater {p_in} W?)")
    t = min(max(t_old, lo), hi)
    for _ in range(100):
        gt = g(t)
        if gt > 0.0:
            hi = t
        else:
            lo = t
        deriv = heat_capacity_j_per_k(params, t) + dt * params.cooler.slope_w_per_k(t)
        t_new = t - gt / deriv if deriv > 0 else 0.5 * (lo + hi)
        # Converged before the bracket test: at equilibrium the root sits on the bracket's edge.
        # 1e-11 relative: below it the enthalpy difference is lost in round-off.
        if abs(t_new - t) <= 1e-11 * max(t, 1e-9):
            return min(max(t_new, lo), hi)
        if not lo < t_new < hi:
            t_new = 0.5 * (lo + hi)
        if hi - lo <= 1e-11 * hi:
            return t_new
        t = t_new
    return t


def step(state: ThermalState, params: StageParams, heater_power_w: float, dt_s: float,
         *, adaptive: bool = True) -> ThermalState:
    """Advance the stage by dt_s with constant heater power; any dt_s >= 0 is stable.

    adaptive=False takes one backward-Euler step (exact at equilibrium, first order in
    transients): what a control loop stepping at its own update period needs, at a tenth of
    the cost of the error-controlled path."""
    if dt_s < 0:
        raise ValueError(f"dt_s must be >= 0, got {dt_s}")
    if heater_power_w < 0:
        raise ValueError(f"heater power must be >= 0, got {heater_power_w}")
    p_in = heater_power_w + params.parasitic_w
    t = state.temperature_k
    cooling_w = params.cooler.power_w(t)
    if adaptive and abs(p_in - cooling_w) / heat_capacity_j_per_k(params, t) * dt_s <= AT_REST_K:
        # At equilibrium: the implicit steps move towards it and never past, by at most the
        # initial rate times dt_s, so the temperature stays to within AT_REST_K. (The control
        # loop's single steps are left as they are: the compiled loop matches them bit for bit.)
        q_cool = cooling_w * dt_s
    else:
        t, q_cool = _backward_euler(params, t, p_in, dt_s, adaptive)
    return replace(
        state,
        temperature_k=t,
        time_s=state.time_s + dt_s,
        heater_energy_j=state.heater_energy_j + heater_power_w * dt_s,
        parasitic_energy_j=state.parasitic_energy_j + params.parasitic_w * dt_s,
        cooling_energy_j=state.cooling_energy_j + q_cool,
    )


def _backward_euler(params: StageParams, t: float, p_in: float, dt_s: float, adaptive: bool) -> tuple[float, float]:
    """`step`'s backward-Euler steps over dt_s: (temperature at the end, heat the cooler took)."""
    done, q_cool = 0.0, 0.0
    h = dt_s
    while done < dt_s:
        h = min(h, dt_s - done)
        h_old = enthalpy_j(params, t)
        t_new = _implicit_solve(params, t, h_old, p_in, h)
        # Local error of backward Euler ~ h/2 * |dT/dt(new) - dT/dt(old)|.
        rate_old = (p_in - params.cooler.power_w(t)) / heat_capacity_j_per_k(params, t)
        rate_new = (p_in - params.cooler.power_w(t_new)) / heat_capacity_j_per_k(params, t_new)
        err = 0.5 * h * abs(rate_new - rate_old)
        tol = params.rtol * max(t, t_new) + 1e-9
        if adaptive and err > tol and h > 1e-9 * max(dt_s, 1.0):
            h *= max(0.1, 0.8 * math.sqrt(tol / err))
            continue
        q_cool += h * params.cooler.power_w(t_new)
        t, done = t_new, done + h
        h *= min(4.0, 0.8 * math.sqrt(tol / err)) if err > 0 else 4.0
    return t, q_cool


@functools.lru_cache(maxsize=64)
def packed_stage(params: StageParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stage as `_kernel_thermal` takes it: (stage vector, cooler temperatures, cooler powers).

    The arrays are shared between callers: read only."""
    from sim_backend.physics import _kernel_thermal as k

    stage = np.zeros(k.S_FIELDS)
    stage[k.S_MOLES] = params.moles
    stage[k.S_GAMMA_E] = params.electronic_gamma_j_per_mol_k2
    stage[k.S_DEBYE] = params.debye_k
    stage[k.S_EXTRA_GAMMA] = params.extra_gamma_j_per_k2
    stage[k.S_PARASITIC] = params.parasitic_w
    cooler = params.cooler
    if isinstance(cooler, TabulatedCooler):
        stage[k.S_COOLER] = k.COOLER_TABULATED
        temps, powers = np.array(cooler.temperatures_k, float), np.array(cooler.powers_w, float)
    elif isinstance(cooler, DilutionCooler):
        stage[k.S_COOLER] = k.COOLER_DILUTION
        stage[k.S_DIL_COEF] = cooler.coefficient_j_per_mol_k2
        stage[k.S_DIL_FLOW] = cooler.circulation_mol_per_s
        stage[k.S_DIL_LIMIT] = cooler.limit_temperature_k
        temps, powers = np.zeros(2), np.zeros(2)
    else:
        raise TypeError(f"{params.name}: no compiled form of cooler {type(cooler).__name__}")
    for array in (stage, temps, powers):
        array.flags.writeable = False
    return stage, temps, powers


def cooldown_time_s(
    params: StageParams, start_k: float, target_k: float, *, interval_s: float = 60.0, limit_s: float = 2e6
) -> float:
    """Time from start_k to the first reading below target_k with the heater off."""
    if target_k <= equilibrium_temperature_k(params, 0.0):
        raise ValueError(f"{params.name}: {target_k} K is at or below the base temperature")
    state = ThermalState(temperature_k=start_k)
    while state.temperature_k > target_k:
        if state.time_s >= limit_s:
            raise ValueError(f"{params.name}: did not reach {target_k} K in {limit_s} s")
        state = step(state, params, 0.0, interval_s)
    return state.time_s


# Representative load map of a 1 W-class two-stage pulse-tube cold head (PT410 class: 1.0 W at
# 4.2 K on the second stage; no-load base ~2.8 K), second stage, rising with temperature. Above
# ~20 K the points stand for the stage's effective share of both stages' cooling during precool;
# they are chosen, with the lumped copper mass, so that a cooldown from 300 K to 4 K takes a few
# hours, as closed-cycle probe stations do (typically 3-5 h). Not a fit to one specific unit.
PULSE_TUBE_4K = TabulatedCooler(
    temperatures_k=(2.8, 3.0, 3.5, 4.2, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0, 80.0, 150.0, 300.0),
    powers_w=(0.0, 0.12, 0.5, 1.0, 1.6, 2.3, 3.6, 4.8, 7.5, 10.0, 14.0, 20.0, 25.0, 28.0, 30.0),
)

#: 4 K probe-station sample stage (Lake Shore 336 loop): copper stage, holder and arms lumped.
STAGE_4K = StageParams(name="4K stage", copper_mass_kg=4.0, cooler=PULSE_TUBE_4K, parasitic_w=0.25)

#: A pumped-helium (1 K pot class) stage's cooling power against temperature: ~0.1 W at 2 K, a no-load
#: base near 1.5 K, the 4 K cold head's power above ~4 K. Representative, not a fit to one unit:
#: what lets a probe station hold a chip at the 2 K its design is given at.
PUMPED_HE_2K = TabulatedCooler(
    temperatures_k=(1.5, 1.7, 2.0, 2.5, 3.0, 4.2, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0, 80.0, 150.0, 300.0),
    powers_w=(0.0, 0.05, 0.12, 0.25, 0.4, 1.0, 1.6, 2.3, 3.6, 4.8, 7.5, 10.0, 14.0, 20.0, 25.0, 28.0, 30.0),
)

#: 2 K probe-station sample stage (Lake Shore 336 loop): the 4 K stage's copper on a pumped-helium pot.
STAGE_2K = StageParams(name="2K stage", copper_mass_kg=4.0, cooler=PUMPED_HE_2K, parasitic_w=0.02)

#: Dilution-fridge mixing-chamber plate (Lake Shore 372 loop): 100 umol/s of 3He gives 2.5 uW of
#: cooling at 20 mK and a base near 12 mK; ~0.09 mol-equivalent of liquid helium sets the minute-scale settling.
STAGE_MXC = StageParams(
    name="mixing chamber",
    copper_mass_kg=1.5,
    cooler=DilutionCooler(circulation_mol_per_s=100e-6, limit_temperature_k=10e-3),
    parasitic_w=0.3e-6,
    extra_gamma_j_per_k2=2.0,
)
