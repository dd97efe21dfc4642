"""Numba kernel, part 3: the time loop (steps, events, threshold draws, sampling).

``advance`` is resumable: it returns a status and leaves all state in its arrays, so the caller
can grow a buffer (events, random draws) and call it again.
Numba caches each jitted function keyed on its own source file only: after editing any
_kernel_*.py or _packing.py, delete sim_backend/physics/__pycache__/_kernel*.nb[ic] so that
callers in other files are recompiled.

Status: 0 done, 1 event buffer full, 2 random draws exhausted, 3 step size underflow,
4 endless zero-time switching.

Random draws: a wire's switching threshold is I_sw(T) + σ·z with z taken in order from that wire's
row of ``z`` (standard normals drawn by the caller from its Generator). A new z is taken when the
wire has none (``zcur`` NaN): at the start of a run without an inherited draw, and after every
retrap. σ = 0 wires take no draws.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sim_backend.physics._kernel_exact import exact_stretch, sources_constant
from sim_backend.physics._kernel_integrate import (
    RETRAP_REFERENCE_RESISTANCE_OHM, T_TOL_S, dense, error_norm, event_value, rk_step,
)
from sim_backend.physics._kernel_network import (
    network, node_of, psi_i2, pwl_slope, pwl_value, solve_in_place, vdiff,
)
from sim_backend.physics._kernel_output import N_COEF, output_coefficients, write_samples
from sim_backend.physics._packing import (
    NB, NCL, NCS, NN, NR, NVS, NW, R_G, R_N, R_P, W_BR, W_IHS, W_ISW, W_SIGMA,
)

H_AFTER_EVENT_S = 1e-13
GROW_MAX = 5.0  # largest factor a step grows by after an accepted one
# ... and after the first step past a transition: that step is H_AFTER_EVENT_S, far below what the
# new regime needs, and its error scales as h⁵ there (measured on C2: 4e-13 at 0.1 ps, 0.015 at
# 12.5 ps), so it may grow to what its error asks for instead of climbing 5x at a time
GROW_AFTER_EVENT = 200.0
# After a retrap into a wholly superconducting chip the new regime is the L–R approach to the bias,
# whose scale the state itself gives: the first step is STARTING_STEP_SAFETY times the state over
# its rate (`starting_step`), not H_AFTER_EVENT_S climbing 90x, then 5x a step (C2: 0.1, 9, 45,
# 225 ps before the ~300 ps its error allows). Taken whole, that step is rejected every cycle under
# the current retrap (error 2.0 of the tolerance); at 0.7 of it the neuron's relaxation rejects 11 %
# of its steps; at 0.5 neither rejects more than before.
STARTING_STEP_SAFETY = 0.5
H_MIN_S = 1e-21
T_SNAP_S = 1e-19  # closer than this to a breakpoint or the end counts as on it
THRESHOLD_FLOOR = 1e-3  # a drawn threshold never falls below this fraction of I_sw(T)
# Steps longer than this also look for a transition inside the step (at these fractions of it, on
# the dense output), so that a long step cannot carry a current above threshold and back unseen.
H_INTERIOR_CHECK_S = 100e-12
INTERIOR_THETAS = (0.25, 0.5, 0.75)
# A stretch at rest (every wire superconducting, the sources constant up to the next breakpoint)
# is crossed in one backward-Euler stride when that stride moves no branch current by more than
# REST_TOLERANCE_FRACTION of its tolerance: what is left of the transient is no more than a step
# may get wrong. An explicit method cannot stride there: its steps stay near 3x the fastest L/R
# time (~1.5 ns on the default neuron with its wiring), with rejections, for the whole stretch,
# and keep that fast mode excited at about one tolerance (0.5-1.5 of it on the neuron at rest).
REST_TOLERANCE_FRACTION = 2.0
# Tried only where striding saves steps and the state barely moves over the present step.
REST_MIN_STEPS = 4.0
REST_PREFILTER = 100.0
# A resistive wire's growth law u = (ψi²−2)/(√max(ψi²−1, 0)+δ) has a branch point at ψi² = 1. Near
# it the hotspot resistance goes as √|t*−t|, which no polynomial step follows, and a step that the
# controller lengthens on its last error is rejected there, several times in a row. The rejections
# depend on the fraction of the time left to the branch point that a step covers (measured on C2:
# up to 0.83 of it accepted, from 0.9 of it rejected), so a step towards it is held to KINK_RHO of
# that time at ψi²'s present rate: the approach is geometric. Within KINK_JUMP of it, a step crosses
# it, held to cover KINK_CROSS·KINK_JUMP of ψi² (that step's error grows with how far it runs past).
KINK_RHO = 0.8
KINK_JUMP = 2e-4
KINK_CROSS = 2.0
# Below the branch point the hotspot collapses (several hundred Ω/ps) onto its retrap. A step that
# runs on past R = 0 meets the kink of the branch's R·I drive there (its current's second
# derivative jumps) and fails unless it ends within tens of fs of it, so such a step is held to the
# time R needs, at its present rate and curvature, to reach COLLAPSE_AIM times the voltage retrap's
# level (I_hs·1 Ω/|I|): past that retrap by a few fs, where the step ends located on it, and past
# R = 0 by as much under the current retrap, where a wire near Tc (ψ < 1: I_sw below I_hs/√2) can
# collapse to R = 0 and stay resistive. Aimed at R = 0 itself, a step could land a hair above it
# and the next be held to a hair's time.
COLLAPSE_AIM = -1.0
# None of these limits holds a step below this (far below any step they shape, far above H_MIN_S):
# they shape steps, they must not end a run.
KINK_H_FLOOR_S = 1e-18


@njit(cache=True, _nrt=False)
def sample_row(t, y, s, ip, fp, kinv, v, iv, dy, row, wk):
    """[node voltages | branch currents | resistor currents | current sources | V-source currents |
    energies | hotspot resistances], as _layout.Structure.sample_columns names them for Python."""
    network(t, t, y, s, ip, fp, kinv, v, iv, dy, wk)
    nn = ip[NN]
    nb = ip[NB]
    nw = ip[NW]
    k = 0
    for j in range(nn):
        row[k] = v[j]
        k += 1
    for b in range(nb):
        row[k] = y[b]
        k += 1
    for j in range(ip[NR]):
        row[k] = fp[ip[R_G] + j] * vdiff(v, node_of(ip, R_P, j), node_of(ip, R_N, j))
        k += 1
    for j in range(ip[NCS]):
        row[k] = pwl_value(j, t, ip, fp)
        k += 1
    for m in range(ip[NVS]):
        row[k] = iv[m]
        k += 1
    for j in range(nb + nw, y.shape[0]):
        row[k] = y[j]
        k += 1
    for w in range(nw):
        row[k] = max(y[nb + w], 0.0) if s[w] == 1 else 0.0
        k += 1


@njit(cache=True, _nrt=False, inline='always')
def _put_sample(out, k, row):
    """Sample k (out's column k) of every trace out keeps, from a full sample row."""
    for c in range(out.shape[0]):
        out[c, k] = row[c]


@njit(cache=True, _nrt=False)
def _any_event(y, s, thr, ip, fp):
    for w in range(s.shape[0]):
        if event_value(w, y, s, thr, ip, fp) >= 0.0:
            return w
    return -1


@njit(cache=True, _nrt=False)
def rest_stride(t, t_limit, h, y, k1, s, thr, ip, fp, kinv, v, iv, wk, atol, rtol, ytr, ktr, jac):
    """Branch currents after one backward-Euler step from t to t_limit, in ytr[:nb], if the
    stretch is at rest (see REST_TOLERANCE_FRACTION) and no wire reaches its transition there;
    False otherwise. The step solves (1/T − J)·δ = f for T = t_limit − t, J = ∂f/∂I by
    differences: L-stable, it damps the L/R modes and keeps every superconducting loop's flux
    (f has no component along a persistent current, which (1/T − J) leaves alone)."""
    nb = ip[NB]
    stride = t_limit - t
    if stride < REST_MIN_STEPS * h:
        return False
    for w in range(s.shape[0]):
        if s[w] != 0:
            return False
    for b in range(nb):
        if abs(k1[b]) * h > REST_PREFILTER * (atol[b] + rtol * abs(y[b])):
            return False
    mid = 0.5 * (t + t_limit)
    for k in range(ip[NCS] + ip[NVS]):
        if pwl_slope(k, mid, ip, fp) != 0.0:
            return False
    for c in range(nb):
        for j in range(y.shape[0]):
            ytr[j] = y[j]
        step_a = 1e-7 * max(abs(y[c]), 1e-6)
        ytr[c] += step_a
        network(t, t, ytr, s, ip, fp, kinv, v, iv, ktr[0], wk)
        for r in range(nb):
            jac[r, c] = -(ktr[0, r] - k1[r]) / step_a
        jac[c, c] += 1.0 / stride
    delta = ktr[1]                        # scratch: the solution, in its first nb entries
    for b in range(nb):
        delta[b] = k1[b]
    solve_in_place(jac, delta, nb)        # jac is rebuilt on every call
    for j in range(y.shape[0]):
        ytr[j] = y[j]
    for b in range(nb):
        if not abs(delta[b]) <= REST_TOLERANCE_FRACTION * (atol[b] + rtol * abs(y[b])):
            return False
        ytr[b] = y[b] + delta[b]
    return _any_event(ytr, s, thr, ip, fp) < 0


@njit(cache=True, _nrt=False, inline='always')
def _rms_in_tolerances(a, y, n, atol, rtol):
    """The root mean square of a's first n entries, each in units of its tolerance at y."""
    acc = 0.0
    for j in range(n):
        acc += (a[j] / (atol[j] + rtol * abs(y[j]))) ** 2
    return math.sqrt(acc / n)


@njit(cache=True, _nrt=False)
def starting_step(t, h_max, y, k1, s, ip, fp, kinv, v, iv, wk, n_ctrl, atol, rtol, ytr, ktr):
    """A first step for a new regime from its own scales, after Hairer, Nørsett & Wanner (Solving
    ODEs I, II.4): STARTING_STEP_SAFETY times the state over its rate (in tolerances), where the
    rate changes no faster than the state (its change over an Euler step of 1/100 of that time,
    against the rate). Where it changes faster, a fast L/R mode is on (a small inductance beside a
    large resistance): a long first step would excite it, and the controller then hunts at its
    stability limit for the whole stretch (2-3x the rejections in the stiff cases of an attack on
    1,258 random circuits), so the step starts at H_AFTER_EVENT_S as after any transition.
    (Hairer's own bound on the second derivative, (0.01/max(d1, d2))^(1/5), assumes time in units
    near 1: in seconds it allowed microseconds and never bound.) k1 holds f(t, y); ktr[0] gets f
    at the Euler step's end; n_ctrl > 0 (a retrap needs a wire)."""
    d0 = _rms_in_tolerances(y, y, n_ctrl, atol, rtol)
    d1 = _rms_in_tolerances(k1, y, n_ctrl, atol, rtol)
    if d0 < 1e-5 or d1 < 1e-5:
        return H_AFTER_EVENT_S
    h0 = min(0.01 * d0 / d1, h_max)
    for j in range(y.shape[0]):
        ytr[j] = y[j] + h0 * k1[j]
    network(t + h0, t + 0.5 * h0, ytr, s, ip, fp, kinv, v, iv, ktr[0], wk)
    for j in range(n_ctrl):
        ytr[j] = ktr[0, j] - k1[j]     # the rate's change over the Euler step
    d2 = _rms_in_tolerances(ytr, y, n_ctrl, atol, rtol) / h0
    if d2 * 100.0 * h0 > d1:       # the rate's own time scale, d1/d2, is shorter than the state's
        return H_AFTER_EVENT_S
    return max(H_AFTER_EVENT_S, min(STARTING_STEP_SAFETY * 100.0 * h0, h_max))


@njit(cache=True, _nrt=False)
def kink_limit(h, y, k1, s, ip, fp):
    """h, or less where a resistive wire nears the branch point of its growth law or its hotspot
    collapses onto the retrap (see KINK_RHO and COLLAPSE_AIM); k1 = f(t, y)."""
    nb = ip[NB]
    for w in range(s.shape[0]):
        if s[w] != 1:
            continue
        b = ip[ip[W_BR] + w]
        ihs = fp[ip[W_IHS] + w]
        x = y[b] / ihs
        q = psi_i2(x)
        dq = 4.0 * x * k1[b] / ihs     # its rate: d(2x²)/dt
        if (q - 1.0) * dq < 0.0:
            # towards the branch point: from above, or from below (a short wire's current can turn
            # back up through it before the retrap)
            gap = abs(q - 1.0)
            h_kink = (KINK_RHO * gap if gap > KINK_JUMP else KINK_CROSS * KINK_JUMP) / abs(dq)
            h = min(h, max(h_kink, KINK_H_FLOOR_S))
        if q < 1.0 and k1[nb + w] < 0.0 and y[nb + w] > 0.0 and y[b] != 0.0:
            # R ≥ 0 here, so the distance to the aim is at least the retrap level
            c = y[nb + w] - COLLAPSE_AIM * ihs * RETRAP_REFERENCE_RESISTANCE_OHM / abs(y[b])
            # R(t) to second order: R'' = k·q'/δ below the branch point, i.e. R'·q'/(q − 2)
            r1 = k1[nb + w]
            r2 = r1 * dq / (q - 2.0)
            disc = r1 * r1 - 2.0 * r2 * c
            h_collapse = 2.0 * c / (-r1 + math.sqrt(disc)) if disc > 0.0 else c / -r1
            h = min(h, max(h_collapse, KINK_H_FLOOR_S))
    return h


@njit(cache=True, _nrt=False)
def crossed_branch_point(y, y1, s, ip, fp):
    """Whether a resistive wire's ψi² fell through 1 from y to y1."""
    for w in range(s.shape[0]):
        if s[w] == 1:
            b = ip[ip[W_BR] + w]
            ihs = fp[ip[W_IHS] + w]
            if psi_i2(y[b] / ihs) > 1.0 >= psi_i2(y1[b] / ihs):
                return True
    return False


@njit(cache=True, _nrt=False)
def _earliest_event(y0, y1, s, thr, ip, fp):
    """The wire whose event function crosses earliest (linearly) between y0 (none fired) and y1."""
    target = -1
    best = 2.0
    for w in range(s.shape[0]):
        e1 = event_value(w, y1, s, thr, ip, fp)
        if e1 >= 0.0:
            e0 = event_value(w, y0, s, thr, ip, fp)
            theta = e0 / (e0 - e1) if e0 < e1 else 0.0
            if theta < best:
                best = theta
                target = w
    return target


@njit(cache=True, _nrt=False)
def _falsi_point(lo, hi, e_lo, e_hi):
    """Regula falsi's next point in the bracket (lo, hi); its middle where the secant would land
    within 1e-3 of the bracket of either end (it then creeps, one end fixed)."""
    theta = (lo * e_hi - hi * e_lo) / (e_hi - e_lo)
    margin = 1e-3 * (hi - lo)
    if not (lo + margin < theta < hi - margin):
        theta = 0.5 * (lo + hi)
    return theta


@njit(cache=True, _nrt=False)
def _falsi_update(theta, fired, e_theta, lo, hi, e_lo, e_hi, side):
    """(lo, hi, e_lo, e_hi, side) once the point θ (event value e_theta) is on the side that has
    fired or not; Illinois: an end kept twice in a row has its value halved, so the secant moves it."""
    if fired:
        hi = theta
        e_hi = e_theta
        if side == 1:
            e_lo *= 0.5
        side = 1
    else:
        lo = theta
        e_lo = e_theta
        if side == -1:
            e_hi *= 0.5
        side = -1
    return lo, hi, e_lo, e_hi, side


@njit(cache=True, _nrt=False)
def dense_crossing(h, y, kst, s, thr, ip, fp, ysm):
    """(θ, wire, slope): the fraction of an accepted step at which the step's dense output shows
    its first transition (Illinois regula falsi on the interpolant, to T_TOL_S), whose wire, and
    the slope of its event function in θ there; θ = -1 when the interpolant shows none."""
    lo = 0.0
    hi = 1.0
    dense(hi, h, y, kst, ysm)
    target = _earliest_event(y, ysm, s, thr, ip, fp)
    if target < 0:
        return -1.0, 0, 1.0
    e_lo = event_value(target, y, s, thr, ip, fp)
    e_hi = event_value(target, ysm, s, thr, ip, fp)
    side = 0
    for _ in range(200):
        if (hi - lo) * h <= T_TOL_S:
            break
        theta = _falsi_point(lo, hi, e_lo, e_hi)
        dense(theta, h, y, kst, ysm)
        fired = _any_event(ysm, s, thr, ip, fp)
        if fired >= 0 and event_value(target, ysm, s, thr, ip, fp) < 0.0:
            target = fired          # another wire crosses first: its bracket from here on
            dense(lo, h, y, kst, ysm)
            e_lo = event_value(target, ysm, s, thr, ip, fp)
            dense(theta, h, y, kst, ysm)
            side = 0
        lo, hi, e_lo, e_hi, side = _falsi_update(theta, fired >= 0, event_value(target, ysm, s, thr, ip, fp),
                                                 lo, hi, e_lo, e_hi, side)
    # the slope over a span around the crossing (wider than the bracket, against rounding), as far
    # as the step reaches on either side
    span = min(1e3 * T_TOL_S / h, lo, 1.0 - hi)
    dense(hi + span, h, y, kst, ysm)
    e_after = event_value(target, ysm, s, thr, ip, fp)
    dense(lo - span, h, y, kst, ysm)
    e_before = event_value(target, ysm, s, thr, ip, fp)
    return 0.5 * (lo + hi), target, (e_after - e_before) / (hi - lo + 2.0 * span)


@njit(cache=True, _nrt=False)
def interior_event(h, y, kst, s, thr, ip, fp, ysm):
    """Smallest checked fraction θ of the step at which a wire's event function is ≥ 0 on the
    dense output, or 0 when there is none."""
    for theta in INTERIOR_THETAS:
        dense(theta, h, y, kst, ysm)
        if _any_event(ysm, s, thr, ip, fp) >= 0:
            return theta
    return 0.0


@njit(cache=True, _nrt=False)
def peak_event(h, y, y1, k1, kst, s, thr, ip, fp, ysm):
    """Smallest fraction θ of the step at which a superconducting wire's |I| peaks inside the
    step above its threshold, or 0 when none does.

    A current that rises through its threshold and falls back within one step ends the step
    below it, and the checks at fixed fractions can straddle a short excursion: a pulse just
    above threshold would then not switch the wire. Where |I| turns over inside the step (its
    slopes at the two ends differ in sign), the turning point of the cubic through both ends and
    slopes is found, and the dense output there is checked."""
    best = 0.0
    for w in range(s.shape[0]):
        if s[w] != 0:
            continue
        b = ip[ip[W_BR] + w]
        sign = 1.0 if y[b] + y1[b] >= 0.0 else -1.0
        i0, i1, d0, d1 = sign * y[b], sign * y1[b], sign * h * k1[b], sign * h * kst[6, b]
        if not (d0 > 0.0 and d1 < 0.0):
            continue
        # p'(θ) = aθ² + bθ + c of the cubic Hermite interpolant: one root in (0, 1), by bisection
        a = 6.0 * (i0 - i1) + 3.0 * (d0 + d1)
        bq = 6.0 * (i1 - i0) - 4.0 * d0 - 2.0 * d1
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if (a * mid + bq) * mid + d0 > 0.0:
                lo = mid
            else:
                hi = mid
        theta = 0.5 * (lo + hi)
        dense(theta, h, y, kst, ysm)
        if event_value(w, ysm, s, thr, ip, fp) >= 0.0 and (best == 0.0 or theta < best):
            best = theta
    return best


@njit(cache=True)
def advance(t, t_stop, h, h_max, y, s, zcur, thr, z, z_idx, e_sw, ip, fp, kinv, lin, lwk, atol, rtol,
            bp, ts, out, ev, n_ev, cursor, stats):
    """Integrate from t to t_stop. cursor = [breakpoint index, sample index]; lin: the chip's
    modal form (_linear_modes; [0.0] for none), lwk its scratch; stats = [accepted steps, rejected
    steps, event-location steps, exact stretches]. Returns (status, t, h, n_ev)."""
    nb = ip[NB]
    nw = ip[NW]
    nn = ip[NN]
    nvs = ip[NVS]
    ny = y.shape[0]
    n_ctrl = nb + nw
    e_hs0 = nb + nw + ip[NR]
    v = np.empty(nn)
    iv = np.empty(nvs)
    dy = np.empty(ny)
    k1 = np.empty(ny)
    y1 = np.empty(ny)
    ylo = np.empty(ny)
    ytr = np.empty(ny)
    yhi = np.empty(ny)
    kst = np.empty((7, ny))
    ktr = np.empty((7, ny))
    khi = np.empty((7, ny))
    ysm = np.empty(ny)
    tmp = np.empty(ny)
    wk = np.empty(nn + nvs + 2 * nb + ip[NCL] * (ip[NCL] + 2))   # _layout.Structure.network_scratch_length
    ns = ts.shape[0]
    # polynomial output per step (see _kernel_output) unless floating clusters need the network
    poly_out = ip[NCL] == 0
    # closed-form stretches where every wire is superconducting (see _kernel_exact)
    exact = lin[0] != 0.0
    # every trace is computed; out (a row a trace, a column a sample) keeps its first out.shape[0]
    # traces (the node voltages alone when that is all the caller records)
    n_out = out.shape[0]
    row = np.empty(nn + nb + ip[NR] + ip[NCS] + nvs + (ny - nb - nw) + nw)
    coef = np.empty((N_COEF, row.shape[0]))
    rhs = np.empty((N_COEF, nn + nvs))
    while cursor[1] < ns and ts[cursor[1]] <= t:
        sample_row(ts[cursor[1]], y, s, ip, fp, kinv, v, iv, dy, row, wk)
        _put_sample(out, cursor[1], row)
        cursor[1] += 1
    need_f = True
    pick_step = False
    grow_max = GROW_MAX
    jac = np.empty((nb, nb))
    e_cols = nn + nb + ip[NR] + ip[NCS] + nvs    # first energy column of a sample row (_layout.sample_columns)
    while True:
        for w in range(nw):
            if math.isnan(zcur[w]):
                # a draw is there: each call starts with a block of them, and a retrap that would
                # need one past it returns for the next block first (below)
                if fp[ip[W_SIGMA] + w] == 0.0:
                    zcur[w] = 0.0
                else:
                    zcur[w] = z[w, z_idx[w]]
                    z_idx[w] += 1
            thr[w] = max(fp[ip[W_ISW] + w] + fp[ip[W_SIGMA] + w] * zcur[w], THRESHOLD_FLOOR * fp[ip[W_ISW] + w])
        w = _any_event(y, s, thr, ip, fp)
        if w >= 0:
            if n_ev >= ev.shape[0]:
                return 1, t, h, n_ev
            if s[w] == 1 and fp[ip[W_SIGMA] + w] != 0.0 and z_idx[w] >= z.shape[1]:
                # the wire's next threshold draw is needed at this retrap: renewed before it is
                # taken, so the retrap and the step it chooses happen within one call
                return 2, t, h, n_ev
            if n_ev > 4 * nw + 4 and ev[n_ev - 4 * nw - 4, 1] == t:
                return 4, t, h, n_ev  # transitions without time passing: inconsistent thresholds
            ev[n_ev, 0] = w
            ev[n_ev, 1] = t
            if s[w] == 0:
                s[w] = 1
                ev[n_ev, 2] = 0.0
                ev[n_ev, 3] = math.nan
                e_sw[w] = y[e_hs0 + w]
            else:
                s[w] = 0
                ev[n_ev, 2] = 1.0
                ev[n_ev, 3] = y[e_hs0 + w] - e_sw[w]
                zcur[w] = math.nan
            y[nb + w] = 0.0
            n_ev += 1
            need_f = True
            h = min(h, H_AFTER_EVENT_S)
            grow_max = GROW_AFTER_EVENT
            pick_step = True      # after a retrap into a wholly superconducting chip (STARTING_STEP_SAFETY)
            for other in range(nw):
                pick_step = pick_step and s[other] == 0
            continue
        if t >= t_stop - T_SNAP_S:
            # samples left only by rounding (t a few ulp short of t_stop) take the final state
            while cursor[1] < ns:
                sample_row(ts[cursor[1]], y, s, ip, fp, kinv, v, iv, dy, row, wk)
                _put_sample(out, cursor[1], row)
                cursor[1] += 1
            return 0, t, h, n_ev
        while cursor[0] < bp.shape[0] and bp[cursor[0]] <= t + T_SNAP_S:
            cursor[0] += 1
        t_limit = t_stop
        if cursor[0] < bp.shape[0] and bp[cursor[0]] < t_limit:
            t_limit = bp[cursor[0]]
        if exact:
            superconducting = True
            for w in range(nw):
                superconducting = superconducting and s[w] == 0
            if superconducting and sources_constant(t, t_limit, ip, fp):
                t = exact_stretch(t, t_limit, y, thr, ip, fp, lin, lwk, ts, cursor, out)
                stats[3] += 1
                need_f = True
                continue
        if need_f:
            network(t, t, y, s, ip, fp, kinv, v, iv, k1, wk)
            need_f = False
        if pick_step:
            h = starting_step(t, h_max, y, k1, s, ip, fp, kinv, v, iv, wk, n_ctrl, atol, rtol, ytr, ktr)
            pick_step = False
        if rest_stride(t, t_limit, min(h, h_max), y, k1, s, thr, ip, fp, kinv, v, iv, wk, atol, rtol, ytr, ktr,
                       jac):
            # At rest up to the breakpoint: currents and node voltages stay, the energies go on
            # at their present rates (a source feeding a resistor keeps doing so).
            y[:nb] = ytr[:nb]
            sample_row(t_limit, y, s, ip, fp, kinv, v, iv, dy, row, wk)
            # a stride at rest spans most of a capture's samples: plain loops, no slice per
            # sample, and the energy columns only where the caller records them
            energies_out = min(max(n_out - e_cols, 0), ny - n_ctrl)
            last = cursor[1]
            while last < ns and ts[last] <= t_limit:
                last += 1
            times = ts[cursor[1]:last]      # views from index 0 vectorize (see write_samples)
            for c in range(n_out):
                out[c, cursor[1]:last] = row[c]
            for j in range(energies_out):
                trace = out[e_cols + j, cursor[1]:last]
                energy, power = y[n_ctrl + j], k1[n_ctrl + j]
                for k in range(times.shape[0]):
                    trace[k] = energy + power * (times[k] - t)
            cursor[1] = last
            for j in range(n_ctrl, ny):
                y[j] += k1[j] * (t_limit - t)
            t = t_limit
            stats[0] += 1
            need_f = True
            continue
        h = kink_limit(min(h, h_max), y, k1, s, ip, fp)
        to_limit = False
        if t + h >= t_limit or t_limit - (t + h) < 1e-6 * h:
            h = t_limit - t
            to_limit = True
        if h < H_MIN_S:
            return 3, t, h, n_ev
        rk_step(t, h, y, k1, s, ip, fp, kinv, kst, y1, v, iv, wk, tmp)
        err = error_norm(h, y, y1, kst, n_ctrl, atol, rtol)
        if not err <= 1.0:
            stats[1] += 1
            h *= 0.2 if math.isnan(err) else max(0.2, 0.9 * err ** -0.2)
            # no growth on the step after a rejection (Hairer, Nørsett & Wanner, Solving ODEs I,
            # II.4): where the error rises steeply with h (a hotspot nearing the kink of its growth
            # law) the step would grow fivefold and be rejected again, every other step
            grow_max = 1.0
            continue
        if _any_event(y1, s, thr, ip, fp) < 0:
            theta_in = interior_event(h, y, kst, s, thr, ip, fp, ysm) if h > H_INTERIOR_CHECK_S else 0.0
            theta_pk = peak_event(h, y, y1, k1, kst, s, thr, ip, fp, ysm)
            if theta_pk > 0.0 and (theta_in == 0.0 or theta_pk < theta_in):
                theta_in = theta_pk
            if theta_in > 0.0:
                stats[1] += 1
                h *= theta_in   # the shorter step ends past the crossing: located below
                continue
        # earliest crossing in this step: located on the dense output (the state there is the
        # interpolant's, within the step's tolerance), or where that does not show it fired, on
        # real RK steps
        target = _earliest_event(y, y1, s, thr, ip, fp)
        h_acc = h
        h_out = h      # the step kst holds the stages of: the output polynomials' step
        located = target < 0
        if target >= 0:
            theta, aim, slope = dense_crossing(h, y, kst, s, thr, ip, fp, ysm)
            theta_fired = theta + 0.5 * T_TOL_S / h     # the bracket's fired end, or just past it
            if theta_fired >= 1.0:
                located = True                          # at the step's end: the step as it is
            elif theta > 0.0:
                dense(theta_fired, h, y, kst, ysm)
                if _any_event(ysm, s, thr, ip, fp) >= 0:
                    located = True
                    h_acc = theta_fired * h
                    y1[:] = ysm
                    need_f = True
        if not located:
            lo = 0.0
            hi = 1.0
            ylo[:] = y
            yhi[:] = y1
            khi[:, :] = kst
            # Real steps confirm the interpolant's crossing from both sides, each placed by a
            # Newton step on the real event function with the interpolant's slope (the two differ
            # by a nearly constant offset there). What they leave unconfirmed, regula falsi
            # (Illinois) on real steps finishes.
            half = 0.5 * T_TOL_S / h
            theta -= half
            for _ in range(3):
                if not (lo < theta < hi) or (hi - lo) * h <= T_TOL_S:
                    break
                rk_step(t, theta * h, y, k1, s, ip, fp, kinv, ktr, ytr, v, iv, wk, tmp)
                stats[2] += 1
                e_real = event_value(aim, ytr, s, thr, ip, fp)
                if _any_event(ytr, s, thr, ip, fp) >= 0:
                    hi = theta
                    yhi[:] = ytr
                    khi[:, :] = ktr
                    theta = theta - e_real / slope - half
                else:
                    lo = theta
                    ylo[:] = ytr
                    theta = theta - e_real / slope + half
            target = _earliest_event(ylo, yhi, s, thr, ip, fp)
            e_lo = event_value(target, ylo, s, thr, ip, fp)
            e_hi = event_value(target, yhi, s, thr, ip, fp)
            side = 0
            for _ in range(200):
                if (hi - lo) * h <= T_TOL_S:
                    break
                theta = _falsi_point(lo, hi, e_lo, e_hi)
                rk_step(t, theta * h, y, k1, s, ip, fp, kinv, ktr, ytr, v, iv, wk, tmp)
                stats[2] += 1
                fired = _any_event(ytr, s, thr, ip, fp)
                if fired >= 0 and event_value(target, ytr, s, thr, ip, fp) < 0.0:
                    target = fired
                    e_lo = event_value(target, ylo, s, thr, ip, fp)
                    side = 0
                if fired >= 0:
                    yhi[:] = ytr
                    khi[:, :] = ktr
                else:
                    ylo[:] = ytr
                lo, hi, e_lo, e_hi, side = _falsi_update(theta, fired >= 0, event_value(target, ytr, s, thr, ip, fp),
                                                         lo, hi, e_lo, e_hi, side)
            h_acc = hi * h
            h_out = h_acc
            y1[:] = yhi
            kst[:, :] = khi
            need_f = True
        stats[0] += 1
        t_new = t_limit if (to_limit and target < 0) else t + h_acc
        if poly_out:
            if cursor[1] < ns and ts[cursor[1]] <= t_new:
                output_coefficients(t, h_out, y, kst, s, ip, fp, kinv, coef, rhs)
                cursor[1] = write_samples(coef, nw, t, h_out, ts, cursor[1], t_new, out)
        else:
            while cursor[1] < ns and ts[cursor[1]] <= t_new:
                dense(min((ts[cursor[1]] - t) / h_out, 1.0), h_out, y, kst, ysm)
                sample_row(ts[cursor[1]], ysm, s, ip, fp, kinv, v, iv, dy, row, wk)
                _put_sample(out, cursor[1], row)
                cursor[1] += 1
        crossed = crossed_branch_point(y, y1, s, ip, fp)
        t = t_new
        y[:] = y1
        for w in range(nw):
            if s[w] == 1 and y[nb + w] < 0.0:
                y[nb + w] = 0.0     # the hotspot's clamp at 0 (its rate ran on through the step)
                need_f = True
        if target >= 0:
            h = H_AFTER_EVENT_S
        elif to_limit:
            need_f = True  # a new waveform segment starts: FSAL stage has the old slope
        else:
            k1[:] = kst[6]
            h *= min(grow_max, max(0.2, 0.9 * max(err, 1e-10) ** -0.2))
        # below the branch point the growth law is linear in ψi²: like the first step after a
        # transition, the step that crossed it is far shorter than the collapse needs
        grow_max = GROW_AFTER_EVENT if crossed else GROW_MAX
