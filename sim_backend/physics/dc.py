"""DC operating point (all wires superconducting, with no trapped flux or a given state's) and stored
inductive energy."""

from __future__ import annotations

import functools
from typing import Mapping

import numpy as np

from sim_backend.physics import _layout
from sim_backend.physics import nanowire as nw
from sim_backend.physics._kernel_dc import divide_keeping_flux
from sim_backend.physics._kernel_network import stored_energy
from sim_backend.physics.circuit import GROUND, Circuit, CurrentSource, Resistor, VoltageSource
from sim_backend.physics.results import CircuitState


def stored_energy_total_j(st: _layout.Structure, branch_current_a: np.ndarray) -> float:
    """Σ ∫₀^I I dΦ over the inductive branches (nonlinear-aware)."""
    return float(stored_energy(st.branch_l0_h, st.branch_nonlinear, st.branch_isw_a,
                               np.ascontiguousarray(branch_current_a, dtype=np.float64)))


def project_cluster_kcl(st: _layout.Structure, current_a: np.ndarray, injection_a: np.ndarray) -> np.ndarray:
    """Make branch currents satisfy KCL of floating (inductor-only) clusters, changing them the
    way a sudden current step would: the correction divides in inverse proportion to inductance."""
    inc = st.cluster_incidence
    if inc.shape[0] == 0:
        return current_a
    mismatch = st.cluster_injection @ injection_a - inc @ current_a
    linv = 1.0 / st.branch_l0_h
    m = (inc * linv) @ inc.T
    return current_a + linv * (inc.T @ np.linalg.solve(m, mismatch))


def dc_state(
    circuit: Circuit, *, temperature_k: float = 2.0, source_values: Mapping[str, float] | None = None,
    keeping_flux_of: CircuitState | None = None,
) -> CircuitState:
    """All-superconducting DC operating point with no trapped flux, or with the flux that every
    superconducting loop holds in `keeping_flux_of` (the state a slow change of the sources
    reaches from that superconducting state).

    Superconducting branches short their end nodes together ("supernodes"); the resistive network
    between supernodes fixes how much current enters each; inside a supernode the currents divide
    so that every loop's flux Σ±Φ(I) is zero (inverse-inductance division, Newton's method on
    Φ(I) for nonlinear wires), or keeps the value it has in `keeping_flux_of`.
    Sources not named in ``source_values`` take their DC value. Wires at or above T_c are
    resistors here.
    """
    st, incidence, pinned, inj = _injections(circuit, float(temperature_k),
                                             tuple(sorted((source_values or {}).items())))
    start_a = (np.zeros(len(st.branches)) if keeping_flux_of is None
               else np.array([keeping_flux_of.branch_current_a[name] for name in st.branches]))
    current = divide_keeping_flux(incidence, pinned, st.branch_l0_h, st.branch_nonlinear, st.branch_isw_a,
                                  inj, start_a)
    return CircuitState(
        time_s=0.0,
        branch_current_a={name: float(i) for name, i in zip(st.branches, current)},
        hotspot_resistance_ohm={w: 0.0 for w in st.wires},
        resistive={w: False for w in st.wires},
        threshold_z={},
    )


@functools.lru_cache(maxsize=4096)
def _injections(circuit: Circuit, temperature_k: float, source_values: tuple):
    """The circuit's layout, its branch incidence (node x branch, +1 where a branch leaves a node),
    the node of each supernode held at φ = 0 (pinned) and the current each node receives from
    resistors and sources at DC (cached: bias sweeps revisit the same levels)."""
    values = dict(source_values)
    st = _layout.structure(circuit, float(temperature_k))
    for name in values:
        if name not in st.current_sources + st.voltage_sources:
            raise ValueError(f"source_values: no source named {name!r}")
    nodes = st.nodes
    idx = {n: k for k, n in enumerate(nodes)} | {GROUND: -1}
    br = [circuit.element(n) for n in st.branches]
    # supernodes
    parent = {n: n for n in list(nodes) + [GROUND]}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e in br:
        parent[find(e.node_pos)] = find(e.node_neg)
    supers = sorted({find(n) for n in nodes} - {find(GROUND)})
    sidx = {r: k for k, r in enumerate(supers)} | {find(GROUND): -1}
    sn = lambda node: sidx[find(node)]  # noqa: E731
    ns = len(supers)
    vsrc = [e for e in circuit.elements if isinstance(e, VoltageSource)]
    size = ns + len(vsrc)
    a = np.zeros((size, size))
    rhs = np.zeros(size)
    resistors = [circuit.element(n) for n in st.resistors]
    conductance = {}
    for e in resistors:
        g = 1.0 / e.resistance_ohm if isinstance(e, Resistor) else \
            1.0 / nw.normal_resistance_ohm(e.params)
        conductance[e.name] = g
        p, n = sn(e.node_pos), sn(e.node_neg)
        for i_, j_, sg in ((p, p, g), (n, n, g), (p, n, -g), (n, p, -g)):
            if i_ >= 0 and j_ >= 0:
                a[i_, j_] += sg
    for e in circuit.elements:
        if isinstance(e, CurrentSource):
            val = values.get(e.name, e.current_a)
            if sn(e.node_pos) >= 0:
                rhs[sn(e.node_pos)] += val
            if sn(e.node_neg) >= 0:
                rhs[sn(e.node_neg)] -= val
    for m, e in enumerate(vsrc):
        val = values.get(e.name, e.voltage_v)
        p, n = sn(e.node_pos), sn(e.node_neg)
        if p == n and val != 0.0:
            raise ValueError(f"VoltageSource {e.name!r}: shorted by a superconducting path at DC")
        for node, sg in ((p, 1.0), (n, -1.0)):
            if node >= 0:
                a[node, ns + m] -= sg
                a[ns + m, node] += sg
        rhs[ns + m] = val
    sol = np.linalg.lstsq(a, rhs, rcond=None)[0] if size else np.zeros(0)
    vsup = sol[:ns]
    vnode = lambda node: vsup[sn(node)] if sn(node) >= 0 else 0.0  # noqa: E731
    # current each node receives from resistors and sources
    inj = np.zeros(len(nodes))

    def add(node: str, cur: float) -> None:
        if idx[node] >= 0:
            inj[idx[node]] += cur

    for e in resistors:
        cur = conductance[e.name] * (vnode(e.node_pos) - vnode(e.node_neg))
        add(e.node_pos, -cur)
        add(e.node_neg, cur)
    for e in circuit.elements:
        if isinstance(e, CurrentSource):
            val = values.get(e.name, e.current_a)
            add(e.node_pos, val)
            add(e.node_neg, -val)
    for m, e in enumerate(vsrc):
        add(e.node_pos, sol[ns + m])
        add(e.node_neg, -sol[ns + m])
    incidence = np.zeros((len(nodes), len(br)))
    for b, e in enumerate(br):
        if idx[e.node_pos] >= 0:
            incidence[idx[e.node_pos], b] = 1.0
        if idx[e.node_neg] >= 0:
            incidence[idx[e.node_neg], b] = -1.0
    pinned = np.zeros(len(nodes), dtype=np.int64)
    held = set()
    for node in nodes:
        r = find(node)
        if r != find(GROUND) and r not in held:
            held.add(r)
            pinned[idx[node]] = 1
    return st, incidence, pinned, inj
