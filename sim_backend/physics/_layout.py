"""Flatten a Circuit at a temperature into the kernel's arrays (the ``net`` tuple).

Nanowires below their T_c are inductive branches with a hotspot; at or above T_c a wire is normal
metal: a resistor of R_n (its kinetic inductance and hotspot do not exist there).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from sim_backend.physics import nanowire as nw
from sim_backend.physics.circuit import (
    GROUND, Circuit, CurrentSource, Inductor, Nanowire, Resistor, VoltageSource,
)
from sim_backend.physics.waveform import PiecewiseLinear

_I = np.int64


@dataclass(frozen=True, eq=False)
class Structure:
    """Temperature-dependent structure of a circuit (cached); waveforms are added per call."""

    nodes: tuple[str, ...]
    branches: tuple[str, ...]          # inductive branches: inductors, superconducting wires
    wires: tuple[str, ...]             # superconducting wires (subset of branches, in order)
    resistors: tuple[str, ...]         # resistors and normal (T >= Tc) wires
    current_sources: tuple[str, ...]
    voltage_sources: tuple[str, ...]
    arrays: tuple                      # net[0:23] and net[27:30]
    cluster_incidence: np.ndarray      # (n_clusters, n_branches): summed KCL of floating clusters
    cluster_injection: np.ndarray      # (n_clusters, n_current_sources)
    branch_l0_h: np.ndarray
    branch_nonlinear: np.ndarray
    branch_isw_a: np.ndarray

    @cached_property        # read by every simulate() call
    def sample_columns(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The kernel's sample row (`sample_row`), what each column holds, group by group in its
        order (each group named as the TransientResult field it fills): node voltages; branch,
        resistor, current-source and voltage-source currents; energy dissipated in resistors and
        hotspots; energy delivered by current and voltage sources; hotspot resistances. The
        state's energies (after the branch currents and hotspots) come in the same order."""
        sources = self.current_sources + self.voltage_sources
        return (("node_voltage_v", self.nodes),
                ("branch_current_a", self.branches + self.resistors + sources),
                ("cumulative_dissipated_j", self.resistors + self.wires),
                ("cumulative_delivered_j", sources),
                ("hotspot_resistance_ohm", self.wires))

    def sample_column_count(self, *groups: str) -> int:
        """Columns of the sample row in `groups` (every group by default)."""
        return sum(len(names) for group, names in self.sample_columns if not groups or group in groups)

    @property
    def network_scratch_length(self) -> int:
        """Floats of the scratch the kernel's `network` takes (as `advance` allocates it): node
        and V-source right-hand side, two per branch, and each floating cluster's system."""
        clusters = self.cluster_incidence.shape[0]
        return len(self.nodes) + len(self.voltage_sources) + 2 * len(self.branches) + clusters * (clusters + 2)

    @property
    def state_length(self) -> int:
        """The kernel's state vector: branch currents, hotspot resistances, then the energies."""
        return len(self.branches) + len(self.wires) + self.sample_column_count("cumulative_dissipated_j",
                                                                               "cumulative_delivered_j")


def _union_find(items):
    parent = {x: x for x in items}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    return parent, find


@lru_cache(maxsize=64)
def structure(circuit: Circuit, temperature_k: float) -> Structure:
    if not (np.isfinite(temperature_k) and temperature_k >= 0):
        raise ValueError(f"temperature_k must be >= 0, got {temperature_k!r}")
    nodes = circuit.node_names
    idx = {n: k for k, n in enumerate(nodes)}
    idx[GROUND] = -1
    branches, wires, resistors, css, vss = [], [], [], [], []
    br_p, br_n, br_l0, br_nl, br_isw, br_wire = [], [], [], [], [], []
    w_br, w_ihs, w_k, w_rn, w_delta, w_mode, w_isw, w_sigma = [], [], [], [], [], [], [], []
    r_p, r_n, r_g = [], [], []
    for e in circuit.elements:
        p, n = idx[e.node_pos], idx[e.node_neg]
        if isinstance(e, Nanowire) and temperature_k >= e.params.tc_k:
            resistors.append(e.name)
            r_p.append(p); r_n.append(n); r_g.append(1.0 / nw.normal_resistance_ohm(e.params))
        elif isinstance(e, (Nanowire, Inductor)):
            branches.append(e.name)
            br_p.append(p); br_n.append(n)
            if isinstance(e, Inductor):
                br_l0.append(e.inductance_h); br_nl.append(0); br_isw.append(1.0); br_wire.append(-1)
                continue
            prm = e.params
            isw = nw.switching_current_a(prm, temperature_k)
            br_l0.append(prm.inductance_h); br_nl.append(int(prm.nonlinear_inductance))
            br_isw.append(isw); br_wire.append(len(wires))
            wires.append(e.name)
            w_br.append(len(branches) - 1)
            w_ihs.append(nw.hotspot_current_a(prm, temperature_k))
            w_k.append(nw.growth_prefactor_ohm_per_s(prm))
            w_rn.append(nw.normal_resistance_ohm(prm))
            w_delta.append(prm.delta)
            w_mode.append(0 if prm.retrap == "voltage" else 1)
            w_isw.append(isw)
            w_sigma.append(prm.sigma_isw_a)
        elif isinstance(e, Resistor):
            resistors.append(e.name)
            r_p.append(p); r_n.append(n); r_g.append(1.0 / e.resistance_ohm)
        elif isinstance(e, CurrentSource):
            css.append(e)
        elif isinstance(e, VoltageSource):
            vss.append(e)
    nn, nv = len(nodes), len(vss)
    k = np.zeros((nn + nv, nn + nv))
    for p, n, g in zip(r_p, r_n, r_g):
        for a, b, sg in ((p, p, g), (n, n, g), (p, n, -g), (n, p, -g)):
            if a >= 0 and b >= 0:
                k[a, b] += sg
    for m, e in enumerate(vss):
        p, n = idx[e.node_pos], idx[e.node_neg]
        if p >= 0:
            k[p, nn + m] -= 1.0; k[nn + m, p] += 1.0
        if n >= 0:
            k[n, nn + m] += 1.0; k[nn + m, n] -= 1.0
    # floating clusters: resistive/V-source components that do not contain ground
    parent, find = _union_find(list(nodes) + [GROUND])
    for e in circuit.elements:
        if e.name in resistors or isinstance(e, VoltageSource):
            parent[find(e.node_pos)] = find(e.node_neg)
    roots: dict[str, int] = {}
    reps: list[int] = []
    cl_of_node = np.full(nn, -1, dtype=_I)
    for node in nodes:
        r = find(node)
        if r == find(GROUND):
            continue
        if r not in roots:
            roots[r] = len(roots)
            rep = idx[node]
            reps.append(rep)
            k[rep, :] = 0.0
            k[rep, rep] = 1.0
        cl_of_node[idx[node]] = roots[r]
    cl_rep = np.array(reps, dtype=_I)
    try:
        kinv = np.linalg.inv(k)
    except np.linalg.LinAlgError:
        raise ValueError("Circuit: singular network (a loop of voltage sources?)") from None
    n_cl = len(roots)
    inc = np.zeros((n_cl, len(branches)))
    for b, (p, n) in enumerate(zip(br_p, br_n)):
        if p >= 0 and cl_of_node[p] >= 0:
            inc[cl_of_node[p], b] += 1.0
        if n >= 0 and cl_of_node[n] >= 0:
            inc[cl_of_node[n], b] -= 1.0
    inj = np.zeros((n_cl, len(css)))
    for j, e in enumerate(css):
        p, n = idx[e.node_pos], idx[e.node_neg]
        if p >= 0 and cl_of_node[p] >= 0:
            inj[cl_of_node[p], j] += 1.0
        if n >= 0 and cl_of_node[n] >= 0:
            inj[cl_of_node[n], j] -= 1.0
    f = lambda xs: np.array(xs, dtype=np.float64)  # noqa: E731
    i = lambda xs: np.array(xs, dtype=_I)  # noqa: E731
    arrays = (
        nn, kinv, cl_of_node, n_cl, cl_rep,
        i(br_p), i(br_n), f(br_l0), i(br_nl), f(br_isw), i(br_wire),
        i(w_br), f(w_ihs), f(w_k), f(w_rn), f(w_delta),
        i(r_p), i(r_n), f(r_g),
        i([idx[e.node_pos] for e in css]), i([idx[e.node_neg] for e in css]),
        i([idx[e.node_pos] for e in vss]), i([idx[e.node_neg] for e in vss]),
        i(w_mode), f(w_isw), f(w_sigma),
    )
    return Structure(
        nodes, tuple(branches), tuple(wires), tuple(resistors),
        tuple(e.name for e in css), tuple(e.name for e in vss), arrays, inc, inj,
        f(br_l0), i(br_nl), f(br_isw),
    )


def waveform_arrays(circuit: Circuit, st: Structure, drives: dict[str, PiecewiseLinear]):
    """Flat PWL arrays for the sources (current sources first, then voltage sources)."""
    off, ln, ts, vs = [], [], [], []
    pos = 0
    for name in st.current_sources + st.voltage_sources:
        wave = drives.get(name)
        if wave is None:
            e = circuit.element(name)
            value = e.current_a if isinstance(e, CurrentSource) else e.voltage_v
            wave = PiecewiseLinear.constant(value)
        off.append(pos); ln.append(wave.times_s.size)
        ts.append(wave.times_s); vs.append(wave.values)
        pos += wave.times_s.size
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)  # noqa: E731
    return np.array(off, dtype=_I), np.array(ln, dtype=_I), cat(ts), cat(vs)


def packed(circuit: Circuit, st: Structure, drives: dict[str, PiecewiseLinear]):
    """(ip, fp, kinv, the waveforms' times) of the circuit under `drives`: packed once per
    structure when nothing is driven (every source at its own value, as most calls are)."""
    if not drives:
        cached = _UNDRIVEN.get(st)
        if cached is None:
            pwl = waveform_arrays(circuit, st, drives)
            cached = _UNDRIVEN[st] = (*pack(st, pwl), pwl[2])
        return cached
    pwl = waveform_arrays(circuit, st, drives)
    return (*pack(st, pwl), pwl[2])


def pack(st: Structure, pwl) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ip, fp, kinv) for the kernel; layout in _packing. The waveforms' arrays are the last of
    each kind, so everything before them is the structure's, packed once (_packed_structure)."""
    from sim_backend.physics import _packing as pk

    header, ints, floats, kinv = _packed_structure(st)
    pwl_off, pwl_len, pwl_t, pwl_v = pwl
    header = header.copy()
    header[pk.PWL_V] = header[pk.PWL_T] + pwl_t.size
    ip = np.concatenate((header, ints, np.asarray(pwl_off, dtype=_I), np.asarray(pwl_len, dtype=_I)))
    fp = np.concatenate((floats, np.asarray(pwl_t, dtype=np.float64), np.asarray(pwl_v, dtype=np.float64),
                         np.zeros(1)))
    return ip, fp, kinv


_PACKED: weakref.WeakKeyDictionary[Structure, tuple] = weakref.WeakKeyDictionary()
_UNDRIVEN: weakref.WeakKeyDictionary[Structure, tuple] = weakref.WeakKeyDictionary()


def _packed_structure(st: Structure) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(header, ints, floats, kinv) of `st`: the header with every offset but the last waveform
    array's (it follows the waveforms' times), the structure's int and float arrays in order."""
    from sim_backend.physics import _packing as pk

    packed = _PACKED.get(st)
    if packed is not None:
        return packed
    a = st.arrays
    fields = dict(zip(
        ("kinv", "cl_of_node", "n_cl", "cl_rep", "br_p", "br_n", "br_l0", "br_nl", "br_isw",
         "br_wire", "w_br", "w_ihs", "w_k", "w_rn", "w_delta", "r_p", "r_n", "r_g", "cs_p", "cs_n",
         "vs_p", "vs_n", "w_mode", "w_isw", "w_sigma"), a[1:]))
    n_sources = fields["cs_p"].size + fields["vs_p"].size
    header = np.zeros(pk.N_HEADER, dtype=_I)
    header[[pk.NN, pk.NB, pk.NW, pk.NR, pk.NCS, pk.NVS, pk.NCL]] = [
        a[0], fields["br_p"].size, fields["w_br"].size, fields["r_p"].size, fields["cs_p"].size,
        fields["vs_p"].size, a[3]]
    ints, pos = [], pk.N_HEADER
    for k, name in enumerate(pk.INT_FIELDS):
        header[pk.CL_OF_NODE + k] = pos
        if name in ("pwl_off", "pwl_len"):
            pos += n_sources                       # one offset and one length per source
            continue
        ints.append(np.asarray(fields[name], dtype=_I))
        pos += ints[-1].size
    floats, pos = [], 0
    for k, name in enumerate(pk.FLOAT_FIELDS):
        header[pk.BR_L0 + k] = pos
        if name in ("pwl_t", "pwl_v"):
            break                                  # PWL_V: pack's, after the times
        floats.append(np.asarray(fields[name], dtype=np.float64))
        pos += floats[-1].size
    packed = (header, np.concatenate(ints), np.concatenate(floats), np.ascontiguousarray(a[1]))
    _PACKED[st] = packed
    return packed
