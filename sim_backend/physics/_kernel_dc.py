"""Numba kernel for dc.py: the DC division of current that keeps every superconducting loop's flux.

Newton's method on Φ_b(I_b) = Φ_b(start_b) + φ_p − φ_q with KCL at every node (dc.py says
why). A bias sweep's static steps solve it thousands of times on a handful of branches, where
numpy's per-call cost was the whole cost.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim_backend.physics._kernel_network import differential_inductance, flux, solve_small

#: Newton stops when no branch current moves by more than this plus ITERATION_RTOL of the largest.
ITERATION_ATOL_A = 1e-15
ITERATION_RTOL = 1e-12
ITERATIONS_MAX = 100


@njit(cache=True)
def divide_keeping_flux(incidence, pinned, l0, nonlinear, isw, inj, start):
    """Branch currents with node injections `inj` (incidence: node x branch, +1 where a branch
    leaves a node; pinned: 1 for the one node of each supernode held at φ = 0) whose fluxes
    differ from those at `start` only by differences of node potentials."""
    n, nb = incidence.shape
    flux_kept = np.empty(nb)
    for b in range(nb):
        flux_kept[b] = flux(l0[b], nonlinear[b], isw[b], start[b])
    current = start.copy()
    slope = np.empty(nb)
    c = np.empty(nb)
    lap = np.empty((n, n))
    rhs = np.empty(n)
    for _ in range(ITERATIONS_MAX):
        # I_b = c_b + (φ_p − φ_q)/L_b, linearised about the present currents
        for b in range(nb):
            slope[b] = differential_inductance(l0[b], nonlinear[b], isw[b], current[b])
            c[b] = current[b] + (flux_kept[b] - flux(l0[b], nonlinear[b], isw[b], current[b])) / slope[b]
        for i in range(n):
            if pinned[i]:
                for j in range(n):
                    lap[i, j] = 0.0
                lap[i, i] = 1.0
                rhs[i] = 0.0
                continue
            acc = inj[i]
            for b in range(nb):
                acc -= incidence[i, b] * c[b]
            rhs[i] = acc
            for j in range(n):
                s = 0.0
                for b in range(nb):
                    s += incidence[i, b] * incidence[j, b] / slope[b]
                lap[i, j] = s
        phi = solve_small(lap, rhs) if n else rhs
        moved, largest = 0.0, 0.0
        for b in range(nb):
            new = c[b]
            for i in range(n):
                new += incidence[i, b] * phi[i] / slope[b]
            moved = max(moved, abs(new - current[b]))
            largest = max(largest, abs(current[b]))
            current[b] = new
        if moved <= ITERATION_ATOL_A + ITERATION_RTOL * largest:
            break
    return current
