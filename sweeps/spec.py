"""Sweep specifications (YAML, format ``nwlab-sweep/1``): which chip, which parameters over which
space, which metrics, with what stimulus — and the points they make (docs/design-sweeps.md).

Read through the project's one YAML reader (`contracts.files.yaml12`); every refusal is one line
naming the file, the entry and the problem. The points are a pure function of the spec: the
same spec gives the same points, indices and per-point seeds on any machine, in any order.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from contracts.files.chip import (
    SIMPLE,
    WIRE_FIELDS,
    ChipFileError,
    chip_document,
    read_chip_yaml,
)
from contracts.files.station import StationError, read_station
from contracts.files.yaml12 import Wording, clip, parse_yaml, read_text
from contracts.units import BASE_UNITS
from sim_backend.chip.synapse import synapses

FORMAT = "nwlab-sweep/1"
TOP_LEVEL = ("format", "chip", "station", "measure", "seed", "parameters", "sampling", "metrics", "stimulus",
             "batch_points", "target", "description")
#: How a point is measured: direct simulation (the fast path) or the procedures on an emulated
#: station (the slow path, lab/app/sweep_slow.py), and the metrics the slow path has.
MEASURES = ("simulation", "procedures")
PROCEDURE_METRICS = ("threshold_a", "rheobase_a", "chronaxie_s", "energy_per_spike_j", "refractory_s",
                     "fi_onset_a", "fi_gain_hz_per_a")
SPEC_BYTES_MAX = 256 * 1024
WORDING = Wording(file="a sweep spec", shown_chars=60, duplicate_by_line=True)
#: Largest sweep one spec may ask for (a grid's product, or a sample count).
POINTS_MAX = 10_000_000
SHIPPED_CHIPS = Path(__file__).resolve().parents[1] / "stations" / "chips"

#: Metrics of the fast path (sweeps/fast_path.py): name -> (unit, what it is).
METRICS: dict[str, tuple[str, str]] = {
    "fires": ("1", "1 when a pulse at the bracket's top (4x the design threshold) makes a spike"),
    "latches": ("1", "1 when the output is still active in the last 10 ns of a 40 ns record after that pulse"),
    "threshold_a": ("A", "firing threshold at each stimulus width (bisection, probit fit of its trials)"),
    "rheobase_a": ("A", "Weiss rheobase from the thresholds at two or more widths"),
    "chronaxie_s": ("s", "Weiss chronaxie from the thresholds at two or more widths"),
    "energy_per_spike_j": ("J", "energy delivered at 1.3x threshold minus the scaled sub-threshold baseline"),
    "refractory_s": ("s", "pulse spacing (start to start) at which a second pulse at 1.2x threshold fires again"),
    "fi_onset_a": ("A", "DC input current from which the neuron keeps firing (after the burst when it comes on)"),
    "fi_gain_hz_per_a": ("Hz/A", "slope of the firing rate against the DC input current above the onset"),
    "transfer_probability": ("1", "share of pre-neuron spikes (input at 1.3x its threshold) after which every "
                                  "post-neuron (outputs vout_post*) fires: chips with synapses"),
    "transfer_delay_s": ("s", "from the pre-neuron's spike to the post-neurons' (mean over posts and over the "
                              "trials that transmitted): chips with synapses"),
    "synaptic_energy_j": ("J", "energy dissipated in the synapses' elements (syn_*) per pre spike, the "
                               "simulation's own accounting over the energy record: chips with synapses"),
}
#: Metrics of the synaptic transfer (a chip with synapses: docs/chip-files.md, "Synapses").
SYNAPTIC_METRICS = ("transfer_probability", "transfer_delay_s", "synaptic_energy_j")
#: Metrics that need the firing threshold at the first width first.
NEEDS_THRESHOLD = ("threshold_a", "rheobase_a", "chronaxie_s", "energy_per_spike_j", "refractory_s",
                   *SYNAPTIC_METRICS)
#: The outputs a synaptic transfer is read at: the post-neurons' main nodes.
POST_OUTPUT = re.compile(r"^vout_post[0-9]*$")
#: Metrics of the f–I curve (DC input, no pulses).
FI_METRICS = ("fi_onset_a", "fi_gain_hz_per_a")

#: Stimulus settings and their defaults (SI); the factors are the procedures' own defaults
#: (energy_per_spike 1.3 / 0.5, refractory 1.2), read in sweeps/fast_path.py.
STIMULUS_DEFAULTS: dict[str, Any] = {
    "widths_s": (2e-9,),
    "rise_s": 0.2e-9,
    "delay_s": 2e-9,
    "sample_interval_s": 20e-12,
    "threshold_precision": 0.005,
    "refractory_precision": 0.01,
    "refractory_max_s": 40e-9,
    "energy_after_s": 40e-9,
    "fi_settle_s": 1e-6,
    "fi_record_s": 100e-9,
    "fi_currents": 4,
    "transfer_trials": 5,
}

SAMPLING_METHODS = ("grid", "random", "latin_hypercube", "adaptive")


class SweepSpecError(ValueError):
    """A sweep spec that cannot be run; the message is one line naming file, entry and problem."""


def _unit_suffix(unit: str) -> str:
    """'H' -> 'h', 'A/m^2' -> 'a_per_m2', 'W/(m*K)' -> 'w_per_m_k', '' -> '' (names carry units)."""
    text = unit.replace("^", "").replace("(", "").replace(")", "").replace("*", "_").lower()
    head, _, tail = text.partition("/")
    return f"{head}_per_{tail.replace('/', '_')}" if tail else head


@dataclass(frozen=True)
class Parameter:
    """One swept quantity: where it goes in the chip file and the values it takes."""
    key: str                    # as the spec names it: "ls.inductance", "temperature", "bias"
    element: str | None         # element name, "wire_defaults", or None for the chip temperature
    fld: str                    # the chip file's field ("inductance", "current", "temperature")
    unit: str                   # SI base unit of the field ("H", "A", "K", "" for dimensionless)
    values: tuple[float, ...] = ()              # grid and list axes
    bounds: tuple[float, float] | None = None   # sampled ranges
    log: bool = False

    @property
    def name(self) -> str:
        """The Dataset's name for it, with its unit: ls_inductance_h, temperature_k, bias_a."""
        stem = self.key.replace(".", "_")
        suffix = _unit_suffix(self.unit)
        return f"{stem}_{suffix}" if suffix else stem


@dataclass(frozen=True)
class SweepSpec:
    path: Path
    text: str                   # the spec file as read (archived with the results)
    chip_path: Path
    chip_tree: Mapping[str, Any]
    seed: int
    parameters: tuple[Parameter, ...]
    sampling: str
    points_requested: int       # random / latin_hypercube / adaptive: the sample count
    metrics: tuple[str, ...]
    stimulus: Mapping[str, Any]
    batch_points: int | None
    adaptive_metric: str | None = None
    targets: tuple = field(default_factory=tuple)
    description: str = ""
    #: `station:` — the wiring whose loads the chip is simulated with (what the emulated bench adds)
    station_path: Path | None = None
    pulse_inputs: tuple = ()
    readouts: tuple = ()
    measure: str = "simulation"

    @property
    def digest(self) -> str:
        """What identifies the sweep's points and metrics (a resume must match it)."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    @property
    def grid_shape(self) -> tuple[int, ...] | None:
        return tuple(len(p.values) for p in self.parameters) if self.sampling == "grid" else None

    @property
    def point_count(self) -> int:
        return math.prod(self.grid_shape) if self.sampling == "grid" else self.points_requested

    def point_values(self) -> np.ndarray:
        """(points, parameters) array of every point's values, in point-index order (grid: C order
        over the parameters as the spec lists them). Adaptive sweeps choose theirs as they run."""
        if self.sampling == "grid":
            return np.array(list(itertools.product(*(p.values for p in self.parameters))), dtype=float).reshape(
                -1, len(self.parameters))
        if self.sampling == "adaptive":
            raise ValueError("an adaptive sweep chooses its points as it runs")
        unit = sample_unit_cube(self.sampling, self.points_requested, len(self.parameters), self.seed)
        return np.column_stack([scale_unit(p, unit[:, k]) for k, p in enumerate(self.parameters)])


def sample_unit_cube(method: str, points: int, dimensions: int, seed: int) -> np.ndarray:
    """Seeded samples in [0, 1)^d: uniform random, or a Latin hypercube (scipy.stats.qmc)."""
    if method == "random":
        return np.random.default_rng([seed, 0x5EED]).random((points, dimensions))
    from scipy.stats import qmc

    return qmc.LatinHypercube(d=dimensions, seed=np.random.default_rng([seed, 0x1A7])).random(points)


def scale_unit(p: Parameter, unit: np.ndarray) -> np.ndarray:
    low, high = p.bounds
    if p.log:
        return np.exp(np.log(low) + unit * (np.log(high) - np.log(low)))
    return low + unit * (high - low)


def point_seed(spec_seed: int, index: int) -> int:
    """The seed of point `index`: a function of the spec's seed and the index only, so a point's
    result does not depend on which worker ran it, when, or next to what."""
    return int(np.random.SeedSequence([spec_seed, index]).generate_state(1, dtype=np.uint32)[0])


def resolve_chip(name: str, base: Path) -> Path:
    """A chip path relative to the spec's folder, or the name of a shipped chip."""
    path = Path(name)
    if not path.is_absolute():
        candidate = base / path
        if candidate.exists() or path.suffix:
            return candidate
        return SHIPPED_CHIPS / f"{name}.yaml"
    return path


def read_spec(path: str | Path) -> SweepSpec:
    path = Path(path)
    text = read_text(path, SweepSpecError, max_bytes=SPEC_BYTES_MAX, wording=WORDING)
    return parse_spec(parse_yaml(text, path, SweepSpecError, WORDING), path, text)


def parse_spec(data: Any, path: Path, text: str = "") -> SweepSpec:
    def fail(where: str, problem: str) -> SweepSpecError:
        return SweepSpecError(f"{path}: {where}: {problem}")

    if not isinstance(data, dict):
        raise SweepSpecError(f"{path}: top level must be a mapping")
    for key in data:
        if key not in TOP_LEVEL:
            raise fail(clip(key, 60), f"unknown key ({_hint(key, TOP_LEVEL)})")
    if data.get("format") != FORMAT:
        raise fail("format", f"must be {FORMAT!r}, got {clip(repr(data.get('format')), 60)}")
    for key in ("chip", "parameters", "metrics"):
        if key not in data:
            raise fail(key, "missing")
    if not isinstance(data["chip"], str) or not data["chip"]:
        raise fail("chip", "must be a chip file's path or a shipped chip's name")
    chip_path = resolve_chip(data["chip"], path.parent)
    try:
        chip_tree = read_chip_yaml(chip_path)
        document = chip_document(chip_tree, chip_path)
    except ChipFileError as exc:
        raise fail("chip", str(exc)) from None
    station_path, pulse_inputs, readouts = None, (), ()
    if data.get("station") is not None:
        if not isinstance(data["station"], str) or not data["station"]:
            raise fail("station", "must be a station file's path")
        station_path = path.parent / data["station"]
        try:
            station = read_station(station_path)
        except StationError as exc:
            raise fail("station", str(exc)) from None
        pulse_inputs, readouts = tuple(station.pulse_inputs), tuple(station.readouts)
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise fail("seed", f"must be a non-negative integer, got {clip(repr(seed), 60)}")

    sampling, points, adaptive_metric = _sampling(data.get("sampling", "grid"), fail)
    raw = data["parameters"]
    if not isinstance(raw, dict) or not raw:
        raise fail("parameters", "must be a non-empty mapping of NAME: {values|linspace|geomspace|range: ...}")
    parameters = tuple(_parameter(str(key), entry, document, sampling, fail) for key, entry in raw.items())
    if sampling == "adaptive" and len(parameters) > 2:
        raise fail("sampling", f"adaptive sampling takes one or two parameters, got {len(parameters)}")
    if sampling == "grid" and math.prod(len(p.values) for p in parameters) > POINTS_MAX:
        raise fail("parameters", f"the grid has more than {POINTS_MAX} points")

    metrics = data["metrics"]
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise fail("metrics", f"must be a list of metric names ({', '.join(METRICS)})")
    for m in metrics:
        if m not in METRICS:
            raise fail("metrics", f"unknown metric {clip(repr(m), 60)} ({_hint(m, METRICS)})")
    if len(set(metrics)) != len(metrics):
        raise fail("metrics", "a metric is listed twice")
    if adaptive_metric is not None and adaptive_metric not in metrics:
        raise fail("sampling.metric", f"{adaptive_metric!r} must be one of the spec's metrics")
    if adaptive_metric is not None and adaptive_metric in ("fires", "latches"):
        raise fail("sampling.metric", "adaptive sampling follows a continuous metric, not fires/latches")

    stimulus = _stimulus(data.get("stimulus") or {}, fail)
    measure = data.get("measure", "simulation")
    if measure not in MEASURES:
        raise fail("measure", f"{clip(repr(measure), 60)}: must be simulation (the fast path) or procedures")
    if measure == "procedures":
        if station_path is None:
            raise fail("measure", "procedures run on an emulated station: give its file as station:")
        for m in metrics:
            if m not in PROCEDURE_METRICS:
                raise fail("metrics", f"{m!r} is not measured by the procedures path ({', '.join(PROCEDURE_METRICS)})")
    if set(SYNAPTIC_METRICS) & set(metrics):
        outputs = chip_tree.get("outputs") if isinstance(chip_tree, dict) else None
        names = [str(k) for k in outputs] if isinstance(outputs, dict) else []
        has_synapse = bool(synapses(document))
        if not has_synapse or not any(POST_OUTPUT.match(n) for n in names):
            first = next(m for m in metrics if m in SYNAPTIC_METRICS)
            raise fail("metrics", f"{first!r} needs a chip with synapses (elements syn_*, outputs vout_post*, "
                                  f"docs/chip-files.md 'Synapses'); {chip_path.name} has "
                                  f"{'no post-neuron output' if has_synapse else 'no synapse'}")
    if {"rheobase_a", "chronaxie_s"} & set(metrics) and len(stimulus["widths_s"]) < 2:
        raise fail("stimulus.widths_s", "rheobase_a and chronaxie_s need thresholds at two widths or more")
    batch = data.get("batch_points")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 100_000):
        raise fail("batch_points", f"must be an integer from 1 to 100000, got {clip(repr(batch), 60)}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("description", "must be text")
    targets = parse_targets(data["target"], fail) if data.get("target") is not None else ()
    for name, _, _ in targets:
        if name not in metrics:
            raise fail("target", f"{name!r} is not one of the spec's metrics")
    return SweepSpec(path, text, chip_path, chip_tree, int(seed), parameters, sampling, points, tuple(metrics),
                     stimulus, batch, adaptive_metric, targets, description, station_path, pulse_inputs, readouts,
                     measure)


def _hint(key: Any, known) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"


def _sampling(entry: Any, fail) -> tuple[str, int, str | None]:
    if entry == "grid":
        return "grid", 0, None
    if isinstance(entry, str):
        raise fail("sampling", f"{clip(repr(entry), 60)}: write grid, or {{method: random|latin_hypercube|adaptive, "
                               "points: N}")
    if not isinstance(entry, dict):
        raise fail("sampling", "must be grid or a mapping {method, points}")
    allowed = {"method", "points", "metric"}
    for key in entry:
        if key not in allowed:
            raise fail(f"sampling.{clip(key, 60)}", f"unknown key ({_hint(key, sorted(allowed))})")
    method = entry.get("method")
    if method not in SAMPLING_METHODS:
        raise fail("sampling.method", f"{clip(repr(method), 60)}: must be one of {', '.join(SAMPLING_METHODS)}")
    if method == "grid":
        return "grid", 0, None
    points = entry.get("points")
    if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= POINTS_MAX:
        raise fail("sampling.points", f"must be an integer from 1 to {POINTS_MAX}, got {clip(repr(points), 60)}")
    metric = entry.get("metric")
    if method == "adaptive" and not isinstance(metric, str):
        raise fail("sampling.metric", "adaptive sampling needs the metric whose changes it follows")
    if method != "adaptive" and metric is not None:
        raise fail("sampling.metric", "only adaptive sampling follows a metric")
    return method, points, metric


def _parameter(key: str, entry: Any, document, sampling: str, fail) -> Parameter:
    where = f"parameters.{clip(key, 60)}"
    element, fld, unit = _locate(key, document, where, fail)
    if not isinstance(entry, dict) or len(entry) not in (1, 2):
        raise fail(where, "must be {values: [...]}, {linspace: [start, stop, n]}, {geomspace: [start, stop, n]} "
                          "or {range: [low, high]} (with log: true)")
    kinds = [k for k in entry if k != "log"]
    if len(kinds) != 1 or kinds[0] not in ("values", "linspace", "geomspace", "range"):
        raise fail(where, f"unknown form {clip(kinds, 60)} (values, linspace, geomspace, range)")
    kind, value = kinds[0], entry[kinds[0]]
    log = entry.get("log", False)
    if not isinstance(log, bool) or ("log" in entry and kind != "range"):
        raise fail(f"{where}.log", "log: true|false goes with range only")
    numbers = value if isinstance(value, list) else None
    if numbers is None or not numbers or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
        raise fail(f"{where}.{kind}", "must be a non-empty list of finite numbers (SI, no unit)")
    if kind == "range":
        if sampling == "grid":
            raise fail(where, "a range needs sampling random, latin_hypercube or adaptive; a grid takes values, "
                              "linspace or geomspace")
        if len(numbers) != 2 or not numbers[0] < numbers[1]:
            raise fail(f"{where}.range", "must be [low, high] with low < high")
        if log and numbers[0] <= 0:
            raise fail(f"{where}.range", "a log range must be positive")
        return Parameter(key, element, fld, unit, bounds=(float(numbers[0]), float(numbers[1])), log=log)
    if sampling != "grid":
        raise fail(where, f"{sampling} sampling draws from ranges: write {{range: [low, high]}}")
    if kind == "values":
        values = tuple(float(v) for v in numbers)
    else:
        if len(numbers) != 3 or not float(numbers[2]).is_integer() or numbers[2] < 1:
            raise fail(f"{where}.{kind}", "must be [start, stop, count] with a whole count >= 1")
        if kind == "geomspace" and (numbers[0] <= 0 or numbers[1] <= 0):
            raise fail(f"{where}.geomspace", "start and stop must be positive")
        make = np.linspace if kind == "linspace" else np.geomspace
        values = tuple(float(v) for v in make(numbers[0], numbers[1], int(numbers[2])))
    if len(set(values)) != len(values):
        raise fail(where, "a value repeats")
    return Parameter(key, element, fld, unit, values=values)


def _locate(key: str, document, where: str, fail) -> tuple[str | None, str, str]:
    """(element, field, SI unit) of a parameter name, checked against the chip."""
    if key == "temperature":
        return None, "temperature", "K"
    if key == "bias":
        if "bias" not in document.ports:
            raise fail(where, "the chip has no 'bias' port")
        return document.ports["bias"], _simple_field(document, document.ports["bias"]), "A"
    element, dot, fld = key.partition(".")
    if not dot:
        raise fail(where, "name a chip field as ELEMENT.FIELD (e.g. ls.inductance), wire_defaults.FIELD, "
                          "temperature or bias")
    if element == "wire_defaults":
        if fld not in WIRE_FIELDS:
            raise fail(where, f"unknown nanowire field {clip(repr(fld), 60)} ({_hint(fld, WIRE_FIELDS)})")
        return element, fld, BASE_UNITS[WIRE_FIELDS[fld][1]][0]
    found = next((e for e in document.elements if e.name == element), None)
    if found is None:
        raise fail(where, f"the chip has no element {clip(repr(element), 60)} "
                          f"({_hint(element, [e.name for e in document.elements])})")
    if found.kind == "nanowire":
        if fld not in WIRE_FIELDS:
            raise fail(where, f"a nanowire has no field {clip(repr(fld), 60)} ({_hint(fld, WIRE_FIELDS)})")
        return element, fld, BASE_UNITS[WIRE_FIELDS[fld][1]][0]
    own, unit_kind, _ = SIMPLE[found.kind]
    if fld != own:
        raise fail(where, f"a {found.kind} has one field, {own!r}")
    return element, fld, BASE_UNITS[unit_kind][0]


def _simple_field(document, name: str) -> str:
    kind = next(e.kind for e in document.elements if e.name == name)
    return SIMPLE[kind][0]


def _stimulus(entry: Any, fail) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise fail("stimulus", "must be a mapping")
    out = dict(STIMULUS_DEFAULTS)
    for key, value in entry.items():
        if key not in STIMULUS_DEFAULTS:
            raise fail(f"stimulus.{clip(key, 60)}", f"unknown key ({_hint(key, STIMULUS_DEFAULTS)})")
        if key == "widths_s":
            if not isinstance(value, list) or not value or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1e-6 for v in value):
                raise fail("stimulus.widths_s", "must be a non-empty list of widths between 0 and 1e-6 s")
            out[key] = tuple(float(v) for v in value)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
            raise fail(f"stimulus.{key}", f"must be a positive number, got {clip(repr(value), 60)}")
        if key == "fi_currents" and not (isinstance(value, int) and value >= 2):
            raise fail("stimulus.fi_currents", f"must be a whole number of at least 2, got {clip(repr(value), 60)}")
        if key == "transfer_trials" and not (isinstance(value, int) and 1 <= value <= 1000):
            raise fail("stimulus.transfer_trials", f"must be a whole number from 1 to 1000, got {clip(repr(value), 60)}")
        out[key] = int(value) if key in ("fi_currents", "transfer_trials") else float(value)
    if min(out["widths_s"]) <= out["rise_s"]:
        raise fail("stimulus.widths_s", f"each width must exceed rise_s ({out['rise_s']:g} s)")
    return out


def parse_targets(text: Any, fail=None) -> tuple[tuple[str, float, float], ...]:
    """'refractory_s=10e-9±1e-9, threshold_a=25e-6±2e-6' -> ((name, value, tolerance), ...)."""
    def refuse(problem: str) -> SweepSpecError:
        return fail("target", problem) if fail else SweepSpecError(f"--target: {problem}")

    if not isinstance(text, str) or not text.strip():
        raise refuse("must be text: METRIC=VALUE±TOLERANCE, ...")
    out = []
    for item in text.split(","):
        name, eq, rest = item.strip().partition("=")
        value, pm, tolerance = rest.replace("+-", "±").partition("±")
        try:
            number, width = float(value), float(tolerance)
        except ValueError:
            raise refuse(f"{clip(item.strip(), 60)!r}: expected METRIC=VALUE±TOLERANCE (e.g. "
                         "refractory_s=10e-9±1e-9)") from None
        if not (eq and pm and name.strip() in METRICS and width > 0 and math.isfinite(number)):
            raise refuse(f"{clip(item.strip(), 60)!r}: expected METRIC=VALUE±TOLERANCE with a known metric and a "
                         "positive tolerance")
        out.append((name.strip(), number, width))
    return tuple(out)


def chip_variant(spec: SweepSpec, values) -> dict[str, Any]:
    """The chip file's YAML tree with the point's values (one per parameter, in the spec's order)
    written in, in SI with the field's base unit; the chip reader then checks it like any chip file."""
    import copy

    tree = copy.deepcopy(dict(spec.chip_tree))
    for p, value in zip(spec.parameters, values, strict=True):
        quantity = {"value": float(value), "source": "nwlab sweep"}
        if p.unit:
            quantity["unit"] = p.unit
        if p.element is None:
            tree["temperature"] = quantity
        elif p.element == "wire_defaults":
            tree["wire_defaults"] = dict(tree.get("wire_defaults") or {}, **{p.fld: quantity})
        else:
            tree["elements"] = [dict(e, **{p.fld: quantity}) if e.get("name") == p.element else e
                                for e in tree["elements"]]
    return tree
