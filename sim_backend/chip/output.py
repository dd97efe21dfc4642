"""Files and text written by `nwlab chip`: traces (HDF5 or CSV), JSON summary, human summaries."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from sim_backend.physics import nanowire as nw
from sim_backend.physics.circuit import CurrentSource, Inductor, Nanowire, Resistor, VoltageSource
from sim_backend.physics.dc import dc_state
from sim_backend.physics.results import TransientResult


def write_traces(path: Path, result: TransientResult) -> None:
    """Node voltages vs time: HDF5 datasets ``time_s`` and one per node (attrs units), or CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".h5":
        import h5py

        with h5py.File(path, "w") as f:
            f.create_dataset("time_s", data=result.time_s).attrs["units"] = "s"
            for node, v in result.node_voltage_v.items():
                ds = f.create_dataset(node, data=v)
                ds.attrs["units"] = "V"
                ds.attrs["long_name"] = f"voltage of node {node} against ground"
        return
    names = list(result.node_voltage_v)
    table = np.column_stack([result.time_s] + [result.node_voltage_v[n] for n in names])
    header = ",".join(["time_s"] + [f"v_{n}_v" for n in names])
    np.savetxt(path, table, delimiter=",", header=header, comments="", fmt="%.9e")


def _clean(x: float) -> float | None:
    return None if isinstance(x, float) and math.isnan(x) else x


def write_json(path: Path, result: TransientResult, meta: dict) -> Path:
    e = result.energy
    doc = {
        **meta,
        "events": [{"element": ev.element, "time_s": ev.time_s, "kind": ev.kind,
                    "hotspot_energy_j": _clean(ev.hotspot_energy_j)} for ev in result.events],
        "energy": {
            "dissipated_j": dict(e.dissipated_j),
            "delivered_j": dict(e.delivered_j),
            "stored_start_j": e.stored_start_j,
            "stored_end_j": e.stored_end_j,
            "balance_error_j": e.balance_error_j,
        },
        "final_state": {
            "time_s": result.final_state.time_s,
            "branch_current_a": dict(result.final_state.branch_current_a),
            "resistive": dict(result.final_state.resistive),
        },
    }
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


def summary(name: str, result: TransientResult, out: Path, json_path: Path) -> str:
    e = result.energy
    lines = [f"chip {name}: {result.time_s[-1] * 1e9:.3f} ns simulated, {len(result.time_s)} samples"]
    wires = sorted({ev.element for ev in result.events})
    for w in wires:
        times = result.switch_times_s(w)
        first = f", first at {times[0] * 1e9:.4f} ns" if times.size else ""
        lines.append(f"  {w}: {times.size} switch(es){first}")
    if not wires:
        lines.append("  no switching events")
    lines.append(f"  delivered {e.total_delivered_j * 1e18:.3f} aJ, dissipated {e.total_dissipated_j * 1e18:.3f} aJ, "
                 f"stored {e.stored_start_j * 1e18:.3f} -> {e.stored_end_j * 1e18:.3f} aJ")
    for k, v in e.dissipated_j.items():
        lines.append(f"    {k}: {v * 1e18:.3f} aJ")
    lines.append(f"  traces: {out}; summary: {json_path}")
    return "\n".join(lines)


def describe_chip(chip) -> str:
    t = chip.temperature_k
    lines = [f"chip {chip.name} ({chip.path}): OK", f"  temperature {t:g} K",
             f"  nodes: {', '.join(chip.circuit.node_names)}; ground 0"]
    for e in chip.circuit.elements:
        ends = f"{e.node_pos} -> {e.node_neg}"
        if isinstance(e, Nanowire):
            p = e.params
            isw = nw.switching_current_a(p, t)
            lines += [
                f"  nanowire {e.name} ({ends}): L0 {p.inductance_h * 1e9:g} nH"
                f" ({'nonlinear' if p.nonlinear_inductance else 'linear'}), retrap {p.retrap}",
                f"    I_sw({t:g} K) {isw * 1e6:.4f} uA, I_hs {nw.hotspot_current_a(p, t) * 1e6:.4f} uA,"
                f" psi {nw.stekly_parameter(p, t):.3f}, sigma {p.sigma_isw_a * 1e9:g} nA",
                f"    L_sq {nw.inductance_per_square_h(p) * 1e12:.3f} pH, {nw.squares(p):.1f} squares,"
                f" length {nw.length_m(p) * 1e6:.2f} um, R_n {nw.normal_resistance_ohm(p) / 1e3:.2f} kohm",
                f"    v0 {nw.characteristic_velocity_m_per_s(p):.2f} m/s, dR/dt at I_sw"
                f" {nw.growth_rate_ohm_per_s(p, isw, t) * 1e-12:.3f} ohm/ps,"
                f" stored energy at I_sw {nw.stored_energy_j(p, isw) * 1e18:.3f} aJ",
            ]
        elif isinstance(e, Inductor):
            lines.append(f"  inductor {e.name} ({ends}): {e.inductance_h * 1e9:g} nH")
        elif isinstance(e, Resistor):
            lines.append(f"  resistor {e.name} ({ends}): {e.resistance_ohm:g} ohm")
        elif isinstance(e, CurrentSource):
            lines.append(f"  current source {e.name} ({ends}): {e.current_a * 1e6:g} uA DC")
        elif isinstance(e, VoltageSource):
            lines.append(f"  voltage source {e.name} ({ends}): {e.voltage_v:g} V DC")
    lines.append("  ports: " + ", ".join(f"{k} -> {v}" for k, v in chip.ports.items()))
    lines.append("  outputs: " + ", ".join(f"{k} -> node {v}" for k, v in chip.outputs.items()))
    try:
        state = dc_state(chip.circuit, temperature_k=t)
        lines.append("  DC bias state: " + ", ".join(
            f"{k} {v * 1e6:.3f} uA" for k, v in state.branch_current_a.items()))
    except ValueError as exc:
        lines.append(f"  DC bias state: none ({exc})")
    return "\n".join(lines)
