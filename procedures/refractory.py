"""Refractory period: probability of a second spike against the spacing of a pulse pair.

Both pulses have amplitude `threshold_factor` × the firing threshold. What the second pulse
alone would add without spiking is known without measuring every spacing: the chip is linear
below threshold, so it is the sub-threshold reference response (amplitude A₀) scaled by A/A₀
and delayed by the spacing. The first pulse's own response (spike included) is the mean of
single-pulse captures at the same amplitude. A second spike is an excess of node m over the
sum of both, inside the window after the second pulse. The refractory period is the spacing
at which P(second spike) first drops below 0.5 going to shorter spacings (interpolated).

Without a threshold (threshold_a 0, none documented in the chip file) the run first searches
for it at width_s (_pulsed.threshold_for: a quick bisection, archived as the table
`threshold_search`, its captures as kind 3, and the results `threshold_a`, `threshold_source`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contracts import steps
from contracts.procedure import PlanContext, Procedure, parameter, refuse, too_little
from contracts.records import Axis, ColumnSpec, Result, TableRows, TableSpec
from procedures import _pulsed
from procedures.analysis.spikes import delayed, has_spike
from procedures.analysis.statistics import falling_crossing, wilson_interval
from procedures.design import DesignHints


@dataclass(frozen=True)
class RefractoryParameters:
    threshold_a: float = _pulsed.threshold_a_parameter()
    threshold_factor: float = _pulsed.threshold_factor_parameter(1.2)
    width_s: float = _pulsed.width_s_parameter("width of each pulse")
    edge_s: float = _pulsed.edge_s_parameter()
    spacing_max_s: float = parameter(0.0, unit="s", doc="longest spacing (start to start); 0 takes 3x the "
                                     "design refractory period plus the shortest", minimum=0.0, maximum=1e-3)
    spacing_min_s: float = parameter(0.0, unit="s", doc="shortest spacing; 0 takes the pulse width plus "
                                     "1.6 edge times", minimum=0.0, maximum=1e-3)
    spacings: int = parameter(12, unit="1", doc="spacings, geometric from longest to shortest", minimum=2,
                               maximum=1000)
    trials: int = _pulsed.trials_parameter(4, "pairs fired per spacing")
    reference_fraction: float = parameter(0.3, unit="1", doc="reference amplitude A0 in thresholds",
                                          minimum=0.01, maximum=0.9)
    reference_captures: int = _pulsed.reference_captures_parameter(4, "captures averaged for each reference")
    bias_a: float = _pulsed.bias_a_parameter()
    detect_v: float = _pulsed.detect_v_parameter()
    spike_after_s: float = _pulsed.spike_after_s_parameter("window after the second pulse")
    pretrigger_s: float = _pulsed.pretrigger_s_parameter(2e-9)
    ramp_a_per_s: float = _pulsed.ramp_a_per_s_parameter()
    traces_archived_max: int = _pulsed.traces_archived_max_parameter()


#: What is archived with each capture's traces: which capture, a sub-threshold reference (0), a
#: single pulse (1), a pair (2) or a capture of a threshold search (3), its pulses, the spikes the
#: analysis saw after the first and the second pulse, and the bias cycles before it.
KIND_REFERENCE, KIND_SINGLE, KIND_PAIR, KIND_SEARCH = 0, 1, 2, 3
TRACE_COLUMNS = {_pulsed.CAPTURE_INDEX: ColumnSpec("1", "i8"), "kind": ColumnSpec("1", "i1"),
                 "amplitude_a": ColumnSpec("A"), "spacing_s": ColumnSpec("s"), "first_spike": ColumnSpec("1", "i1"),
                 "second_spike": ColumnSpec("1", "i1"), "attempt": ColumnSpec("1", "i8")}


@dataclass
class _SinglePulseStream:
    """Archives the captures of the single-pulse firing check as they arrive (a _pulsed.FiringStream)."""
    records: _pulsed.CaptureRecords
    settings: _pulsed.CaptureSettings
    reference_a: float
    amplitude_a: float

    def reference(self, traces: steps.ChipTraces, attempt: int):
        return self.records.archive(traces, self.settings, kind=KIND_REFERENCE, amplitude_a=self.reference_a,
                                    spacing_s=np.nan, first_spike=0, second_spike=0, attempt=attempt)

    def firing(self, traces: steps.ChipTraces, reference: _pulsed.Response, spikes: int, attempt: int):
        return self.records.archive(traces, self.settings, kind=KIND_SINGLE, amplitude_a=self.amplitude_a,
                                    spacing_s=np.nan, first_spike=spikes, second_spike=0, attempt=attempt)


class Refractory(Procedure):
    name = "refractory"
    minimum_valid_data = "a spiking single pulse, and a second spike in half the pairs at one spacing at least"
    Parameters = RefractoryParameters

    def _records(self, chip_design) -> _pulsed.CaptureRecords:
        """Up to traces_archived_max captures' traces, spread over the run, on the longest pair's record."""
        p = self.parameters
        design = DesignHints.from_chip(chip_design)
        planned = (2 * p.reference_captures + p.spacings * p.trials
                   + _pulsed.quick_search_captures(p.threshold_a, chip_design))
        return _pulsed.CaptureRecords(self._settings(design, self.spacings_s(design)), TRACE_COLUMNS,
                                      archived_max=p.traces_archived_max, planned=planned)

    def declare(self, context: PlanContext | None = None):
        chip_design = context.chip_design if context is not None else None
        tables = {"pairs": TableSpec(
            {"spacing_s": ColumnSpec("s"), "first_spikes": ColumnSpec("1", "i8"),
             "second_spikes": ColumnSpec("1", "i8"), "trials": ColumnSpec("1", "i8"),
             "probability": ColumnSpec("1")}, axis="spacing_s", signal="probability")}
        if _pulsed.searches(self.parameters.threshold_a, chip_design):
            tables[_pulsed.QUICK_SEARCH_TABLE] = _pulsed.probability_table()
        return self._records(chip_design).spec(), tables

    def check_parameters(self) -> None:
        p = self.parameters
        _pulsed.check_timing(self.name, "width_s, edge_s", p.width_s, p.edge_s)
        if p.spacing_min_s and p.spacing_max_s and p.spacing_min_s >= p.spacing_max_s:
            raise refuse(self.name, "spacing_min_s, spacing_max_s", f"spacing_min_s {p.spacing_min_s:.4g} s must be "
                                                                    f"below spacing_max_s {p.spacing_max_s:.4g} s")
        if p.spacing_min_s:      # a pair's spacing is its period: the pulse must fit in it
            _pulsed.check_timing(self.name, "spacing_min_s, width_s, edge_s", p.width_s, p.edge_s, p.spacing_min_s)

    def check_bound(self, context: PlanContext) -> None:
        p = self.parameters
        spacings = self.spacings_s(DesignHints.from_chip(context.chip_design))
        if not spacings[-1] < spacings[0]:
            raise refuse(self.name, "spacing_min_s, spacing_max_s",
                         f"the spacings {spacings[-1]:.4g} s to {spacings[0]:.4g} s (0 takes the design value) are "
                         "empty or reversed")
        # The single-pulse sets stay in memory while the pairs (at most `trials` kept) are taken.
        _pulsed.check_captures(self.name, "spacing_max_s, pretrigger_s, spike_after_s, reference_captures, trials",
                               self._settings(DesignHints.from_chip(context.chip_design), spacings), 2,
                               2 * p.reference_captures + p.trials)

    def _settings(self, design: DesignHints, spacings: np.ndarray) -> _pulsed.CaptureSettings:
        p = self.parameters
        record_s = p.pretrigger_s + spacings[0] + p.width_s + 2 * p.edge_s + p.spike_after_s
        return _pulsed.CaptureSettings.for_design(design, record_s, p.pretrigger_s)

    def spacings_s(self, design: DesignHints) -> np.ndarray:
        p = self.parameters
        # A pulse generator needs 1.6 edge times of gap between pulses (Keysight's rule).
        shortest = p.spacing_min_s or p.width_s + 1.6 * p.edge_s
        longest = p.spacing_max_s or max(3 * design.refractory_s + shortest, 2 * shortest)
        return np.geomspace(longest, shortest, p.spacings)

    def plan(self, context: PlanContext):
        p = self.parameters
        design = DesignHints.from_chip(context.chip_design)
        detect_v = p.detect_v or 0.3 * design.spike_amplitude_v
        spacings = self.spacings_s(design)
        settings = self._settings(design, spacings)
        records = self._records(context.chip_design)
        bias_a = p.bias_a or design.bias_a
        context.resolve(spacing_min_s=float(spacings[-1]), spacing_max_s=float(spacings[0]), bias_a=bias_a,
                        detect_v=detect_v)
        yield steps.SetBias(current_a=bias_a, ramp_a_per_s=p.ramp_a_per_s)
        threshold = yield from _pulsed.threshold_for(
            self.name, p.threshold_a, context.chip_design, design, settings, p.width_s, p.edge_s, detect_v,
            p.spike_after_s,
            lambda t, trial, a, spike, attempt: records.archive(
                t, settings, kind=KIND_SEARCH, amplitude_a=a, spacing_s=np.nan, first_spike=spike, second_spike=0,
                attempt=attempt),
            dry_run=context.dry_run)
        threshold_a = threshold.value_a
        context.resolve(threshold_a=threshold_a)
        amplitude_a = p.threshold_factor * threshold_a
        # Levels first, then the output on.
        yield _pulsed.pulses(p.reference_fraction * threshold_a, p.width_s, p.edge_s)
        yield steps.SetInputEnabled(enabled=True)
        first_window = (-p.edge_s, p.width_s + 2 * p.edge_s + p.spike_after_s)
        # The single-pulse response must show a spike; if not, a wire may be latched
        # (_pulsed.reference_and_firing cycles the bias and measures both again).
        firing = yield from _pulsed.reference_and_firing(
            settings, _pulsed.pulses(p.reference_fraction * threshold_a, p.width_s, p.edge_s), p.reference_captures,
            _pulsed.pulses(amplitude_a, p.width_s, p.edge_s), p.reference_captures,
            lambda t, ref: _pulsed.spike_seen(t, settings, ref, amplitude_a, detect_v, first_window),
            dry_run=context.dry_run,
            stream=_SinglePulseStream(records, settings, p.reference_fraction * threshold_a, amplitude_a))
        if not firing.fired and not context.dry_run:
            raise _pulsed.not_firing(amplitude_a, len(firing.traces), p.reference_captures,
                                     f"{p.threshold_factor:g} x {threshold.describe()}, bias_a, detect_v")
        reference = firing.reference
        single = _pulsed.mean_response(settings, amplitude_a, firing.traces)
        scale = amplitude_a / reference.amplitude_a
        probabilities = np.zeros(spacings.size)
        for index, spacing_s in enumerate(spacings):
            spacing_s = float(spacing_s)
            expected_v = single.output_v + scale * delayed(reference.time_s, reference.output_v, spacing_s)
            first_expected_v = scale * reference.output_v
            yield _pulsed.pulses(amplitude_a, p.width_s, p.edge_s, count=2, spacing_s=spacing_s)
            yield settings.configure(_pulsed.input_range_a(amplitude_a), with_bias_node=False)
            second_window = (spacing_s - p.edge_s, spacing_s + p.width_s + 2 * p.edge_s + p.spike_after_s)
            counted = [0, 0]         # pairs with a first, with a second spike

            def pair(traces: steps.ChipTraces, spacing_s=spacing_s, expected_v=expected_v,
                     first_expected_v=first_expected_v, second_window=second_window, counted=counted):
                output_v = np.asarray(traces.node_voltage_v[settings.output_node], dtype=float)
                first = second = False
                if output_v.shape == expected_v.shape:
                    first = has_spike(traces.time_s, output_v - first_expected_v, detect_v, first_window)
                    second = has_spike(traces.time_s, output_v - expected_v, detect_v, second_window)
                    counted[0] += first
                    counted[1] += second
                return records.archive(traces, settings, kind=KIND_PAIR, amplitude_a=amplitude_a, spacing_s=spacing_s,
                                       first_spike=first, second_spike=second, attempt=firing.attempt)

            yield from _pulsed.captures(settings, p.trials, pair, keep=False)
            firsts, seconds = counted
            probabilities[index] = seconds / p.trials
            yield steps.Archive(TableRows("pairs", {
                "spacing_s": (np.array([spacing_s]), "s"), "first_spikes": (np.array([firsts]), "1"),
                "second_spikes": (np.array([seconds]), "1"), "trials": (np.array([p.trials]), "1"),
                "probability": (np.array([probabilities[index]]), "1")}))
            yield steps.Progress(fraction=(index + 1) / spacings.size,
                                 message=f"{spacing_s * 1e9:.3g} ns: P = {probabilities[index]:.2f}")
        yield steps.SetInputEnabled(enabled=False)
        yield steps.SetBias(current_a=0.0, ramp_a_per_s=p.ramp_a_per_s)
        low, high = np.array([wilson_interval(int(round(q * p.trials)), p.trials) for q in probabilities]).T
        yield steps.Archive(Result("second_spike_probability", probabilities, "1", Axis("spacing_s", spacings, "s")))
        yield steps.Archive(Result("second_spike_probability_low", low, "1", Axis("spacing_s", spacings, "s")))
        yield steps.Archive(Result("second_spike_probability_high", high, "1", Axis("spacing_s", spacings, "s")))
        yield steps.Archive(Result("refractory_period_s", falling_crossing(spacings, probabilities, 0.5), "s"))
        # P never fell below 0.5: the refractory period is shorter than the shortest spacing tried.
        never = bool(np.all(probabilities >= 0.5))
        yield steps.Archive(Result("refractory_period_below_s", float(spacings[-1]) if never else np.nan, "s"))
        yield steps.Archive(Result("pulse_amplitude_a", amplitude_a, "A"))
        # Minimum of valid data: a second spike at some spacing (P >= 0.5), else the pairs say
        # nothing about a refractory period.
        if not np.any(probabilities >= 0.5) and not context.dry_run:
            raise too_little(self.name, "a second spike in half the pairs at 1 spacing at least",
                             f"P(second spike) < 0.5 at all {spacings.size} spacings from {spacings[0] * 1e9:.4g} to "
                             f"{spacings[-1] * 1e9:.4g} ns (highest {probabilities.max():.2f})")
