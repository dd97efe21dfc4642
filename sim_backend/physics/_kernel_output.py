"""Numba kernel, part 4: output samples from an accepted step's dense output, without the network.

Within one accepted step every source is linear in time (steps never straddle a waveform
breakpoint) and the state is the degree-4 dense-output polynomial in θ = (t − t_step)/h. Without
floating clusters the node voltages are a constant linear map of (sources, branch currents)
(K·[v; i_V] = [J − A_L·i; V]), so every output column except the clamped hotspot resistance is a
polynomial of degree ≤ 4 in θ. ``output_coefficients`` builds those polynomials once per step
(five mat-vecs of the small MNA inverse) and ``write_samples`` evaluates them by Horner's rule for
every sample in the step: the same values as re-evaluating the network at each dense-output state,
up to rounding, at a fraction of the cost. Circuits with floating clusters (whose common-mode
potential depends on dΦ/dI and the hotspot drop) keep the per-sample network evaluation.

Column layout (as ``sample_row``): [node voltages | branch currents | resistor currents |
current sources | V-source currents | energies | hotspot resistances].
"""

from __future__ import annotations

from numba import njit

from sim_backend.physics._kernel_integrate import _P
from sim_backend.physics._kernel_network import node_of, pwl_slope, pwl_value
from sim_backend.physics._packing import BR_N, BR_P, CS_N, CS_P, NB, NCS, NN, NR, NVS, NW, R_G, R_N, R_P

N_COEF = 5  # θ⁰ … θ⁴


@njit(cache=True, _nrt=False)
def output_coefficients(t, h, y, kst, s, ip, fp, kinv, coef, rhs):
    """Fill coef[p, column] (coefficient of θ^p) for the step [t, t + h] with stages kst.
    rhs: scratch of shape (N_COEF, n_nodes + n_vsources). Needs no floating clusters."""
    nn = ip[NN]
    nb = ip[NB]
    nw = ip[NW]
    nr = ip[NR]
    ncs = ip[NCS]
    nvs = ip[NVS]
    ny = y.shape[0]
    m = nn + nvs
    c_br = nn
    c_res = c_br + nb
    c_cs = c_res + nr
    c_iv = c_cs + ncs
    c_en = c_iv + nvs
    c_hs = c_en + (ny - nb - nw)
    for p in range(N_COEF):
        for r in range(m):
            rhs[p, r] = 0.0
    t_mid = t + 0.5 * h
    for k in range(ncs):
        j0 = pwl_value(k, t, ip, fp)
        j1 = pwl_slope(k, t_mid, ip, fp) * h
        coef[0, c_cs + k] = j0
        coef[1, c_cs + k] = j1
        for p in range(2, N_COEF):
            coef[p, c_cs + k] = 0.0
        a = node_of(ip, CS_P, k)
        b = node_of(ip, CS_N, k)
        if a >= 0:
            rhs[0, a] += j0
            rhs[1, a] += j1
        if b >= 0:
            rhs[0, b] -= j0
            rhs[1, b] -= j1
    for k in range(nvs):
        rhs[0, nn + k] = pwl_value(ncs + k, t, ip, fp)
        rhs[1, nn + k] = pwl_slope(ncs + k, t_mid, ip, fp) * h
    # state polynomials: y(θ) = y + Σ_p θ^p · h·Σ_q P[q, p−1]·k_q
    for j in range(ny):
        if j < nb:
            col = c_br + j
        elif j < nb + nw:
            col = c_hs + (j - nb)
        else:
            col = c_en + (j - nb - nw)
        coef[0, col] = y[j]
        for p in range(1, N_COEF):
            acc = 0.0
            for q in range(7):
                acc += _P[q, p - 1] * kst[q, j]
            coef[p, col] = h * acc
        if nb <= j < nb + nw and s[j - nb] == 0:
            for p in range(N_COEF):
                coef[p, col] = 0.0
    for b in range(nb):
        a = node_of(ip, BR_P, b)
        n = node_of(ip, BR_N, b)
        for p in range(N_COEF):
            if a >= 0:
                rhs[p, a] -= coef[p, c_br + b]
            if n >= 0:
                rhs[p, n] += coef[p, c_br + b]
    for p in range(N_COEF):
        for r in range(m):
            acc = 0.0
            for c in range(m):
                acc += kinv[r, c] * rhs[p, c]
            if r < nn:
                coef[p, r] = acc
            else:
                coef[p, c_iv + r - nn] = acc
    for k in range(nr):
        g = fp[ip[R_G] + k]
        a = node_of(ip, R_P, k)
        b = node_of(ip, R_N, k)
        for p in range(N_COEF):
            va = coef[p, a] if a >= 0 else 0.0
            vb = coef[p, b] if b >= 0 else 0.0
            coef[p, c_res + k] = g * (va - vb)


@njit(cache=True, _nrt=False)
def write_samples(coef, n_clamped, t, h, ts, first, t_end, out):
    """Evaluate the step's polynomials at ts[first], ts[first+1], … ≤ t_end into out's columns
    (its rows: the first out.shape[0] traces); the last n_clamped of coef's columns (hotspot
    resistances) are clamped at 0. Returns the next sample index."""
    ns = ts.shape[0]
    last = first
    while last < ns and ts[last] <= t_end:
        last += 1
    n_rows = out.shape[0]
    n_free = min(coef.shape[1] - n_clamped, n_rows)
    inv_h = 1.0 / h
    # a trace at a time over the step's samples, through views that start at index 0: numba then
    # knows no index is negative, and the loops (contiguous, branch-free) vectorize (6x faster
    # than indexing from `first`, which wraps negative indices a sample at a time)
    times = ts[first:last]
    for c in range(n_rows):
        c0, c1, c2, c3, c4 = coef[0, c], coef[1, c], coef[2, c], coef[3, c], coef[4, c]
        trace = out[c, first:last]
        if c < n_free:
            for k in range(times.shape[0]):
                th = min((times[k] - t) * inv_h, 1.0)
                trace[k] = (((c4 * th + c3) * th + c2) * th + c1) * th + c0
        else:
            for k in range(times.shape[0]):
                th = min((times[k] - t) * inv_h, 1.0)
                trace[k] = max((((c4 * th + c3) * th + c2) * th + c1) * th + c0, 0.0)
    return last


@njit(cache=True, _nrt=False)
def sample_times_in_order(ts, t_start, t_stop):
    """Whether ts is non-decreasing and inside [t_start, t_stop] (NaN is not)."""
    previous = t_start
    for k in range(ts.shape[0]):
        if not previous <= ts[k]:
            return False
        previous = ts[k]
    return previous <= t_stop
