"""Emulator against ngspice on one circuit: switching times, periods, peak voltages.

Switching times come from each simulator's own account: the emulator's located events, and for
ngspice |I| rising through I_sw interpolated between its (<= max_step) time points.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sim_backend.physics import circuit as cm
from sim_backend.physics.transient import simulate

from validation import ngspice
from validation.events import switching_times_s
from validation.from_circuit import deterministic, netlist_from_circuit


@dataclass(frozen=True)
class WireComparison:
    wire: str
    node: str  # where the peak voltage is read (the wire's first node)
    reference_s: np.ndarray
    emulator_s: np.ndarray
    reference_period_s: float
    emulator_period_s: float
    reference_peak_v: np.ndarray
    emulator_peak_v: np.ndarray
    #: |dt| of each matched switching over the time since its previous reference anchor: t=0,
    #: the onset of a drive pulse, or this wire's own previous switching. (Another wire's switching
    #: is not an anchor: it can fall a few ps before an event it did not cause.)
    timing_error: np.ndarray

    @property
    def same_count(self) -> bool:
        return self.reference_s.size == self.emulator_s.size

    @property
    def period_error(self) -> float:
        return abs(self.emulator_period_s / self.reference_period_s - 1.0)

    @property
    def peak_error(self) -> float:
        if not self.reference_peak_v.size:
            return 0.0
        return float(np.max(np.abs(self.emulator_peak_v / self.reference_peak_v - 1.0)))


@dataclass(frozen=True)
class Comparison:
    wires: tuple[WireComparison, ...]
    emulator_wall_s: float
    ngspice_wall_s: float

    def wire(self, name: str) -> WireComparison:
        return next(w for w in self.wires if w.wire == name)

    @property
    def max_timing_error(self) -> float:
        errs = [float(w.timing_error.max()) for w in self.wires if w.timing_error.size]
        return max(errs, default=0.0)


def _period(times: np.ndarray, skip: int = 1) -> float:
    steady = times[skip:]
    return float(np.mean(np.diff(steady))) if steady.size >= 2 else float("nan")


#: A switching this close to the end of the run has no complete spike to measure.
PEAK_WINDOW_S = 1e-9


def _complete(switches: np.ndarray, stop_s: float) -> int:
    """How many leading switchings are followed by a whole spike inside the run."""
    n = switches.size
    return n - 1 if n and stop_s - switches[-1] < PEAK_WINDOW_S else n


def _peaks(t: np.ndarray, v: np.ndarray, switches: np.ndarray, stop_s: float, count: int) -> np.ndarray:
    """Peak |V| from each of the first `count` switchings to the next one (or the end)."""
    bounds = [*switches[1:], stop_s]
    out = []
    for t0, t1 in list(zip(switches, bounds))[:count]:
        sel = (t >= t0) & (t <= t1)
        out.append(float(np.max(np.abs(v[sel]))) if np.any(sel) else float("nan"))
    return np.asarray(out)


def _onsets_s(drive) -> np.ndarray:
    """Breakpoints where a drive leaves its baseline (pulse onsets): the causes of switchings."""
    t, v = np.asarray(drive.times_s, float), np.asarray(drive.values, float)
    slope_after = np.append(np.diff(v), 0.0) != 0.0
    return t[slope_after & (v == v[0])]


def _anchored_errors(ref: np.ndarray, emu: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    errs = []
    for r, e in zip(ref, emu):
        before = anchors[anchors < r - 1e-15]
        span = r - (before.max() if before.size else 0.0)
        errs.append(abs(e - r) / span)
    return np.asarray(errs)


def crosscheck(circuit: cm.Circuit, stop_s: float, *, drives: Mapping[str, object] | None = None,
               temperature_k: float = 2.0, max_step_s: float = 1e-12,
               sample_interval_s: float = 1e-12) -> Comparison:
    """Run both simulators on `circuit` (switching-threshold spread removed) and compare wires."""
    drives = dict(drives or {})
    circuit = deterministic(circuit)
    samples = np.arange(0.0, stop_s + 0.5 * sample_interval_s, sample_interval_s)
    samples = samples[samples <= stop_s]
    start = time.perf_counter()
    emu = simulate(circuit, stop_s, drives=drives, sample_times_s=samples, temperature_k=temperature_k)
    emu_wall = time.perf_counter() - start
    deck = netlist_from_circuit(circuit, drives, stop_s, max_step_s, temperature_k=temperature_k)
    ref = ngspice.run(deck)
    wires = [e for e in circuit.elements if isinstance(e, cm.Nanowire)]
    ref_switch = {w.name: switching_times_s(ref.time_s, ref.wire_current_a(w.name), ref.switching_current_a(w.name))
                  for w in wires}
    onsets = [_onsets_s(d) for d in drives.values() if hasattr(d, "times_s")]
    common_anchors = np.concatenate([np.zeros(1), *onsets])
    out = []
    for w in wires:
        r_sw, e_sw = ref_switch[w.name], emu.switch_times_s(w.name)
        n = min(r_sw.size, e_sw.size)
        n_peak = min(n, _complete(r_sw, stop_s))
        node = w.node_pos if w.node_pos != cm.GROUND else w.node_neg
        out.append(WireComparison(
            wire=w.name, node=node, reference_s=r_sw, emulator_s=e_sw,
            reference_period_s=_period(r_sw), emulator_period_s=_period(e_sw),
            reference_peak_v=_peaks(ref.time_s, ref.voltage_v(node), r_sw, stop_s, n_peak),
            emulator_peak_v=_peaks(emu.time_s, emu.node_voltage_v[node], e_sw, stop_s, n_peak),
            timing_error=_anchored_errors(r_sw[:n], e_sw[:n], np.concatenate([common_anchors, r_sw])),
        ))
    return Comparison(tuple(out), emu_wall, ref.wall_time_s)
