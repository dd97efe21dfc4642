"""Files and text of `nwlab chip simulate` besides the HDF5 traces (lab/archive/chip_traces.py):
CSV traces, the JSON summary and the summary printed to stdout."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from sim_backend.physics.results import TransientResult


def write_csv(path: Path, time_s: np.ndarray, node_voltage_v: Mapping[str, np.ndarray]) -> None:
    """Columns `time_s,v_<node>_v,…`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(node_voltage_v)
    table = np.column_stack([time_s] + [node_voltage_v[n] for n in names])
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
