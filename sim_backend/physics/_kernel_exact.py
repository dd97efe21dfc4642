"""Numba kernel, part 5: exact stretches, where every wire is superconducting and the network linear.

There (see _linear_modes for the modal form ``lin``) with the sources constant up to the next
breakpoint, the branch currents in modal coordinates z = V⁻¹·I move as z_m(τ) = A_m·e^{λ_m τ} +
B_m + C_m·τ (C_m only for a superconducting loop's λ = 0), so every output column is
κ₀ + κ₁·τ + Σ κ_m·e^{λ_m τ} and every energy the integral of a quadratic form of that, in closed
form. A stretch is crossed in one go, to the first switching or the breakpoint: no step size, no
error to control, samples where the caller asks for them. Only the chips with a modal form take
this path (linear inductances: a nonlinear kinetic inductance makes the superconducting network
nonlinear, and those chips keep their steps).

The switching is found by marching on a bound: every exponential decays (λ ≤ 0), so
|dI/dτ| ≤ |κ₁| + Σ |κ_m·λ_m|·e^{λ_m τ₀} for all τ ≥ τ₀, and no wire can reach its threshold
before (threshold − |I(τ₀)|) over that bound: the march takes such leaps and can skip no
crossing. On a single dominant mode the bound is the slope itself, and on the concave rise to a
threshold each leap is a Newton step from below, converging quadratically; once a leap is below
half of T_TOL_S, one of twice its length lands past the crossing. Where modes of opposite sign make
the bound loose the march is slower; after MAX_LEAPS it ends the stretch where it is (exactly),
and the next starts there.

Scratch ``w`` (see `offsets`): the modes' A, B, C and the sources | ξ_r, X(τ)'s coefficient
vectors (r = 0: constant, 1: τ, 2 + m: e^{λ_m τ}) | κ, each output column's coefficients, a row
per r over the columns | the energies' coefficients, a row per term of their rates over the
energies (1, τ, τ², then e^{λ_m τ}, τ·e^{λ_m τ}, then the pairs' e^{(λ_m+λ_n)τ}) | the setup's
Q·ξ, then the march's exponentials | a chunk's times and terms | its column sums.
"""

from __future__ import annotations

import math

from numba import njit

from sim_backend.physics._kernel_integrate import T_TOL_S
from sim_backend.physics._kernel_network import pwl_slope, pwl_value
from sim_backend.physics._packing import NB, NCS, NN, NR, NVS, NW, W_BR

MAX_LEAPS = 64
#: Below this |x| the φ-functions are summed as series (their closed forms cancel there).
SERIES_BELOW = 1e-3
#: Samples written together; and how far a grid may be from uniform (of its spacing) for a
#: chunk's exponentials to go by recurrence.
CHUNK = 128
UNIFORM_TOLERANCE = 1e-9


@njit(cache=True)
def offsets(nb, nsrc, ncol, nen):
    """(ξ, κ, energy coefficients, the setup's Q·ξ and the march's exponentials, the chunk's times
    and terms, its column sums, total floats) of the scratch."""
    dim = nb + nsrc
    pairs = nb * (nb + 1) // 2
    o_xi = 3 * nb + nsrc
    o_k = o_xi + (nb + 2) * dim
    o_en = o_k + (nb + 2) * ncol
    o_t = o_en + (3 + 2 * nb + pairs) * nen
    o_ch = o_t + (nb + 2) * dim
    o_sums = o_ch + CHUNK * (1 + 3 * nb + pairs)
    return o_xi, o_k, o_en, o_t, o_ch, o_sums, o_sums + CHUNK * (ncol + nen)


@njit(cache=True, _nrt=False, inline='always')
def _sizes(ip):
    nb = ip[NB]
    nsrc = ip[NCS] + ip[NVS]
    return nb, nsrc, ip[NN] + nb + ip[NR] + nsrc, ip[NR] + ip[NW] + nsrc, nb * (nb + 1) // 2


@njit(cache=True, _nrt=False, inline='always')
def _phi1(x, ex):
    """(eˣ − 1)/x given ex = eˣ: ∫₀¹ e^{xu} du."""
    if abs(x) < SERIES_BELOW:
        return 1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x / 120.0)))
    return (ex - 1.0) / x


@njit(cache=True, _nrt=False, inline='always')
def _phi2(x, ex):
    """∫₀¹ u·e^{xu} du = (eˣ(x − 1) + 1)/x² given ex = eˣ."""
    if abs(x) < 10.0 * SERIES_BELOW:
        return 0.5 + x * (1.0 / 3.0 + x * (1.0 / 8.0 + x * (1.0 / 30.0 + x * (1.0 / 144.0 + x / 840.0))))
    return (ex * (x - 1.0) + 1.0) / (x * x)


@njit(cache=True, _nrt=False)
def sources_constant(t, t_limit, ip, fp):
    """Whether every source stays at its value over [t, t_limit] (no breakpoint lies inside)."""
    mid = 0.5 * (t + t_limit)
    for k in range(ip[NCS] + ip[NVS]):
        if pwl_slope(k, mid, ip, fp) != 0.0:
            return False
    return True


@njit(cache=True, _nrt=False)
def _setup(t, y, ip, fp, lin, w):
    """The stretch's coefficients into w from the state at its start. Returns whether any mode has
    a linear term (a loop driven by a constant voltage), which the energies then integrate."""
    nb, nsrc, ncol, nen, pairs = _sizes(ip)
    dim = nb + nsrc
    o_xi, o_k, o_en, o_t, _, _, _ = offsets(nb, nsrc, ncol, nen)
    o_v = 1 + nb
    o_vi = o_v + nb * nb
    o_n = o_vi + nb * nb
    o_c = o_n + nb * nsrc
    o_q = o_c + ncol * dim
    o_src = 3 * nb
    for k in range(nsrc):
        w[o_src + k] = pwl_value(k, t, ip, fp)
    for b in range(nb):                 # the sources' drive N·src, at o_t until the energies need it
        drive = 0.0
        for k in range(nsrc):
            drive += lin[o_n + b * nsrc + k] * w[o_src + k]
        w[o_t + b] = drive
    linear = False
    for m in range(nb):
        z0 = 0.0
        g = 0.0
        for b in range(nb):
            z0 += lin[o_vi + m * nb + b] * y[b]
            g += lin[o_vi + m * nb + b] * w[o_t + b]
        lam = lin[1 + m]
        if lam == 0.0:
            w[m], w[nb + m], w[2 * nb + m] = 0.0, z0, g
            linear = linear or g != 0.0
        else:
            w[m], w[nb + m], w[2 * nb + m] = z0 + g / lam, -g / lam, 0.0
    for j in range((nb + 2) * dim):
        w[o_xi + j] = 0.0
    for b in range(nb):
        for m in range(nb):
            vbm = lin[o_v + b * nb + m]
            w[o_xi + b] += vbm * w[nb + m]
            w[o_xi + dim + b] += vbm * w[2 * nb + m]
            w[o_xi + (2 + m) * dim + b] = vbm * w[m]
    for k in range(nsrc):
        w[o_xi + nb + k] = w[o_src + k]
    _times_xi(lin, o_c, ncol, dim, nb + 2, w, o_xi, o_k)
    # energies: Xᵀ·Q·X = Σ_rs (ξ_rᵀ·Q·ξ_s)·f_r·f_s with f = (1, τ, e^{λ_m τ}); Q·ξ_s at o_t first
    for e in range(nen):
        _times_xi(lin, o_q + e * dim * dim, dim, dim, nb + 2, w, o_xi, o_t)
        w[o_en + e] = _dot(w, o_xi, o_t, dim)                                   # 1
        w[o_en + nen + e] = 2.0 * _dot(w, o_xi, o_t + dim, dim)                 # τ
        w[o_en + 2 * nen + e] = _dot(w, o_xi + dim, o_t + dim, dim)             # τ²
        p = 3 + 2 * nb
        for m in range(nb):
            w[o_en + (3 + m) * nen + e] = 2.0 * _dot(w, o_xi, o_t + (2 + m) * dim, dim)             # e^{λτ}
            w[o_en + (3 + nb + m) * nen + e] = 2.0 * _dot(w, o_xi + dim, o_t + (2 + m) * dim, dim)  # τe^{λτ}
            for n in range(m, nb):
                twice = 1.0 if n == m else 2.0
                w[o_en + p * nen + e] = twice * _dot(w, o_xi + (2 + m) * dim, o_t + (2 + n) * dim, dim)
                p += 1
    return linear


@njit(cache=True, _nrt=False, inline='always')
def _times_xi(lin, base, rows, dim, n_xi, w, o_xi, o_out):
    """w[o_out + r·rows + i] = (M·ξ_r)_i for the rows × dim matrix M at lin[base] (row-major)
    and each of the n_xi vectors ξ_r at w[o_xi + r·dim]."""
    for r in range(n_xi):
        for i in range(rows):
            acc = 0.0
            for j in range(dim):
                acc += lin[base + i * dim + j] * w[o_xi + r * dim + j]
            w[o_out + r * rows + i] = acc


@njit(cache=True, _nrt=False, inline='always')
def _dot(w, a, b, n):
    acc = 0.0
    for j in range(n):
        acc += w[a + j] * w[b + j]
    return acc


@njit(cache=True, _nrt=False, inline='always')
def _column(c, tau, w, o_k, o_t, nb, ncol):
    acc = w[o_k + c] + w[o_k + ncol + c] * tau
    for m in range(nb):
        acc += w[o_k + (2 + m) * ncol + c] * w[o_t + m]
    return acc


@njit(cache=True, _nrt=False, inline='always')
def _integrals(lam, ex, tau, f1, f2, n, linear):
    """f1[j] = ∫₀^τ_j e^{λu} du and, if `linear`, f2[j] = ∫₀^τ_j u·e^{λu} du, given ex[j] = e^{λτ_j}:
    (e^{λτ} − 1)/λ and its kin where |λτ| ≥ SERIES_BELOW, the series below it (the times rise)."""
    if lam == 0.0:
        for j in range(n):
            f1[j] = tau[j]
            if linear:
                f2[j] = 0.5 * tau[j] * tau[j]
        return
    inv = 1.0 / lam
    for j in range(n):
        f1[j] = (ex[j] - 1.0) * inv
    if linear:
        for j in range(n):
            f2[j] = (ex[j] * (lam * tau[j] - 1.0) + 1.0) * inv * inv
    j = 0
    while j < n and abs(lam * tau[j]) < 10.0 * SERIES_BELOW:
        x = lam * tau[j]
        if abs(x) < SERIES_BELOW:
            f1[j] = tau[j] * _phi1(x, ex[j])
        if linear:
            f2[j] = tau[j] * tau[j] * _phi2(x, ex[j])
        j += 1


@njit(cache=True, _nrt=False)
def _chunk_terms(n, lin, w, nb, o_ch, linear):
    """_terms at the chunk's n times (w[o_ch:]), each a row of CHUNK after them. On a uniform grid
    the exponentials go by recurrence from a direct one at the chunk's start (a multiplication a
    sample instead of a call of exp: the rounding grows by ~1e-16 a sample, reset every chunk)."""
    tau = w[o_ch:o_ch + n]
    o_e = o_ch + CHUNK
    o_f1 = o_e + nb * CHUNK
    o_f2 = o_f1 + nb * CHUNK
    o_p = o_f2 + nb * CHUNK
    spacing = (tau[n - 1] - tau[0]) / (n - 1) if n > 1 else 0.0
    uniform = spacing > 0.0
    for j in range(n):
        uniform = uniform and abs(tau[j] - (tau[0] + j * spacing)) <= UNIFORM_TOLERANCE * spacing
    for m in range(nb):
        lam = lin[1 + m]
        ex = w[o_e + m * CHUNK:o_e + m * CHUNK + n]
        if uniform:
            ratio = math.exp(lam * spacing)
            ex[0] = math.exp(lam * tau[0])
            for j in range(1, n):
                ex[j] = ex[j - 1] * ratio
        else:
            for j in range(n):
                ex[j] = math.exp(lam * tau[j])
        _integrals(lam, ex, tau, w[o_f1 + m * CHUNK:o_f1 + m * CHUNK + n],
                   w[o_f2 + m * CHUNK:o_f2 + m * CHUNK + n], n, linear)
    p = 0
    for m in range(nb):
        for q in range(m, nb):
            pair = w[o_p + p * CHUNK:o_p + p * CHUNK + n]
            em = w[o_e + m * CHUNK:o_e + m * CHUNK + n]
            eq = w[o_e + q * CHUNK:o_e + q * CHUNK + n]
            for j in range(n):
                pair[j] = em[j] * eq[j]        # e^{(λ_m+λ_q)τ}, then its integral in place
            _integrals(lin[1 + m] + lin[1 + q], pair, tau, pair, pair, n, False)
            p += 1


@njit(cache=True, _nrt=False)
def _write_chunk(k0, n, y, ip, lin, w, linear, out):
    """out's samples k0 … k0+n−1 (its columns) at the chunk's times (w[o_ch:]): the traces out
    keeps summed over the chunk (_chunk_sums), then copied out a trace at a time."""
    nb, nsrc, ncol, nen, pairs = _sizes(ip)
    n_out = out.shape[0]
    n_sums = min(n_out, ncol + nen)
    _chunk_sums(n, y, ip, lin, w, linear, n_sums)
    o_buf = offsets(nb, nsrc, ncol, nen)[5]
    for c in range(n_sums):
        trace = out[c, k0:k0 + n]         # views from index 0: the copy vectorizes
        summed = w[o_buf + c * CHUNK:o_buf + c * CHUNK + n]
        for j in range(n):
            trace[j] = summed[j]
    for c in range(n_sums, n_out):
        out[c, k0:k0 + n] = 0.0           # hotspot resistances: every wire superconducting


@njit(cache=True, _nrt=False)
def _chunk_sums(n, y, ip, lin, w, linear, n_sums):
    """The first n_sums output columns (linear columns, then energies from their values in y, at
    the stretch's start) at the chunk's n times (w[o_ch:]), each summed over the chunk in a row of
    scratch (contiguous: the loops vectorize)."""
    nb, nsrc, ncol, nen, pairs = _sizes(ip)
    e_start = y[ip[NB] + ip[NW]:]
    _, o_k, o_en, _, o_ch, o_buf, _ = offsets(nb, nsrc, ncol, nen)
    _chunk_terms(n, lin, w, nb, o_ch, linear)
    tau = w[o_ch:o_ch + n]
    o_e = o_ch + CHUNK
    o_f1 = o_e + nb * CHUNK
    o_f2 = o_f1 + nb * CHUNK
    o_p = o_f2 + nb * CHUNK
    n_lin = min(n_sums, ncol)
    n_en = n_sums - n_lin
    for c in range(n_lin):
        acc = w[o_buf + c * CHUNK:o_buf + c * CHUNK + n]
        k_const = w[o_k + c]
        k_lin = w[o_k + ncol + c]
        for j in range(n):
            acc[j] = k_const + k_lin * tau[j]
        for m in range(nb):
            _add(acc, w[o_k + (2 + m) * ncol + c], w, o_e + m * CHUNK, n)
    for e in range(n_en):
        acc = w[o_buf + (ncol + e) * CHUNK:o_buf + (ncol + e) * CHUNK + n]
        start = e_start[e]
        p0 = w[o_en + e]
        p1 = 0.5 * w[o_en + nen + e]
        p2 = w[o_en + 2 * nen + e] / 3.0
        for j in range(n):
            acc[j] = start + tau[j] * (p0 + tau[j] * (p1 + tau[j] * p2))
        for m in range(nb):
            _add(acc, w[o_en + (3 + m) * nen + e], w, o_f1 + m * CHUNK, n)
            if linear:
                _add(acc, w[o_en + (3 + nb + m) * nen + e], w, o_f2 + m * CHUNK, n)
        for p in range(pairs):
            _add(acc, w[o_en + (3 + 2 * nb + p) * nen + e], w, o_p + p * CHUNK, n)


@njit(cache=True, _nrt=False, inline='always')
def _add(acc, coef, w, o, n):
    """acc[j] += coef·w[o + j], j < n (skipped for a zero coefficient)."""
    if coef != 0.0:
        terms = w[o:o + n]
        for j in range(n):
            acc[j] += coef * terms[j]


@njit(cache=True, _nrt=False)
def exact_stretch(t, t_limit, y, thr, ip, fp, lin, w, ts, cursor, out):
    """Cross [t, t_limit] in closed form (every wire superconducting, the sources constant, the
    chip with a modal form): samples due in it into out, and the state where it ends into y.
    It ends at t_limit, just past the first switching (the state there has fired), or where the
    march gave up (see MAX_LEAPS). Returns the time it ends at."""
    nb, nsrc, ncol, nen, pairs = _sizes(ip)
    nn = ip[NN]
    nw = ip[NW]
    _, o_k, _, o_t, o_ch, o_buf, _ = offsets(nb, nsrc, ncol, nen)
    linear = _setup(t, y, ip, fp, lin, w)
    span = t_limit - t
    lo = 0.0
    tau_end = span
    for leaps in range(MAX_LEAPS + 1):
        for m in range(nb):
            w[o_t + m] = math.exp(lin[1 + m] * lo)
        leap = span - lo
        fired = False
        for wi in range(nw):
            c = nn + ip[ip[W_BR] + wi]
            bound = abs(w[o_k + ncol + c])
            for m in range(nb):
                bound += abs(w[o_k + (2 + m) * ncol + c] * lin[1 + m]) * w[o_t + m]
            # at the start the state itself, which the time loop found below every threshold (the
            # closed form's current there differs from it by rounding, and must not fire on that)
            now = y[c - nn] if lo == 0.0 else _column(c, lo, w, o_k, o_t, nb, ncol)
            gap = thr[wi] - abs(now)
            if gap <= 0.0:
                fired = True
            elif bound > 0.0:
                leap = min(leap, gap / bound)
        if fired:
            tau_end = lo
            break
        if lo + leap >= span:
            break
        if leap <= 0.5 * T_TOL_S:
            # within the location tolerance of a crossing, which the last leap's Newton step puts
            # about one such leap ahead: a leap of twice it lands past it (at least a tenth of the
            # tolerance: a current grazing its threshold must not hold the march still)
            leap = max(2.0 * leap, 0.1 * T_TOL_S)
        if leaps == MAX_LEAPS:
            tau_end = lo
            break
        lo += leap
    t_end = t_limit if tau_end >= span else t + tau_end
    k = cursor[1]
    last = k
    while last < ts.shape[0] and ts[last] <= t_end:
        last += 1
    while k < last:
        n = min(CHUNK, last - k)
        tau = w[o_ch:o_ch + n]
        for j in range(n):
            tau[j] = ts[k + j] - t
        tau[n - 1] = min(tau[n - 1], tau_end)      # (t + τ rounds: no sample past the end)
        _write_chunk(k, n, y, ip, lin, w, linear, out)
        k += n
    cursor[1] = k
    # the state where it ends: every column at that one time, as a sample's
    w[o_ch] = tau_end
    _chunk_sums(1, y, ip, lin, w, linear, ncol + nen)
    for b in range(nb):
        y[b] = w[o_buf + (nn + b) * CHUNK]
    for wi in range(nw):
        y[nb + wi] = 0.0
    for e in range(nen):
        y[nb + nw + e] = w[o_buf + (ncol + e) * CHUNK]
    return t_end
