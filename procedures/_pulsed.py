"""Plan pieces shared by the pulsed procedures: the parameters they share, capture set-up,
averaged sub-threshold reference responses, spike counting against them, the check that the
neuron fires at all, and the one way a capture becomes a trace record (`CaptureRecords`).

Sub-plans are generators used with `yield from`; they return what they measured. They keep
their step count independent of the replies (a capture that never triggers counts as a
trial without a spike), so dry-run estimates hold; the recovery from a wire that does not
fire (`reference_and_firing`) adds steps, and a threshold search stops early once its
threshold is as precise as asked: its trials_max bounds it, and a dry run (whose flat data
never fire) takes all of them, so its estimate is the upper bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from contracts import steps
from contracts.procedure import (
    SAMPLE_RATE_MAX_HZ,
    MeasurementError,
    check_record,
    parameter,
    refuse,
)
from contracts.records import ColumnSpec, Result, TableRows, TableSpec, TraceBlock, TraceCodes, TraceSpec, Uncertainty
from contracts.units import format_si, format_si_range
from procedures.analysis.spikes import has_spike, linear_excess_v
from procedures.analysis.psychometric import PsiSearch, PsychometricFit
from procedures.analysis.statistics import CONFIDENCE_LEVEL
from procedures.design import DesignHints, documented_threshold_a

#: Scope sample rate used by default (the Infiniium's 20 GS/s).
DEFAULT_SAMPLE_RATE_HZ = 20e9
#: Bias cycles through 0 A tried when a burst that must fire does not, before giving up.
LATCH_CYCLES = 2
#: Period of a single-pulse burst (what the generator's timing rules apply to).
SINGLE_PULSE_PERIOD_S = 1e-6
#: Edge times a pulse's width and the gap after it must each hold (Keysight: 10-90 % edges
#: take 0.625 of the 0-100 % ramp).
EDGE_FIT = 1.6


# -- parameters the pulsed procedures share ---------------------------------------------------
# Each returns a fresh dataclass field (a field belongs to one class). Where procedures give a
# parameter another default or meaning, they pass it; name, unit and bounds are declared here.

def threshold_a_parameter() -> Any:
    return parameter(0.0, unit="A", doc="firing threshold at this width (from strength_duration); 0 takes the "
                     "chip file's documented threshold, else a quick search at this width before measuring",
                     minimum=0.0)


def threshold_factor_parameter(default: float) -> Any:
    return parameter(default, unit="1", doc="pulse amplitude in thresholds", minimum=1.0, maximum=3.0)


def width_s_parameter(doc: str) -> Any:
    return parameter(2e-9, unit="s", doc=doc, minimum=1e-10, maximum=1e-6)


def edge_s_parameter() -> Any:
    return parameter(1e-9, unit="s", doc="pulse edge (10-90 %)", minimum=1e-11, maximum=1e-6)


def trials_parameter(default: int, doc: str) -> Any:
    return parameter(default, unit="1", doc=doc, minimum=1, maximum=1000)


def reference_captures_parameter(default: int, doc: str, maximum: int = 1000) -> Any:
    return parameter(default, unit="1", doc=doc, minimum=1, maximum=maximum)


def bias_a_parameter(doc: str = "DC bias; 0 takes the design bias") -> Any:
    return parameter(0.0, unit="A", doc=doc, minimum=0.0)


def detect_v_parameter(doc: str = "spike detection level; 0 takes 0.3x the design spike amplitude") -> Any:
    return parameter(0.0, unit="V", doc=doc, minimum=0.0)


def pretrigger_s_parameter(default: float, doc: str = "record before the trigger") -> Any:
    return parameter(default, unit="s", doc=doc, minimum=0.0)


def sample_rate_hz_parameter(default: float) -> Any:
    return parameter(default, unit="Hz", doc="scope sample rate", minimum=1e6, maximum=SAMPLE_RATE_MAX_HZ)


#: How long after a pulse a spike may come (a spike window's default extension).
SPIKE_AFTER_S = 10e-9


def spike_after_s_parameter(doc: str) -> Any:
    return parameter(SPIKE_AFTER_S, unit="s", doc=doc, minimum=0.0)


def ramp_a_per_s_parameter() -> Any:
    return parameter(1e-3, unit="A/s", doc="bias ramp rate", minimum=1e-9)


#: Captures whose raw traces a pulsed procedure archives by default: a few hundred kB per run,
#: enough to look again at what the analysis saw (energy_per_spike archives every capture).
TRACES_ARCHIVED_MAX = 32


def traces_archived_max_parameter() -> Any:
    return parameter(TRACES_ARCHIVED_MAX, unit="1", doc="captures whose raw traces are archived, spread evenly "
                     "over the run (every k-th capture); 0 archives none", minimum=0, maximum=100_000)


def check_timing(procedure: str, names: str, width_s: float, edge_s: float,
                 period_s: float = SINGLE_PULSE_PERIOD_S) -> None:
    """Refuse a pulse the generator cannot make: edges longer than the width, or a width with
    its trailing edge that does not fit in the period."""
    if EDGE_FIT * edge_s > width_s:
        raise refuse(procedure, names, f"width {width_s:.4g} s is shorter than {EDGE_FIT:g} x edge_s "
                                       f"({EDGE_FIT * edge_s:.4g} s): the edges do not fit in the pulse")
    if width_s + EDGE_FIT * edge_s > period_s:
        raise refuse(procedure, names, f"width {width_s:.4g} s + {EDGE_FIT:g} x edge_s {edge_s:.4g} s does not fit "
                                       f"in the pulse period {period_s:.4g} s")


def check_captures(procedure: str, names: str, settings: CaptureSettings, nodes: int, kept: int) -> None:
    """Refuse records the scope or the memory limit cannot hold: `kept` captures of `nodes`
    chip nodes plus the input monitor and the time axis."""
    check_record(procedure, names, settings.record_length, nodes + 2, kept)


#: Full scale of the recorded chip nodes, in the design's spike amplitudes.
OUTPUT_RANGE_SPIKES = 4


@dataclass(frozen=True)
class CaptureSettings:
    """Chip-side scope set-up shared by a procedure's captures."""
    output_node: str
    bias_node: str
    output_range_v: float
    record_s: float
    pretrigger_s: float
    sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ
    capture_timeout_s: float = 2.0

    @classmethod
    def for_design(cls, design: DesignHints, record_s: float, pretrigger_s: float,
                   **options: float) -> CaptureSettings:
        """The design's output and bias nodes, recorded at OUTPUT_RANGE_SPIKES spike amplitudes
        full scale (options: sample_rate_hz, capture_timeout_s)."""
        return cls(design.output_node, design.bias_node, OUTPUT_RANGE_SPIKES * design.spike_amplitude_v,
                   record_s=record_s, pretrigger_s=pretrigger_s, **options)

    @property
    def record_length(self) -> int:
        return max(16, int(round(self.record_s * self.sample_rate_hz)))

    def configure(self, input_range_a: float, *, trigger_on: str = "input",
                  trigger_level: float = 0.5, with_bias_node: bool = True) -> steps.ConfigureCapture:
        nodes = {self.output_node: self.output_range_v}
        if with_bias_node:
            nodes[self.bias_node] = self.output_range_v
        return steps.ConfigureCapture(
            node_ranges_v=nodes, input_range_a=input_range_a, record_length=self.record_length,
            sample_rate_hz=self.sample_rate_hz, pretrigger_s=self.pretrigger_s,
            trigger_on=trigger_on, trigger_level=trigger_level)


@dataclass(frozen=True)
class Response:
    """Mean of several captures at one amplitude (zeros when none triggered)."""
    amplitude_a: float
    time_s: np.ndarray
    output_v: np.ndarray
    bias_node_v: np.ndarray
    input_a: np.ndarray
    count: int


#: Smallest monitor full scale, as current at the chip: on the shipped wiring (20 dB and 2 kohm
#: in, a -20 dB pick-off) 10 uA is 20 mV at the scope; a 1 uA input asked 5 mV, below the
#: Infiniium's 8 mV minimum range, and the run failed configuring the scope.
INPUT_RANGE_MIN_A = 10e-6


def input_range_a(amplitude_a: float) -> float:
    """Monitor full scale for a pulse of amplitude_a (the pulse sits in the upper half)."""
    return max(2.5 * abs(amplitude_a), INPUT_RANGE_MIN_A)


def pulses(amplitude_a: float, width_s: float, edge_s: float, *, count: int = 1,
           spacing_s: float = 1e-6) -> steps.ConfigurePulses:
    return steps.ConfigurePulses(current_a=amplitude_a, width_s=width_s, edge_s=edge_s,
                                 period_s=spacing_s, count=count)


#: Steps to yield for one capture as it arrives (e.g. archiving it at once).
OnCapture = Callable[[steps.ChipTraces], Iterable[steps.Step]]


def captures(settings: CaptureSettings, count: int, on_capture: OnCapture | None = None, *, keep: bool = True):
    """`count` captures; returns the traces that triggered (each passed to on_capture first;
    with keep=False none is returned, so a long set need not fit in memory at once)."""
    found = []
    for _ in range(count):
        traces = yield steps.Capture(fire=True, timeout_s=settings.capture_timeout_s)
        if traces is not None:
            if keep:
                found.append(traces)
            if on_capture is not None:
                yield from on_capture(traces)
    return found


def mean_response(settings: CaptureSettings, amplitude_a: float, traces: list) -> Response:
    n = settings.record_length
    if not traces:
        time_s = -settings.pretrigger_s + np.arange(n) / settings.sample_rate_hz
        zeros = np.zeros(n)
        return Response(amplitude_a, time_s, zeros, zeros, zeros, 0)

    def mean(get) -> np.ndarray:
        return np.mean([np.asarray(get(t), dtype=float) for t in traces], axis=0)

    bias = settings.bias_node
    return Response(amplitude_a, np.asarray(traces[0].time_s, dtype=float),
                    mean(lambda t: t.node_voltage_v[settings.output_node]),
                    mean(lambda t: t.node_voltage_v.get(bias, np.zeros(n))),
                    mean(lambda t: t.input_a), len(traces))


def captures_of(settings: CaptureSettings, burst: steps.ConfigurePulses, count: int,
                on_capture: OnCapture | None = None, *, keep: bool = True):
    """Configure `burst` and the scope for it, capture `count` times; the traces that triggered."""
    yield burst
    yield settings.configure(input_range_a(burst.current_a))
    return (yield from captures(settings, count, on_capture, keep=keep))


def reference_response(settings: CaptureSettings, burst: steps.ConfigurePulses, count: int,
                       on_capture: OnCapture | None = None):
    """Configure `burst` (a sub-threshold amplitude), capture `count` times, return the mean."""
    found = yield from captures_of(settings, burst, count, on_capture)
    return mean_response(settings, burst.current_a, found)


@dataclass(frozen=True)
class Firing:
    """Reference captures and their mean, then the captures of a burst that should fire."""
    reference_traces: list
    reference: Response
    traces: list
    spikes: list[int]            # per capture of the burst
    attempt: int = 0             # bias cycles before these sets

    @property
    def fired(self) -> bool:
        return any(self.spikes)


class FiringStream(Protocol):
    """What a plan does with each capture of reference_and_firing as it arrives (archive it):
    `attempt` counts the bias cycles before it, so captures a later cycle made void can be told."""

    def reference(self, traces: steps.ChipTraces, attempt: int) -> Iterable[steps.Step]: ...

    def firing(self, traces: steps.ChipTraces, reference: Response, spikes: int,
               attempt: int) -> Iterable[steps.Step]: ...


def reference_and_firing(settings: CaptureSettings, reference_burst: steps.ConfigurePulses, reference_count: int,
                         burst: steps.ConfigurePulses, count: int,
                         spikes_in: Callable[[steps.ChipTraces, Response], int], *, dry_run: bool,
                         stream: FiringStream | None = None, keep_firing: bool = True):
    """Reference captures, then `count` captures of `burst`, which should fire.

    If none of them spikes, a wire may be latched (held resistive by its own bias current): the
    bias is cycled through 0 A, which frees it, and both sets are taken again, since a reference
    taken while latched is no reference either. After LATCH_CYCLES cycles the last sets are
    returned as they are; the caller decides (`not_firing` is the error to raise)."""
    for attempt in range(LATCH_CYCLES + 1):
        reference_traces = yield from captures_of(
            settings, reference_burst, reference_count,
            None if stream is None else lambda t: stream.reference(t, attempt))
        reference = mean_response(settings, reference_burst.current_a, reference_traces)
        spikes: list[int] = []          # counted once per capture, as it arrives

        def counted(traces: steps.ChipTraces) -> Iterable[steps.Step]:
            spikes.append(int(spikes_in(traces, reference)))
            return () if stream is None else stream.firing(traces, reference, spikes[-1], attempt)

        traces = yield from captures_of(settings, burst, count, counted, keep=keep_firing)
        firing = Firing(reference_traces, reference, traces, spikes, attempt)
        if firing.fired or dry_run or attempt == LATCH_CYCLES:
            return firing
        yield steps.CycleBias()
    raise AssertionError("unreachable")


def not_firing(amplitude_a: float, triggered: int, tried: int, settings_hint: str) -> MeasurementError:
    """The error of a plan whose burst never fired (`tried` captures of the last attempt,
    `triggered` of them triggered the scope), even after the bias cycles."""
    if not triggered:
        return MeasurementError(
            f"the scope never triggered in {tried} captures at {format_si(amplitude_a, 'A')} (bias cycled to 0 A "
            f"{LATCH_CYCLES} times between tries): check the input pulse and the monitor channel's wiring")
    return MeasurementError(
        f"no spike in {triggered} of {tried} captures at {format_si(amplitude_a, 'A')}, with the bias cycled to 0 A "
        f"{LATCH_CYCLES} times between tries: a wire is latched, or the neuron does not fire at these "
        f"settings ({settings_hint})")


def spike_seen(traces: steps.ChipTraces, settings: CaptureSettings, reference: Response,
               amplitude_a: float, detect_v: float, window_s: tuple[float, float]) -> bool:
    """Does the output show more than the scaled linear response, inside the window?"""
    output_v = np.asarray(traces.node_voltage_v[settings.output_node], dtype=float)
    scale = amplitude_a / reference.amplitude_a if reference.amplitude_a else 0.0
    ref = reference.output_v if reference.output_v.shape == output_v.shape else None
    excess = linear_excess_v(output_v, ref, scale)
    return has_spike(traces.time_s, excess, detect_v, window_s)


def spike_count(settings: CaptureSettings, burst: steps.ConfigurePulses, trials: int,
                reference: Response, detect_v: float, window_s: tuple[float, float],
                on_capture: Callable[[steps.ChipTraces, bool], Iterable[steps.Step]] | None = None):
    """Fire `burst` `trials` times; return how many captures showed a spike in the window (each
    capture, with whether it did, passed to on_capture as it arrives)."""
    seen: list = []

    def counted(traces: steps.ChipTraces) -> Iterable[steps.Step]:
        seen.append(spike_seen(traces, settings, reference, burst.current_a, detect_v, window_s))
        return () if on_capture is None else on_capture(traces, bool(seen[-1]))

    yield from captures_of(settings, burst, trials, counted, keep=False)
    return sum(seen)


# -- the threshold at one width: an adaptive psychometric search ------------------------------
# strength_duration measures the threshold this way at each width; a pulsed procedure run
# without a threshold (none handed on, none given, none in the chip file) does the same once,
# coarser, at its own width before it measures (`threshold_for`).

#: The bracket of a threshold search, in design thresholds (the design value is a long-pulse
#: estimate: short pulses need more, up to a few times it). It bounds the prior on the threshold.
BRACKET_LOW_THRESHOLDS, BRACKET_HIGH_THRESHOLDS = 0.4, 4.0
#: Trials at the bracket's top that start each search (see threshold_at).
TOP_TRIALS = 3
#: Columns of a search's table: one row per amplitude tried (spikes of trials there), with the
#: bias cycles before it: the data behind each psychometric fit.
PROBABILITY_COLUMNS = {"width_s": ColumnSpec("s"), "amplitude_a": ColumnSpec("A"),
                       "spikes": ColumnSpec("1", "i8"), "trials": ColumnSpec("1", "i8"),
                       "probability": ColumnSpec("1"), "attempt": ColumnSpec("1", "i8")}


def probability_table() -> TableSpec:
    return TableSpec(PROBABILITY_COLUMNS, axis="amplitude_a", signal="probability")


@dataclass(frozen=True)
class ThresholdSearch:
    """How to search for the threshold at one width: the bracket (the prior's range), the
    sub-threshold reference (A0, averaged over reference_captures), the precision to stop at
    (half-width of the threshold's interval at `level`, as a fraction of the threshold), the
    most trials, the spike detection level, and the window after the pulse a spike may come in.
    Each trial is one capture at the amplitude the psi method chose (analysis.psychometric)."""
    low_a: float
    high_a: float
    reference_a: float
    reference_captures: int
    precision: float
    trials_max: int
    detect_v: float
    edge_s: float
    spike_after_s: float
    table: str                   # rows of the search go to this table (PROBABILITY_COLUMNS)
    level: float = CONFIDENCE_LEVEL

    @property
    def captures(self) -> int:
        """Most captures of one attempt at one width (the search may stop before trials_max)."""
        return self.reference_captures + self.trials_max


#: What a plan does with each capture of a search as it arrives (archive it): the capture, whether
#: it is a trial of the search (else a reference), its amplitude, whether it spiked, the attempt.
OnSearchCapture = Callable[[steps.ChipTraces, bool, float, bool, int], Iterable[steps.Step]]


@dataclass(frozen=True)
class Found:
    """A search's outcome at one width: the threshold (NaN when the fit does not locate P = 0.5
    inside the bracket), whether any capture spiked, the bias cycles it took, and the fit (its
    interval, the transition's width, the trials it used)."""
    threshold_a: float
    fired: bool
    attempt: int
    fit: PsychometricFit | None = None


def threshold_at(settings: CaptureSettings, search: ThresholdSearch, width_s: float, attempt: int,
                 on_capture: OnSearchCapture):
    """One attempt: reference captures, then trials one capture each, the first TOP_TRIALS at the
    bracket's top and the others at the amplitude the psi method chooses, until the threshold's
    interval is as narrow as asked or trials_max; archives one row per amplitude tried; returns
    (the fit, whether any capture spiked). The scope is set up again at each new amplitude: its trigger
    level is a fraction of the configured pulse (a stale one moves the time axis, and with it
    the spike window, against the reference)."""
    edge_s = search.edge_s
    window_s = (-edge_s, width_s + 2 * edge_s + search.spike_after_s)
    reference = yield from reference_response(
        settings, pulses(search.reference_a, width_s, edge_s), search.reference_captures,
        lambda t: on_capture(t, False, search.reference_a, False, attempt))
    psi = PsiSearch(search.low_a, search.high_a, level=search.level)
    tally: dict[float, list[int]] = {}          # amplitude -> [spikes, trials]
    amplitude_a = math.nan
    for trial in range(search.trials_max):
        # The first trials fire at the bracket's top: the chip keeps the flux its last pulses left
        # in its loops (the previous width's search), which shifts the threshold for a while, and
        # spikes well above threshold bring it to one state each time. On the emulated default
        # neuron 3 ns read 12 % low without them (and with them at the bracket's middle).
        chosen_a = float(psi.stimuli[-1]) if trial < TOP_TRIALS else psi.next_stimulus()
        if chosen_a != amplitude_a:
            amplitude_a = chosen_a
            yield pulses(amplitude_a, width_s, edge_s)
            yield settings.configure(input_range_a(amplitude_a))
        traces = yield steps.Capture(fire=True, timeout_s=settings.capture_timeout_s)
        # A capture that never triggered is a trial without a spike.
        spike = traces is not None and spike_seen(traces, settings, reference, amplitude_a, search.detect_v,
                                                  window_s)
        if traces is not None:
            yield from on_capture(traces, True, amplitude_a, spike, attempt)
        psi.record(amplitude_a, spike)
        counts = tally.setdefault(amplitude_a, [0, 0])
        counts[0] += int(spike)
        counts[1] += 1
        if psi.done(search.precision)[0]:
            break
    amplitudes = np.array(sorted(tally))
    spikes = np.array([tally[a][0] for a in amplitudes])
    trials = np.array([tally[a][1] for a in amplitudes])
    yield steps.Archive(TableRows(search.table, {
        "width_s": (np.full(amplitudes.size, width_s), "s"), "amplitude_a": (amplitudes, "A"),
        "spikes": (spikes, "1"), "trials": (trials, "1"), "probability": (spikes / trials, "1"),
        "attempt": (np.full(amplitudes.size, attempt), "1")}))
    return psi.fit(), bool(spikes.any())


def threshold_search(settings: CaptureSettings, search: ThresholdSearch, width_s: float,
                     on_capture: OnSearchCapture, *, dry_run: bool):
    """The threshold at one width (`Found`). A width that never fired, even at the top of the
    bracket, may mean a latched wire: the bias is cycled through 0 A (which frees it) and the
    width searched again, up to LATCH_CYCLES times; rows of an earlier attempt stay in the table
    under their attempt number."""
    for attempt in range(LATCH_CYCLES + 1):
        fit, fired = yield from threshold_at(settings, search, width_s, attempt, on_capture)
        if fired or dry_run or attempt == LATCH_CYCLES:
            return Found(fit.midpoint, fired, attempt, fit)
        yield steps.CycleBias()
    raise AssertionError("unreachable")


# -- a pulsed procedure's threshold: given, documented, or measured in the run -----------------

#: The quick search of a procedure run without a threshold, at the procedure's width: 4
#: reference captures, then the adaptive search to a coarser precision than strength_duration's
#: (95 % interval half-width QUICK_PRECISION of the threshold), at most QUICK_TRIALS_MAX trials.
QUICK_REFERENCE_CAPTURES, QUICK_PRECISION, QUICK_TRIALS_MAX = 4, 0.05, 40
#: Its table, declared by a procedure that will search.
QUICK_SEARCH_TABLE = "threshold_search"
#: Where a threshold came from (`Threshold.source`; the archived `threshold_source` of a search).
SOURCE_PARAMETER = "as given (parameter threshold_a)"
SOURCE_CHIP_FILE = "documented in the chip file"
SOURCE_MEASURED = "measured in this run (quick search)"
SOURCE_DESIGN_ESTIMATE = "estimated from the design (dry run: nothing measured)"


def searches(threshold_a: float, chip_design: Mapping[str, Any] | None) -> bool:
    """Will a procedure with this threshold_a parameter search for its threshold? Only when none
    is given and the chip file documents none (a netlist estimate is no threshold at a width)."""
    return not threshold_a and documented_threshold_a(chip_design) is None


def quick_search_captures(threshold_a: float, chip_design: Mapping[str, Any] | None) -> int:
    """Most captures the quick search adds to a run's plan (first attempt): 0 when it does not search."""
    if not searches(threshold_a, chip_design):
        return 0
    return QUICK_REFERENCE_CAPTURES + QUICK_TRIALS_MAX


def quick_search(design: DesignHints, detect_v: float, edge_s: float, spike_after_s: float) -> ThresholdSearch:
    low_a, high_a = BRACKET_LOW_THRESHOLDS * design.threshold_a, BRACKET_HIGH_THRESHOLDS * design.threshold_a
    return ThresholdSearch(low_a, high_a, low_a, QUICK_REFERENCE_CAPTURES, QUICK_PRECISION, QUICK_TRIALS_MAX,
                           detect_v, edge_s, spike_after_s, QUICK_SEARCH_TABLE)


@dataclass(frozen=True)
class Threshold:
    """The threshold a pulsed procedure takes its amplitudes from, where it came from, and its
    interval when it was measured in the run (None when given or documented)."""
    value_a: float
    source: str
    uncertainty: Uncertainty | None = None

    def describe(self) -> str:
        return f"threshold_a {format_si(self.value_a, 'A')} {self.source}"


def threshold_for(procedure: str, threshold_a: float, chip_design: Mapping[str, Any] | None, design: DesignHints,
                  settings: CaptureSettings, width_s: float, edge_s: float, detect_v: float,
                  spike_after_s: float, on_capture: OnSearchCapture, *, dry_run: bool):
    """The threshold at `width_s` (`Threshold`): the parameter if given, else the chip file's
    documented one, else a quick search (input on for it, off after; the bias must be set).

    A search archives its rows (QUICK_SEARCH_TABLE), its captures (on_capture), and the results
    `threshold_a` (with the search's interval), `threshold_width_a` (the psychometric curve's σ),
    `threshold_trials` and `threshold_source`; it fails the run, saying what to give, when it finds
    no threshold inside its bracket. A dry run, whose flat data never fire, takes the same steps
    and goes on with the design estimate."""
    if threshold_a:
        return Threshold(threshold_a, SOURCE_PARAMETER)
    documented = documented_threshold_a(chip_design)
    if documented is not None:
        return Threshold(documented, SOURCE_CHIP_FILE)
    search = quick_search(design, detect_v, edge_s, spike_after_s)
    yield pulses(search.reference_a, width_s, edge_s)       # levels first, then the output on
    yield steps.SetInputEnabled(enabled=True)
    found = yield from threshold_search(settings, search, width_s, on_capture, dry_run=dry_run)
    yield steps.SetInputEnabled(enabled=False)
    fit = found.fit
    if not math.isnan(found.threshold_a):
        threshold = Threshold(found.threshold_a, SOURCE_MEASURED, fit.midpoint_uncertainty())
    elif dry_run:           # the same steps as a run that found one
        threshold = Threshold(design.threshold_a, SOURCE_DESIGN_ESTIMATE)
    else:
        raise search_failed(procedure, search, width_s, found)
    yield steps.Archive(Result("threshold_a", threshold.value_a, "A", uncertainty=threshold.uncertainty))
    yield steps.Archive(Result("threshold_width_a", fit.width, "A", uncertainty=fit.width_uncertainty()))
    yield steps.Archive(Result("threshold_trials", fit.trials, "1"))
    yield steps.Archive(Result("threshold_source", threshold.source, ""))
    yield steps.Progress(fraction=0.0, message=f"threshold {format_si(threshold.value_a, 'A', 3)} (quick search)")
    return threshold


def search_failed(procedure: str, search: ThresholdSearch, width_s: float, found: Found) -> MeasurementError:
    """What a quick search that found no threshold says: where it looked, what to give instead."""
    bracket = (f"{format_si_range(search.low_a, search.high_a, 'A')} "
               f"({BRACKET_LOW_THRESHOLDS:g} to {BRACKET_HIGH_THRESHOLDS:g} x the design threshold)")
    if not found.fired:
        what = (f"no capture spiked up to {format_si(search.high_a, 'A')}, with the bias cycled to 0 A "
                f"{found.attempt} times")
    else:
        what = (f"the psychometric fit of {found.fit.trials if found.fit else 0} trials does not place P = 0.5 "
                "inside the bracket")
    return MeasurementError(
        f"{procedure}: no threshold_a given and the chip file documents none, so the run searched for it: at "
        f"{width_s * 1e9:.3g} ns, {bracket}, {what}. Give threshold_a (strength_duration measures it), or "
        "check bias_a and detect_v")


# -- captures as trace records ----------------------------------------------------------------

#: Trace channels of a pulsed capture: the output node and the bias node in volts (named as on
#: the default neuron; the run's chip file says which nodes they are) and the input current,
#: from the monitor, in amperes.
CAPTURE_CHANNELS = ("m", "c", "input_a")
CAPTURE_UNITS = ("V", "V", "A")
#: The per-trace column `CaptureRecords.archive` fills itself: the capture's index in the run
#: (which of them were archived, when only every k-th is).
CAPTURE_INDEX = "capture"


class CaptureRecords:
    """The one adapter from captured chip traces (`steps.ChipTraces`, as the executor returns
    them) to trace records, for every pulsed procedure.

    `spec()` is what the procedure declares; `archive(traces, settings, **values)` yields the
    step that archives one capture, with a value for each declared column (a `capture` column,
    if declared, gets the capture's index in the run). Every capture is archived when
    `archived_max` is None; else at most `archived_max`, every k-th of the `planned` captures
    (k = planned / archived_max rounded up), so they spread over the run. `planned` also sizes
    the archive's chunks (captures a bias cycle adds beyond it only take more chunks). All
    records share the longest one's time axis (`longest`: pretrigger, sample rate and record
    length); a shorter record is padded with NaN at its end, and a node a capture did not record
    is NaN throughout: what is archived is what was measured.
    """

    def __init__(self, longest: CaptureSettings, columns: Mapping[str, ColumnSpec], *,
                 archived_max: int | None = None, planned: int = 0) -> None:
        self.time_s = -longest.pretrigger_s + np.arange(longest.record_length) / longest.sample_rate_hz
        self.columns = dict(columns)
        self.archived_max = archived_max
        self.stride = max(1, math.ceil(planned / archived_max)) if archived_max else 1
        self.offered = self.archived = 0
        expected = [n for n in (archived_max, planned) if n]
        self._spec = TraceSpec(CAPTURE_CHANNELS, self.time_s, self.columns, CAPTURE_UNITS,
                               traces_max=min(expected) if expected else archived_max)

    def spec(self) -> TraceSpec | None:
        """What the procedure declares; None when it archives no capture (archived_max 0)."""
        return None if self.archived_max == 0 else self._spec

    def block(self, traces: steps.ChipTraces, settings: CaptureSettings, **values: Any) -> TraceBlock:
        """One capture as a one-trace block: `values` gives one value per declared column."""
        if set(values) != set(self.columns):
            raise ValueError(f"capture record: values for {sorted(values)}, declared {sorted(self.columns)}")
        columns = {name: (np.array([values[name]], dtype=spec.dtype), spec.units)
                   for name, spec in self.columns.items()}
        n = self.time_s.size
        nodes = traces.node_voltage_v
        recorded = (nodes.get(settings.output_node), nodes.get(settings.bias_node), traces.input_a)
        quantized = (traces.node_quantized.get(settings.output_node), traces.node_quantized.get(settings.bias_node),
                     traces.input_quantized)
        if all(q is not None for q, channel in zip(quantized, recorded) if channel is not None):
            return self._spec.block_of_codes(TraceCodes.of_channels(quantized, n), columns)
        samples = np.full((1, len(CAPTURE_CHANNELS), n), np.nan)
        for row, channel in enumerate(recorded):
            if channel is not None:
                channel = np.asarray(channel, dtype=float)[:n]
                samples[0, row, :channel.size] = channel
        return self._spec.block(samples, columns)

    def archive(self, traces: steps.ChipTraces, settings: CaptureSettings,
                **values: Any) -> tuple[steps.Step, ...]:
        """The step archiving this capture if it is one of those kept (see the class doc), else
        none. Every capture of the run passes through here once, kept or not."""
        index = self.offered
        self.offered += 1
        if self.archived_max is not None and (self.archived >= self.archived_max or index % self.stride):
            return ()
        self.archived += 1
        if CAPTURE_INDEX in self.columns:
            values = {CAPTURE_INDEX: index, **values}
        return (steps.Archive(self.block(traces, settings, **values)),)
