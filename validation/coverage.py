"""Coverage of the stated intervals: repeat a procedure on the emulator with independent seeds
and count how often each stated interval holds the emulator's true value (validation.ground_truth).

One repetition = one run of a procedure on a private copy of the emulated station (its own bench,
its own run lock) whose `emulator: seed:` is the repetition's. From each run: every figure's
value and interval. The interval is the archived Uncertainty (`lab.app.api.open_run`: columns
low/high/level/method; arrays `x_low`/`x_high`); where a mean has none archived yet, a stand-in
mean ± t(0.975, n−1)·stderr from its `_stderr_` companion and its count (method says so).
The truth is computed at the run's conditions (stage temperature, resolved bias, widths,
amplitudes) and cached (ground_truth.TruthCache).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

from procedures.analysis.strength_duration import fit_weiss
from validation import capture_log as cl
from validation import ground_truth as gt

STAND_IN_LEVEL = 0.95


@dataclass(frozen=True)
class Figure:
    """One fitted figure: the result it is read from (an array's element by `index`), the truth
    key in the procedure's truth dict, and the count result behind a stand-in interval."""
    name: str
    result: str
    index: int | None = None
    count: str | None = None          # result holding n, for mean ± t·stderr when nothing is archived
    truth_key: Callable[[dict], str] | None = None   # which truth, from the run's interval; "truth" if None


@dataclass(frozen=True)
class Job:
    """A procedure with reduced parameters and the figures one run of it gives."""
    procedure: str
    parameters: Mapping[str, object]
    figures: tuple[Figure, ...]
    truth: Callable[[dict, gt.TruthCache], dict]      # conditions -> {figure name: truth dict}
    #: (run, its captures, conditions) -> {figure name: {truth name: value}}, computed from the chip
    #: states the run's own trials met (validation/capture_log.py); merged into `truth`'s dicts
    run_truth: Callable[[object, list, dict], dict] | None = None


# --- a run's conditions and intervals ----------------------------------------------------------------

def parameter_value(run, name: str, default: float = math.nan) -> float:
    """The value a run used for a parameter: the resolved one where the plan chose it."""
    frame = run.parameters
    if name not in frame.index:
        return default
    resolved = frame.loc[name, "resolved"]
    value = frame.loc[name, "value"]
    try:
        if resolved is not None and np.isfinite(float(resolved)):
            return float(resolved)
    except (TypeError, ValueError):
        pass
    return value


def result_value(run, *names: str) -> float:
    for name in names:
        if name in run.results.index:
            return float(run.results.loc[name, "value"])
    return math.nan


def interval(run, figure: Figure) -> dict:
    """{value, low, high, level, method} of a figure in a run (NaN bounds when none is there)."""
    if figure.index is not None:
        values = run.arrays[figure.result]
        out = {"value": float(values.values[figure.index]), "low": math.nan, "high": math.nan,
               "level": math.nan, "method": ""}
        if f"{figure.result}_low" in run.arrays:
            low = run.arrays[f"{figure.result}_low"]
            out.update(low=float(low.values[figure.index]),
                       high=float(run.arrays[f"{figure.result}_high"].values[figure.index]),
                       level=float(low.attrs.get("confidence_level", math.nan)),
                       method=str(low.attrs.get("uncertainty_method", "")))
        return out
    row = run.results.loc[figure.result]
    out = {"value": float(row["value"]), "low": float(row["low"]), "high": float(row["high"]),
           "level": float(row["level"]), "method": str(row["method"])}
    if math.isfinite(out["low"]) and math.isfinite(out["high"]):
        return out
    n = result_value(run, figure.count) if figure.count else math.nan
    stderr = float(row["uncertainty"])
    if math.isfinite(stderr) and math.isfinite(n) and n >= 2:
        half = stats.t.ppf(0.5 + STAND_IN_LEVEL / 2, n - 1) * stderr
        out.update(low=out["value"] - half, high=out["value"] + half, level=STAND_IN_LEVEL,
                   method=f"stand-in: mean ± t(0.975, {int(n) - 1})·stderr (no interval archived)")
    return out


# --- the procedures' jobs ----------------------------------------------------------------------------

def _chip(conditions: dict) -> gt.TruthChip:
    return gt.TruthChip.from_station(bias_a=conditions.get("bias_a"), temperature_k=conditions["temperature_k"])


def conditions_of(run, temperature_k: float) -> dict:
    """What a truth depends on, read from the archived run."""
    names = ("bias_a", "edge_s", "width_s", "record_after_s", "record_s", "pretrigger_s", "threshold_a",
             "threshold_factor")
    out = {"temperature_k": round(temperature_k, 6)}
    for name in names:
        value = parameter_value(run, name)
        if isinstance(value, (int, float)) and math.isfinite(float(value)):
            out[name] = float(value)
    if "width_s" in run.arrays.coords:
        out["widths_s"] = [float(w) for w in run.arrays.coords["width_s"].values]
    amplitude = result_value(run, "amplitude_a", "pulse_amplitude_a")
    if not math.isfinite(amplitude) and "threshold_a" in out and "threshold_factor" in out:
        amplitude = out["threshold_factor"] * out["threshold_a"]
    if math.isfinite(amplitude):
        out["amplitude_a"] = amplitude
    reference = result_value(run, "reference_amplitude_a")
    fraction = parameter_value(run, "reference_fraction")
    if not math.isfinite(reference) and "threshold_a" in out and math.isfinite(float(fraction)):
        reference = float(fraction) * out["threshold_a"]
    if math.isfinite(reference):
        out["reference_amplitude_a"] = reference
    return out


def _iv_truth(c: dict, cache: gt.TruthCache) -> dict:
    key = {"temperature_k": c["temperature_k"], "chip": gt.chip_digest()}
    truth = cache.get("switching_current", lambda: gt.switching_current_truth(_chip({**c, "bias_a": 0.0})), **key)
    return {"switching_current_mean_a": truth}


def _sd_truth(c: dict, cache: gt.TruthCache) -> dict:
    key = {k: c[k] for k in ("temperature_k", "bias_a", "edge_s", "widths_s")} | {"chip": gt.chip_digest()}
    truth = cache.get("strength_duration", lambda: gt.strength_duration_truth(
        _chip(c), c["widths_s"], gt.ramp_s(c["edge_s"])), **key)
    out = {f"threshold_a@{w * 1e9:g}ns": t for w, t in zip(c["widths_s"], truth["threshold_a"])}
    for name in ("rheobase_a", "chronaxie_s"):
        out[name] = {"truth": truth[f"{name}_truth"], "fresh": truth[f"{name}_fresh"],
                     "post_spike": truth[f"{name}_post_spike"]}
    return out


def _refractory_truth(c: dict, cache: gt.TruthCache) -> dict:
    key = {k: c[k] for k in ("temperature_k", "bias_a", "edge_s", "width_s", "amplitude_a")} | {"chip": gt.chip_digest()}
    return {"refractory_period_s": cache.get("refractory", lambda: gt.refractory_truth(
        _chip(c), c["amplitude_a"], c["width_s"], gt.ramp_s(c["edge_s"])), **key)}


def _onset_truth(c: dict, cache: gt.TruthCache) -> dict:
    window_s = c["record_s"] - c.get("pretrigger_s", 0.0)
    key = {"temperature_k": c["temperature_k"], "bias_a": c["bias_a"], "window_s": window_s, "chip": gt.chip_digest()}
    return {"onset_current_a": cache.get("onset", lambda: gt.onset_truth(_chip(c), window_s), **key)}


def _drive(capture) -> cl.Pulses | None:
    """The pulses into the (one) pulse input during a capture."""
    return cl.pulses(next(iter(capture.inputs_a.values()))) if capture.inputs_a else None


def _state(chip: gt.TruthChip, capture):
    return capture.initial_state if capture.initial_state is not None else "fresh"


def _sd_run_truth(run, captures: list, c: dict) -> dict:
    """Thresholds at each width: the median, over the trials' starting states, of the amplitude
    that fires from each (reference captures left out); rheobase and chronaxie fitted to them."""
    chip, ramp = _chip(c), gt.ramp_s(c["edge_s"])
    widths = np.asarray(c["widths_s"], dtype=float)
    reference_a = parameter_value(run, "reference_fraction") * parameter_value(run, "bracket_low_a")
    per_width: dict[int, list[float]] = {}
    for capture in captures:
        drive = _drive(capture)
        if drive is None or len(drive.starts_s) != 1 or math.isclose(drive.amplitude_a, reference_a, rel_tol=1e-3):
            continue
        index = int(np.argmin(np.abs(widths - drive.width_s)))
        if abs(widths[index] - drive.width_s) > 0.05 * widths[index]:
            continue
        per_width.setdefault(index, []).append(
            chip.threshold_a(float(widths[index]), ramp, _state(chip, capture), rel_tol=1e-4))
    medians = np.array([float(np.median(per_width[i])) if i in per_width else math.nan for i in range(widths.size)])
    out = {f"threshold_a@{w * 1e9:g}ns": {"visited": float(m), "visited_trials": len(per_width.get(i, []))}
           for i, (w, m) in enumerate(zip(widths, medians))}
    fit = fit_weiss(widths, medians)
    out["rheobase_a"], out["chronaxie_s"] = {"visited": fit.rheobase_a}, {"visited": fit.chronaxie_s}
    return out


def _refractory_run_truth(run, captures: list, c: dict) -> dict:
    """The median, over the pairs' starting states, of the spacing below which the second pulse
    no longer fires from each."""
    chip, ramp = _chip(c), gt.ramp_s(c["edge_s"])
    periods = [chip.refractory_period_s(drive.amplitude_a, c["width_s"], ramp, _state(chip, capture), tol_s=20e-12)
               for capture in captures if (drive := _drive(capture)) is not None and len(drive.starts_s) == 2]
    return {"refractory_period_s": {"visited": float(np.median(periods)) if periods else math.nan,
                                    "visited_trials": len(periods)}}


def _visited(found: dict) -> str:
    """A figure of a chip with memory: true for the states the run's trials met."""
    return "visited"


def _single_or_all(found: dict) -> str:
    """energy_per_spike_j averages single-spike captures where its method says so (else all)."""
    return "single_spike" if "single-spike" in found.get("method", "") else "truth"


def _energy_truth(c: dict, cache: gt.TruthCache) -> dict:
    names = ("temperature_k", "bias_a", "edge_s", "width_s", "amplitude_a", "reference_amplitude_a", "record_after_s")
    key = {k: c[k] for k in names} | {"chip": gt.chip_digest()}
    truth = cache.get("energy_per_spike", lambda: gt.energy_truth(
        _chip(c), c["amplitude_a"], c["reference_amplitude_a"], c["width_s"], gt.ramp_s(c["edge_s"]),
        c["record_after_s"]), **key)
    return {"energy_per_spike_j": truth, "energy_per_spike_long_run_j": truth}


#: Reduced parameters: a repetition takes seconds to tens of seconds on a 2-core machine.
JOBS: dict[str, Job] = {
    "iv_sweep": Job("iv_sweep", {"switching_events": 30, "pilot_sweeps": 1, "dwell_s": 0.02},
                    (Figure("switching_current_mean_a", "switching_current_mean_a", count="switching_events"),),
                    _iv_truth),
    "energy_per_spike": Job("energy_per_spike", {"spikes": 20, "reference_captures": 5, "threshold_a": 24e-6},
                            (Figure("energy_per_spike_j", "energy_per_spike_j", count="spiking_captures",
                                    truth_key=_single_or_all),
                             Figure("energy_per_spike_long_run_j", "energy_per_spike_long_run_j")),
                            _energy_truth),
    "strength_duration": Job("strength_duration", {"widths_s": (2e-9, 5e-9), "trials_max": 40,
                                                   "reference_captures": 2},
                             (Figure("threshold_a@2ns", "threshold_a", index=0, truth_key=_visited),
                              Figure("threshold_a@5ns", "threshold_a", index=1, truth_key=_visited),
                              Figure("rheobase_a", "rheobase_a", truth_key=_visited),
                              Figure("chronaxie_s", "chronaxie_s", truth_key=_visited)),
                             _sd_truth, _sd_run_truth),
    "refractory": Job("refractory", {"threshold_a": 24e-6, "trials_max": 32, "reference_captures": 2},
                      (Figure("refractory_period_s", "refractory_period_s", truth_key=_visited),), _refractory_truth,
                      _refractory_run_truth),
    "firing_rate": Job("firing_rate", {"points": 6, "captures": 3}, (Figure("onset_current_a", "onset_current_a"),),
                       _onset_truth),
}


def job_of(figure: str) -> str:
    for name, job in JOBS.items():
        if figure == name or any(f.name == figure for f in job.figures):
            return name
    raise KeyError(f"no figure or procedure {figure!r}; figures: "
                   + ", ".join(f.name for job in JOBS.values() for f in job.figures))


# --- one repetition --------------------------------------------------------------------------------

def private_station(directory: Path, seed: int) -> tuple[Path, str]:
    """A copy of the emulated station with its own bench (and run lock) and emulator seed; returns
    it and its bench's library path."""
    tree = yaml.safe_load(gt.DEFAULT_STATION.read_text())
    tree["chip"] = str((gt.DEFAULT_STATION.parent / tree["chip"]).resolve())
    tree.setdefault("emulator", {})["seed"] = int(seed)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"station-seed{seed}-{uuid.uuid4().hex[:6]}.yaml"
    library = f"{path}#coverage-{uuid.uuid4().hex[:10]}"
    for instrument in tree["instruments"].values():
        instrument["visalib"] = f"{library}@nwlab"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path, library


@dataclass
class Repetition:
    job: str
    seed: int
    seconds: float = 0.0
    status: str = "failed"
    message: str = ""
    conditions: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)    # figure -> interval dict
    run_truths: dict = field(default_factory=dict)  # figure -> {truth name: value} of this run's chip states


def run_repetition(job_name: str, seed: int, work_dir: str, parameters: Mapping | None = None) -> Repetition:
    """Run a job once with `seed`; every failure is caught and reported in the Repetition."""
    from lab.app.api import open_run, run_procedure
    from sim_backend import emulator

    job = JOBS[job_name]
    rep = Repetition(job_name, seed)
    began = time.monotonic()
    library = None
    try:
        logging.getLogger("qcodes").setLevel(logging.ERROR)
        station, library = private_station(Path(work_dir) / "stations", seed)
        captures = cl.record_captures(emulator.open_bench(library).world) if job.run_truth else []
        with contextlib.redirect_stdout(io.StringIO()):
            outcome = run_procedure(job.procedure, station, Path(work_dir) / f"runs-{job_name}-{seed}", show_progress=False,
                                    **dict(parameters if parameters is not None else job.parameters))
        rep.status, rep.message = outcome.exit_status, outcome.message or ""
        if outcome.exit_status == "completed":
            run = open_run(outcome.archive_path)
            rep.conditions = conditions_of(run, gt.station_temperature_k(station))
            for figure in job.figures:
                try:
                    rep.figures[figure.name] = interval(run, figure)
                except (KeyError, IndexError) as error:
                    rep.figures[figure.name] = {"error": f"{type(error).__name__}: {error}"}
            if job.run_truth:
                rep.run_truths = job.run_truth(run, captures, rep.conditions)
    except Exception as error:   # counted and listed, never silent
        rep.status, rep.message = "failed", f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}"
    finally:
        if library is not None:
            with contextlib.suppress(Exception):
                emulator.close_bench(library)
    rep.seconds = time.monotonic() - began
    return rep


# --- coverage ------------------------------------------------------------------------------------------

@dataclass
class Coverage:
    figure: str
    repetitions: int = 0          # runs that gave an interval for this figure
    covered: int = 0
    failed: list = field(default_factory=list)     # (seed, why)
    levels: set = field(default_factory=set)
    methods: set = field(default_factory=set)
    widths: list = field(default_factory=list)
    misses: list = field(default_factory=list)     # (seed, value, low, high, truth)
    covered_alternatives: dict = field(default_factory=dict)   # other truths (fresh, ...) -> covered
    truths: list = field(default_factory=list)
    values: list = field(default_factory=list)
    truth_keys: set = field(default_factory=set)

    def add(self, seed: int, found: dict, truth: dict, key: str = "truth") -> None:
        if "error" in found or not (math.isfinite(found["low"]) and math.isfinite(found["high"])):
            self.failed.append((seed, found.get("error", "no interval in the run")))
            return
        value = truth[key]
        self.repetitions += 1
        self.levels.add(found["level"])
        self.methods.add(found["method"])
        self.widths.append(found["high"] - found["low"])
        self.truths.append(value)
        self.values.append(found["value"])
        if found["low"] <= value <= found["high"]:
            self.covered += 1
        else:
            self.misses.append((seed, found["value"], found["low"], found["high"], value))
        for alt, other in truth.items():
            if alt != key and isinstance(other, float) and math.isfinite(other):
                self.covered_alternatives[alt] = self.covered_alternatives.get(alt, 0) + int(
                    found["low"] <= other <= found["high"])

    @property
    def level(self) -> float:
        return min(self.levels) if self.levels else math.nan

    def summary(self) -> dict:
        n, k = self.repetitions, self.covered
        finite = [v for v in self.values if math.isfinite(v)]
        out = {"repetitions": n, "covered": k, "failed": len(self.failed), "level": self.level,
               # Seeds that change nothing give the same run again: not independent repetitions.
               "distinct_values": len({f"{v:.6g}" for v in finite}), "nan_values": n - len(finite),
               "truth_keys": sorted(self.truth_keys),
               "methods": sorted(self.methods)}
        if n:
            test = stats.binomtest(k, n, self.level) if math.isfinite(self.level) else None
            ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
            out |= {"coverage": k / n, "coverage_ci95": [ci.low, ci.high],
                    "p_value": test.pvalue if test else math.nan,
                    "consistent": bool(test and test.pvalue >= 0.05),
                    "p_value_vs_68": stats.binomtest(k, n, 0.68).pvalue,
                    "mean_width": float(np.mean(self.widths)), "truth": float(np.median(self.truths)),
                    # Without the truth: 1.96 x the values' scatter over seeds against the stated half-width
                    # (about 1 where the intervals are as wide as the run-to-run scatter says), and the
                    # values' mean minus the truth with its standard error.
                    "scatter_over_half_width": float(1.96 * np.std(finite, ddof=1) / (np.mean(self.widths) / 2))
                    if len(finite) > 1 else math.nan,
                    "bias": float(np.mean(finite) - np.median(self.truths)) if finite else math.nan,
                    "bias_stderr": float(np.std(finite, ddof=1) / math.sqrt(len(finite))) if len(finite) > 1 else math.nan,
                    "coverage_of_alternatives": {a: c / n for a, c in self.covered_alternatives.items()}}
        return out


def tally(reps: list[Repetition], truths_for: Callable[[Repetition], dict]) -> dict[str, Coverage]:
    """Coverage per figure over the repetitions; a failed run is a failure of each of its figures."""
    out: dict[str, Coverage] = {}
    for rep in reps:
        job = JOBS[rep.job]
        for figure in job.figures:
            cov = out.setdefault(figure.name, Coverage(figure.name))
            if rep.status != "completed":
                cov.failed.append((rep.seed, f"run {rep.status}: {rep.message.splitlines()[0] if rep.message else ''}"))
                continue
            try:
                truth = {**truths_for(rep)[figure.name], **rep.run_truths.get(figure.name, {})}
            except Exception as error:
                cov.failed.append((rep.seed, f"no truth: {type(error).__name__}: {error}"))
                continue
            found = rep.figures.get(figure.name, {"error": "figure missing"})
            key = figure.truth_key(found) if figure.truth_key and "error" not in found else "truth"
            cov.truth_keys.add(key)
            cov.add(rep.seed, found, truth, key)
    return out
