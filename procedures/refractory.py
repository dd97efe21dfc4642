"""Refractory period: probability of a second spike against the spacing of a pulse pair.

Both pulses have amplitude `threshold_factor` × the firing threshold. What the second pulse
alone would add without spiking is known without measuring every spacing: the chip is linear
below threshold, so it is the sub-threshold reference response (amplitude A₀) scaled by A/A₀
and delayed by the spacing. The first pulse's own response (spike included) is the mean of
single-pulse captures at the same amplitude. A second spike is an excess of node m over the
sum of both, inside the window after the second pulse.

The pairs go first to a geometric scan of `spacings` spacings (`trials` pairs each), then to
adaptive rounds: each round fits the recovery curve P(second spike | spacing) =
Φ((spacing − period)/width) to every pair so far (procedures/analysis/recovery.py: binomial
maximum likelihood, profile-likelihood intervals) and fires `trials` pairs at each of the
period's estimate and the estimate ± min(width, interval half-width) — where a pair tells most
about the period — until the period's 95 % interval is within ± `period_precision` of it or
`trials_max` pairs are spent. The refractory period is the fitted spacing at P = 0.5; a dry run
takes every round (its duration is the longest a run can take).

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
from procedures.analysis.recovery import RecoveryFit, fit_recovery
from procedures.analysis.spikes import delayed, has_spike
from procedures.analysis.statistics import CONFIDENCE_LEVEL, proportion_uncertainty
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
    spacings: int = parameter(8, unit="1", doc="spacings of the first scan, geometric from longest to shortest",
                              minimum=2, maximum=1000)
    trials: int = _pulsed.trials_parameter(4, "pairs fired per spacing (the scan's and each adaptive one's)")
    trials_max: int = parameter(128, unit="1", doc="pairs fired in all, scan and adaptive rounds (the scan is "
                                "always fired whole)", minimum=1, maximum=100_000)
    period_precision: float = parameter(0.1, unit="1", doc="adaptive rounds stop once the refractory period's 95 % "
                                        "interval is within this fraction of it (half-width / value)",
                                        minimum=0.001, maximum=10.0)
    order_seed: int = parameter(0, unit="1", doc="seed of the order pairs are fired in (each pass over the spacings "
                                "shuffled); 0 takes one from the emulated station's seed, or draws one on a real bench "
                                "(archived with the resolved parameters)",
                                minimum=0, maximum=2**31 - 1)
    reference_fraction: float = parameter(0.3, unit="1", doc="reference amplitude A0 in thresholds",
                                          minimum=0.01, maximum=0.9)
    reference_captures: int = _pulsed.reference_captures_parameter(4, "captures averaged for each reference")
    bias_a: float = _pulsed.bias_a_parameter()
    detect_v: float = _pulsed.detect_v_parameter()
    spike_after_s: float = _pulsed.spike_after_s_parameter("window after the second pulse")
    pretrigger_s: float = _pulsed.pretrigger_s_parameter(2e-9)
    ramp_a_per_s: float = _pulsed.ramp_a_per_s_parameter()
    sample_rate_hz: float = _pulsed.sample_rate_hz_parameter(_pulsed.DEFAULT_SAMPLE_RATE_HZ)
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
        planned = (2 * p.reference_captures + max(p.spacings * p.trials, p.trials_max)
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
        return _pulsed.CaptureSettings.for_design(design, record_s, p.pretrigger_s, sample_rate_hz=p.sample_rate_hz)

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
        # A fixed order would pair each spacing with the same part of the chip's drift (below) in
        # every run: a bias no repetition could show.
        order_seed = p.order_seed or context.seed or int(np.random.SeedSequence().entropy % (2**31 - 2)) + 1
        order = np.random.default_rng(order_seed)
        context.resolve(spacing_min_s=float(spacings[-1]), spacing_max_s=float(spacings[0]), bias_a=bias_a,
                        detect_v=detect_v, order_seed=order_seed)
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
        first_expected_v = scale * reference.output_v
        tried: list[tuple[float, int, int]] = []         # (spacing, second spikes, pairs) per block
        budget = max(p.trials_max, spacings.size * p.trials)

        def fire(round_spacings: list[float]):
            """`trials` pairs at each spacing, interleaved: pass after pass over the spacings, each
            pass in a shuffled order (`order_seed`). The chip's state drifts from capture to capture
            (the loop's trapped current, which each spike changes); consecutive pairs at one
            spacing would all see one part of that drift. One row of `pairs` per spacing."""
            expected = {s: single.output_v + scale * delayed(reference.time_s, reference.output_v, s)
                        for s in round_spacings}
            counted = {s: [0, 0] for s in round_spacings}       # pairs with a first, with a second spike
            yield settings.configure(_pulsed.input_range_a(amplitude_a), with_bias_node=False)
            for _ in range(p.trials):
                for spacing_s in order.permutation(round_spacings):
                    spacing_s = float(spacing_s)
                    yield _pulsed.pulses(amplitude_a, p.width_s, p.edge_s, count=2, spacing_s=spacing_s)
                    yield from _pulsed.captures(settings, 1, lambda t, s=spacing_s: pair(t, s, expected[s],
                                                                                         counted[s]), keep=False)
            for spacing_s in round_spacings:
                firsts, seconds = counted[spacing_s]
                tried.append((spacing_s, seconds, p.trials))
                yield steps.Archive(TableRows("pairs", {
                    "spacing_s": (np.array([spacing_s]), "s"), "first_spikes": (np.array([firsts]), "1"),
                    "second_spikes": (np.array([seconds]), "1"), "trials": (np.array([p.trials]), "1"),
                    "probability": (np.array([seconds / p.trials]), "1")}))
            described = ", ".join(f"{s * 1e9:.3g} ns: {counted[s][1]}/{p.trials}" for s in round_spacings)
            yield steps.Progress(fraction=min(1.0, len(tried) * p.trials / budget), message=f"P(second) {described}")

        def pair(traces: steps.ChipTraces, spacing_s: float, expected_v: np.ndarray, counted: list[int]):
            output_v = np.asarray(traces.node_voltage_v[settings.output_node], dtype=float)
            second_window = (spacing_s - p.edge_s, spacing_s + p.width_s + 2 * p.edge_s + p.spike_after_s)
            first = second = False
            if output_v.shape == expected_v.shape:
                first = has_spike(traces.time_s, output_v - first_expected_v, detect_v, first_window)
                second = has_spike(traces.time_s, output_v - expected_v, detect_v, second_window)
                counted[0] += first
                counted[1] += second
            return records.archive(traces, settings, kind=KIND_PAIR, amplitude_a=amplitude_a, spacing_s=spacing_s,
                                   first_spike=first, second_spike=second, attempt=firing.attempt)

        def fit() -> RecoveryFit:
            x, k, n = (np.array(column, dtype=float) for column in zip(*tried))
            return fit_recovery(x, k, n, CONFIDENCE_LEVEL)

        yield from fire([float(s) for s in spacings])
        shortest, longest = float(spacings[-1]), float(spacings[0])
        first_fit = None
        while len(tried) * p.trials + p.trials <= budget:
            # A dry run's captures are flat, so its first fit places every round: refitting a
            # growing table each round made long dry runs take minutes.
            recovery = first_fit or fit()
            if context.dry_run:
                first_fit = recovery
            elif precise(recovery, shortest, longest, p.period_precision):
                break
            yield from fire(adaptive_spacings_s(recovery, shortest, longest, budget - len(tried) * p.trials,
                                                p.trials))
        yield steps.SetInputEnabled(enabled=False)
        yield steps.SetBias(current_a=0.0, ramp_a_per_s=p.ramp_a_per_s)
        for record in results_of(fit(), tried, shortest, longest):
            yield steps.Archive(record)
        yield steps.Archive(Result("pulse_amplitude_a", amplitude_a, "A",
                                   exact="setting the run used: threshold_factor × the threshold"))
        # Minimum of valid data: a second spike at some spacing (P >= 0.5), else the pairs say
        # nothing about a refractory period.
        seen = pooled(tried)
        probabilities = seen[1] / seen[2]
        if not np.any(probabilities >= 0.5) and not context.dry_run:
            raise too_little(self.name, "a second spike in half the pairs at 1 spacing at least",
                             f"P(second spike) < 0.5 at all {seen[0].size} spacings from {longest * 1e9:.4g} to "
                             f"{shortest * 1e9:.4g} ns (highest {probabilities.max():.2f})")


def _inside(recovery: RecoveryFit, shortest_s: float, longest_s: float) -> tuple[float, float]:
    """The period's interval clipped to the spacings that can be fired."""
    return max(recovery.midpoint_low, shortest_s), min(recovery.midpoint_high, longest_s)


def precise(recovery: RecoveryFit, shortest_s: float, longest_s: float, precision: float) -> bool:
    """Is the period's interval, within the spacings that can be fired, at most ± precision of its
    centre (the estimate; the interval's middle when the estimate is NaN)? An interval wholly
    outside them is: more pairs cannot narrow it."""
    low, high = _inside(recovery, shortest_s, longest_s)
    if not low <= high:
        return True
    centre = recovery.midpoint if np.isfinite(recovery.midpoint) else 0.5 * (low + high)
    return 0.5 * (high - low) <= precision * centre


def adaptive_spacings_s(recovery: RecoveryFit, shortest_s: float, longest_s: float, pairs_left: int,
                        trials: int) -> list[float]:
    """The next round's spacings, as many as the pairs left allow: the period's estimate and the
    estimate ± min(width, interval half-width) (a probit's information on its midpoint peaks
    there); without an estimate (a period outside the spacings, or no transition yet), the ends
    and middle of its interval within them; without either (a dry run's flat data), the scan's
    geometric middle."""
    low, high = _inside(recovery, shortest_s, longest_s)
    if np.isfinite(recovery.midpoint):
        step = min(recovery.width, recovery.half_width)
        step = step if np.isfinite(step) and step > 0 else 0.1 * recovery.midpoint
        candidates = [recovery.midpoint + sign * step for sign in (1, 0, -1)]
    elif low <= high and np.isfinite(high - low):
        candidates = [high, 0.5 * (low + high), low]
    else:
        candidates = [float(np.sqrt(shortest_s * longest_s))]
    chosen = sorted({float(np.clip(c, shortest_s, longest_s)) for c in candidates}, reverse=True)
    return chosen[:max(1, pairs_left // trials)]


def pooled(tried: list[tuple[float, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(spacings longest first, second spikes, pairs) summed over the blocks at each spacing."""
    x, k, n = (np.array(column, dtype=float) for column in zip(*tried))
    spacings, index = np.unique(x, return_inverse=True)
    seconds, pairs = np.bincount(index, weights=k), np.bincount(index, weights=n)
    return spacings[::-1], seconds[::-1].astype(int), pairs[::-1].astype(int)


def results_of(recovery: RecoveryFit, tried: list[tuple[float, int, int]], shortest_s: float,
               longest_s: float) -> list[Result]:
    """The probability at each spacing with its Wilson interval, the fitted period and width
    with their profile-likelihood intervals, and — when the period lies outside the spacings
    tried — NaN, the bound the fit gives and a note saying why."""
    spacings, seconds, pairs = pooled(tried)
    axis = Axis("spacing_s", spacings, "s")
    wilson = proportion_uncertainty(seconds, pairs, CONFIDENCE_LEVEL)
    found = [Result("second_spike_probability", seconds / pairs, "1", axis, wilson)]
    period, width = recovery.midpoint, recovery.width
    note, level = "", f"{CONFIDENCE_LEVEL:.0%} profile-likelihood"
    every = bool(np.all(seconds >= 0.5 * pairs))
    side = recovery.outside(shortest_s, longest_s)
    if side == "below":
        seen = ("second spikes in half the pairs or more at every spacing down to the shortest, "
                if every else "the fitted P = 0.5 spacing lies below the shortest spacing, ")
        note = (f"{seen}{shortest_s * 1e9:.3g} ns: the refractory period is below it ({level} upper limit "
                f"{recovery.midpoint_high * 1e9:.3g} ns)")
        found.append(recovery.limit("refractory_period_upper_bound_s", side))
    elif side == "above":
        note = (f"second spikes in fewer than half the pairs up to the longest spacing, {longest_s * 1e9:.3g} ns: "
                f"the refractory period is above it ({level} lower limit {recovery.midpoint_low * 1e9:.3g} ns)")
        found.append(recovery.limit("refractory_period_lower_bound_s", side))
    if note:
        period = width = np.nan
        found.append(Result("refractory_period_note", note, ""))
    found += [Result("refractory_period_s", period, "s", uncertainty=recovery.midpoint_uncertainty()),
              Result("recovery_width_s", width, "s", uncertainty=recovery.width_uncertainty())]
    return found
