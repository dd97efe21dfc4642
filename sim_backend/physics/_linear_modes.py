"""The modal form of a chip whose every wire is superconducting, for the kernel's exact stretches.

With every wire superconducting, every inductance linear and no floating cluster, the network is
linear: dI/dt = M·I + N·src, every output column but the energies is C·X and every energy's rate
is Xᵀ·Q·X, for X = [I; src] (branch currents, then source values in the waveforms' order). Over a
stretch where the sources are constant, I(τ) is then a sum of exponentials in closed form, and
_kernel_exact crosses the whole stretch in one go instead of ~300 ps steps (C2's superconducting
4.3 ns: 12 steps a cycle of its 33).

M, N, C and Q are not derived here a second time: they are read off the kernel's own network
(`sample_row` at unit currents and source values; Q by polarisation of the energy rates), so the
two cannot disagree. M = L⁻¹·G with G symmetric (a reciprocal resistive network seen from its
inductive branches), so L^½·M·L^-½ is symmetric: its eigenvalues λ are real and ≤ 0 (passive)
and its eigenvectors U orthonormal, which makes the modal basis V = L^-½·U as well conditioned as
the inductances' spread. Each set of branches that couple is decomposed on its own, so that a
branch no source reaches keeps exactly no current. A chip for which any of this does not hold
(numerically) has no modal form, and the kernel steps as ever.

Layout of the packed array ``lin`` (float64): [valid (1.0 or 0.0) | λ (nb) | V (nb×nb) |
V⁻¹ (nb×nb) | N (nb×nsrc) | C (ncol×dim) | Q (nen×dim×dim)], dim = nb + nsrc, ncol the linear
output columns (node voltages, branch, resistor, current-source and V-source currents), nen the
energy columns (resistors, hotspots, current sources, V sources), as sample_row orders them.
"""

from __future__ import annotations

import functools
import weakref

import numpy as np

from sim_backend.physics import _layout
from sim_backend.physics._kernel_advance import sample_row
from sim_backend.physics._kernel_exact import offsets

#: What the probes must show, relative to the largest entry, for the modal form to be used.
SYMMETRY_TOLERANCE = 1e-9
#: Eigenvalues within this fraction of the largest |λ| of 0 are superconducting loops (persistent
#: currents): their modes move linearly with a constant drive (z = z₀ + γτ), not as exponentials.
ZERO_MODE_FRACTION = 1e-9

_NONE = np.zeros(1)
_MODES: weakref.WeakKeyDictionary[_layout.Structure, np.ndarray] = weakref.WeakKeyDictionary()


def counts(st: _layout.Structure) -> tuple[int, int, int, int]:
    """(nb, nsrc, ncol, nen) of the structure (see the module's layout)."""
    nsrc = len(st.current_sources) + len(st.voltage_sources)
    return (len(st.branches), nsrc, st.sample_column_count("node_voltage_v", "branch_current_a"),
            st.sample_column_count("cumulative_dissipated_j", "cumulative_delivered_j"))


@functools.lru_cache(maxsize=64)
def scratch_size(st: _layout.Structure) -> int:
    """Floats of the kernel's scratch for an exact stretch (_kernel_exact.offsets)."""
    return int(offsets(*counts(st))[-1])


def modes(st: _layout.Structure) -> np.ndarray:
    """``lin`` of the structure (cached with it); [0.0] when it has no modal form."""
    cached = _MODES.get(st)
    if cached is None:
        cached = _modes(st)
        _MODES[st] = cached
    return cached


def _modes(st: _layout.Structure) -> np.ndarray:
    nb, nsrc, ncol, nen = counts(st)
    if nb == 0 or st.cluster_incidence.shape[0] > 0 or np.any(st.branch_nonlinear != 0):
        return _NONE
    dim = nb + nsrc
    probe = _Probe(st)
    # linear maps: columns and branch rates at each unit of X
    lin_cols = np.empty((ncol, dim))
    rates = np.empty((nb, dim))
    for j in range(dim):
        x = np.zeros(dim)
        x[j] = 1.0
        row, dy = probe(x)
        lin_cols[:, j] = row[:ncol]
        rates[:, j] = dy[:nb]
    # energy rates are quadratic forms: Q_jk from the rates at e_j + e_k (polarisation)
    single = np.empty((nen, dim))
    q = np.empty((nen, dim, dim))
    for j in range(dim):
        x = np.zeros(dim)
        x[j] = 1.0
        single[:, j] = probe(x)[1][nb + len(st.wires):]
    for j in range(dim):
        q[:, j, j] = single[:, j]
        for k in range(j + 1, dim):
            x = np.zeros(dim)
            x[j] = x[k] = 1.0
            both = probe(x)[1][nb + len(st.wires):]
            q[:, j, k] = q[:, k, j] = 0.5 * (both - single[:, j] - single[:, k])
    if not _checks_out(probe, lin_cols, rates, q, nb):
        return _NONE
    m, n_src = rates[:, :nb], rates[:, nb:]
    root_l = np.sqrt(st.branch_l0_h)
    sym = root_l[:, None] * m / root_l[None, :]
    scale = np.max(np.abs(sym))
    if not np.isfinite(scale) or np.max(np.abs(sym - sym.T)) > SYMMETRY_TOLERANCE * scale:
        return _NONE
    lam, vecs = _modes_by_part(0.5 * (sym + sym.T))
    if np.max(lam) > ZERO_MODE_FRACTION * scale:
        return _NONE                                   # an active network: not a chip's
    lam = np.where(np.abs(lam) <= ZERO_MODE_FRACTION * scale, 0.0, lam)
    v = vecs / root_l[:, None]
    v_inv = vecs.T * root_l[None, :]
    return np.concatenate(([1.0], lam, v.ravel(), v_inv.ravel(), n_src.ravel(), lin_cols.ravel(), q.ravel()))


def _modes_by_part(sym: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and orthonormal eigenvectors of `sym`, found for each set of branches that
    couple (a connected part of its non-zero pattern) on its own: eigh of the whole would mix
    parts that do not couple by rounding, and a branch that should carry no current would then
    carry ~1e-21 A, which the steps after a stretch can amplify near a stiff mode's stability
    limit to the current tolerance."""
    n = sym.shape[0]
    parent, find = _layout._union_find(range(n))
    for i, j in zip(*np.nonzero(sym)):
        parent[find(int(i))] = find(int(j))
    parts: dict[int, list[int]] = {}
    for k in range(n):
        parts.setdefault(find(k), []).append(k)
    lam = np.zeros(n)
    vecs = np.zeros((n, n))
    column = 0
    for members in parts.values():
        values, vectors = np.linalg.eigh(sym[np.ix_(members, members)])
        lam[column:column + len(members)] = values
        vecs[np.ix_(members, range(column, column + len(members)))] = vectors
        column += len(members)
    return lam, vecs


class _Probe:
    """sample_row of the structure at X = [I; src], every wire superconducting."""

    def __init__(self, st: _layout.Structure) -> None:
        nb, nsrc, ncol, nen = counts(st)
        self.nb, self.nsrc = nb, nsrc
        self.st = st
        self.ny = st.state_length
        self.row = np.empty(st.sample_column_count())
        self.s = np.zeros(len(st.wires), dtype=np.int64)
        self.wk = np.empty(st.network_scratch_length)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nb, nsrc = self.nb, self.nsrc
        pwl = (np.arange(nsrc, dtype=np.int64), np.ones(nsrc, dtype=np.int64), np.zeros(nsrc), x[nb:].copy())
        ip, fp, kinv = _layout.pack(self.st, pwl)
        y = np.zeros(self.ny)
        y[:nb] = x[:nb]
        v = np.empty(len(self.st.nodes))
        iv = np.empty(len(self.st.voltage_sources))
        dy = np.empty(self.ny)
        sample_row(0.0, y, self.s, ip, fp, kinv, v, iv, dy, self.row, self.wk)
        return self.row.copy(), dy.copy()


def _checks_out(probe: _Probe, lin_cols, rates, q, nb: int) -> bool:
    """The maps reproduce the network at a random X (the network is linear and the energy rates
    quadratic there): otherwise the network is not what this form assumes."""
    x = np.random.default_rng(0).uniform(-1.0, 1.0, lin_cols.shape[1])
    row, dy = probe(x)
    ncol = lin_cols.shape[0]
    energies = dy[nb + len(probe.st.wires):]

    def close(got, want) -> bool:
        return bool(np.all(np.abs(got - want) <= 1e-9 * (1.0 + np.max(np.abs(want), initial=0.0))))

    return (close(lin_cols @ x, row[:ncol]) and close(rates @ x, dy[:nb])
            and close(np.einsum("ejk,j,k->e", q, x, x), energies))
