"""Numba kernel, part 1: source waveforms, nanowire nonlinearities and the network right-hand side.

The network is L–R only (no capacitors), so the state is the inductive branch currents plus the
hotspot resistances; node voltages are algebraic. Given the branch currents they follow from the
resistive MNA system K·[v; i_V] = [J − A_L·i; V], whose inverse is precomputed (K is constant:
hotspot resistances sit in series with their inductive branch, not in K). Nodes that reach ground
only through inductive branches form floating clusters; for each, one KCL row is replaced by
"v_rep = 0" and the cluster's common-mode potential is found from the differentiated cluster KCL
(Σ A_L·dI/dt = dJ/dt), so no regularising conductance is needed.

Element data arrive packed in ``ip``/``fp`` (layout in _packing) plus ``kinv``.

Everything on the time loop's path is compiled without numba's runtime (``_nrt=False``) and
allocates nothing: scratch comes from the caller (``wk``, ``ktr``), copies are loops. With the
runtime, a call of a function that takes arrays increments and decrements each array's reference
count atomically; on C2 that was two thirds of a DP5 step (818 → 274 ns), with the same numbers out.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sim_backend.physics._packing import (
    BR_ISW, BR_L0, BR_N, BR_NL, BR_P, BR_WIRE, CL_OF_NODE, CL_REP, CS_N, CS_P, NB, NCL, NCS, NN, NR,
    NVS, NW, PWL_LEN, PWL_OFF, PWL_T, PWL_V, R_G, R_N, R_P, W_BR, W_DELTA, W_IHS, W_K,
    W_RN,
)
from sim_backend.physics.nanowire import MAX_FIT_RATIO

FIT_CAP = MAX_FIT_RATIO   # the fit's |I|/I_sw is held here above it (nanowire's constant)


@njit(cache=True, _nrt=False)
def _segment(k, t, ip, fp):
    """(lo, hi) point indices in fp around t for source k; lo == hi outside the waveform."""
    o = ip[ip[PWL_OFF] + k]
    n = ip[ip[PWL_LEN] + k]
    pt = ip[PWL_T]
    if n == 1 or t < fp[pt + o]:
        return o, o
    if t >= fp[pt + o + n - 1]:
        return o + n - 1, o + n - 1
    lo = o
    hi = o + n - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fp[pt + mid] <= t:
            lo = mid
        else:
            hi = mid
    return lo, hi


@njit(cache=True, _nrt=False, inline='always')
def pwl_value(k, t, ip, fp):
    lo, hi = _segment(k, t, ip, fp)
    pt = ip[PWL_T]
    pv = ip[PWL_V]
    if lo == hi:
        return fp[pv + lo]
    return fp[pv + lo] + (t - fp[pt + lo]) / (fp[pt + hi] - fp[pt + lo]) * (fp[pv + hi] - fp[pv + lo])


@njit(cache=True, _nrt=False)
def pwl_slope(k, t, ip, fp):
    """Slope of the segment containing t (steps never straddle a breakpoint, so t = mid-step)."""
    lo, hi = _segment(k, t, ip, fp)
    if lo == hi:
        return 0.0
    pt = ip[PWL_T]
    pv = ip[PWL_V]
    return (fp[pv + hi] - fp[pv + lo]) / (fp[pt + hi] - fp[pt + lo])


# The fit is even in I, so a function of u = (I/I_sw)². Up to FIT_TABLE_U it is evaluated from
# polynomials on FIT_PIECES equal pieces of u (Chebyshev interpolants of the closed form, of degree
# FIT_DEGREE, turned into powers of the piece's own variable t ∈ [−1, 1]): within 2e-15 of the
# closed form (tests/physics/test_nanowire_constants.py), without its asin, cos and sin, which took
# a quarter of a step on a chip with nonlinear wires. Above it (|I| > 1.3 I_sw, where a wire has
# switched) the closed form.
FIT_TABLE_U = 1.69
FIT_PIECES = 64
FIT_DEGREE = 6


@njit(cache=True, _nrt=False)
def _fit_closed(x):
    """(L₀/L(I), its derivative in x) with L₀/L = 2cos(0.67·asin(0.6·x))−1 for x = |I|/I_sw
    (the S5 fit), x < 1/0.6."""
    y = 0.6 * x
    a = math.asin(y)
    return 2.0 * math.cos(0.67 * a) - 1.0, -2.0 * math.sin(0.67 * a) * 0.67 * 0.6 / math.sqrt(1.0 - y * y)


def _fit_polynomials() -> tuple[np.ndarray, np.ndarray]:
    """(coefficients of L₀/L, of its derivative in u), each (FIT_PIECES, FIT_DEGREE + 1), lowest
    power first, in t = (u − centre)/half-width of each piece: Chebyshev interpolation at the
    first-kind points (numpy's chebinterpolate, for all pieces at once), then powers of t."""
    from numpy.polynomial import chebyshev

    order = FIT_DEGREE + 1
    nodes = chebyshev.chebpts1(order)                  # inside (−1, 1): never u = 0 below
    lows = np.linspace(0.0, FIT_TABLE_U, FIT_PIECES + 1)[:-1]
    x = np.sqrt(lows[:, None] + (nodes[None, :] + 1.0) * (FIT_TABLE_U / FIT_PIECES / 2.0))
    # the closed form's Python source: the same libm calls (the same values, to the bit), without
    # loading its compiled code at every import
    closed = np.array([_fit_closed.py_func(v) for v in x.ravel()]).reshape(*x.shape, 2)
    ratio, slope = closed[..., 0], closed[..., 1] / (2.0 * x)     # d/du = d/dx / 2x
    to_chebyshev = chebyshev.chebvander(nodes, FIT_DEGREE) / (0.5 * order)
    to_chebyshev[:, 0] /= 2.0
    to_powers = np.zeros((order, order))
    for k in range(order):
        powers = chebyshev.cheb2poly(np.eye(order)[k])
        to_powers[k, :powers.size] = powers
    return ratio @ to_chebyshev @ to_powers, slope @ to_chebyshev @ to_powers


_FIT_RATIO, _FIT_SLOPE = _fit_polynomials()
_FIT_HALF_WIDTH = FIT_TABLE_U / FIT_PIECES / 2.0


@njit(cache=True, _nrt=False)
def _fit_tabled(u):
    """(L₀/L, d(L₀/L)/du) at u = (I/I_sw)² < FIT_TABLE_U, from the piece's polynomials."""
    k = min(int(u * (FIT_PIECES / FIT_TABLE_U)), FIT_PIECES - 1)
    t = (u - (2 * k + 1) * _FIT_HALF_WIDTH) / _FIT_HALF_WIDTH
    ratio = _FIT_RATIO[k, FIT_DEGREE]
    slope = _FIT_SLOPE[k, FIT_DEGREE]
    for p in range(FIT_DEGREE - 1, -1, -1):
        ratio = ratio * t + _FIT_RATIO[k, p]
        slope = slope * t + _FIT_SLOPE[k, p]
    return ratio, slope


@njit(cache=True, _nrt=False)
def fit_denominator(x):
    """L₀/L(I) = 2cos(0.67·asin(0.6·x))−1 for x = |I|/I_sw (the S5 fit)."""
    u = x * x
    if u < FIT_TABLE_U:
        return _fit_tabled(u)[0]
    return _fit_closed(x)[0]


@njit(cache=True, _nrt=False, inline='always')
def differential_inductance(l0, nonlinear, isw, i):
    """dΦ/dI for Φ = L₀·I/(2cos(0.67·asin(0.6·I/I_sw))−1), or L₀ for linear branches."""
    if nonlinear == 0:
        return l0
    x = abs(i) / isw
    u = x * x
    if u < FIT_TABLE_U:
        d, dd_du = _fit_tabled(u)
        return l0 * (d - 2.0 * u * dd_du) / (d * d)       # x·d(L₀/L)/dx = 2u·d(L₀/L)/du
    if x >= FIT_CAP:
        return l0 / _fit_closed(FIT_CAP)[0]
    d, dd_dx = _fit_closed(x)
    return l0 / d - l0 * x * dd_dx / (d * d)


@njit(cache=True, _nrt=False)
def flux(l0, nonlinear, isw, i):
    """Φ(I) = L(I)·I with the fit's |I|/I_sw held at FIT_CAP above it, or L₀·I for linear branches."""
    if nonlinear == 0:
        return l0 * i
    return l0 * i / fit_denominator(min(abs(i) / isw, FIT_CAP))


#: Nodes and weights of the stored-energy integral: exact to ~1e-12 for the fit.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(24)


@njit(cache=True, _nrt=False)
def inductive_energy(l0, nonlinear, isw, i):
    """∫₀^I I' dΦ(I') = I·Φ(I) − ∫₀^I Φ(I') dI' (Gauss–Legendre), or ½L₀I² for linear branches."""
    if nonlinear == 0:
        return 0.5 * l0 * i * i
    acc = 0.0
    for k in range(_GL_X.shape[0]):
        acc += _GL_W[k] * flux(l0, 1, isw, 0.5 * i * (_GL_X[k] + 1.0))
    return i * flux(l0, 1, isw, i) - 0.5 * i * acc


@njit(cache=True, _nrt=False)
def stored_energy(l0, nonlinear, isw, current):
    """Σ over the inductive branches of their inductive_energy (nonlinear-aware)."""
    total = 0.0
    for b in range(current.shape[0]):
        total += inductive_energy(l0[b], nonlinear[b], isw[b], current[b])
    return total


@njit(cache=True, _nrt=False, inline='always')
def psi_i2(x_hs):
    """ψi² = ψ(I/I_sw)² = 2(I/I_hs)², with x_hs = I/I_hs: the growth law's argument, whose branch
    point is at 1."""
    return 2.0 * x_hs * x_hs


@njit(cache=True, _nrt=False)
def boundary_velocity(x_hs, delta):
    """u = (ψi²−2)/(√max(ψi²−1,0)+δ) (psi_i2)."""
    q = psi_i2(x_hs)
    r = q - 1.0
    if r < 0.0:
        r = 0.0
    return (q - 2.0) / (math.sqrt(r) + delta)


@njit(cache=True)
def solve_small(a, b):
    """Gaussian elimination with partial pivoting on copies; returns x with a·x = b."""
    m = a.copy()
    x = b.copy()
    solve_in_place(m, x, b.shape[0])
    return x


@njit(cache=True, _nrt=False)
def solve_in_place(m, x, n):
    """Gaussian elimination with partial pivoting on the leading n x n block of m and the first n
    entries of x, in place: x holds the solution, m is overwritten. Nothing is allocated, so a
    function compiled without the runtime may call it."""
    for c in range(n):
        p = c
        best = abs(m[c, c])
        for r in range(c + 1, n):
            if abs(m[r, c]) > best:
                best = abs(m[r, c])
                p = r
        if p != c:
            for k in range(n):
                tmp = m[c, k]
                m[c, k] = m[p, k]
                m[p, k] = tmp
            tmp = x[c]
            x[c] = x[p]
            x[p] = tmp
        for r in range(c + 1, n):
            f = m[r, c] / m[c, c]
            if f != 0.0:
                for k in range(c, n):
                    m[r, k] -= f * m[c, k]
                x[r] -= f * x[c]
    for c in range(n - 1, -1, -1):
        acc = x[c]
        for k in range(c + 1, n):
            acc -= m[c, k] * x[k]
        x[c] = acc / m[c, c]


@njit(cache=True, _nrt=False)
def node_of(ip, base, k):
    return ip[ip[base] + k]


@njit(cache=True, _nrt=False)
def vdiff(v, p, n):
    return (v[p] if p >= 0 else 0.0) - (v[n] if n >= 0 else 0.0)


# Inlined into its callers: a call that passes its nine arrays costs ~100 ns even when it returns
# at once (measured: half of an evaluation of the default neuron's network), six times a step.
@njit(cache=True, inline='always')
def network(t, t_mid, y, s, ip, fp, kinv, v, iv, dy, wk):
    """Fill node voltages v, voltage-source currents iv and dy/dt for state y, wire states s.
    wk: scratch ≥ n_nodes + n_vsources + 2·n_branches + n_clusters·(n_clusters+2)."""
    nn = ip[NN]
    nb = ip[NB]
    nw = ip[NW]
    nr = ip[NR]
    ncs = ip[NCS]
    nvs = ip[NVS]
    n_cl = ip[NCL]
    # scratch layout in wk: [rhs (nn+nvs) | dΦ/dI (nb) | branch drive (nb) | cluster system]
    o_ld = nn + nvs
    o_dr = o_ld + nb
    o_cs = nb + nw + nr + nw    # the current sources' delivered-power entries of dy: their values
    for k in range(nn + nvs):   # wait there until the node voltages are known (one lookup each)
        wk[k] = 0.0
    for k in range(ncs):
        val = pwl_value(k, t, ip, fp)
        dy[o_cs + k] = val
        p = node_of(ip, CS_P, k)
        n = node_of(ip, CS_N, k)
        if p >= 0:
            wk[p] += val
        if n >= 0:
            wk[n] -= val
    for b in range(nb):
        p = node_of(ip, BR_P, b)
        n = node_of(ip, BR_N, b)
        if p >= 0:
            wk[p] -= y[b]
        if n >= 0:
            wk[n] += y[b]
    for m in range(nvs):
        wk[nn + m] = pwl_value(ncs + m, t, ip, fp)
    for c in range(n_cl):
        wk[node_of(ip, CL_REP, c)] = 0.0
    # mat-vec by hand: numba's @ needs SciPy's BLAS
    for r in range(nn + nvs):
        acc = 0.0
        for c in range(nn + nvs):
            acc += kinv[r, c] * wk[c]
        if r < nn:
            v[r] = acc
        else:
            iv[r - nn] = acc
    # branch drive: (v_p − v_n − R·I), divided later by dΦ/dI
    for b in range(nb):
        w = node_of(ip, BR_WIRE, b)
        rb = 0.0
        if w >= 0 and s[w] == 1:
            rb = max(y[nb + w], 0.0)
        wk[o_ld + b] = differential_inductance(fp[ip[BR_L0] + b], node_of(ip, BR_NL, b), fp[ip[BR_ISW] + b], y[b])
        wk[o_dr + b] = vdiff(v, node_of(ip, BR_P, b), node_of(ip, BR_N, b)) - rb * y[b]
    if n_cl > 0:
        _cluster_potentials(t_mid, ip, fp, v, wk, o_ld, o_dr)
    for b in range(nb):
        dy[b] = wk[o_dr + b] / wk[o_ld + b]
    # hotspot resistance: held at R_n; below 0 the rate runs on (the step's stages stay smooth where
    # a collapsing hotspot meets its retrap, just above 0), and the time loop clamps a committed
    # state back to 0
    for w in range(nw):
        i = y[node_of(ip, W_BR, w)]
        r = y[nb + w]
        if s[w] == 1:
            rate = fp[ip[W_K] + w] * boundary_velocity(abs(i) / fp[ip[W_IHS] + w], fp[ip[W_DELTA] + w])
            if r >= fp[ip[W_RN] + w] and rate > 0.0:
                rate = 0.0
            dy[nb + w] = rate
        else:
            dy[nb + w] = 0.0
    # energy quadratures: resistors, hotspots, sources (delivered)
    off = nb + nw
    for k in range(nr):
        dv = vdiff(v, node_of(ip, R_P, k), node_of(ip, R_N, k))
        dy[off + k] = fp[ip[R_G] + k] * dv * dv
    off += nr
    for w in range(nw):
        i = y[node_of(ip, W_BR, w)]
        dy[off + w] = max(y[nb + w], 0.0) * i * i if s[w] == 1 else 0.0
    off += nw
    for k in range(ncs):
        dy[off + k] *= vdiff(v, node_of(ip, CS_P, k), node_of(ip, CS_N, k))
    off += ncs
    for m in range(nvs):
        dy[off + m] = wk[nn + m] * iv[m]      # the source's value, as the MNA right-hand side has it


@njit(cache=True, _nrt=False)
def _cluster_potentials(t_mid, ip, fp, v, wk, o_ld, o_dr):
    """Common-mode potential of each floating cluster from d/dt of its summed KCL. The system
    is built and solved in wk's cluster part (after the branch drives): no allocation."""
    nn = ip[NN]
    nb = ip[NB]
    ncs = ip[NCS]
    n_cl = ip[NCL]
    o_m = o_dr + nb            # mat, n_cl x n_cl
    o_x = o_m + n_cl * n_cl    # right-hand side, then the common-mode potentials
    for k in range(n_cl * n_cl + n_cl):
        wk[o_m + k] = 0.0
    for k in range(ncs):
        sl = pwl_slope(k, t_mid, ip, fp)
        p = node_of(ip, CS_P, k)
        n = node_of(ip, CS_N, k)
        if p >= 0 and node_of(ip, CL_OF_NODE, p) >= 0:
            wk[o_x + node_of(ip, CL_OF_NODE, p)] += sl
        if n >= 0 and node_of(ip, CL_OF_NODE, n) >= 0:
            wk[o_x + node_of(ip, CL_OF_NODE, n)] -= sl
    for b in range(nb):
        p = node_of(ip, BR_P, b)
        n = node_of(ip, BR_N, b)
        cp = node_of(ip, CL_OF_NODE, p) if p >= 0 else -1
        cn = node_of(ip, CL_OF_NODE, n) if n >= 0 else -1
        g = 1.0 / wk[o_ld + b]
        if cp >= 0:
            wk[o_x + cp] -= wk[o_dr + b] * g
            wk[o_m + cp * n_cl + cp] += g
            if cn >= 0:
                wk[o_m + cp * n_cl + cn] -= g
        if cn >= 0:
            wk[o_x + cn] += wk[o_dr + b] * g
            wk[o_m + cn * n_cl + cn] += g
            if cp >= 0:
                wk[o_m + cn * n_cl + cp] -= g
    solve_in_place(wk[o_m:o_x].reshape((n_cl, n_cl)), wk[o_x:o_x + n_cl], n_cl)
    for k in range(nn):
        c = node_of(ip, CL_OF_NODE, k)
        if c >= 0:
            v[k] += wk[o_x + c]
    for b in range(nb):
        p = node_of(ip, BR_P, b)
        n = node_of(ip, BR_N, b)
        if p >= 0 and node_of(ip, CL_OF_NODE, p) >= 0:
            wk[o_dr + b] += wk[o_x + node_of(ip, CL_OF_NODE, p)]
        if n >= 0 and node_of(ip, CL_OF_NODE, n) >= 0:
            wk[o_dr + b] -= wk[o_x + node_of(ip, CL_OF_NODE, n)]
