"""The live view's figures (docs/live-view.md, FIGURE): plain data a web page plots, drawn from
one run file as lab.archive.live_reader reads it, while it is written or once it is finished.

Each procedure's own figures, from the same analysis code its plan uses: the cooldown's stage
temperature; the I–V curve and the growing switching-current histogram (binned on the events'
grid, as the report bins them); firing probabilities with the binomial (Wilson) intervals of
procedures.analysis.statistics; the f–I curve with procedures.analysis.rate's intervals; the
spike-energy histogram; the efficiency comparison; and the newest captured traces of a pulsed
procedure with its detected spikes marked, found by its own detection (procedures.analysis.spikes)
at its own level (the detect_v it used, archived with its parameters). Any other table: its
declared signal against its declared axis.

Every series is capped at POINTS_MAX points by min/max decimation (each of POINTS_MAX/2 buckets
keeps its lowest and highest point, so a long series keeps its envelope); `points` says how many
the data hold. Values are SI, units as archived; NaN and infinities never reach the output
(points without a finite x and y are left out, a missing interval bound is null).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from contracts.units import format_si
from lab.archive.live_reader import LiveRun, LiveTable, LiveTraces
from procedures import _pulsed
from procedures import energy_per_spike as energy_procedure
from procedures import refractory as refractory_procedure
from procedures import strength_duration as strength_duration_procedure
from procedures.analysis.rate import rate_uncertainty
from procedures.analysis.spikes import delayed, in_window, linear_excess_v, peak_indices, spike_times_s
from procedures.analysis.statistics import CONFIDENCE_LEVEL, proportion_uncertainty
from procedures.analysis.switching import estimate_grid, grid_histogram
from procedures.efficiency import COMPARISON_TABLE

#: Most points of one series (min/max decimated beyond).
POINTS_MAX = 2000
#: The newest captures a trace figure shows.
SHOWN_TRACES = 4
#: Most markers of one figure.
MARKERS_MAX = 200
#: The trace channel the spikes show in (a pulsed capture's output node, `_pulsed.CAPTURE_CHANNELS`).
OUTPUT_CHANNEL = _pulsed.CAPTURE_CHANNELS[0]

Figure = dict[str, Any]


# --- series, axes, figures ---------------------------------------------------------------------
def decimated(y: np.ndarray, limit: int = POINTS_MAX) -> np.ndarray:
    """Indices (ascending) of at most `limit` of the finite values `y` that keep its envelope:
    the lowest and highest of each of limit/2 consecutive buckets."""
    n = int(y.size)
    if n <= limit:
        return np.arange(n)
    size = -(-n // max(limit // 2, 1))
    buckets = -(-n // size)                      # the last bucket is the only one padded
    padded = np.full(buckets * size, np.nan)
    padded[:n] = y
    rows = padded.reshape(buckets, size)
    start = np.arange(buckets) * size
    return np.unique(np.concatenate([start + np.nanargmin(rows, axis=1), start + np.nanargmax(rows, axis=1)]))


class Series:
    """One series of a figure: the data cleaned of non-finite points and decimated."""

    def __init__(self, label: str, style: str, x, y, low=None, high=None) -> None:
        x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
        low = None if low is None else np.asarray(low, dtype=float).ravel()[keep]
        high = None if high is None else np.asarray(high, dtype=float).ravel()[keep]
        self.points = int(x.size)
        index = decimated(y)
        self.shown = int(index.size)
        self.data = {"label": label, "style": style, "x": x[index].tolist(), "y": y[index].tolist(),
                     "low": None if low is None else _nullable(low[index]),
                     "high": None if high is None else _nullable(high[index])}


def _nullable(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values.tolist()]


def axis(label: str, unit: str, log: bool = False) -> dict[str, Any]:
    return {"label": label, "unit": unit, "log": log}


def marker(x: float, y: float, label: str) -> dict[str, Any] | None:
    x, y = float(x), float(y)
    return {"x": x, "y": y, "label": label} if math.isfinite(x) and math.isfinite(y) else None


def figure(figure_id: str, title: str, x: dict, y: dict, series: Sequence[Series],
           markers: Iterable[dict | None] = (), note: str = "", points: int | None = None) -> Figure:
    """A FIGURE; `points` (default: the series' points) is how many points the data hold."""
    held = sum(s.points for s in series) if points is None else points
    notes = [note] if note else []
    cut = [s for s in series if s.shown < s.points]
    if cut:
        notes.append(f"{sum(s.shown for s in cut):,} of {sum(s.points for s in cut):,} points shown (min/max "
                     "decimated)")
    kept = [m for m in markers if m is not None]
    if len(kept) > MARKERS_MAX:
        notes.append(f"the last {MARKERS_MAX} of {len(kept)} markers shown")
        kept = kept[-MARKERS_MAX:]
    return {"id": figure_id, "title": title, "x": x, "y": y, "series": [s.data for s in series], "markers": kept,
            "points": int(held), "note": "; ".join(notes)}


def _label(name: str) -> str:
    """A column name as a quantity: its unit suffix dropped, underscores as spaces."""
    for suffix in ("_a", "_v", "_s", "_k", "_j", "_hz", "_w", "_ohm"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("_", " ")


def _monotonic(x: np.ndarray) -> bool:
    finite = x[np.isfinite(x)]
    return finite.size < 2 or bool(np.all(np.diff(finite) >= 0))


# --- the figures of a run ----------------------------------------------------------------------
def run_figures(run: LiveRun) -> list[Figure]:
    """Every figure of the run: its procedure's own, then each table no figure of it shows."""
    made: list[Figure] = []
    shown_tables: set[str] = set()
    for draw in PROCEDURE_FIGURES.get(run.procedure, ()):
        figures, tables = draw(run)
        made += figures
        shown_tables |= tables
    for name, table in run.tables.items():
        if name in shown_tables or not table.rows and not run.partial:     # a finished run's empty table: nothing
            continue
        if _is_probability_table(table):
            made.append(probability_figure(run, table))
        else:
            made.append(table_figure(run, table))
    if run.traces is not None and run.traces.count and run.procedure not in PULSED:
        made.append(traces_figure(run))
    return made


def table_figure(run: LiveRun, table: LiveTable) -> Figure:
    """A table's declared signal against its declared axis (by default its first and last columns)."""
    names = list(table.columns)
    x_name = table.axis or names[0]
    y_name = table.signal or names[-1]
    x, y = np.asarray(table.columns[x_name], float), np.asarray(table.columns[y_name], float)
    style = "line" if _monotonic(x) else "points"
    return figure(f"{run.procedure}/{table.name}", f"{table.name}: {y_name} against {x_name}",
                  axis(_label(x_name), table.units.get(x_name, "")), axis(_label(y_name), table.units.get(y_name, "")),
                  [Series(y_name, style, x, y)])


def cooldown(run: LiveRun) -> tuple[list[Figure], set[str]]:
    table = run.tables.get("temperature_log")
    if table is None:
        return [], set()
    time_s, temperature_k = table.columns.get("time_s"), table.columns.get("temperature_k")
    if time_s is None or temperature_k is None:
        return [], set()
    series = [Series("stage temperature", "line", time_s, temperature_k)]
    setpoint_k = run.parameter("setpoint_k")
    finite_time = np.asarray(time_s, float)[np.isfinite(time_s)]
    if math.isfinite(setpoint_k) and finite_time.size:
        setpoint = Series(f"setpoint {setpoint_k:g} K", "line", [finite_time.min(), finite_time.max()],
                          [setpoint_k, setpoint_k])
        series.append(setpoint)
    held = series[0].points
    return [figure("cooldown/temperature_log", "Stage temperature",
                   axis("lab time", table.units.get("time_s", "s")),
                   axis("stage temperature", table.units.get("temperature_k", "K")), series, points=held)], \
        {"temperature_log"}


def iv_sweep(run: LiveRun) -> tuple[list[Figure], set[str]]:
    made, used = [], set()
    curve = run.tables.get("iv_curve")
    if curve is not None and {"bias_a", "voltage_v"} <= set(curve.columns):
        bias_a, voltage_v = curve.columns["bias_a"], curve.columns["voltage_v"]
        direction = curve.columns.get("direction", np.ones(bias_a.size))
        series = [Series(name, "points", bias_a[direction == sign], voltage_v[direction == sign])
                  for sign, name in ((1, "bias increasing"), (-1, "bias decreasing")) if np.any(direction == sign)]
        made.append(figure("iv_sweep/iv_curve", "I–V of the bias port", axis("bias current", curve.units["bias_a"]),
                           axis("port voltage", curve.units["voltage_v"]), series,
                           note="pilot sweeps, one series per sweep direction"))
        used.add("iv_curve")
    events = run.tables.get("switching_events")
    if events is not None and "switching_current_a" in events.columns:
        made.append(switching_histogram(run, events))
        used.add("switching_events")
    return made, used


def switching_histogram(run: LiveRun, table: LiveTable) -> Figure:
    """The switching currents so far, in bins a whole number of steps of the events' grid wide
    (as the report bins them): the run's archived histogram once it has one."""
    events = np.asarray(table.columns["switching_current_a"], float)
    events = events[np.isfinite(events)]
    archived = run.quantities.get("results", {}).get("switching_current_histogram")
    note = ""
    if not events.size:
        counts = centres = np.array([])
        note = "no switching event yet"
    elif archived is not None and archived.axis_values is not None and len(archived.axis_values) >= 2:
        counts = np.asarray(archived.value, float)
        centres = np.asarray(archived.axis_values, float)
        note = "the run's histogram (switching_current_histogram)"
    else:
        step_a = np.asarray(table.columns.get("step_a", []), float)
        step_a = step_a[np.isfinite(table.columns["switching_current_a"])] if step_a.size == table.rows else step_a
        windowed = events[step_a == step_a[-1]] if step_a.size == events.size and step_a.size else events
        grid = estimate_grid(windowed)
        counts, edges = grid_histogram(events, grid)
        if counts.size > POINTS_MAX:
            counts, edges = grid_histogram(events, grid, POINTS_MAX // 2)
        centres = 0.5 * (edges[1:] + edges[:-1])
        note = "binned on the events' grid" if grid is not None else "events not on a grid: plain bins"
    units = table.units.get("switching_current_a", "A")
    return figure("iv_sweep/switching_histogram", f"Switching-current histogram ({events.size:,} events)",
                  axis("switching current", units), axis("events per bin", "1"),
                  [Series("switching events", "bars", centres, counts)], note=note, points=int(events.size))


def _is_probability_table(table: LiveTable) -> bool:
    return {"amplitude_a", "spikes", "trials"} <= set(table.columns)


def probability_figure(run: LiveRun, table: LiveTable) -> Figure:
    """Firing probability against amplitude, one series per pulse width (and per attempt after a
    bias cycle), with Wilson intervals at the procedures' confidence level."""
    columns = table.columns
    amplitude_a = np.asarray(columns["amplitude_a"], float)
    spikes, trials = np.asarray(columns["spikes"]), np.asarray(columns["trials"])
    width_s = np.asarray(columns.get("width_s", np.full(amplitude_a.size, np.nan)), float)
    attempt = np.asarray(columns.get("attempt", np.zeros(amplitude_a.size, int)))
    series = []
    for width in np.unique(width_s[np.isfinite(width_s)]) if np.isfinite(width_s).any() else [math.nan]:
        same_width = width_s == width if math.isfinite(width) else np.ones(amplitude_a.size, bool)
        for tried in np.unique(attempt[same_width]):
            rows = same_width & (attempt == tried)
            order = np.argsort(amplitude_a[rows], kind="stable")
            k, n = spikes[rows][order], trials[rows][order]
            valid = n > 0
            probability = np.where(valid, k / np.where(valid, n, 1), np.nan)
            wilson = proportion_uncertainty(k, n, CONFIDENCE_LEVEL)
            name = format_si(width, "s") if math.isfinite(width) else "all widths"
            if tried:
                name += f" (after {int(tried)} bias cycle{'s' if tried > 1 else ''})"
            series.append(Series(name, "points", amplitude_a[rows][order], probability,
                                 np.atleast_1d(wilson.low), np.atleast_1d(wilson.high)))
    return figure(f"{run.procedure}/{table.name}", "Firing probability against pulse amplitude"
                  + (" (threshold search)" if table.name == _pulsed.QUICK_SEARCH_TABLE else ""),
                  axis("pulse amplitude", table.units.get("amplitude_a", "A")), axis("firing probability", "1"),
                  series, note=f"{CONFIDENCE_LEVEL:.0%} Wilson score intervals; one series per pulse width",
                  points=table.rows)


def strength_duration(run: LiveRun) -> tuple[list[Figure], set[str]]:
    made, used = [], set()
    table = run.tables.get("probability")
    if table is not None and _is_probability_table(table):
        made.append(probability_figure(run, table))
        used.add("probability")
    return made + _traces_figures(run), used


def refractory(run: LiveRun) -> tuple[list[Figure], set[str]]:
    made, used = [], set()
    table = run.tables.get("pairs")
    if table is not None and {"spacing_s", "second_spikes", "trials"} <= set(table.columns):
        tried = list(zip(np.asarray(table.columns["spacing_s"], float), np.asarray(table.columns["second_spikes"]),
                         np.asarray(table.columns["trials"])))
        if tried:
            spacings, seconds, pairs = refractory_procedure.pooled(tried)     # as the run pools them
        else:
            spacings = seconds = pairs = np.array([])
        wilson = proportion_uncertainty(seconds, pairs, CONFIDENCE_LEVEL) if tried else None
        valid = pairs > 0
        probability = np.where(valid, seconds / np.where(valid, pairs, 1), np.nan)
        order = np.argsort(spacings)
        series = [Series("second spike", "points", spacings[order], probability[order],
                         None if wilson is None else np.atleast_1d(wilson.low)[order],
                         None if wilson is None else np.atleast_1d(wilson.high)[order])]
        made.append(figure("refractory/pairs", "Second-spike probability against pulse spacing",
                           axis("pulse spacing", table.units.get("spacing_s", "s")),
                           axis("second-spike probability", "1"), series,
                           note=f"pairs pooled per spacing; {CONFIDENCE_LEVEL:.0%} Wilson score intervals",
                           points=table.rows))
        used.add("pairs")
    return made + _traces_figures(run), used


def firing_rate(run: LiveRun) -> tuple[list[Figure], set[str]]:
    made, used = [], set()
    table = run.tables.get("records")
    if table is not None and {"input_current_a", "spikes", "duration_s"} <= set(table.columns):
        columns = table.columns
        current_a = np.asarray(columns["input_current_a"], float)
        counted = np.asarray(columns.get("counted", np.ones(current_a.size)), bool)
        spikes, duration_s = np.asarray(columns["spikes"], float), np.asarray(columns["duration_s"], float)
        currents = np.unique(current_a[counted & np.isfinite(current_a)])
        groups = [counted & (current_a == c) for c in currents]
        series = []
        if currents.size:
            rates, uncertainty = rate_uncertainty([spikes[g] for g in groups], [duration_s[g] for g in groups],
                                                  CONFIDENCE_LEVEL)
            series.append(Series("mean rate", "points", currents, rates, uncertainty.low, uncertainty.high))
        rate_hz = np.asarray(columns.get("rate_hz", spikes / np.where(duration_s > 0, duration_s, np.nan)), float)
        series.append(Series("records", "points", current_a[counted], rate_hz[counted]))
        made.append(figure("firing_rate/records", "Firing rate against input current",
                           axis("input current", table.units.get("input_current_a", "A")),
                           axis("firing rate", table.units.get("rate_hz", "Hz")), series,
                           note=f"mean of the counted records per current, {CONFIDENCE_LEVEL:.0%} intervals as the "
                                "run computes them", points=int(np.count_nonzero(counted))))
        used.add("records")
    return made + _traces_figures(run), used


def energy_per_spike(run: LiveRun) -> tuple[list[Figure], set[str]]:
    used = {"spike_energies", energy_procedure.CAPTURES_TABLE}
    energies, source = _spike_energies(run)
    units = "J"
    series, markers = [], []
    if energies.size:
        edges = np.histogram_bin_edges(energies, bins=min(60, max(10, energies.size)))
        counts, edges = np.histogram(energies, bins=edges)
        series.append(Series("captures with a spike", "bars", 0.5 * (edges[1:] + edges[:-1]), counts))
    mean = run.quantities.get("results", {}).get("energy_per_spike_j")
    if mean is not None and not isinstance(mean.value, str) and np.ndim(mean.value) == 0:
        markers.append(marker(float(mean.value), 0.0, f"energy per spike (single spikes) "
                                                       f"{format_si(float(mean.value), units)}"))
    made = [figure("energy_per_spike/spike_energies", f"Energy per spike ({energies.size:,} captures)",
                   axis("energy above the baseline, per spike", units), axis("captures per bin", "1"), series,
                   markers, note=source, points=int(energies.size))]
    return made + _traces_figures(run), used


def _spike_energies(run: LiveRun) -> tuple[np.ndarray, str]:
    """The per-spike energies of the captures with a spike at the spiking amplitude, of the last
    attempt: from the captures table once it is written (the run's end), else from the traces'
    columns (every capture is archived with its energy as it arrives)."""
    captures = run.tables.get(energy_procedure.CAPTURES_TABLE)
    traces = run.traces
    if captures is not None and captures.rows:
        columns, source = captures.columns, "the captures table"
    elif traces is not None and traces.count and "spike_energy_j" in traces.columns:
        columns, source = traces.columns, "the archived captures so far"
    else:
        table = run.tables.get("spike_energies")
        if table is not None and "spike_energy_j" in table.columns:
            values = np.asarray(table.columns["spike_energy_j"], float)
            return values[np.isfinite(values)], "the spike_energies table"
        return np.array([]), "no capture with a spike yet"
    kind = np.asarray(columns.get("kind", []))
    energies = np.asarray(columns.get("spike_energy_j", []), float)
    if kind.size != energies.size:
        return np.array([]), source
    firing = kind == energy_procedure.KIND_SPIKE
    attempt = np.asarray(columns.get("attempt", np.zeros(kind.size, int)))
    if firing.any():
        firing &= attempt == attempt[firing].max()
    spikes = np.asarray(columns.get("spikes", np.ones(kind.size)))
    values = energies[firing & (spikes > 0)]
    return values[np.isfinite(values)], f"per spike, from {source} (last attempt)"


def efficiency(run: LiveRun) -> tuple[list[Figure], set[str]]:
    table = run.tables.get(COMPARISON_TABLE)
    if table is None or not {"system", "energy_per_synaptic_event_j"} <= set(table.columns):
        return [], set()
    system = np.asarray(table.columns["system"], float)
    energy_j = np.asarray(table.columns["energy_per_synaptic_event_j"], float)
    names = _systems(run)
    positive = np.isfinite(energy_j) & (energy_j > 0)          # a log axis shows positive values only
    markers = [marker(s, e, names.get(int(s), f"system {int(s)}")) for s, e in zip(system[positive], energy_j[positive])]
    return [figure("efficiency/comparison", "Energy per synaptic event, this chip beside published figures",
                   axis("system", table.units.get("system", "1")),
                   axis("energy per synaptic event", table.units.get("energy_per_synaptic_event_j", "J"), log=True),
                   [Series("energy per synaptic event", "bars", system[positive], energy_j[positive])], markers,
                   note="system 0 is this chip assuming the synaptic energy ratio; the markers name each system",
                   points=table.rows)], {COMPARISON_TABLE}


def _systems(run: LiveRun) -> dict[int, str]:
    """The comparison's system names, from the result `comparison_systems` ("0: ...; 1: ...")."""
    found = run.quantities.get("results", {}).get("comparison_systems")
    names: dict[int, str] = {}
    if found is None or not isinstance(found.value, str):
        return names
    for part in found.value.split("; "):
        number, _, name = part.partition(": ")
        if number.strip().isdigit():
            names[int(number)] = name.strip()
    return names


# --- the newest captures, with the spikes the procedure's analysis finds -----------------------
def _traces_figures(run: LiveRun) -> list[Figure]:
    return [traces_figure(run)] if run.traces is not None and run.traces.count else []


def detect_v(run: LiveRun) -> float:
    """The spike detection level the run used: the value its plan chose (parameters_resolved),
    else the parameter as set; NaN when neither is known yet (0 means "the plan chooses")."""
    resolved = run.resolved("detect_v")
    if math.isfinite(resolved) and resolved > 0:
        return resolved
    given = run.parameter("detect_v")
    return given if math.isfinite(given) and given > 0 else math.nan


def traces_figure(run: LiveRun) -> Figure:
    """The newest SHOWN_TRACES captures of the output channel (the first channel for a procedure
    that is not pulsed), with each spike the procedure's own detection finds marked."""
    traces = run.traces
    assert traces is not None
    channel = OUTPUT_CHANNEL if OUTPUT_CHANNEL in traces.samples else next(iter(traces.samples), None)
    shown = [int(k) for k in traces.indices if k >= traces.count - SHOWN_TRACES]
    capture = traces.columns.get(_pulsed.CAPTURE_INDEX)
    series, markers, notes = [], [], []
    detect = SPIKES.get(run.procedure) if channel == OUTPUT_CHANNEL else None
    level = detect_v(run)
    if detect is not None and not math.isfinite(level):
        notes.append("the detection level (detect_v) is not archived yet: spikes not marked")
        detect = None
    for index in shown:
        samples = traces.trace(channel, index) if channel is not None else None
        if samples is None:
            continue
        number = int(capture[index]) if capture is not None and index < capture.size else index
        label = f"capture {number}" + _kind_text(run.procedure, traces, index)
        series.append(Series(label, "line", traces.time_s, samples))
        if detect is not None:
            times, why = detect(run, traces, index, level)
            if why:
                notes.append(f"capture {number}: {why}")
            markers += [marker(t, np.interp(t, traces.time_s, samples), f"spike ({label})") for t in times]
    if detect is not None:
        notes.insert(0, f"spikes as the run detects them, at detect_v {format_si(level, 'V')}"
                     + SPIKES_NOTE.get(run.procedure, ""))
    units = traces.channel_units.get(channel, "") if channel is not None else ""
    title = f"Newest captures ({traces.count:,} archived)"
    return figure(f"{run.procedure}/traces", title, axis("time from trigger", "s"),
                  axis(f"node {channel} voltage" if units == "V" else str(channel), units), series, markers,
                  note="; ".join(notes))


KIND_NAMES = {
    "strength_duration": {strength_duration_procedure.KIND_REFERENCE: "reference",
                          strength_duration_procedure.KIND_TRIAL: "trial"},
    "refractory": {refractory_procedure.KIND_REFERENCE: "reference", refractory_procedure.KIND_SINGLE: "single pulse",
                   refractory_procedure.KIND_PAIR: "pair", refractory_procedure.KIND_SEARCH: "threshold search"},
    "energy_per_spike": {energy_procedure.KIND_REFERENCE: "reference", energy_procedure.KIND_SPIKE: "spiking",
                         energy_procedure.KIND_SEARCH: "threshold search"},
}


def _kind_text(procedure: str, traces: LiveTraces, index: int) -> str:
    parts = []
    kind = traces.columns.get("kind")
    if kind is not None and index < kind.size:
        parts.append(KIND_NAMES.get(procedure, {}).get(int(kind[index]), f"kind {int(kind[index])}"))
    for column, unit in (("amplitude_a", "A"), ("input_current_a", "A"), ("spacing_s", "s")):
        values = traces.columns.get(column)
        if values is not None and index < values.size and math.isfinite(float(values[index])):
            parts.append(format_si(float(values[index]), unit, 3))
    return f" ({', '.join(parts)})" if parts else ""


def _column(traces: LiveTraces, name: str, index: int, default: float = math.nan) -> float:
    values = traces.columns.get(name)
    return float(values[index]) if values is not None and index < values.size else default


def _group(traces: LiveTraces, index: int, kinds: Sequence[int], same: Sequence[str] = ("attempt",)) -> np.ndarray:
    """Indices of the traces of one of `kinds` that share `index`'s values of the `same` columns."""
    kind = traces.columns.get("kind")
    if kind is None:
        return np.array([], dtype=int)
    members = np.isin(kind, kinds)
    for name in same:
        values = traces.columns.get(name)
        if values is not None:
            members &= values == values[index]
    return np.flatnonzero(members)


def _mean_response(traces: LiveTraces, members: np.ndarray) -> tuple[np.ndarray, float, int] | None:
    """The mean output of the archived traces among `members` that were read, their amplitude
    and how many (None if none was archived: the run keeps only every k-th capture)."""
    found = [traces.trace(OUTPUT_CHANNEL, int(k)) for k in members]
    found = [t for t in found if t is not None]
    if not found:
        return None
    return np.mean(found, axis=0), _column(traces, "amplitude_a", int(members[0])), len(found)


def _excess(traces: LiveTraces, index: int, reference: tuple[np.ndarray, float, int]) -> np.ndarray:
    """The output minus the reference response scaled to this capture's amplitude."""
    output = traces.trace(OUTPUT_CHANNEL, index)
    mean_v, reference_a, _ = reference
    amplitude_a = _column(traces, "amplitude_a", index)
    return linear_excess_v(output, mean_v, amplitude_a / reference_a if reference_a else 0.0)


def _window_peak(time_s: np.ndarray, excess_v: np.ndarray, level_v: float, window_s: tuple[float, float]) -> list[float]:
    """`has_spike`'s decision (the excess's peak inside the window above the level), placed at
    that peak."""
    mask = in_window(time_s, window_s) & np.isfinite(excess_v)
    if not mask.any():
        return []
    where = np.flatnonzero(mask)
    peak = where[int(np.argmax(excess_v[where]))]
    return [float(time_s[peak])] if excess_v[peak] > level_v else []


NO_REFERENCE = "no reference capture of its set archived (the run keeps every k-th capture): spikes not located"

SpikeFinder = Callable[[LiveRun, LiveTraces, int, float], tuple[list[float], str]]


def _strength_duration_spikes(run: LiveRun, traces: LiveTraces, index: int, level: float) -> tuple[list[float], str]:
    """A trial's spike: the excess over the width's scaled reference above detect_v in the window
    (-edge, width + 2·edge + spike_after), as `_pulsed.spike_seen` decides it."""
    if _column(traces, "kind", index) != strength_duration_procedure.KIND_TRIAL:
        return [], ""
    reference = _mean_response(traces, _group(traces, index, [strength_duration_procedure.KIND_REFERENCE],
                                              ("attempt", "width_s")))
    if reference is None:
        return [], NO_REFERENCE
    edge_s, after_s = run.parameter("edge_s"), run.parameter("spike_after_s")
    width_s = _column(traces, "width_s", index)
    window = (-edge_s, width_s + 2 * edge_s + after_s)
    return _window_peak(traces.time_s, _excess(traces, index, reference), level, window), ""


def _refractory_spikes(run: LiveRun, traces: LiveTraces, index: int, level: float) -> tuple[list[float], str]:
    """A single pulse's spike as the firing check decides it; a pair's first spike over the
    scaled reference and its second over the single-pulse response plus the reference delayed
    by the spacing, each in its window (procedures/refractory.py)."""
    kind = _column(traces, "kind", index)
    if kind not in (refractory_procedure.KIND_SINGLE, refractory_procedure.KIND_PAIR):
        return [], ""
    reference = _mean_response(traces, _group(traces, index, [refractory_procedure.KIND_REFERENCE]))
    if reference is None:
        return [], NO_REFERENCE
    edge_s, after_s, width_s = run.parameter("edge_s"), run.parameter("spike_after_s"), run.parameter("width_s")
    first_window = (-edge_s, width_s + 2 * edge_s + after_s)
    found = _window_peak(traces.time_s, _excess(traces, index, reference), level, first_window)
    if kind == refractory_procedure.KIND_SINGLE:
        return found, ""
    single = _mean_response(traces, _group(traces, index, [refractory_procedure.KIND_SINGLE]))
    if single is None:
        return found, "no single-pulse capture archived: its second spike not located"
    spacing_s = _column(traces, "spacing_s", index)
    mean_v, reference_a, _ = reference
    scale = _column(traces, "amplitude_a", index) / reference_a if reference_a else 0.0
    expected_v = single[0] + scale * delayed(traces.time_s, mean_v, spacing_s)
    second_window = (spacing_s - edge_s, spacing_s + width_s + 2 * edge_s + after_s)
    output = traces.trace(OUTPUT_CHANNEL, index)
    return found + _window_peak(traces.time_s, output - expected_v, level, second_window), ""


def _firing_rate_spikes(run: LiveRun, traces: LiveTraces, index: int, level: float) -> tuple[list[float], str]:
    """Rising crossings of detect_v at the output (`spike_times_s`), as the run counts them (the
    first, at the trigger, is the spike that started the record)."""
    return spike_times_s(traces.time_s, traces.trace(OUTPUT_CHANNEL, index), level).tolist(), ""


def _energy_spikes(run: LiveRun, traces: LiveTraces, index: int, level: float) -> tuple[list[float], str]:
    """Peaks of the excess over the attempt's scaled reference above detect_v, standing out by
    half of it (`peak_count`: a double spike ~1 ns apart counts twice)."""
    if _column(traces, "kind", index) != energy_procedure.KIND_SPIKE:
        return [], ""
    reference = _mean_response(traces, _group(traces, index, [energy_procedure.KIND_REFERENCE]))
    if reference is None:
        return [], NO_REFERENCE
    excess = _excess(traces, index, reference)
    return [float(traces.time_s[k]) for k in peak_indices(excess, level)], ""


SPIKES: dict[str, SpikeFinder] = {
    "strength_duration": _strength_duration_spikes,
    "refractory": _refractory_spikes,
    "firing_rate": _firing_rate_spikes,
    "energy_per_spike": _energy_spikes,
}
PULSED = frozenset(SPIKES)
SPIKES_NOTE = {"firing_rate": " (a crossing at the trigger is the spike that started the record: not counted)"}

#: The reference (and, for a pair, single-pulse) captures each procedure's detection needs.
REFERENCES: dict[str, tuple[list[int], tuple[str, ...]]] = {
    "strength_duration": ([strength_duration_procedure.KIND_REFERENCE], ("attempt", "width_s")),
    "refractory": ([refractory_procedure.KIND_REFERENCE, refractory_procedure.KIND_SINGLE], ("attempt",)),
    "energy_per_spike": ([energy_procedure.KIND_REFERENCE], ("attempt",)),
}


def pick_references(procedure: str, columns: dict[str, np.ndarray], count: int) -> list[int]:
    """For lab.archive.live_reader: the archived captures the newest ones are analysed against."""
    wanted = REFERENCES.get(procedure)
    kind = columns.get("kind")
    if wanted is None or kind is None or not count:
        return []
    kinds, same = wanted
    members = np.zeros(count, bool)
    for index in range(max(count - SHOWN_TRACES, 0), count):
        group = np.isin(kind[:count], kinds)
        for name in same:
            values = columns.get(name)
            if values is not None:
                group &= values[:count] == values[index]
        members |= group
    return np.flatnonzero(members).tolist()


PROCEDURE_FIGURES: dict[str, tuple[Callable[[LiveRun], tuple[list[Figure], set[str]]], ...]] = {
    "cooldown": (cooldown,),
    "iv_sweep": (iv_sweep,),
    "strength_duration": (strength_duration,),
    "refractory": (refractory,),
    "firing_rate": (firing_rate,),
    "energy_per_spike": (energy_per_spike,),
    "efficiency": (efficiency,),
}
