"""Energy per spike from captured traces, against the sub-threshold baseline.

For every capture, E = ∫ (V_m·I_in + V_c·I_bias) dt over the window: V_m and I_in from the
scope (node m, input monitor), V_c from the scope (node c) and I_bias the DC bias this plan set
(analysis.energy). The sub-threshold baseline comes from `reference_captures` captures at
A₀ = reference_fraction × threshold: by linearity it is (A/A₀)²·E_in(A₀) + (A/A₀)·E_bias(A₀)
at amplitude A. A capture's energy minus that baseline is what its events cost. What this
measures is the energy the sources deliver over the window; when the chip is back in its
starting state at the end of the window, that is the energy dissipated. Node c is recorded at a
finer full scale than node m (BIAS_NODE_RANGE_SPIKES): the bias term is mostly a slow tail of a few
uV that a coarse 8-bit record rounds away; captures whose node c reached the edge of that range
are counted (`bias_node_clipped_captures`).

Every capture is classified (analysis.spikes.classify_spiking_capture) from the spikes at the
output node m and the control wire's switchings at the bias node c, each counted as rising
crossings of the excess over the scaled reference (detect_v at m, control_detect_v at c):
single spike, double spike (or more), no spike, a spike followed by a second control-wire
switching (an afterpulse: on the default neuron every ~15 spikes, 10-20 ns after the spike, it
releases the current earlier resets left circulating in the loop, and costs ~5.5 aJ more), a
spike whose control wire did not switch (~5 aJ less); reference captures are the baseline.
Every capture's class and energies are archived in the table `captures`. `energy_per_spike_j`
is the mean over single-spike captures only; the other classes have their own results, and
`energy_per_spike_long_run_j` divides the energy above baseline of every capture at the
spiking amplitude by every spike counted: what repeated firing costs per spike, afterpulses
included.

Without a threshold (threshold_a 0, none documented in the chip file) the run first searches
for it at width_s (_pulsed.threshold_for: a quick bisection, archived as the table
`threshold_search`, its captures as kind 2, and the results `threshold_a`, `threshold_source`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from contracts import steps
from contracts.procedure import PlanContext, Procedure, parameter, too_little
from contracts.records import ColumnSpec, Result, TableRows, TableSpec
from procedures import _pulsed
from procedures.analysis.energy import (
    PortEnergy, baseline_j, combined_uncertainty, port_energy, ratio_uncertainty,
)
from procedures.analysis.spikes import (
    BASELINE, CONTROL_AFTERPULSE, MULTIPLE_SPIKES, NO_RESET, NO_SPIKE, SEARCH, SINGLE_SPIKE,
    classify_spiking_capture, event_count, linear_excess_v, peak_count,
)
from procedures.analysis.statistics import CONFIDENCE_LEVEL, Summary, mean_uncertainty, std_uncertainty, summarize
from procedures.design import DesignHints

KIND_REFERENCE, KIND_SPIKE, KIND_SEARCH = 0, 1, 2
#: What is archived with each capture's traces (_pulsed.CaptureRecords: nodes m and c in volts,
#: the input current in amperes): every capture, reference, spiking and of a threshold search
#: (its energies NaN: not measured), is archived.
TRACE_COLUMNS = {"kind": ColumnSpec("1", "i1"), "amplitude_a": ColumnSpec("A"), "bias_a": ColumnSpec("A"),
                 "spikes": ColumnSpec("1", "i8"), "input_energy_j": ColumnSpec("J"),
                 "bias_energy_j": ColumnSpec("J"), "spike_energy_j": ColumnSpec("J"),
                 "attempt": ColumnSpec("1", "i8")}
#: One row per capture of the run, in the order taken (`capture` is the index the traces share):
#: its class (analysis.spikes.CAPTURE_CLASSES), the events counted, what the ports delivered,
#: `energy_j` its energy above the scaled baseline and `spike_energy_j` that per spike (NaN for
#: reference and search captures, and per spike for a capture without one).
CAPTURES_TABLE = "captures"
CAPTURE_COLUMNS = {"capture": ColumnSpec("1", "i8"), "attempt": ColumnSpec("1", "i8"), "kind": ColumnSpec("1", "i1"),
                   "class": ColumnSpec("1", "i1"), "amplitude_a": ColumnSpec("A"), "spikes": ColumnSpec("1", "i8"),
                   "control_events": ColumnSpec("1", "i8"), "input_energy_j": ColumnSpec("J"),
                   "bias_energy_j": ColumnSpec("J"), "energy_j": ColumnSpec("J"), "spike_energy_j": ColumnSpec("J")}
#: Default control-wire level at the bias node, in detect_v: on the default neuron a control
#: switching shows ~70-105 uV above the scaled reference, a spike's coupling without one ~40 uV
#: (detect_v 120 uV). Counted as rising crossings (with hysteresis), at 0.4, the classes agreed
#: with the emulator's switch events (main and control wire) in all 360 captures at 1.1x, 1.3x and
#: 1.6x threshold; at 2x, 57 of 60 (3 afterpulses 5 ns after a control switching at the pulse's
#: leading edge read as single spikes: the first switching's decay had not ended). Peaks with a
#: prominence instead split a single control switching's two humps at 1.3x (3 in 200 wrong).
CONTROL_DETECT_FRACTION = 0.4
#: The count results per class (exact) and each class's energy result.
#: Full scale of the bias node c, in the design's spike amplitudes (node m keeps the shared
#: _pulsed.OUTPUT_RANGE_SPIKES = 4). The bias term I_bias·∫V_c dt lives largely in c's relaxation
#: tail (tens of uV decaying over ~4 ns), which an 8-bit record at 4 spike amplitudes (6.25 uV LSB on
#: the default neuron, scope noise 0.2 LSB: too little to dither) rounds to 0 once it is below half
#: an LSB: the bias term read 1.3 % low on single spikes and +0.12 aJ on reference captures whose
#: truth is ~0 (x A/A0 in the baseline), the energy per spike 2.8 % low. At 1.5 (2.3 uV LSB) the
#: single-spike mean is 0.2 % below the emulator's accounting of the same captures (1.0: 0.1 %, but
#: c reaches 206 uV at 2x threshold and clips there). Captures that reach the edge are counted in
#: `bias_node_clipped_captures`.
BIAS_NODE_RANGE_SPIKES = 1.5
#: A bias-node sample this many LSB (of 256 across the full scale) from 0 counts as clipped.
CLIPPED_LSB = 126.5
CLASS_COUNTS = {BASELINE: "baseline_captures", SINGLE_SPIKE: "single_spike_captures",
                MULTIPLE_SPIKES: "double_spike_captures", NO_SPIKE: "no_spike_captures",
                CONTROL_AFTERPULSE: "control_afterpulse_captures", NO_RESET: "no_reset_captures"}


@dataclass(frozen=True)
class EnergyCaptureSettings(_pulsed.CaptureSettings):
    """_pulsed.CaptureSettings with the bias node recorded at its own full scale `bias_range_v`."""
    bias_range_v: float = math.nan

    def configure(self, input_range_a: float, **options) -> steps.ConfigureCapture:
        step = super().configure(input_range_a, **options)
        if self.bias_node not in step.node_ranges_v or not math.isfinite(self.bias_range_v):
            return step
        return replace(step, node_ranges_v={**step.node_ranges_v, self.bias_node: self.bias_range_v})


@dataclass(frozen=True)
class EnergyPerSpikeParameters:
    threshold_a: float = _pulsed.threshold_a_parameter()
    threshold_factor: float = _pulsed.threshold_factor_parameter(1.3)
    reference_fraction: float = parameter(0.5, unit="1", doc="baseline amplitude A0 in thresholds",
                                          minimum=0.05, maximum=0.9)
    width_s: float = _pulsed.width_s_parameter("input pulse width")
    edge_s: float = _pulsed.edge_s_parameter()
    spikes: int = parameter(40, unit="1", doc="captures at the spiking amplitude", minimum=1, maximum=100_000)
    reference_captures: int = _pulsed.reference_captures_parameter(20, "captures averaged for the baseline",
                                                                   maximum=100_000)
    record_after_s: float = parameter(40e-9, unit="s", doc="record (and integrate) this long after the pulse "
                                      "ends: long enough for the chip to relax", minimum=1e-9)
    pretrigger_s: float = _pulsed.pretrigger_s_parameter(10e-9, "record before the trigger (half-amplitude of the "
                                                         "leading edge)")
    sample_rate_hz: float = _pulsed.sample_rate_hz_parameter(20e9)
    bias_a: float = _pulsed.bias_a_parameter()
    detect_v: float = _pulsed.detect_v_parameter()
    control_detect_v: float = parameter(0.0, unit="V", doc="control-wire switching level at the bias node (above "
                                        f"the scaled reference); 0 takes {CONTROL_DETECT_FRACTION:g}x detect_v",
                                        minimum=0.0)
    ramp_a_per_s: float = _pulsed.ramp_a_per_s_parameter()


class EnergyPerSpike(Procedure):
    name = "energy_per_spike"
    minimum_valid_data = ("a baseline from at least one triggered reference capture and a finite energy from "
                          "at least one single-spike capture")
    Parameters = EnergyPerSpikeParameters

    def _settings(self, design: DesignHints) -> EnergyCaptureSettings:
        p = self.parameters
        shared = _pulsed.CaptureSettings.for_design(
            design, p.pretrigger_s + p.width_s + 2 * p.edge_s + p.record_after_s, p.pretrigger_s,
            sample_rate_hz=p.sample_rate_hz)
        return EnergyCaptureSettings(**vars(shared), bias_range_v=BIAS_NODE_RANGE_SPIKES * design.spike_amplitude_v)

    def check_parameters(self) -> None:
        p = self.parameters
        _pulsed.check_timing(self.name, "width_s, edge_s", p.width_s, p.edge_s)
        # The reference captures are kept (their mean is the baseline response); the spiking ones
        # are streamed to the archive one at a time.
        _pulsed.check_captures(self.name, "reference_captures, record_after_s, pretrigger_s, sample_rate_hz",
                               self._settings(DesignHints.from_chip(None)), 2, p.reference_captures + 1)

    def _records(self, chip_design) -> _pulsed.CaptureRecords:
        """Every capture's traces, on this run's record (its length needs no design value)."""
        p = self.parameters
        planned = p.reference_captures + p.spikes + _pulsed.quick_search_captures(p.threshold_a, chip_design)
        return _pulsed.CaptureRecords(self._settings(DesignHints.from_chip(None)), TRACE_COLUMNS, planned=planned)

    def declare(self, context: PlanContext | None = None):
        chip_design = context.chip_design if context is not None else None
        tables = {"spike_energies": TableSpec({"capture": ColumnSpec("1", "i8"), "spikes": ColumnSpec("1", "i8"),
                                               "spike_energy_j": ColumnSpec("J")},
                                              axis="capture", signal="spike_energy_j"),
                  CAPTURES_TABLE: TableSpec(CAPTURE_COLUMNS, axis="capture", signal="energy_j")}
        if _pulsed.searches(self.parameters.threshold_a, chip_design):
            tables[_pulsed.QUICK_SEARCH_TABLE] = _pulsed.probability_table()
        return self._records(chip_design).spec(), tables

    def plan(self, context: PlanContext):
        p = self.parameters
        design = DesignHints.from_chip(context.chip_design)
        settings = self._settings(design)
        detect_v = p.detect_v or 0.3 * design.spike_amplitude_v
        control_v = p.control_detect_v or CONTROL_DETECT_FRACTION * detect_v
        bias_a = p.bias_a or design.bias_a
        window_s = (-np.inf, np.inf)       # the whole record
        records = self._records(context.chip_design)
        stream = EnergyStream(records, settings, bias_a, window_s, control_v)
        context.resolve(bias_a=bias_a, detect_v=detect_v, control_detect_v=control_v)
        yield steps.SetBias(current_a=bias_a, ramp_a_per_s=p.ramp_a_per_s)
        threshold = yield from _pulsed.threshold_for(
            self.name, p.threshold_a, context.chip_design, design, settings, p.width_s, p.edge_s, detect_v,
            _pulsed.SPIKE_AFTER_S, stream.search, dry_run=context.dry_run)
        threshold_a = threshold.value_a
        context.resolve(threshold_a=threshold_a)
        amplitude_a, reference_a = p.threshold_factor * threshold_a, p.reference_fraction * threshold_a
        stream.amplitude_a, stream.reference_a = amplitude_a, reference_a
        yield _pulsed.pulses(reference_a, p.width_s, p.edge_s)   # levels first, then the output on
        yield steps.SetInputEnabled(enabled=True)

        # Above threshold every capture should spike; if none does, a wire may be latched
        # (_pulsed.reference_and_firing cycles the bias and measures both sets again). Each
        # capture is archived as it arrives, with the attempt it belongs to.
        firing = yield from _pulsed.reference_and_firing(
            settings, _pulsed.pulses(reference_a, p.width_s, p.edge_s), p.reference_captures,
            _pulsed.pulses(amplitude_a, p.width_s, p.edge_s), p.spikes,
            lambda t, reference: self._spikes(t, settings, reference, amplitude_a, detect_v),
            dry_run=context.dry_run, stream=stream, keep_firing=False)   # streamed, not kept
        yield steps.Archive(stream.table())
        if not firing.fired and not context.dry_run:       # the captures are archived
            raise _pulsed.not_firing(amplitude_a, len(firing.spikes), p.spikes,
                                     f"{p.threshold_factor:g} x {threshold.describe()}, bias_a, detect_v")
        yield steps.Progress(fraction=0.9, message="captures done")
        references = stream.rows_of(firing.attempt, KIND_REFERENCE)
        spiking = stream.rows_of(firing.attempt, KIND_SPIKE)
        yield steps.Archive(TableRows("spike_energies", {
            "capture": (np.arange(len(spiking), dtype=np.int64), "1"),
            "spikes": (np.array([r.spikes for r in spiking], np.int64), "1"),
            "spike_energy_j": (np.array([r.spike_energy_j for r in spiking], float), "J")}))
        yield steps.SetInputEnabled(enabled=False)
        yield steps.SetBias(current_a=0.0, ramp_a_per_s=p.ramp_a_per_s)

        # Minimum of valid data: a baseline from at least one triggered reference capture (else
        # the baseline reads 0 J and every energy is overstated) and a finite energy from a
        # single spike.
        if not context.dry_run and not references:
            raise too_little(self.name, "at least 1 triggered reference capture for the baseline",
                             f"0 of {p.reference_captures} triggered")
        singles = [r.spike_energy_j for r in spiking if r.capture_class == SINGLE_SPIKE]
        if not context.dry_run and not np.isfinite(singles).any():
            counts = ", ".join(f"{sum(r.capture_class == c for r in spiking)} {name.removesuffix('_captures')}"
                               for c, name in CLASS_COUNTS.items() if c != BASELINE)
            raise too_little(self.name, "a finite energy from at least 1 single-spike capture",
                             f"{len(spiking)} captures at the spiking amplitude: {counts}")
        for result in energy_results(references, spiking, amplitude_a, reference_a):
            yield steps.Archive(result)
        for name, value, units in (("amplitude_a", amplitude_a, "A"), ("reference_amplitude_a", reference_a, "A"),
                                   ("bias_a", bias_a, "A")):
            yield steps.Archive(Result(name, value, units, exact="setting the run used"))

    @staticmethod
    def _spikes(traces, settings, reference, amplitude_a: float, detect_v: float) -> int:
        """Spikes in a capture: peaks of the excess over the scaled linear response above detect_v
        (analysis.spikes.peak_count: a double spike ~1 ns apart counts twice)."""
        output_v = np.asarray(traces.node_voltage_v[settings.output_node], dtype=float)
        ref = reference.output_v if reference.output_v.shape == output_v.shape else None
        excess = linear_excess_v(output_v, ref, amplitude_a / reference.amplitude_a if reference.amplitude_a else 0.0)
        return peak_count(excess, detect_v)


def _mean_result(name: str, values, what: str, level: float) -> Result:
    """The mean of `values` with its Student t interval, the method naming what was averaged."""
    stats = summarize(values)
    uncertainty = mean_uncertainty(stats, level)
    return Result(name, stats.mean, "J", uncertainty=replace(uncertainty, method=f"{uncertainty.method}: {what}"))


def _above_baseline(name: str, values, baseline: Summary, per_capture: float, what: str, level: float) -> Result:
    """The mean of energies above the baseline: its interval combines the captures' spread and
    the baseline's own (`per_capture` baselines in each value on average: 1, or 1/spikes per spike)."""
    stats = summarize(values)
    uncertainty = combined_uncertainty(
        stats.mean, [(stats.stderr, stats.count - 1), (per_capture * baseline.stderr, baseline.count - 1)], level,
        f"Student t interval, Welch-Satterthwaite degrees of freedom, on the mean of {stats.count} {what} "
        f"(standard error of their mean and of the baseline's over {baseline.count} reference captures)")
    return Result(name, stats.mean, "J", uncertainty=uncertainty)


def energy_results(references: list[CaptureRow], spiking: list[CaptureRow], amplitude_a: float,
                   reference_a: float, level: float = CONFIDENCE_LEVEL) -> list[Result]:
    """The run's results from its final attempt's reference and spiking captures: the energy per
    single spike (Student t), its spread (chi-square), the counts per class (exact), each other
    class's energy, the long-run energy per spike and the baseline."""
    ratio = amplitude_a / reference_a if reference_a else 0.0
    scaled = [ratio**2 * r.energy.input_j + ratio * r.energy.bias_j for r in references]
    baseline = summarize(scaled)
    singles = [r for r in spiking if r.capture_class == SINGLE_SPIKE]
    single_j = [r.spike_energy_j for r in singles]
    stats = summarize(single_j)
    spread = std_uncertainty(stats, level)
    stderr = std_uncertainty(stats, level, scale=1 / math.sqrt(stats.count) if stats.count else math.nan)
    results = [
        _above_baseline("energy_per_spike_j", single_j, baseline, 1.0,
                        "single-spike captures' energies above the baseline", level),
        Result("energy_per_spike_std_j", stats.std, "J", uncertainty=spread),
        Result("energy_per_spike_stderr_j", stats.stderr, "J",
               uncertainty=replace(stderr, method=f"{stderr.method}, divided by sqrt(n)")),
        Result("spikes_averaged", stats.count, "1"),
    ]
    classes = [BASELINE] * len(references) + [r.capture_class for r in spiking]
    results += [Result(name, sum(c == code for c in classes), "1") for code, name in CLASS_COUNTS.items()]
    results += [Result("bias_node_clipped_captures", sum(r.bias_node_clipped for r in references + spiking), "1"),
                Result("captures", len(spiking), "1"),
                Result("spiking_captures", sum(r.spikes > 0 for r in spiking), "1")]
    for code, name, per_spike, what in (
            (MULTIPLE_SPIKES, "double_spike_energy_per_spike_j", True,
             "double-spike (or more) captures' energies above the baseline, per spike"),
            (CONTROL_AFTERPULSE, "control_afterpulse_capture_energy_j", False,
             "energies above the baseline of captures with a spike and a control-wire afterpulse"),
            (NO_RESET, "no_reset_capture_energy_j", False,
             "energies above the baseline of captures with a spike and no control-wire reset"),
            (NO_SPIKE, "no_spike_capture_energy_j", False,
             "energies above the baseline of captures at the spiking amplitude without a spike")):
        rows = [r for r in spiking if r.capture_class == code]
        if rows:
            values = [r.spike_energy_j if per_spike else r.energy_j for r in rows]
            share = float(np.mean([1 / r.spikes for r in rows])) if per_spike else 1.0
            results.append(_above_baseline(name, values, baseline, share, what, level))
    energies = [r.energy_j for r in spiking]
    counts = [r.spikes for r in spiking]
    total_spikes = sum(counts)
    long_run_j = float(np.nansum(energies)) / total_spikes if total_spikes else math.nan
    ratio_u = ratio_uncertainty(energies, counts, level)
    long_run = combined_uncertainty(
        long_run_j, [(float(ratio_u.standard), len(energies) - 1),
                     (len(energies) / total_spikes * baseline.stderr if total_spikes else math.nan,
                      baseline.count - 1)], level,
        f"{ratio_u.method.removesuffix(')')}; every capture at the spiking amplitude, energy above the baseline "
        "over the spikes counted), combined with the baseline's standard error (Welch-Satterthwaite)")
    results.append(Result("energy_per_spike_long_run_j", long_run_j, "J", uncertainty=long_run))
    results.append(_mean_result("delivered_per_single_spike_capture_j", [r.energy.total_j for r in singles],
                                "energy the ports delivered in each single-spike capture", level))
    results.append(_mean_result("baseline_j", scaled, "reference captures' energies scaled to the spiking "
                                "amplitude", level))
    results.append(_mean_result("baseline_input_j", [r.energy.input_j for r in references],
                                "input-port energies of the reference captures", level))
    results.append(_mean_result("baseline_bias_j", [r.energy.bias_j for r in references],
                                "bias-port energies of the reference captures", level))
    return results


def mean_energy(energies: list[PortEnergy]) -> PortEnergy:
    """The mean of the reference captures' port energies (zero when there are none)."""
    if not energies:
        return PortEnergy(0.0, 0.0)
    return PortEnergy(float(np.mean([e.input_j for e in energies])), float(np.mean([e.bias_j for e in energies])))


def capture_energy(traces: steps.ChipTraces, settings: _pulsed.CaptureSettings, bias_a: float,
                   window_s: tuple[float, float]) -> PortEnergy:
    """The energy the input and the bias deliver over the window of one capture."""
    nodes = traces.node_voltage_v
    return port_energy(traces.time_s, nodes[settings.output_node], traces.input_a,
                       nodes.get(settings.bias_node), bias_a, window_s)


def control_events(traces: steps.ChipTraces, settings: _pulsed.CaptureSettings, reference: _pulsed.Response,
                   amplitude_a: float, control_v: float) -> int | None:
    """Control-wire switchings in a capture: rising crossings of the bias node's excess over the
    scaled reference (None when the bias node was not recorded)."""
    bias_v = traces.node_voltage_v.get(settings.bias_node)
    if bias_v is None:
        return None
    bias_v = np.asarray(bias_v, dtype=float)
    ref = reference.bias_node_v if reference.bias_node_v.shape == bias_v.shape else None
    excess = linear_excess_v(bias_v, ref, amplitude_a / reference.amplitude_a if reference.amplitude_a else 0.0)
    return event_count(traces.time_s, excess, control_v)


def bias_node_clipped(traces: steps.ChipTraces, settings: EnergyCaptureSettings) -> bool:
    """Whether the bias node's trace reached the edge of its full scale (an 8-bit record clips
    at -128 and +127 LSB around 0): its energy is then understated."""
    bias_v = traces.node_voltage_v.get(settings.bias_node)
    if bias_v is None or not math.isfinite(settings.bias_range_v):
        return False
    edge_v = (CLIPPED_LSB / 256) * settings.bias_range_v
    return bool(np.any(np.abs(np.asarray(bias_v, dtype=float)) >= edge_v))


@dataclass(frozen=True)
class CaptureRow:
    """One capture as the `captures` table holds it."""
    attempt: int
    kind: int
    capture_class: int
    amplitude_a: float
    spikes: int
    control_events: int           # -1: not counted (search captures, or no bias node recorded)
    energy: PortEnergy
    energy_j: float               # above the scaled baseline (NaN: reference, search)
    spike_energy_j: float         # energy_j per spike (NaN without a spike)
    bias_node_clipped: bool = False   # the bias node's trace reached the edge of its range


@dataclass
class EnergyStream:
    """Each capture as it arrives (a _pulsed.FiringStream, and the quick search's on_capture):
    its energy and class, kept as a `CaptureRow`, and its traces archived with it."""
    records: _pulsed.CaptureRecords
    settings: _pulsed.CaptureSettings
    bias_a: float
    window_s: tuple[float, float]
    control_v: float
    amplitude_a: float = math.nan           # set once the threshold is known
    reference_a: float = math.nan
    rows: list[CaptureRow] = field(default_factory=list)

    def rows_of(self, attempt: int, kind: int) -> list[CaptureRow]:
        return [r for r in self.rows if r.attempt == attempt and r.kind == kind]

    def search(self, traces: steps.ChipTraces, trial: bool, amplitude_a: float, spike: bool, attempt: int):
        nan = PortEnergy(np.nan, np.nan)
        return self._archive(traces, CaptureRow(attempt, KIND_SEARCH, SEARCH, amplitude_a, int(spike), -1, nan,
                                                np.nan, np.nan))

    def reference(self, traces: steps.ChipTraces, attempt: int):
        energy = capture_energy(traces, self.settings, self.bias_a, self.window_s)
        return self._archive(traces, CaptureRow(attempt, KIND_REFERENCE, BASELINE, self.reference_a, 0, -1, energy,
                                                np.nan, np.nan, bias_node_clipped(traces, self.settings)))

    def firing(self, traces: steps.ChipTraces, reference: _pulsed.Response, spikes: int, attempt: int):
        baseline = mean_energy([r.energy for r in self.rows_of(attempt, KIND_REFERENCE)])
        base_j = baseline_j(baseline, self.amplitude_a, self.reference_a)
        energy = capture_energy(traces, self.settings, self.bias_a, self.window_s)
        control = control_events(traces, self.settings, reference, self.amplitude_a, self.control_v)
        # Without the bias node the control wire is not seen: the class rests on the spikes alone.
        capture_class = classify_spiking_capture(spikes, spikes if control is None else control)
        energy_j = energy.total_j - base_j
        return self._archive(traces, CaptureRow(attempt, KIND_SPIKE, capture_class, self.amplitude_a, spikes,
                                                -1 if control is None else control, energy, energy_j,
                                                energy_j / spikes if spikes else np.nan,
                                                bias_node_clipped(traces, self.settings)))

    def _archive(self, traces: steps.ChipTraces, row: CaptureRow):
        self.rows.append(row)
        return self.records.archive(traces, self.settings, kind=row.kind, amplitude_a=row.amplitude_a,
                                    bias_a=self.bias_a, spikes=row.spikes, input_energy_j=row.energy.input_j,
                                    bias_energy_j=row.energy.bias_j, spike_energy_j=row.spike_energy_j,
                                    attempt=row.attempt)

    def table(self) -> TableRows:
        """Every capture so far as rows of the `captures` table."""
        rows = self.rows
        values = {"capture": range(len(rows)), "attempt": [r.attempt for r in rows], "kind": [r.kind for r in rows],
                  "class": [r.capture_class for r in rows], "amplitude_a": [r.amplitude_a for r in rows],
                  "spikes": [r.spikes for r in rows], "control_events": [r.control_events for r in rows],
                  "input_energy_j": [r.energy.input_j for r in rows], "bias_energy_j": [r.energy.bias_j for r in rows],
                  "energy_j": [r.energy_j for r in rows], "spike_energy_j": [r.spike_energy_j for r in rows]}
        return TableRows(CAPTURES_TABLE, {name: (np.asarray(list(values[name]), dtype=spec.dtype), spec.units)
                                          for name, spec in CAPTURE_COLUMNS.items()})
