"""Emulator circuit solver against ngspice (independent port of the nanowire model), same run.

Speed: wall time of 100 ns transients of C2, of C3 (its nonlinear-inductance twin) and of the C8
neuron (ngspice at 1 ps maximum step, the whole `ngspice -b` run; the emulator warmed up once so
numba compilation is not counted). Medians of repeats, ngspice's runs interleaved with the
emulator's so both meet the same load; an emulator repeat is a batch of calls lasting at least
BATCH_S, timed as a whole (one 0.6 ms call is at the mercy of a single scheduler tick).
Accuracy: switching times, period and peak voltages. Scaling: emulator cost from 10 ns to 10 us.
Prints a table, then one JSON line. Usage: .ci/env python benchmarks/emulator_vs_ngspice.py
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from sim_backend.physics.transient import simulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # validation/ is not installed: it is no runtime package
from validation import emulator_circuits as ec  # noqa: E402
from validation import ngspice  # noqa: E402
from validation.compare import crosscheck  # noqa: E402
from validation.from_circuit import netlist_from_circuit

STOP_S = 100e-9
MAX_STEP_S = 1e-12
EMULATOR_REPEATS = 7
NGSPICE_REPEATS = 3
BATCH_S = 0.02    # shortest timed batch of emulator calls
SCOPE_GRID_S = 10e-12  # what a 100 GS/s oscilloscope records: the bench's finest use
SCALING_STOPS_S = (10e-9, 100e-9, 1e-6, 10e-6)
TARGET_SPEEDUP = 1000.0       # on the 10 ps grid, every circuit
TARGET_TIMING_ERROR = 0.01


def _calls_per_batch(fn) -> int:
    """Calls of `fn` that last at least BATCH_S (one for ngspice's runs)."""
    start = time.perf_counter()
    fn()
    return max(1, math.ceil(BATCH_S / max(time.perf_counter() - start, 1e-9)))


def _per_call_s(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def _grid(stop_s: float, interval_s: float) -> np.ndarray:
    return np.linspace(0.0, stop_s, int(round(stop_s / interval_s)) + 1)


def _case(name: str, circuit, drives) -> dict:
    deck = netlist_from_circuit(circuit, drives, STOP_S, MAX_STEP_S)
    simulate(circuit, STOP_S, drives=drives, sample_times_s=_grid(STOP_S, SCOPE_GRID_S))  # warm-up
    runs = {"ngspice": lambda: ngspice.run(deck)}
    for label, interval in (("events", None), ("10ps", SCOPE_GRID_S), ("1ps", 1e-12)):
        grid = np.array([0.0, STOP_S]) if interval is None else _grid(STOP_S, interval)
        runs[label] = lambda g=grid: simulate(circuit, STOP_S, drives=drives, sample_times_s=g)
    calls = {label: _calls_per_batch(fn) for label, fn in runs.items()}
    walls: dict[str, list[float]] = {label: [] for label in runs}
    for repeat in range(EMULATOR_REPEATS):
        for label, fn in runs.items():
            if label != "ngspice" or repeat < NGSPICE_REPEATS:
                walls[label].append(_per_call_s(fn, calls[label]))
    ng_s = statistics.median(walls.pop("ngspice"))
    emu = {label: statistics.median(values) for label, values in walls.items()}
    comparison = crosscheck(circuit, STOP_S, drives=drives, max_step_s=MAX_STEP_S)
    periods = [w.period_error for w in comparison.wires if w.reference_s.size >= 3]
    return {
        "name": name,
        "ngspice_s": ng_s,
        "emulator_s": emu,
        "speedup": {k: ng_s / v for k, v in emu.items()},
        "switches": sum(w.reference_s.size for w in comparison.wires),
        "same_count": all(w.same_count for w in comparison.wires),
        "max_timing_error": comparison.max_timing_error,
        "max_abs_timing_error_s": max(
            (float(np.max(np.abs(w.emulator_s[: w.reference_s.size] - w.reference_s[: w.emulator_s.size])))
             for w in comparison.wires if min(w.reference_s.size, w.emulator_s.size)), default=0.0),
        "period_error": max(periods, default=float("nan")),
        "peak_error": max(w.peak_error for w in comparison.wires),
    }


def _scaling() -> list[dict]:
    circuit = ec.oscillator(nonlinear=False)
    simulate(circuit, 1e-9)
    rows = []
    for stop in SCALING_STOPS_S:
        events_s, grid_s = (statistics.median(_per_call_s(fn, _calls_per_batch(fn)) for _ in range(3)) for fn in (
            lambda s=stop: simulate(circuit, s, sample_times_s=np.array([0.0, s])),
            lambda s=stop: simulate(circuit, s, sample_times_s=_grid(s, SCOPE_GRID_S))))
        rows.append({"stop_s": stop, "events_only_s": events_s, "grid_10ps_s": grid_s,
                     "cycles": int(stop / 4.513e-9)})
    return rows


def main() -> int:
    if shutil.which("ngspice") is None:
        print(json.dumps({"benchmark": "emulator_vs_ngspice", "error": "ngspice not installed"}))
        return 2
    neuron_drives = {"input": ec.pulse_train(30e-6, 2e-9, (10e-9, 40e-9, 70e-9))}
    cases = [_case("C2", ec.oscillator(nonlinear=False), {}), _case("C3", ec.oscillator(nonlinear=True), {}),
             _case("neuron", ec.neuron(), neuron_drives)]
    scaling = _scaling()

    print(f"100 ns transients; ngspice {MAX_STEP_S * 1e12:g} ps max step; emulator after warm-up; medians")
    print(f"{'circuit':8} {'ngspice s':>10} {'emu s (events/10ps/1ps grid)':>30} {'speedup (10ps)':>15} "
          f"{'switches':>8} {'timing err':>10} {'|dt| max ps':>11} {'period err':>10} {'peak err':>9}")
    for c in cases:
        e = c["emulator_s"]
        print(f"{c['name']:8} {c['ngspice_s']:10.3f} {e['events']:9.4f} {e['10ps']:9.4f} {e['1ps']:9.4f} "
              f"{c['speedup']['10ps']:15.1f} {c['switches']:8d} {c['max_timing_error']:10.2e} "
              f"{c['max_abs_timing_error_s'] * 1e12:11.2f} {c['period_error']:10.2e} {c['peak_error']:9.2e}")
    print("\nemulator cost vs simulated time (C2)")
    print(f"{'stop':>8} {'cycles':>7} {'events only s':>14} {'10 ps grid s':>13} {'us per cycle':>13}")
    for r in scaling:
        print(f"{r['stop_s'] * 1e9:7.0f}n {r['cycles']:7d} {r['events_only_s']:14.4f} {r['grid_10ps_s']:13.4f} "
              f"{1e6 * r['events_only_s'] / max(r['cycles'], 1):13.1f}")
    c2, _, neuron = cases
    max_timing = max(c["max_timing_error"] for c in cases)
    result = {
        "benchmark": "emulator_vs_ngspice",
        **{f"speedup_{c['name'].lower()}": round(c["speedup"]["10ps"], 2) for c in cases},
        **{f"timing_error_{c['name'].lower()}": c["max_timing_error"] for c in cases},
        "max_timing_error": max_timing,
        "speedup_c2_events_only": round(c2["speedup"]["events"], 2),
        "speedup_c2_1ps_grid": round(c2["speedup"]["1ps"], 2),
        "speedup_neuron_events_only": round(neuron["speedup"]["events"], 2),
        "speedup_neuron_1ps_grid": round(neuron["speedup"]["1ps"], 2),
        "ngspice_s_c2": round(c2["ngspice_s"], 4),
        "ngspice_s_neuron": round(neuron["ngspice_s"], 4),
        "emulator_s_c2": round(c2["emulator_s"]["10ps"], 5),
        "emulator_s_neuron": round(neuron["emulator_s"]["10ps"], 5),
        "period_error_c2": c2["period_error"],
        "max_peak_error": max(c["peak_error"] for c in cases),
        "same_switch_count": all(c["same_count"] for c in cases),
        "scaling_events_only_s": {f"{r['stop_s']:.0e}": round(r["events_only_s"], 5) for r in scaling},
        "target_speedup": TARGET_SPEEDUP,
        "target_met": bool(min(c["speedup"]["10ps"] for c in cases) >= TARGET_SPEEDUP
                           and max_timing <= TARGET_TIMING_ERROR),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
