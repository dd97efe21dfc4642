"""Transient simulation of a chip netlist: the public entry point of the solver.

Times are absolute: a run goes from ``initial.time_s`` (0 without an initial state) to
``stop_s``; drives and sample times use the same time axis.

Random draws (only for wires with sigma_isw_a > 0, from ``rng`` with ``rng.standard_normal``):
each wire's switching threshold is I_sw(T) + σ·z. A wire takes a new z when it has none — at the
start of a run unless ``initial.threshold_z`` carries one — and right after each of its retraps.
Draws are taken from ``rng`` in blocks of ``DRAW_BLOCK`` per wire (shape (n_wires, DRAW_BLOCK));
unused draws are discarded at the end of the call. Same seed, same inputs -> identical result.
"""

from __future__ import annotations

import functools
import math
from typing import Mapping

import numpy as np

from sim_backend.physics import _layout, _linear_modes
from sim_backend.physics._kernel_advance import advance
from sim_backend.physics._kernel_output import sample_times_in_order
from sim_backend.physics.circuit import Circuit
from sim_backend.physics.dc import project_cluster_kcl, stored_energy_total_j
from sim_backend.physics.results import CircuitState, EnergyReport, SwitchEvent, TransientResult
from sim_backend.physics.waveform import PiecewiseLinear

# Tolerances: with these, C2 timing agrees with a 1e-7/1e-12 run to < 2e-5 relative.
DRAW_BLOCK = 64
DEFAULT_SAMPLE_INTERVAL_S = 1e-12
MAX_DEFAULT_SAMPLES = 200_001
RTOL = 1e-6
ATOL_CURRENT_A = 1e-12
ATOL_RESISTANCE_OHM = 1e-2
# Long steps are for quiet superconducting stretches (L–R decays toward DC); the kernel checks the
# dense output inside steps > 100 ps for a transition, so none is skipped.
DEFAULT_MAX_STEP_S = 5e-9
MAX_EVENTS = 10_000_000
#: Largest trace record one simulation allocates (samples × traces × 8 bytes); more is refused
#: before anything is allocated, with the estimate, instead of dying in a MemoryError.
MAX_TRACE_BYTES = 1 << 30


def trace_bytes(circuit: Circuit, n_samples: int, temperature_k: float = 2.0) -> int:
    """Bytes of the traces `simulate` records at `n_samples` sample times (time axis included)."""
    st = _layout.structure(circuit, float(temperature_k))
    return int(n_samples) * (st.sample_column_count() + 1) * 8


def simulate(
    circuit: Circuit,
    stop_s: float,
    *,
    drives: Mapping[str, PiecewiseLinear] | None = None,
    sample_times_s: np.ndarray | None = None,
    temperature_k: float = 2.0,
    rng: np.random.Generator | None = None,
    initial: CircuitState | None = None,
    max_step_s: float = DEFAULT_MAX_STEP_S,
    max_trace_bytes: int = MAX_TRACE_BYTES,
    rtol: float = RTOL,
    atol_current_a: float = ATOL_CURRENT_A,
    atol_resistance_ohm: float = ATOL_RESISTANCE_OHM,
    node_voltages_only: bool = False,
) -> TransientResult:
    """Integrate the circuit to ``stop_s``; see the module docstring for time and randomness.

    ValueError when the traces at ``sample_times_s`` would take more than ``max_trace_bytes``.
    The tolerances are the step controller's (relative; absolute on branch currents and hotspot
    resistances); the defaults are the ones every result is checked with. With
    ``node_voltages_only`` the result's traces are the node voltages alone (its other trace
    mappings empty; events, energies and final state as ever): what a probe sees, at a fraction
    of the cost on a fine grid.
    """
    drives = dict(drives or {})
    st = _layout.structure(circuit, float(temperature_k))
    sources = set(st.current_sources + st.voltage_sources)
    for name in drives:
        if name not in sources:
            raise ValueError(f"drive {name!r}: no current or voltage source of that name")
    initial = initial or CircuitState()
    t0 = float(initial.time_s)
    if not stop_s > t0:
        raise ValueError(f"stop_s ({stop_s!r}) must be after the start time ({t0!r})")
    if sample_times_s is None:
        n = int(min(MAX_DEFAULT_SAMPLES, math.floor((stop_s - t0) / DEFAULT_SAMPLE_INTERVAL_S) + 1))
        sample_times_s = np.linspace(t0, stop_s, max(n, 2))
    ts = np.ascontiguousarray(sample_times_s, dtype=np.float64)
    if ts.ndim != 1 or not sample_times_in_order(ts, t0, float(stop_s)):
        raise ValueError("sample_times_s must be non-decreasing and inside [start, stop_s]")
    n_traces = st.sample_column_count("node_voltage_v") if node_voltages_only else st.sample_column_count()
    needed = ts.size * (n_traces + 1) * 8
    if needed > max_trace_bytes:
        raise ValueError(f"{ts.size} sample times x {n_traces + 1} traces x 8 bytes = "
                         f"{format_bytes(needed)}, above the {format_bytes(max_trace_bytes)} limit of one simulation")
    ip, fp, kinv, waveform_times = _layout.packed(circuit, st, drives)
    nb, nw = len(st.branches), len(st.wires)

    y = np.zeros(st.state_length)
    for b, name in enumerate(st.branches):
        y[b] = float(initial.branch_current_a.get(name, 0.0))
    s = np.zeros(nw, dtype=np.int64)
    zcur = np.full(nw, math.nan)
    for w, name in enumerate(st.wires):
        if initial.resistive.get(name, False):
            s[w] = 1
            y[nb + w] = float(initial.hotspot_resistance_ohm.get(name, 0.0))
        zcur[w] = float(initial.threshold_z.get(name, math.nan))
    if st.cluster_incidence.shape[0]:
        j0 = np.array([_source_at(circuit, drives, n, t0) for n in st.current_sources])
        y[:nb] = project_cluster_kcl(st, y[:nb], j0)

    random_thresholds = bool(st.arrays[-1].any())     # some sigma_isw_a > 0 (none is negative)
    if random_thresholds and rng is None:
        raise ValueError("wires with sigma_isw_a > 0 need rng (a seeded numpy.random.Generator)")
    z = rng.standard_normal((nw, DRAW_BLOCK)) if random_thresholds else np.zeros((nw, 0))
    z_idx = np.zeros(nw, dtype=np.int64)
    thr = np.zeros(nw)
    e_sw = np.full(nw, math.nan)
    atol = np.full(nb + nw, float(atol_current_a))
    atol[nb:] = atol_resistance_ohm
    bp = np.sort(waveform_times)           # (a time twice: the kernel passes both at once)
    bp = bp[(bp > t0) & (bp < stop_s)]
    out = np.empty((n_traces, ts.size))   # a row a trace (contiguous); the kernel writes every sample
    ev = np.zeros((64, 4))
    cursor = np.zeros(2, dtype=np.int64)
    stats = np.zeros(4, dtype=np.int64)
    lin = _linear_modes.modes(st)
    lwk = np.empty(_linear_modes.scratch_size(st) if lin[0] else 1)
    stored_start = stored_energy_total_j(st, y[:nb])
    t, h, n_ev = t0, 1e-12, 0
    while True:
        status, t, h, n_ev = advance(t, float(stop_s), h, float(max_step_s), y, s, zcur, thr, z, z_idx,
                                     e_sw, ip, fp, kinv, lin, lwk, atol, rtol, bp, ts, out, ev, n_ev, cursor,
                                     stats)
        if status == 0:
            break
        if status == 1:
            ev = np.concatenate([ev, np.zeros_like(ev)])
        elif status == 2:
            z = rng.standard_normal((nw, DRAW_BLOCK))
            z_idx[:] = 0
        elif status == 3:
            raise RuntimeError(f"transient solver: step size underflow at t = {t:.6e} s")
        else:
            raise RuntimeError(f"transient solver: wires switch back and forth without time passing at t = {t:.6e} s")
        if ev.shape[0] > MAX_EVENTS:
            raise RuntimeError(f"transient solver: more than {MAX_EVENTS} switching events")
    return _result(st, ts, out, ev[:n_ev], y, s, zcur, t, stored_start, stats)


def format_bytes(n: float) -> str:
    """`n` bytes as a short figure in B, KiB, MiB, GiB or TiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _source_at(circuit: Circuit, drives: Mapping[str, PiecewiseLinear], name: str, t_s: float) -> float:
    if name in drives:
        return float(drives[name](t_s))
    return float(circuit.element(name).current_a)


_new_tuple = tuple.__new__
_EVENT_KINDS = {0.0: "switch", 1.0: "retrap"}   # the kernel's event kinds


@functools.lru_cache(maxsize=64)
def _wire_codes(st: _layout.Structure) -> dict[float, str]:
    """The kernel's wire index (a float in its event rows) to the wire's name."""
    return {float(w): name for w, name in enumerate(st.wires)}


def _result(st, ts, out, ev, y, s, zcur, t_end, stored_start, stats) -> TransientResult:
    nb = len(st.branches)
    traces = {group: {} for group, _ in st.sample_columns}
    cols = iter(out)                  # the node voltages alone, or every column
    for group, names in st.sample_columns:
        traces[group].update(zip(names, cols))
    groups = dict(st.sample_columns)
    totals = iter(y[nb + len(st.wires):].tolist())     # the state's energies, in the sample row's order
    dissipated = dict(zip(groups["cumulative_dissipated_j"], totals))
    delivered = dict(zip(groups["cumulative_delivered_j"], totals))
    # rows as Python floats, each tuple made as tuple.__new__ would (SwitchEvent's own __new__ is
    # Python code), the wire and kind looked up by their float codes: a switching climb has tens
    # of events, a bias sweep ~10⁵
    wire_of = _wire_codes(st)
    events = tuple([_new_tuple(SwitchEvent, (wire_of[w], t, _EVENT_KINDS[kind], e)) for w, t, kind, e in ev.tolist()])
    final = CircuitState(
        time_s=float(t_end),
        branch_current_a={name: float(y[b]) for b, name in enumerate(st.branches)},
        hotspot_resistance_ohm={name: float(y[nb + w]) for w, name in enumerate(st.wires)},
        resistive={name: bool(s[w]) for w, name in enumerate(st.wires)},
        threshold_z={name: float(zcur[w]) for w, name in enumerate(st.wires)},
    )
    energy = EnergyReport(dissipated, delivered, float(stored_start), stored_energy_total_j(st, y[:nb]))
    steps = {"accepted": int(stats[0]), "rejected": int(stats[1]), "event_location": int(stats[2]),
             "exact_stretches": int(stats[3])}
    return TransientResult(ts, **traces, events=events, energy=energy, final_state=final, solver_steps=steps)
