"""Numba kernel, part 2: adaptive Dormand–Prince 5(4) integration with event location.

Why explicit: below T_c every network mode is an L/R time constant with R the shunts or the
hotspot (≤ ~1 kΩ against 20–200 nH gives ≥ 20 ps), which the switching events must resolve anyway,
and the superconducting phases are smooth exponentials that a 5th-order method crosses in a few
large steps. Floating (inductor-only) nodes are handled exactly (see _kernel_network), so no
artificial stiff mode is introduced. The step controller keeps the method stable if a stiffer
circuit is given; it then only costs time.

Events: a wire switches when |I| ≥ its threshold; it retraps when |I| < threshold and the hold
condition fails (variant a: max(R,0)·|I| < I_hs·1 Ω; variant b: |I| < I_hs). Each event function e
is < 0 before and ≥ 0 at the event. A step that crosses one is cut back onto the crossing, found
to ``T_TOL_S`` on the step's dense output (Illinois regula falsi), and the state there is the
interpolant's, as accurate as the step; only where the interpolant does not show the crossing
is it found on real RK steps.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sim_backend.physics._kernel_network import network
from sim_backend.physics._packing import NB, W_BR, W_IHS, W_MODE

T_TOL_S = 1e-14
RETRAP_REFERENCE_RESISTANCE_OHM = 1.0
EVENT_MARGIN_A = 1e-30

_C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0])
_A = np.array([
    [0.0, 0.0, 0.0, 0.0, 0.0],
    [1 / 5, 0.0, 0.0, 0.0, 0.0],
    [3 / 40, 9 / 40, 0.0, 0.0, 0.0],
    [44 / 45, -56 / 15, 32 / 9, 0.0, 0.0],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0.0],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
])
_B = np.array([35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84])
_E = np.array([-71 / 57600, 0.0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40])
# dense output (Hairer's continuous extension), coefficients of θ, θ², θ³, θ⁴
_P = np.array([
    [1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432],
    [0.0, 0.0, 0.0, 0.0],
    [0.0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799],
    [0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072],
    [0.0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632],
    [0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844],
    [0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423],
])


@njit(cache=True, _nrt=False)
def rk_step(t, h, y, k1, s, ip, fp, kinv, kst, y1, v, iv, wk, tmp):
    """One DP5 step; kst[0] must hold f(t, y). Fills kst[1..6] and y1; returns the error norm data."""
    ny = y.shape[0]
    for j in range(ny):               # a loop, not a slice copy: no runtime (see _kernel_network)
        kst[0, j] = k1[j]
    t_mid = t + 0.5 * h
    for st in range(1, 6):
        for j in range(ny):
            acc = 0.0
            for q in range(st):
                acc += _A[st, q] * kst[q, j]
            tmp[j] = y[j] + h * acc
        network(t + _C[st] * h, t_mid, tmp, s, ip, fp, kinv, v, iv, kst[st], wk)
    for j in range(ny):
        acc = 0.0
        for q in range(6):
            acc += _B[q] * kst[q, j]
        y1[j] = y[j] + h * acc
    network(t + h, t_mid, y1, s, ip, fp, kinv, v, iv, kst[6], wk)


@njit(cache=True, _nrt=False)
def error_norm(h, y, y1, kst, n_ctrl, atol, rtol):
    if n_ctrl == 0:
        return 0.0  # no dynamic state (purely resistive at this temperature)
    acc = 0.0
    for j in range(n_ctrl):
        e = 0.0
        for q in range(7):
            e += _E[q] * kst[q, j]
        sc = atol[j] + rtol * max(abs(y[j]), abs(y1[j]))
        acc += (h * e / sc) ** 2
    return math.sqrt(acc / n_ctrl)


@njit(cache=True, _nrt=False)
def dense(theta, h, y, kst, out):
    t2 = theta * theta
    b0 = _P[0, 0] * theta + _P[0, 1] * t2 + _P[0, 2] * t2 * theta + _P[0, 3] * t2 * t2
    b2 = _P[2, 1] * t2 + _P[2, 2] * t2 * theta + _P[2, 3] * t2 * t2
    b3 = _P[3, 1] * t2 + _P[3, 2] * t2 * theta + _P[3, 3] * t2 * t2
    b4 = _P[4, 1] * t2 + _P[4, 2] * t2 * theta + _P[4, 3] * t2 * t2
    b5 = _P[5, 1] * t2 + _P[5, 2] * t2 * theta + _P[5, 3] * t2 * t2
    b6 = _P[6, 1] * t2 + _P[6, 2] * t2 * theta + _P[6, 3] * t2 * t2
    for j in range(y.shape[0]):
        acc = (b0 * kst[0, j] + b2 * kst[2, j] + b3 * kst[3, j] + b4 * kst[4, j]
               + b5 * kst[5, j] + b6 * kst[6, j])
        out[j] = y[j] + h * acc


@njit(cache=True, inline='always')   # called for every wire at every step end (see network)
def event_value(w, y, s, thr, ip, fp):
    """< 0 before wire w's next transition, ≥ 0 at it."""
    nb = ip[NB]
    i = abs(y[ip[ip[W_BR] + w]])
    ihs = fp[ip[W_IHS] + w]
    if s[w] == 0:
        return i - thr[w]
    # retrap needs both conditions strictly false; the 1e-30 A margin keeps |I| = threshold from
    # retrapping at the instant of switching
    if ip[ip[W_MODE] + w] == 0:
        hold = max(y[nb + w], 0.0) * i - ihs * RETRAP_REFERENCE_RESISTANCE_OHM
        return -max(i - thr[w], hold / RETRAP_REFERENCE_RESISTANCE_OHM) - EVENT_MARGIN_A
    return -max(i - thr[w], i - ihs) - EVENT_MARGIN_A
