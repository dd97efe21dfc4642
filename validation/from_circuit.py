"""Any circuit the emulator accepts, written as an ngspice deck for cross-checking.

Reads the emulator's data model (element kinds, nodes, parameter values) but none of its physics:
the nanowire constants are recomputed by `wire.WireParams` from the published equations.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from collections.abc import Mapping

from sim_backend.physics import circuit as cm

from validation.netlist import INTERNAL_NODES, Netlist, _g, pwl_text, wire_lines
from validation.wire import WireParams

_RETRAP = {"voltage": "a", "current": "b"}


def _temperature_factor(t_k: float, tc_k: float) -> float:
    return (1.0 - (t_k / tc_k) ** 2) ** 1.5 if t_k < tc_k else 0.0


def wire_params(p, temperature_k: float | None = None) -> WireParams:
    """WireParams for an emulator NanowireParams at a bath temperature (default: Jc's reference).

    Jc(T) = Jc(T_ref) * (1-(T/Tc)^2)^1.5 / (1-(T_ref/Tc)^2)^1.5 (physics.md §2.5).
    """
    t_ref = p.jc_reference_temperature_k
    t_k = t_ref if temperature_k is None else temperature_k
    if not 0 <= t_k < p.tc_k:
        raise ValueError(f"bath temperature {t_k} K must lie in [0, Tc={p.tc_k} K) for the reference")
    jc = p.jc_a_per_m2 * _temperature_factor(t_k, p.tc_k) / _temperature_factor(t_ref, p.tc_k)
    if getattr(p, "sigma_isw_a", 0.0):
        raise ValueError("the ngspice reference is deterministic: pass deterministic(circuit)")
    return WireParams(
        inductance_h=p.inductance_h, nonlinear=p.nonlinear_inductance, width_m=p.width_m,
        thickness_m=p.thickness_m, sheet_resistance_ohm=p.sheet_resistance_ohm, tc_k=p.tc_k,
        tsub_k=t_k, jc_a_per_m2=jc, constriction=p.constriction,
        kappa_w_per_m_k=p.thermal_conductivity_w_per_m_k,
        heat_capacity_j_per_m3_k=p.heat_capacity_j_per_m3_k,
        boundary_conductance_w_per_m2_k=p.boundary_conductance_w_per_m2_k, delta=p.delta,
    )


def deterministic(circuit):
    """The same circuit with every wire's switching-threshold spread set to zero."""
    return cm.Circuit(tuple(
        replace(e, params=replace(e.params, sigma_isw_a=0.0)) if isinstance(e, cm.Nanowire) else e
        for e in circuit.elements
    ), circuit.nodes)


def _safe(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]", "_", name.lower()) or "x"
    out, k = base, 1
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def _source_value(element, drives: Mapping[str, object]) -> str:
    """DC value, or PWL of a drive (anything with times_s/values, or a number)."""
    drive = drives.get(element.name)
    if drive is None:
        return _g(element.current_a if isinstance(element, cm.CurrentSource) else element.voltage_v)
    if isinstance(drive, (int, float)):
        return _g(float(drive))
    times, values = list(drive.times_s), list(drive.values)
    if len(times) == 1:
        return _g(values[0])
    if times[0] > 0:  # hold the first value from t = 0, as the emulator does
        times, values = [0.0, *times], [values[0], *values]
    return pwl_text(times, values)


def netlist_from_circuit(circuit, drives: Mapping[str, object] | None = None, stop_s: float = 100e-9,
                         max_step_s: float = 1e-12, *, temperature_k: float | None = None,
                         title: str = "circuit from the emulator's data model") -> Netlist:
    """Deck for `circuit`: nanowires as the native port, R/L/sources as SPICE elements.

    Conventions follow the emulator's (`sim_backend.physics.circuit`): a CurrentSource pushes its
    current into node_pos, so it is written `I node_neg node_pos`; branch currents are positive
    node_pos -> node_neg. Initial conditions are zero (`uic`).
    """
    if not (math.isfinite(stop_s) and stop_s > 0 and max_step_s > 0):
        raise ValueError(f"stop_s and max_step_s must be > 0, got {stop_s}, {max_step_s}")
    drives = drives or {}
    unknown = set(drives) - {s.name for s in circuit.sources}
    if unknown:
        raise ValueError(f"drives for unknown sources: {sorted(unknown)}")
    taken: set[str] = set()
    element_alias = {e.name: _safe(e.name, taken) for e in circuit.elements}
    # A wire's internal nodes (<name>_r, ...) must not coincide with a circuit node.
    taken_nodes = {"0"} | {f"{element_alias[e.name]}_{suffix}" for e in circuit.elements
                           if isinstance(e, cm.Nanowire) for suffix in INTERNAL_NODES}
    node_alias = {"0": "0"}
    for node in circuit.node_names:
        node_alias[node] = _safe(node, taken_nodes)
    wires: dict[str, WireParams] = {}
    lines: list[str] = []
    for e in circuit.elements:
        name = element_alias[e.name]
        pos, neg = node_alias[e.node_pos], node_alias[e.node_neg]
        if isinstance(e, cm.Nanowire):
            wires[name] = wire_params(e.params, temperature_k)
            lines += wire_lines(name, pos, neg, wires[name], _RETRAP[e.params.retrap])
        elif isinstance(e, cm.Inductor):
            lines.append(f"l_{name} {pos} {neg} {_g(e.inductance_h)}")
        elif isinstance(e, cm.Resistor):
            lines.append(f"r_{name} {pos} {neg} {_g(e.resistance_ohm)}")
        elif isinstance(e, cm.CurrentSource):
            lines.append(f"i_{name} {neg} {pos} {_source_value(e, drives)}")
        elif isinstance(e, cm.VoltageSource):
            lines.append(f"v_{name} {pos} {neg} {_source_value(e, drives)}")
        else:
            raise ValueError(f"no ngspice form for element {e!r}")
    return Netlist(title, tuple(lines), stop_s, max_step_s, wires,
                   tuple(node_alias[n] for n in circuit.node_names), node_alias, element_alias)
