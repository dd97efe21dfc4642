"""Strength–duration curve: firing threshold against input pulse width; rheobase, chronaxie.

At each width: an averaged sub-threshold reference response (amplitude A₀), then an adaptive
psychometric search (analysis.psychometric: the psi method on a grid posterior of a probit
P(spike | A) = Φ((A − μ)/σ)): each trial is one capture, at the amplitude that is expected to
tell most about the threshold μ, a spike being an excess of node m over the reference scaled to
the amplitude (analysis.spikes) inside the spike window. It stops when the 95 % credible
interval of μ has a half-width of at most threshold_precision × μ, or after trials_max trials.
The bracket bounds the prior on μ; a threshold the data do not place inside it is NaN. Each
width's threshold (`threshold_a`) carries its interval, the transition's width σ
(`threshold_width_a`) its own, and `threshold_trials` says how many trials each took; the
`probability` table keeps one row per amplitude tried (the data behind each fit). Rheobase and
chronaxie come from the Weiss and Lapicque fits (analysis.strength_duration), weighted by the
thresholds' standard uncertainties, with parametric-bootstrap intervals.

On the default neuron: for 2-3 ns pulses the main wire fires first and the thresholds agree with
the chip's main-wire switching within ~1 %. For pulses of 5 ns and more the control wire can
switch alone below threshold; the flux it traps lifts the main wire, so later pulses fire lower
and those thresholds read ~5-10 % below a fresh chip's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contracts import steps
from contracts.procedure import MeasurementError, PlanContext, Procedure, parameter, refuse, too_little
from contracts.records import Axis, ColumnSpec, Result, Uncertainty
from contracts.units import format_si, format_si_range
from procedures import _pulsed
from procedures.analysis.strength_duration import bootstrap_intervals, fit_lapicque, fit_weiss
from procedures.design import DesignHints


#: Pulse widths one run may measure.
WIDTHS_MAX = 100
#: Default precision and trial cap of each width's search. On the emulated default neuron a width
#: whose responses stay put reaches 3 % in 11-34 trials; where the chip's memory of earlier pulses
#: spreads them (sigma ~2-3 uA: 10 and 20 ns, some runs 2 or 3 ns) 3 % would take ~300
#: (benchmarks/threshold_trials.py), so the cap decides: 80 makes the default run 308 captures
#: (at most 420), against 140 for the bisection it replaced. With 60 the run is 255 captures but
#: 3 ns reads 8 % below the fresh chip's threshold (its history differs; test_end_to_end).
THRESHOLD_PRECISION, TRIALS_MAX = 0.03, 80


@dataclass(frozen=True)
class StrengthDurationParameters:
    widths_s: tuple = parameter((2e-9, 3e-9, 5e-9, 10e-9, 20e-9), unit="s", doc="input pulse widths",
                                minimum=1e-10, maximum=1e-6)
    edge_s: float = _pulsed.edge_s_parameter()
    threshold_precision: float = parameter(THRESHOLD_PRECISION, unit="1", doc="stop a width's search when the "
                                           "half-width of its threshold's 95 % interval is at most this fraction "
                                           "of the threshold", minimum=0.001, maximum=0.5)
    trials_max: int = parameter(TRIALS_MAX, unit="1", doc="most trials (captures) of one width's search",
                                minimum=2, maximum=1000)
    bracket_low_a: float = parameter(0.0, unit="A", doc="lower end of the bracket (the threshold's prior range); 0 "
                                     "takes 0.4x the design threshold", minimum=0.0)
    bracket_high_a: float = parameter(0.0, unit="A", doc="upper end of the bracket (the threshold's prior range); 0 "
                                      "takes 4x the design threshold", minimum=0.0)
    reference_fraction: float = parameter(1.0, unit="1", doc="reference amplitude A0 as a fraction of the "
                                          "bracket's lower end (must be sub-threshold)", minimum=0.01, maximum=1.0)
    reference_captures: int = _pulsed.reference_captures_parameter(4, "captures averaged for the reference")
    bias_a: float = _pulsed.bias_a_parameter("DC bias into the bias port; 0 takes the design bias")
    detect_v: float = _pulsed.detect_v_parameter("spike = excess over the linear response above this; 0 takes "
                                                 "0.3x the design spike amplitude")
    spike_after_s: float = _pulsed.spike_after_s_parameter("spike window extends this long after the pulse")
    pretrigger_s: float = _pulsed.pretrigger_s_parameter(2e-9)
    ramp_a_per_s: float = _pulsed.ramp_a_per_s_parameter()
    sample_rate_hz: float = _pulsed.sample_rate_hz_parameter(_pulsed.DEFAULT_SAMPLE_RATE_HZ)
    traces_archived_max: int = _pulsed.traces_archived_max_parameter()


#: What is archived with each capture's traces: which capture, a reference (0) or a trial of the
#: search (1), its pulse, whether it counted as a spike, and the bias cycles before it.
KIND_REFERENCE, KIND_TRIAL = 0, 1
TRACE_COLUMNS = {_pulsed.CAPTURE_INDEX: ColumnSpec("1", "i8"), "kind": ColumnSpec("1", "i1"),
                 "width_s": ColumnSpec("s"), "amplitude_a": ColumnSpec("A"), "spike": ColumnSpec("1", "i1"),
                 "attempt": ColumnSpec("1", "i8")}


class StrengthDuration(Procedure):
    name = "strength_duration"
    minimum_valid_data = "a finite threshold (P = 0.5 located inside the bracket) at one width at least"
    Parameters = StrengthDurationParameters

    def _records(self) -> _pulsed.CaptureRecords:
        """Up to traces_archived_max captures' traces, spread over the run, on the widest pulse's record."""
        p = self.parameters
        planned = len(p.widths_s) * (p.reference_captures + p.trials_max)
        return _pulsed.CaptureRecords(self._settings(DesignHints.from_chip(None), max(p.widths_s)), TRACE_COLUMNS,
                                      archived_max=p.traces_archived_max, planned=planned)

    def declare(self, context: PlanContext | None = None):
        return self._records().spec(), {"probability": _pulsed.probability_table()}

    def check_parameters(self) -> None:
        p = self.parameters
        if not 1 <= len(p.widths_s) <= WIDTHS_MAX:
            raise refuse(self.name, "widths_s", f"{len(p.widths_s)} widths; give 1 to {WIDTHS_MAX}")
        for width_s in p.widths_s:
            _pulsed.check_timing(self.name, "widths_s, edge_s", width_s, p.edge_s)
        if p.bracket_low_a and p.bracket_high_a and p.bracket_low_a >= p.bracket_high_a:
            raise refuse(self.name, "bracket_low_a, bracket_high_a", f"bracket_low_a {p.bracket_low_a:.4g} A must be "
                                                                     f"below bracket_high_a {p.bracket_high_a:.4g} A")
        design = DesignHints.from_chip(None)
        _pulsed.check_captures(self.name, "widths_s, pretrigger_s, spike_after_s, reference_captures",
                               self._settings(design, max(p.widths_s)), 2, p.reference_captures)

    def check_bound(self, context: PlanContext) -> None:
        low_a, high_a = self._bracket_a(DesignHints.from_chip(context.chip_design))
        if not low_a < high_a:
            raise refuse(self.name, "bracket_low_a, bracket_high_a",
                         f"the bracket {low_a:.4g} A to {high_a:.4g} A (0 takes the design value) is empty or reversed")

    def _bracket_a(self, design: DesignHints) -> tuple[float, float]:
        p = self.parameters
        return (p.bracket_low_a or _pulsed.BRACKET_LOW_THRESHOLDS * design.threshold_a,
                p.bracket_high_a or _pulsed.BRACKET_HIGH_THRESHOLDS * design.threshold_a)

    def _settings(self, design: DesignHints, width_s: float) -> _pulsed.CaptureSettings:
        p = self.parameters
        return _pulsed.CaptureSettings.for_design(design, p.pretrigger_s + width_s + 2 * p.edge_s + p.spike_after_s,
                                                  p.pretrigger_s, sample_rate_hz=p.sample_rate_hz)

    def plan(self, context: PlanContext):
        p = self.parameters
        design = DesignHints.from_chip(context.chip_design)
        low_a, high_a = self._bracket_a(design)
        detect_v = p.detect_v or 0.3 * design.spike_amplitude_v
        bias_a = p.bias_a or design.bias_a
        context.resolve(bracket_low_a=low_a, bracket_high_a=high_a, bias_a=bias_a, detect_v=detect_v)
        yield steps.SetBias(current_a=bias_a, ramp_a_per_s=p.ramp_a_per_s)
        widths = np.asarray(p.widths_s, dtype=float)
        # Levels first (the first reference pulse), then the output on.
        yield _pulsed.pulses(p.reference_fraction * low_a, float(widths[0]), p.edge_s)
        yield steps.SetInputEnabled(enabled=True)
        records = self._records()
        fits = []
        fired_at = np.zeros(widths.size, dtype=bool)
        search = _pulsed.ThresholdSearch(low_a, high_a, p.reference_fraction * low_a, p.reference_captures,
                                         p.threshold_precision, p.trials_max, detect_v, p.edge_s, p.spike_after_s,
                                         "probability")
        for index, width_s in enumerate(widths):
            settings = self._settings(design, float(width_s))
            found = yield from _pulsed.threshold_search(
                settings, search, float(width_s),
                lambda t, trial, a, spike, attempt, w=float(width_s), settings=settings: records.archive(
                    t, settings, kind=KIND_TRIAL if trial else KIND_REFERENCE, width_s=w, amplitude_a=a,
                    spike=spike, attempt=attempt),
                dry_run=context.dry_run)
            fits.append(found.fit)
            fired_at[index] = found.fired
            yield steps.Progress(fraction=(index + 1) / widths.size,
                                 message=f"{format_si(width_s, 's', 3)}: {format_si(found.threshold_a, 'A', 3)} "
                                         f"({found.fit.trials} trials)")
        thresholds = np.array([f.midpoint for f in fits])
        if not fired_at.any() and not context.dry_run:
            raise MeasurementError(f"no width fired up to the bracket top {format_si(high_a, 'A')}, with the bias "
                                   f"cycled to 0 A {_pulsed.LATCH_CYCLES} times for each: a wire is latched, or "
                                   "the bracket is below threshold (bracket_high_a, bias_a, detect_v)")
        # Minimum of valid data: a threshold inside the bracket at one width at least.
        if not np.isfinite(thresholds).any() and not context.dry_run:
            raise too_little(self.name, "a finite threshold at 1 width at least",
                             "no width's psychometric fit located P = 0.5 inside the bracket "
                             f"{format_si_range(low_a, high_a, 'A')} "
                             f"({int(fired_at.sum())} of {widths.size} widths fired at all; bracket_low_a, "
                             "bracket_high_a)")
        yield steps.SetInputEnabled(enabled=False)
        yield steps.SetBias(current_a=0.0, ramp_a_per_s=p.ramp_a_per_s)
        standard_a = np.array([f.midpoint_standard for f in fits])
        axis = Axis("width_s", widths, "s")

        def uncertainty(field: str) -> Uncertainty:
            return Uncertainty(fits[0].method, search.level, *(np.array([getattr(f, f"{field}_{end}") for f in fits])
                                                                for end in ("low", "high", "standard")))

        yield steps.Archive(Result("threshold_a", thresholds, "A", axis, uncertainty("midpoint")))
        yield steps.Archive(Result("threshold_width_a", np.array([f.width for f in fits]), "A", axis,
                                   uncertainty("width")))
        yield steps.Archive(Result("threshold_trials", np.array([f.trials for f in fits]), "1", axis))
        weiss, lapicque = fit_weiss(widths, thresholds, standard_a), fit_lapicque(widths, thresholds, standard_a)
        intervals = bootstrap_intervals(widths, thresholds, standard_a, search.level)
        for name, value, units in (
            ("rheobase_a", weiss.rheobase_a, "A"), ("chronaxie_s", weiss.chronaxie_s, "s"),
            ("weiss_rms_residual_a", weiss.rms_residual_a, "A"),
            ("lapicque_rheobase_a", lapicque.rheobase_a, "A"), ("lapicque_chronaxie_s", lapicque.chronaxie_s, "s"),
            ("lapicque_time_constant_s", lapicque.time_constant_s, "s"),
            ("lapicque_rms_residual_a", lapicque.rms_residual_a, "A"),
        ):
            interval = intervals.get(name)
            yield steps.Archive(Result(name, value, units, uncertainty=interval,
                                       exact="" if interval is not None else "descriptive: the fit's residuals"))
