"""f–I curve: firing rate against a constant input current.

At each DC input current, `captures` long records triggered on node m itself (a spike starts
the record). A record's rate is the number of spikes *after* the triggering one over the time they
were counted in (counting the trigger spike would add one spike per record): up to the last spike
where the train runs on to the record's end, since the count over the whole record rounds down
and read a nearly periodic train low by up to one spike per record (1-10 % on the default neuron
with 99 ns records at 12.8-18.8 µA); over the whole record where the train stopped earlier
(analysis/rate.py, counted_time_s). The records table's `duration_s` is that time. A capture that
never triggers (no spike within the timeout) counts as 0 Hz. Near onset the neuron fires a burst
when the input comes on (each spike leaves current in the loop, and firing stops after some 10-30
spikes, a few hundred ns): the scope is armed milliseconds after the level is set, so records see
whether it keeps firing. `settle_records` records at each current can be taken and archived
uncounted for a chip whose burst lasts longer.

A point's rate is the mean of its records' rates, with a Student t interval over the records: a
relaxation oscillator's spike count is far from Poisson (nearly periodic above onset, a few
spikes or none from one record to the next near it), so the records' own spread is what says how
well the rate is known. Where no record had a spike after its trigger, the interval is the exact
Poisson (Garwood) one on zero spikes in the records' total time: [0, 3.69/T] at 95 %.

The onset is where the neuron starts firing repeatedly: a record "fires" when it holds a spike
after its trigger, and P(fires | current) = Φ((I − I_on)/σ) is fitted to every record by binomial
maximum likelihood (procedures/analysis/recovery.py, profile-likelihood interval), after
`refine_steps` extra currents bisect the gap between the highest current where fewer than half
the records fired and the lowest where at least half did. The gain is the slope of the records'
rates against the current over the currents where every record fired (least squares, Student t
interval on the slope).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contracts import steps
from contracts.procedure import PlanContext, Procedure, parameter, refuse, too_little
from contracts.records import Axis, ColumnSpec, Result, TableRows, TableSpec
from contracts.units import format_si, format_si_range
from procedures import _pulsed
from procedures.analysis.rate import counted_time_s, every_record_fired, gain_fit, rate_uncertainty
from procedures.analysis.recovery import fit_recovery
from procedures.analysis.spikes import firing_rate_hz, spike_times_s
from procedures.analysis.statistics import CONFIDENCE_LEVEL
from procedures.design import DesignHints


@dataclass(frozen=True)
class FiringRateParameters:
    current_min_a: float = parameter(0.0, unit="A", doc="smallest DC input; 0 takes 0.2x the design "
                                     "threshold", minimum=0.0)
    current_max_a: float = parameter(0.0, unit="A", doc="largest DC input; 0 takes 1.5x the design "
                                     "threshold", minimum=0.0)
    points: int = parameter(8, unit="1", doc="input currents, evenly spaced", minimum=2, maximum=1000)
    captures: int = parameter(6, unit="1", doc="records per input current", minimum=1, maximum=1000)
    settle_records: int = parameter(0, unit="1", doc="records taken at each current before those counted (archived, "
                                    "counted 0), for a chip whose burst when the input comes on outlasts the time "
                                    "from setting the level to arming the scope (milliseconds on a bench)",
                                    minimum=0, maximum=1000)
    refine_steps: int = parameter(3, unit="1", doc="extra currents bisecting the gap where repeated firing starts",
                                  minimum=0, maximum=20)
    record_s: float = parameter(100e-9, unit="s", doc="record length", minimum=1e-9, maximum=1e-3)
    pretrigger_s: float = _pulsed.pretrigger_s_parameter(1e-9)
    sample_rate_hz: float = _pulsed.sample_rate_hz_parameter(10e9)
    capture_timeout_s: float = parameter(0.05, unit="s", doc="no spike within this: 0 Hz", minimum=1e-3,
                                         maximum=60.0)
    bias_a: float = _pulsed.bias_a_parameter()
    detect_v: float = _pulsed.detect_v_parameter("spike threshold at node m (also the trigger level); 0 takes 0.5x "
                                                 "the design spike amplitude")
    ramp_a_per_s: float = _pulsed.ramp_a_per_s_parameter()
    traces_archived_max: int = _pulsed.traces_archived_max_parameter()


#: What is archived with each capture's traces: which capture, its DC input and the spikes
#: counted after the triggering one.
TRACE_COLUMNS = {_pulsed.CAPTURE_INDEX: ColumnSpec("1", "i8"), "input_current_a": ColumnSpec("A"),
                 "spikes": ColumnSpec("1", "i8"), "counted": ColumnSpec("1", "i1")}


class FiringRate(Procedure):
    name = "firing_rate"
    minimum_valid_data = "repeated firing (a rate above 0 Hz) at one input current at least"
    Parameters = FiringRateParameters

    def _records(self) -> _pulsed.CaptureRecords:
        """Up to traces_archived_max triggered records, spread over the run."""
        p = self.parameters
        return _pulsed.CaptureRecords(self._settings(DesignHints.from_chip(None)), TRACE_COLUMNS,
                                      archived_max=p.traces_archived_max,
                                      planned=(p.points + p.refine_steps) * (p.settle_records + p.captures))

    def declare(self, context: PlanContext | None = None):
        return self._records().spec(), {"records": TableSpec(
            {"input_current_a": ColumnSpec("A"), "spikes": ColumnSpec("1", "i8"),
             "duration_s": ColumnSpec("s"), "rate_hz": ColumnSpec("Hz"), "counted": ColumnSpec("1", "i1")},
            axis="input_current_a", signal="rate_hz")}

    def check_parameters(self) -> None:
        p = self.parameters
        if p.current_min_a and p.current_max_a and p.current_min_a >= p.current_max_a:
            raise refuse(self.name, "current_min_a, current_max_a", f"current_min_a {p.current_min_a:.4g} A must be "
                                                                    f"below current_max_a {p.current_max_a:.4g} A")
        if p.pretrigger_s >= p.record_s:
            raise refuse(self.name, "pretrigger_s, record_s", f"pretrigger_s {p.pretrigger_s:.4g} s must be below "
                                                              f"record_s {p.record_s:.4g} s")
        _pulsed.check_captures(self.name, "record_s, sample_rate_hz", self._settings(DesignHints.from_chip(None)), 1, 1)

    def check_bound(self, context: PlanContext) -> None:
        currents = self.currents_a(DesignHints.from_chip(context.chip_design))
        if not currents[0] < currents[-1]:
            raise refuse(self.name, "current_min_a, current_max_a",
                         f"the range {currents[0]:.4g} A to {currents[-1]:.4g} A (0 takes the design value) is "
                         "empty or reversed")

    def _settings(self, design: DesignHints) -> _pulsed.CaptureSettings:
        p = self.parameters
        return _pulsed.CaptureSettings.for_design(design, p.record_s, p.pretrigger_s, sample_rate_hz=p.sample_rate_hz,
                                                  capture_timeout_s=p.capture_timeout_s)

    def currents_a(self, design: DesignHints) -> np.ndarray:
        p = self.parameters
        return np.linspace(p.current_min_a or 0.2 * design.threshold_a,
                           p.current_max_a or 1.5 * design.threshold_a, p.points)

    def plan(self, context: PlanContext):
        p = self.parameters
        design = DesignHints.from_chip(context.chip_design)
        detect_v = p.detect_v or 0.5 * design.spike_amplitude_v
        settings = self._settings(design)
        currents = self.currents_a(design)
        triggered = 0
        records = self._records()
        bias_a = p.bias_a or design.bias_a
        context.resolve(current_min_a=float(currents[0]), current_max_a=float(currents[-1]), bias_a=bias_a,
                        detect_v=detect_v)
        measured: dict[float, tuple[list[int], list[float]]] = {}     # current -> spikes, durations per record
        planned = currents.size + p.refine_steps

        def measure(current_a: float):
            nonlocal triggered
            yield steps.ConfigureDcInput(current_a=current_a)
            yield steps.SetInputEnabled(enabled=True)
            yield settings.configure(_pulsed.input_range_a(current_a), trigger_on=settings.output_node,
                                     trigger_level=detect_v, with_bias_node=False)
            spikes_per, durations = [], []
            for index in range(p.settle_records + p.captures):
                counted = index >= p.settle_records
                traces = yield steps.Capture(fire=False, timeout_s=p.capture_timeout_s)
                triggered += traces is not None
                spikes, duration_s = 0, p.record_s - p.pretrigger_s
                if traces is not None:
                    time_s = np.asarray(traces.time_s, dtype=float)
                    times = spike_times_s(time_s, traces.node_voltage_v[settings.output_node], detect_v)
                    after = times[times > 2.0 / p.sample_rate_hz]          # after the trigger spike
                    spikes = int(after.size)
                    duration_s = counted_time_s(after, float(time_s[-1]) if time_s.size else duration_s)
                    yield from records.archive(traces, settings, input_current_a=current_a, spikes=spikes,
                                               counted=counted)
                if counted:
                    spikes_per.append(spikes)
                    durations.append(duration_s)
                yield steps.Archive(TableRows("records", {
                    "input_current_a": (np.array([current_a]), "A"), "spikes": (np.array([spikes]), "1"),
                    "duration_s": (np.array([duration_s]), "s"),
                    "rate_hz": (np.array([firing_rate_hz(spikes, duration_s)]), "Hz"),
                    "counted": (np.array([int(counted)]), "1")}))
            measured[current_a] = (spikes_per, durations)
            yield steps.SetInputEnabled(enabled=False)
            rate_hz = float(np.mean([firing_rate_hz(k, t) for k, t in zip(spikes_per, durations)]))
            yield steps.Progress(fraction=len(measured) / planned,
                                 message=f"{format_si(current_a, 'A')}: {format_si(rate_hz, 'Hz')}")

        yield steps.SetBias(current_a=bias_a, ramp_a_per_s=p.ramp_a_per_s)
        for current_a in currents:
            yield from measure(float(current_a))
        # A dry run's flat data never fire: it bisects the middle of the grid instead (the same steps).
        stand_in = (float(currents[currents.size // 2 - 1]), float(currents[currents.size // 2]))
        for _ in range(p.refine_steps):
            gap = onset_gap_a(measured) or (stand_in if context.dry_run else None)
            if gap is None or 0.5 * (gap[0] + gap[1]) in measured:
                break
            yield from measure(0.5 * (gap[0] + gap[1]))
            stand_in = (gap[0], 0.5 * (gap[0] + gap[1]))
        yield steps.SetBias(current_a=0.0, ramp_a_per_s=p.ramp_a_per_s)
        for result in results_of(measured, float(currents[0]), float(currents[-1])):
            yield steps.Archive(result)
        # Minimum of valid data: an f-I curve needs the neuron to fire at some input current.
        if not any(sum(spikes) for spikes, _ in measured.values()) and not context.dry_run:
            raise too_little(self.name, "repeated firing at 1 input current at least",
                             f"0 Hz at all {currents.size} currents from "
                             f"{format_si_range(currents[0], currents[-1], 'A')} ({triggered} of "
                             f"{len(measured) * (p.settle_records + p.captures)} records triggered)")


def _fired(spikes: list[int]) -> int:
    """Records that fired repeatedly (a spike after the triggering one)."""
    return int(np.count_nonzero(np.asarray(spikes) > 0))


def onset_gap_a(measured: dict[float, tuple[list[int], list[float]]]) -> tuple[float, float] | None:
    """(highest current below the first where at least half the records fired, where fewer did;
    that first current), or None when no current or every one has half firing."""
    currents = sorted(measured)
    half = [2 * _fired(measured[c][0]) >= len(measured[c][0]) for c in currents]
    if True not in half:
        return None
    first = half.index(True)
    return None if first == 0 else (currents[first - 1], currents[first])


def results_of(measured: dict[float, tuple[list[int], list[float]]], lowest_a: float,
               highest_a: float) -> list[Result]:
    """The rate at each current with its interval, the onset (fitted P(fires) = 0.5) and the gain
    with theirs; an onset outside the currents is NaN with its bound and a note."""
    currents = np.array(sorted(measured))
    spikes = [np.asarray(measured[c][0], dtype=float) for c in currents]
    durations = [np.asarray(measured[c][1], dtype=float) for c in currents]
    rates, uncertainty = rate_uncertainty(spikes, durations, CONFIDENCE_LEVEL)
    axis = Axis("input_current_a", currents, "A")
    found = [Result("firing_rate_hz", rates, "Hz", axis, uncertainty)]
    fired = np.array([_fired(k) for k in spikes])
    counts = np.array([k.size for k in spikes])
    onset = fit_recovery(currents, fired, counts, CONFIDENCE_LEVEL)
    value, note = onset.midpoint, ""
    side = onset.outside(lowest_a, highest_a)
    if side == "below":
        note = (f"repeated firing in half the records or more down to the lowest current, "
                f"{format_si(lowest_a, 'A', 3)}: the onset is below it")
        found.append(onset.limit("onset_current_upper_bound_a", side))
    elif side == "above":
        note = (f"repeated firing in fewer than half the records up to the highest current, "
                f"{format_si(highest_a, 'A', 3)}: the onset is above it")
        found.append(onset.limit("onset_current_lower_bound_a", side))
    if note:
        value = np.nan
        found.append(Result("onset_note", note, ""))
    found.append(Result("onset_current_a", value, "A", uncertainty=onset.midpoint_uncertainty()))
    found.append(Result("onset_width_a", onset.width if not note else np.nan, "A",
                        uncertainty=onset.width_uncertainty()))
    every = every_record_fired(currents, spikes)
    gain = gain_fit(currents[every], [k for k, e in zip(spikes, every) if e],
                    [d for d, e in zip(durations, every) if e], CONFIDENCE_LEVEL)
    found.append(Result("firing_gain_hz_per_a", gain.slope_hz_per_a, "Hz/A", uncertainty=gain.uncertainty))
    return found
