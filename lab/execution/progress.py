"""How far a run and a campaign are, and how much wall time is left: estimates, no display.

A run's expected wall time comes from its dry run: each step's lab time over the clock's
acceleration (bias ramps in real time), plus what the step costs besides (instrument round
trips, one reading per level of a bias sweep, a capture record's transfer), and what the run
costs besides its steps: its dry run before them (timed when the campaign was planned), the
archive opened with the station's snapshot, and after them every role's safe state and the
archive closed. `WallModel` owns the per-step figures.

A run's fraction done is the plan's own, where it reports one (`steps.Progress`, in the
procedure's units: switching events collected, widths measured), and between two reports it
heads for the next report the dry run made (or the end) as the expected wall time of the steps
carried out since covers what the dry run expected between the two, stopping short of it until
the plan reports it (`FRACTION_BEFORE_REPORT`); it never goes back. Time left is the remaining
fraction over the rate measured in the recent part of the run (the latest `WINDOW_SHARE` of its
elapsed time and at least its last `WINDOW_CHANGES_MIN` steps, so a slow start or a quick first
step is forgotten), blended (geometrically) with the dry run's estimate while little of the run
is done. A plan whose dry run is only its most (adaptive: trials until a threshold is precise,
sweeps until enough events) is thus timed by what it reports, not by its dry run's step count.

The campaign's time left is the current run's plus the runs still to come: each one's dry-run
estimate of its steps times the step rates measured so far (`StepRates`: measured over expected
wall time of the steps carried out, the running run's included, so a loaded machine shows at
once; per kind of step, since the model errs differently for a sweep's levels, a capture's
record and an archive append), plus its dry run and the other costs besides steps that the
runs measured.
Pure logic: every method takes the present time (`now_s`, any monotonic clock).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from contracts import steps
from lab.execution.dry_run import REAL_TIME_STEPS, DryRunReport

#: Wall seconds a step that talks to an instrument costs besides the lab time it waits: a few
#: command round trips (a few ms over GPIB, LAN or the emulator's in-process bus).
INSTRUMENT_STEP_S = 3e-3
#: Per level of a bias sweep: the source's reading (integration and transfer; the emulator
#: solves the chip at every level), measured at ~0.42 ms on the emulated station (a campaign's
#: I–V of ~13,400 readings in 5.6 s, 2026-12-06, once the kernel ran without numba's reference
#: counting; 0.7 ms before, and ~3 ms before the solver's speed-ups, when a prior 4x too high
#: made the campaign's time left 5-6x too long at the I–V's start).
SWEEP_LEVEL_S = 0.42e-3
#: Per sample of a capture record (every recorded channel): its transfer and scaling.
RECORD_SAMPLE_S = 1e-6
#: An archived record: one HDF5 append.
ARCHIVE_STEP_S = 1e-3
#: Per run besides its steps and its dry run, until runs have measured theirs: before the first
#: step, the station lock and the archive opened with the station's snapshot; after the last,
#: every role's safe state and the archive closed.
RUN_HEAD_S = 0.1
RUN_TAIL_S = 0.05
RUN_OVERHEAD_S = RUN_HEAD_S + RUN_TAIL_S
#: Expected wall time of steps (s) that weighs as much as the time measured while little was.
RATE_PRIOR_S = 1.0

#: The recent part of a run whose progress rate predicts the rest (share of its elapsed time),
#: and the fewest changes of its fraction that part holds (a short run's few steps all count).
#: Three quarters, not half: firing_rate's levels above the f–I onset take 2-3x those below, and
#: over the last half of its time the first of them alone set its rate, its time left 2.6x what
#: remained (progress_estimate: worst factors 2.30-3.06 in four runs at half, 1.77-2.39 at three
#: quarters, 2026-12-06). A quick first tenth is still forgotten.
WINDOW_SHARE = 0.75
WINDOW_CHANGES_MIN = 10
#: Until this fraction of a run is done its dry-run estimate weighs in the time left.
TRUST_FRACTION = 0.3
#: The fraction shown stays below this until the run has ended (its ending takes time too).
FRACTION_BEFORE_END = 0.999
#: Between two reports of the plan the fraction covers at most this share of the way to the next.
FRACTION_BEFORE_REPORT = 0.9

_FREE_STEPS = (steps.Progress, steps.Note)


class WallModel:
    """Expected wall seconds per step, from its lab-time estimate (follows the capture set-up
    in effect, whose record size a capture transfers)."""

    def __init__(self, acceleration: float) -> None:
        self.acceleration = acceleration
        self.record_samples = 0

    def step_s(self, step: steps.Step, lab_s: float) -> float:
        if isinstance(step, _FREE_STEPS):
            return 0.0
        if isinstance(step, steps.Archive):
            return ARCHIVE_STEP_S
        wall_s = INSTRUMENT_STEP_S + (lab_s if isinstance(step, REAL_TIME_STEPS) else lab_s / self.acceleration)
        match step:
            case steps.SweepBias(levels_a=levels_a):
                wall_s += SWEEP_LEVEL_S * len(levels_a)
            case steps.ConfigureCapture(record_length=length, node_ranges_v=nodes):
                self.record_samples = length * (len(nodes) + 1)     # the input monitor too
            case steps.Capture(fire=fire, timeout_s=timeout_s):
                # One on the chip's own trigger (not fired) may wait its whole timeout (lab
                # time): the model takes the most, as dry runs do.
                wall_s += RECORD_SAMPLE_S * self.record_samples + (0.0 if fire else timeout_s / self.acceleration)
        return wall_s


def step_kind(step: steps.Step) -> str:
    """What a step's measured rate is kept under (`StepRates`): its kind. A capture on the chip's
    own trigger is a kind of its own: the model takes its whole timeout, and it waits on what the
    chip does (on the emulator: a DC-driven chip simulated until it spikes), where a fired one
    costs about its record."""
    if isinstance(step, steps.Capture) and not step.fire:
        return "Capture on the chip's trigger"
    return type(step).__name__


def steps_wall_s_by_kind(report: DryRunReport, acceleration: float) -> dict[str, float]:
    """Expected wall seconds of a dry-run plan's steps, per kind of step."""
    model, costs = WallModel(acceleration), {}
    for step, lab_s in report.steps:
        kind = step_kind(step)
        costs[kind] = costs.get(kind, 0.0) + model.step_s(step, lab_s)
    return costs


def steps_wall_s(report: DryRunReport, acceleration: float) -> float:
    """Expected wall seconds of a dry-run plan's steps."""
    return sum(steps_wall_s_by_kind(report, acceleration).values())


def report_marks(report: DryRunReport, acceleration: float) -> list[tuple[float, float]]:
    """(expected wall time of the steps before it, fraction) of each `steps.Progress` of a dry
    run: where the plan's reports should come, the fractions never going back."""
    model, done_s, fraction, marks = WallModel(acceleration), 0.0, 0.0, []
    for step, lab_s in report.steps:
        if isinstance(step, steps.Progress):
            fraction = min(max(fraction, step.fraction), 1.0)
            marks.append((done_s, fraction))
        done_s += model.step_s(step, lab_s)
    return marks


def expected_wall_s(report: DryRunReport, acceleration: float) -> float:
    """Expected wall seconds of a run of that plan: its steps and the run's fixed cost."""
    return steps_wall_s(report, acceleration) + RUN_OVERHEAD_S


@dataclass
class StepRates:
    """How much longer than the model expects the steps carried out took: their measured wall
    time over their expected (each step from the end of the one before, so the plan's own
    computation between steps counts), over all steps and per kind of step. Measured on the
    steps actually carried out, so a plan that ends before its dry run's count (adaptive, the
    dry run planning its most) biases it not."""

    wall_s: float = 0.0
    expected_s: float = 0.0
    #: kind of step (`step_kind`) -> [measured wall s, expected wall s] of those carried out
    kinds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, expected_s: float, wall_s: float, kind: str = "") -> None:
        expected_s, wall_s = max(expected_s, 0.0), max(wall_s, 0.0)
        self.expected_s += expected_s
        self.wall_s += wall_s
        measured = self.kinds.setdefault(kind, [0.0, 0.0])
        measured[0] += wall_s
        measured[1] += expected_s

    @property
    def ratio(self) -> float:
        """Measured over expected, drawn toward 1 while little is measured (`RATE_PRIOR_S`)."""
        return (self.wall_s + RATE_PRIOR_S) / (self.expected_s + RATE_PRIOR_S)

    def ratio_of(self, kind: str) -> float:
        """Measured over expected for one kind of step, drawn toward the ratio over all steps
        while little of that kind is measured (a kind no run has carried out yet takes it)."""
        wall_s, expected_s = self.kinds.get(kind, (0.0, 0.0))
        return (wall_s + RATE_PRIOR_S * self.ratio) / (expected_s + RATE_PRIOR_S)

    def expected_s_of(self, costs: Mapping[str, float]) -> float:
        """Expected wall time of steps whose model costs per kind are `costs`, at these rates."""
        return sum(self.ratio_of(kind) * cost_s for kind, cost_s in costs.items())


class RunProgress:
    """One run: its fraction done and the wall time left.

    `steps_s` is the dry run's expected wall time of the steps (the unit of `step_done`),
    `prior_s` the expected wall time of the whole run as the campaign now sees it, of which
    `head_s` before the first step (its dry run, the archive opened) and `tail_s` after the
    last (safe state, archive closed). The steps' measured wall times go to `rates`."""

    def __init__(self, steps_s: float, prior_s: float, now_s: float, rates: StepRates | None = None, *,
                 head_s: float = 0.0, tail_s: float = 0.0, marks: Sequence[tuple[float, float]] = ()) -> None:
        self.steps_s = max(steps_s, 0.0)
        self.marks = list(marks)                 # the dry run's reports (`report_marks`)
        self.prior_s = max(prior_s, 0.0)
        self.head_s, self.tail_s = max(head_s, 0.0), max(tail_s, 0.0)
        self.rates = rates if rates is not None else StepRates()
        self.started_s = now_s
        self.began_s: float | None = None        # the plan's first step started
        self.ended_s: float | None = None
        self.step_count = 0
        self.steps_wall_s = 0.0                  # measured wall time of the steps carried out
        self.message = ""
        self._step_end_s = now_s
        self._done_s = 0.0                       # expected wall time of the steps carried out
        self._anchor_fraction, self._anchor_done_s = 0.0, 0.0   # at the plan's last report
        self._times_s: list[float] = [now_s]     # (time, fraction) at each change
        self._fractions: list[float] = [0.0]
        self._waiting_since_s: float | None = None   # the fraction waits for the plan's next report

    # --- what the runner tells it -------------------------------------------------------------
    def steps_begin(self, now_s: float) -> None:
        """The plan's first step starts: the rate is measured from here (the dry run, lock and
        archive before it are done and cost no fraction)."""
        if self.began_s is None:
            self.began_s = now_s
        if len(self._times_s) == 1:
            self._times_s[0] = now_s
        self._step_end_s = now_s

    def step_done(self, expected_s: float, now_s: float, kind: str = "") -> None:
        """A step of `kind` (`step_kind`), expected to take `expected_s`, ended at `now_s`."""
        if self.began_s is None:                 # no word of the start: the run's own
            self.began_s = self.started_s
        wall_s, self._step_end_s = max(now_s - self._step_end_s, 0.0), now_s
        self.rates.add(expected_s, wall_s, kind)
        self.steps_wall_s += wall_s
        self.step_count += 1
        self._done_s += expected_s
        self._record(now_s)

    def reported(self, fraction: float, message: str, now_s: float) -> None:
        """The plan's own Progress: it anchors the fraction (never below the present one)."""
        self._anchor_fraction = min(max(fraction, self.fraction), 1.0)
        self._anchor_done_s = self._done_s
        self.message = message
        self._record(now_s)

    def end(self, now_s: float) -> None:
        self.ended_s = now_s

    # --- what it tells ------------------------------------------------------------------------
    @property
    def fraction(self) -> float:
        """The plan's last report, and toward its next one (the dry run's next report above it,
        else the end) as the expected wall time of the steps since covers the dry run's between
        the two; never up to the next one until the plan reports it (a plan whose steps take
        longer than its dry run's would otherwise show the run done early)."""
        return self._position()[0]

    def _position(self) -> tuple[float, bool]:
        """(fraction, whether it waits short of the plan's next report: the steps since the last
        one already cover what the dry run had between the two)."""
        if self.ended_s is not None:
            return 1.0, False
        anchor = self._anchor_fraction
        # Where the dry run was at the last report and at the next (without its reports: the
        # steps carried out, and the end).
        behind_s, next_s, target = (0.0 if self.marks else self._anchor_done_s), self.steps_s, 1.0
        reported = False                          # the next is a report (else the end)
        for done_s, fraction in self.marks:
            if fraction > anchor:
                next_s, target, reported = done_s, fraction, True
                break
            if self._anchor_done_s > 0 or fraction > 0:       # not the plan's start
                behind_s = done_s
        left_s = next_s - behind_s
        since = (self._done_s - self._anchor_done_s) / left_s if left_s > 0 else 0.0
        share = min(since, FRACTION_BEFORE_REPORT if reported else 1.0)
        waiting = reported and since >= FRACTION_BEFORE_REPORT
        return min(anchor + (target - anchor) * share, FRACTION_BEFORE_END), waiting

    def elapsed_s(self, now_s: float) -> float:
        return (self.ended_s if self.ended_s is not None else now_s) - self.started_s

    def overhead_s(self) -> tuple[float, float] | None:
        """(before the first step, after the last) measured, once the run has ended; None for a
        run that never began its steps."""
        if self.ended_s is None or self.began_s is None or not self.step_count:
            return None
        return max(self.began_s - self.started_s, 0.0), max(self.ended_s - self._step_end_s, 0.0)

    def measured_left_s(self, now_s: float) -> float | None:
        """Time left of the steps at the rate of the recent window; None before any progress.

        While the fraction waits short of a report the plan is late with (an adaptive search
        taking 80 trials where its dry run had 45), its steps go on and the fraction cannot: the
        rate is the one measured up to that wait, which says nothing of the rest of the run
        (taken for its rate, a 0.2 s wait in strength_duration's first search had the campaign's
        time left at 2.5x what remained)."""
        if self._waiting_since_s is not None:
            now_s = min(now_s, self._waiting_since_s)
        fraction = self.fraction
        elapsed_s = now_s - self._times_s[0]
        if fraction <= 0.0 or elapsed_s <= 0.0:
            return None
        since_s = min(now_s - WINDOW_SHARE * elapsed_s, self._times_s[max(len(self._times_s) - WINDOW_CHANGES_MIN, 0)])
        then = self._fractions[bisect.bisect_right(self._times_s, since_s) - 1]
        if fraction > then:
            rate = (fraction - then) / (now_s - since_s)
        else:                                    # nothing moved in the window (a long step)
            rate = fraction / elapsed_s
        return (1.0 - fraction) / rate

    def left_s(self, now_s: float) -> float:
        """Wall time left: the steps' at the measured rate (the dry run's while little is done),
        and the run's ending."""
        if self.ended_s is not None:
            return 0.0
        if self.began_s is None:
            return self.prior_s
        fraction = self.fraction
        prior_s = max(self.prior_s - self.head_s - self.tail_s, 0.0) * (1.0 - fraction)
        measured_s = self.measured_left_s(now_s)
        if measured_s is None:
            return prior_s + self.tail_s
        if prior_s <= 0.0:
            return measured_s + self.tail_s
        # Geometric: a rate measured over the first few steps, off by a large factor either
        # way, moves the estimate by a fraction of that factor.
        trust = min(fraction / TRUST_FRACTION, 1.0)
        return math.exp(trust * math.log(measured_s) + (1.0 - trust) * math.log(prior_s)) + self.tail_s

    def _record(self, now_s: float) -> None:
        fraction, waiting = self._position()
        if not waiting:
            self._waiting_since_s = None
        elif self._waiting_since_s is None:
            self._waiting_since_s = now_s
        if fraction != self._fractions[-1]:
            self._times_s.append(now_s)
            self._fractions.append(fraction)


@dataclass
class _Planned:
    name: str
    steps_s: dict[str, float]               # model's wall time of its steps per kind (its dry run's)
    dry_run_s: float = 0.0                  # wall time its dry run took: planning, then at its start
    state: str = "waiting"                  # waiting, running, ended, skipped


@dataclass
class CampaignProgress:
    """The campaign's runs in order with their steps' expected wall times: time left and fraction.

    A run to come is expected to take its steps' expected wall time times the step rates
    measured so far (`rates`, per kind of step), its dry run, and the costs besides steps that
    runs measured.
    The runner calls `start` and `end` around each run; a run never started before a later one
    starts was skipped. Listeners are called after every change (a bar refreshes)."""

    planned: list[_Planned]
    started_s: float
    current: RunProgress | None = None
    listeners: list[Callable[[], None]] = field(default_factory=list)
    rates: StepRates = field(default_factory=StepRates)
    #: Measured wall time of each run before its first step besides its dry run, and after its
    #: last step.
    heads_s: list[float] = field(default_factory=list)
    tails_s: list[float] = field(default_factory=list)
    #: Wall time between a run's end and the next one's start (hand-offs, the report writer
    #: started): measured, and expected again before each run to come.
    gaps_s: list[float] = field(default_factory=list)
    ended_s: float | None = None

    @classmethod
    def of(cls, planned: Iterable[tuple[str, float | Mapping[str, float]]
                                  | tuple[str, float | Mapping[str, float], float]], now_s: float) -> CampaignProgress:
        """`planned`: each run in order as (name, expected wall time of its steps per kind
        (`steps_wall_s_by_kind`; a number: of one kind) [, wall time its dry run took])."""
        return cls([_Planned(name, _costs(steps_s), *(max(x, 0.0) for x in rest))
                    for name, steps_s, *rest in planned], now_s)

    @property
    def head_s(self) -> float:
        """Expected wall time of a run before its first step besides its dry run: the mean of
        those measured, with the model's `RUN_HEAD_S` counted as one more."""
        return (sum(self.heads_s) + RUN_HEAD_S) / (len(self.heads_s) + 1)

    @property
    def tail_s(self) -> float:
        """Expected wall time of a run after its last step, likewise."""
        return (sum(self.tails_s) + RUN_TAIL_S) / (len(self.tails_s) + 1)

    @property
    def gap_s(self) -> float:
        """Expected wall time between two runs: the mean of those measured, with one more of
        none counted, since the first may hold one-time costs (imports, a first figure)."""
        return sum(self.gaps_s) / (len(self.gaps_s) + 1)

    def expected_s(self, entry: _Planned) -> float:
        """Expected wall time of a planned run, as measured so far."""
        return entry.dry_run_s + self.head_s + self.rates.expected_s_of(entry.steps_s) + self.tail_s

    def start(self, name: str, report: DryRunReport, acceleration: float, now_s: float, *,
              dry_run_s: float | None = None) -> RunProgress:
        """A run began at `now_s` with its dry run (hand-offs may have changed it since the plan),
        which took `dry_run_s` (None: as long as when the campaign was planned). The hand-offs
        can make it take much longer or shorter than then; what it took is not a cost of the
        runs to come, so `heads_s` leaves it out."""
        index = self._index(name)
        for earlier in self.planned[:index]:
            if earlier.state == "waiting":
                earlier.state = "skipped"
        entry = self.planned[index]
        if self.ended_s is not None:
            self.gaps_s.append(max(now_s - self.ended_s, 0.0))
        entry.steps_s, entry.state = steps_wall_s_by_kind(report, acceleration), "running"
        if dry_run_s is not None:
            entry.dry_run_s = max(dry_run_s, 0.0)
        self.current = RunProgress(sum(entry.steps_s.values()), self.expected_s(entry), now_s, self.rates,
                                   head_s=entry.dry_run_s + self.head_s, tail_s=self.tail_s,
                                   marks=report_marks(report, acceleration))
        self.changed()
        return self.current

    def planned_again(self, name: str, steps_s: Mapping[str, float]) -> None:
        """A run to come was dry-run again (its hand-offs known): its steps' model costs per kind
        are `steps_s`, and its start walks no plan (it takes that dry run)."""
        for entry in self.planned:
            if entry.name == name and entry.state == "waiting":
                entry.steps_s, entry.dry_run_s = _costs(steps_s), 0.0
                self.changed()
                return

    def end(self, name: str, completed: bool, now_s: float) -> None:
        """A run ended: what it took besides its steps is expected of those to come."""
        entry = self.planned[self._index(name)]
        if self.current is not None:
            self.current.end(now_s)
            measured = self.current.overhead_s()
            if measured is not None:
                self.heads_s.append(max(measured[0] - entry.dry_run_s, 0.0))
                self.tails_s.append(measured[1])
        entry.state = "ended" if completed else "skipped"
        self.current, self.ended_s = None, now_s
        self.changed()

    def left_s(self, now_s: float) -> float:
        waiting = [self.expected_s(p) for p in self.planned if p.state == "waiting"]
        running_s = self.current.left_s(now_s) if self.current is not None else 0.0
        gap_s = self.gap_s
        if self.current is None and self.ended_s is not None and waiting:
            gap_s_now = max(gap_s - (now_s - self.ended_s), 0.0)   # in the gap before the next run
        else:
            gap_s_now = gap_s if waiting else 0.0
        return running_s + sum(waiting) + gap_s_now + gap_s * max(len(waiting) - 1, 0)

    def elapsed_s(self, now_s: float) -> float:
        return now_s - self.started_s

    def fraction(self, now_s: float) -> float:
        """Wall time elapsed over elapsed plus left: the bar agrees with its time left."""
        elapsed_s, left_s = self.elapsed_s(now_s), self.left_s(now_s)
        return elapsed_s / (elapsed_s + left_s) if elapsed_s + left_s > 0 else 0.0

    def position(self) -> tuple[int, int]:
        """(1-based index of the running or next run, number of runs) for the bar's label."""
        for index, entry in enumerate(self.planned):
            if entry.state in ("running", "waiting"):
                return index + 1, len(self.planned)
        return len(self.planned), len(self.planned)

    def changed(self) -> None:
        for listener in self.listeners:
            listener()

    def _index(self, name: str) -> int:
        for index, entry in enumerate(self.planned):
            if entry.name == name and entry.state in ("waiting", "running"):
                return index
        self.planned.append(_Planned(name, {}))             # a run the plan did not list
        return len(self.planned) - 1


def _costs(steps_s: float | Mapping[str, float]) -> dict[str, float]:
    """Model costs per kind of step; a number is of one kind."""
    if isinstance(steps_s, Mapping):
        return {kind: max(cost_s, 0.0) for kind, cost_s in steps_s.items()}
    return {"": max(steps_s, 0.0)}


def clock_text(seconds: float) -> str:
    """h:mm:ss or mm:ss, as a person reads a time left."""
    seconds = max(round(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def run_text(run: RunProgress, now_s: float) -> str:
    """What a run's bar says after the bar itself: the plan's message, steps, times."""
    parts = [run.message] if run.message else []
    parts.append(f"{run.step_count} step{'' if run.step_count == 1 else 's'}")
    return (f"{', '.join(parts)} [{clock_text(run.elapsed_s(now_s))} elapsed, "
            f"~{clock_text(run.left_s(now_s))} left]")


def campaign_text(campaign: CampaignProgress, now_s: float) -> str:
    index, total = campaign.position()
    name = campaign.planned[index - 1].name if campaign.planned else ""
    return (f"{index}/{total} {name} [{clock_text(campaign.elapsed_s(now_s))} elapsed, "
            f"~{clock_text(campaign.left_s(now_s))} left]")


# --- display ------------------------------------------------------------------------------------
#: Shortest wall time between two redraws of a bar (s).
REDRAW_S = 0.1
#: Bar resolution (a bar's position is the fraction in these units).
BAR_UNITS = 1000


class _TextBar(tqdm):
    """A tqdm bar with one more field for its format, {text}: tqdm puts ", " before a postfix."""

    text = ""

    @property
    def format_dict(self):
        return {**super().format_dict, "text": self.text}


class ProgressBar:
    """A terminal bar that shows a fraction and a text computed at each redraw: the numbers
    are the estimates above, not tqdm's (whose rate is that of bar units per second)."""

    def __init__(self, desc: str, fraction: Callable[[float], float], text: Callable[[float], str], *,
                 enabled: bool, clock: Callable[[], float], position: int | None = None) -> None:
        self.fraction, self.text, self.clock = fraction, text, clock
        self.bar = _TextBar(total=BAR_UNITS, desc=desc, disable=not enabled, position=position,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {text}")
        self.drawn_s = -math.inf

    def refresh(self, force: bool = True) -> None:
        if self.bar.disable:
            return
        now_s = self.clock()
        if not force and now_s - self.drawn_s < REDRAW_S:
            return
        self.drawn_s = now_s
        self.bar.n = round(BAR_UNITS * min(max(self.fraction(now_s), 0.0), 1.0))
        self.bar.text = self.text(now_s)
        self.bar.refresh()

    def close(self) -> None:
        self.refresh()
        self.bar.close()
