"""Numba kernel: a temperature controller's loop and its stage's thermal model over many steps.

`closed_loop` runs what `TemperatureControllerPanel.advance_to_reference` does in Python, one control
interval after another: each heater's update (ramping setpoint, PID with anti-windup, clamped
output), the heater power, then one backward-Euler step of the stage's enthalpy
(`thermal.step(..., adaptive=False)`), with the same formulas and the same safeguarded Newton
solve in the same order, so its temperatures agree with the Python path to round-off (the
Debye sums are added in another order than numpy's).

One exact shortcut: a step that leaves the whole state unchanged (temperature, every heater's
output, ramping setpoint, integral and last error, bit for bit) is a fixed point of the loop, and
every further full-length step of the same span repeats it. Those steps only add their time and
energies to the ledgers, in the same order as the full path does, so a settled loop costs a few
nanoseconds per step and gives bit-identical results.

Numba caches each jitted function keyed on its own source file: after editing this file, delete
sim_backend/physics/__pycache__/_kernel_thermal*.nb[ic] if results look stale.

Layouts (float64 arrays, filled by `thermal.packed_stage` and the controller):
- stage: see the S_* indices; the tabulated cooler's points come as two more arrays;
- heaters (n, H_FIELDS): see the H_* indices; H_MODE is 0 off (or range 0), 1 PID, 2 open loop;
- state: see the X_* indices (`thermal.ThermalState`'s fields, then the lowest and highest
  temperature the loop stepped through, which the caller seeds with the present one: a
  controller's min/max capture sees every control interval, not only where a catch-up ends).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

GAS_CONSTANT_J_PER_MOL_K = 8.314462618
X_CUT = 45.0
GL_X, GL_W = np.polynomial.legendre.leggauss(96)
DEBYE_C_LIMIT = 4.0 * math.pi**4 / 15.0
DEBYE_U_LIMIT = math.pi**4 / 15.0

# stage vector
S_MOLES, S_GAMMA_E, S_DEBYE, S_EXTRA_GAMMA, S_PARASITIC, S_COOLER, S_DIL_COEF, S_DIL_FLOW, S_DIL_LIMIT = range(9)
S_FIELDS = 9
COOLER_TABULATED, COOLER_DILUTION = 0.0, 1.0

# heater rows
(H_MODE, H_POWER, H_SETPOINT, H_RAMP, H_RATE, H_RAMP_SP, H_P, H_I, H_D, H_MANUAL, H_INTEGRAL, H_LAST_ERROR,
 H_OUTPUT) = range(13)
H_FIELDS = 13
MODE_OFF, MODE_PID, MODE_OPEN = 0.0, 1.0, 2.0

# state vector
X_T, X_TIME, X_HEATER_J, X_PARASITIC_J, X_COOLING_J, X_T_MIN, X_T_MAX = range(7)
X_FIELDS = 7

#: Status: 0 span done or step budget used; 1 runaway temperature (the Python path's ValueError).
OK, RUNAWAY = 0, 1
#: A fixed-point step costs this fraction of a full step against `max_steps`.
STEADY_STEPS_PER_STEP = 64


@njit(cache=True)
def debye_integrals(x_max):
    """(int_0^x x^4 e^x/(e^x-1)^2, int_0^x x^3/(e^x-1)): one pass over the Gauss-Legendre nodes."""
    if x_max >= X_CUT:
        return DEBYE_C_LIMIT, DEBYE_U_LIMIT
    half = 0.5 * x_max
    c = 0.0
    u = 0.0
    for k in range(GL_X.shape[0]):
        x = half * (GL_X[k] + 1.0)
        em1 = math.expm1(x)
        x2 = x * x
        c += GL_W[k] * (x2 * x2) * (em1 + 1.0) / (em1 * em1)
        u += GL_W[k] * (x2 * x) / em1
    return half * c, half * u


@njit(cache=True)
def enthalpy_and_capacity(stage, temperature_k):
    """(H(T) relative to 0 K, C(T)): `thermal.enthalpy_j` and `thermal.heat_capacity_j_per_k`."""
    t = max(temperature_k, 0.0)
    h_lattice = 0.0
    c_lattice = 0.0
    if t > 0.0:
        c_int, u_int = debye_integrals(stage[S_DEBYE] / t)
        cube = math.pow(t / stage[S_DEBYE], 3.0)
        c_lattice = 9.0 * GAS_CONSTANT_J_PER_MOL_K * cube * c_int
        h_lattice = 9.0 * GAS_CONSTANT_J_PER_MOL_K * t * cube * u_int
    h = stage[S_MOLES] * (0.5 * stage[S_GAMMA_E] * t * t + h_lattice) + 0.5 * stage[S_EXTRA_GAMMA] * t * t
    c = stage[S_MOLES] * (stage[S_GAMMA_E] * t + c_lattice) + stage[S_EXTRA_GAMMA] * t
    return h, c


@njit(cache=True)
def _segment(temps, temperature_k):
    # bisect_left(temps, T) - 1, clamped to the table
    lo, hi = 0, temps.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if temps[mid] < temperature_k:
            lo = mid + 1
        else:
            hi = mid
    return min(max(lo - 1, 0), temps.shape[0] - 2)


@njit(cache=True)
def cooler_power_and_slope(stage, temps, powers, temperature_k):
    """(P_cool(T), dP_cool/dT): `TabulatedCooler` or `DilutionCooler`."""
    if stage[S_COOLER] == COOLER_DILUTION:
        k = stage[S_DIL_COEF] * stage[S_DIL_FLOW]
        power = k * (math.pow(temperature_k, 2.0) - math.pow(stage[S_DIL_LIMIT], 2.0))
        slope = 2.0 * stage[S_DIL_COEF] * stage[S_DIL_FLOW] * temperature_k
        return power, slope
    i = _segment(temps, temperature_k)
    slope = (powers[i + 1] - powers[i]) / (temps[i + 1] - temps[i])
    return powers[i] + slope * (temperature_k - temps[i]), slope


@njit(cache=True)
def implicit_solve(stage, temps, powers, t_old, h_at_old, c_at_old, p_in, dt):
    """`thermal._implicit_solve` with H and C at t_old given (H(t_old) is h_old): (T_new, status)."""
    lo = 0.0
    hi = max(t_old, 1e-3)
    # g(hi) = H(hi) - h_old - dt*(p_in - P_cool(hi)); at hi = t_old the first term is h_old.
    while True:
        if hi == t_old:
            h_hi = h_at_old
        else:
            h_hi, _ = enthalpy_and_capacity(stage, hi)
        pc, _ = cooler_power_and_slope(stage, temps, powers, hi)
        if h_hi - h_at_old - dt * (p_in - pc) >= 0.0:
            break
        lo = hi
        hi = hi * 2.0
        if hi > 1e5:
            return t_old, RUNAWAY
    t = min(max(t_old, lo), hi)
    for _ in range(100):
        if t == t_old:
            h_t, c_t = h_at_old, c_at_old
        else:
            h_t, c_t = enthalpy_and_capacity(stage, t)
        pc, slope = cooler_power_and_slope(stage, temps, powers, t)
        gt = h_t - h_at_old - dt * (p_in - pc)
        if gt > 0.0:
            hi = t
        else:
            lo = t
        deriv = c_t + dt * slope
        t_new = t - gt / deriv if deriv > 0 else 0.5 * (lo + hi)
        if abs(t_new - t) <= 1e-11 * max(t, 1e-9):
            return min(max(t_new, lo), hi), OK
        if not lo < t_new < hi:
            t_new = 0.5 * (lo + hi)
        if hi - lo <= 1e-11 * hi:
            return t_new, OK
        t = t_new
    return t, OK


@njit(cache=True)
def _update_heaters(heaters, temperature_k, dt):
    """`TemperatureControllerPanel._update_loop` for every heater; the summed heater power, W."""
    total_w = 0.0
    for n in range(heaters.shape[0]):
        row = heaters[n]
        mode = row[H_MODE]
        if mode == MODE_OFF:
            row[H_OUTPUT] = 0.0
        elif mode == MODE_OPEN:
            row[H_OUTPUT] = row[H_MANUAL]
        else:
            target = row[H_SETPOINT]
            if row[H_RAMP] != 0.0:
                step = row[H_RATE] / 60.0 * dt
                gap = row[H_SETPOINT] - row[H_RAMP_SP]
                row[H_RAMP_SP] += min(max(gap, -step), step)
                target = row[H_RAMP_SP]
            error = target - temperature_k
            derivative = (error - row[H_LAST_ERROR]) / dt
            row[H_LAST_ERROR] = error
            unclamped = row[H_P] * (error + row[H_I] * 1e-3 * (row[H_INTEGRAL] + error * dt)
                                    + row[H_D] * derivative) + row[H_MANUAL]
            if 0.0 < unclamped < 100.0:
                row[H_INTEGRAL] += error * dt
            row[H_OUTPUT] = min(max(unclamped, 0.0), 100.0)
        if mode != MODE_OFF:
            total_w += row[H_POWER] * row[H_OUTPUT] / 100.0
    return total_w


@njit(cache=True)
def closed_loop(stage, temps, powers, heaters, state, until_s, interval_s, extra_w, max_steps):
    """Run loop + stage from state[X_TIME] towards until_s (< until_s, as the Python loop does)
    in steps of interval_s (the last one shorter), with extra_w of injected heat throughout.

    Stops after max_steps full-cost steps. Updates heaters and state in place; returns
    (status, full-cost steps taken, fixed-point steps taken).
    """
    parasitic_w = stage[S_PARASITIC]
    saved = np.empty_like(heaters)
    steps = 0
    steady = 0
    while state[X_TIME] < until_s and steps < max_steps:
        dt = min(interval_s, until_s - state[X_TIME])
        t_old = state[X_T]
        saved[:, :] = heaters
        heater_w = _update_heaters(heaters, t_old, dt) + extra_w
        p_in = heater_w + parasitic_w
        h_old, c_old = enthalpy_and_capacity(stage, t_old)
        t_new, status = implicit_solve(stage, temps, powers, t_old, h_old, c_old, p_in, dt)
        if status != OK:
            heaters[:, :] = saved
            return status, steps, steady
        pc, _ = cooler_power_and_slope(stage, temps, powers, t_new)
        state[X_T] = t_new
        state[X_T_MIN] = min(state[X_T_MIN], t_new)
        state[X_T_MAX] = max(state[X_T_MAX], t_new)
        state[X_TIME] = state[X_TIME] + dt
        state[X_HEATER_J] = state[X_HEATER_J] + heater_w * dt
        state[X_PARASITIC_J] = state[X_PARASITIC_J] + parasitic_w * dt
        state[X_COOLING_J] = state[X_COOLING_J] + dt * pc
        steps += 1
        if dt != interval_s or t_new != t_old:
            continue
        unchanged = True
        for n in range(heaters.shape[0]):
            for f in (H_RAMP_SP, H_INTEGRAL, H_LAST_ERROR, H_OUTPUT):
                if heaters[n, f] != saved[n, f]:
                    unchanged = False
        if not unchanged:
            continue
        # A fixed point: every further full step is this one again. Book their time and energy.
        q_cool = dt * pc
        limit = (max_steps - steps) * STEADY_STEPS_PER_STEP
        while state[X_TIME] < until_s and steady < limit:
            if min(interval_s, until_s - state[X_TIME]) != interval_s:
                break
            state[X_TIME] = state[X_TIME] + interval_s
            state[X_HEATER_J] = state[X_HEATER_J] + heater_w * interval_s
            state[X_PARASITIC_J] = state[X_PARASITIC_J] + parasitic_w * interval_s
            state[X_COOLING_J] = state[X_COOLING_J] + q_cool
            steady += 1
        if steady >= limit:
            break
    return OK, steps, steady
