"""The characterization campaign: every procedure of the catalog on one chip, then the report.

Order: load and validate the station; build and dry-run every procedure (an out-of-envelope
step refuses the whole campaign before any instrument is touched); print the plan; open the
instruments; run each procedure in catalog order through one Runner, handing results forward;
close the instruments (always); write the report from the archives.

A failed procedure stops only the procedures that depend on it (procedures.catalog.DEPENDS_ON); Ctrl-C stops the
campaign: the Runner archives the current run as aborted and the report says what completed.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.archive.output_dir import ArchiveWriteError, check_for_runs
from contracts.files.station import Station
from lab.execution.station_checks import load_station
from lab.execution.dry_run import DryRunReport, dry_run
from lab.execution.interrupts import handling_stop_signals, stop_cause, stop_requested
from lab.execution.progress import CampaignProgress, ProgressBar, campaign_text, expected_wall_s
from contracts.procedure import ParameterError, PlanContext, Procedure
from contracts.records import Result
from lab.execution.runner import RunOutcome
from contracts.files.yaml12 import load_yaml
from procedures.catalog import CAMPAIGN, DEPENDS_ON, hand_off


class CampaignError(ValueError):
    """A campaign that cannot start (unknown procedure, bad parameter, refused plan)."""


@dataclass
class PlannedRun:
    procedure: Procedure
    dry_run: DryRunReport

    @property
    def name(self) -> str:
        return self.procedure.name


@dataclass
class CampaignOutcome:
    out_dir: Path
    outcomes: dict[str, RunOutcome] = field(default_factory=dict)   # procedure -> its run
    not_run: list[tuple[str, str]] = field(default_factory=list)     # (procedure, why)
    report_path: Path | None = None
    estimated_lab_time_s: float = 0.0
    wall_time_s: float = 0.0
    per_procedure_wall_s: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    disk_error: ArchiveWriteError | None = None   # the output directory failed: no run after it

    @property
    def all_completed(self) -> bool:
        return (not self.not_run and not self.interrupted and bool(self.outcomes)
                and all(o.exit_status == "completed" for o in self.outcomes.values()))


def selected(only: Sequence[str] | None) -> list[type[Procedure]]:
    known = [p.name for p in CAMPAIGN]
    if not only:
        return list(CAMPAIGN)
    unknown = [name for name in only if name not in known]
    if unknown:
        raise CampaignError(f"unknown procedure {unknown[0]!r}; the campaign has: {', '.join(known)}")
    return [p for p in CAMPAIGN if p.name in only]


def chip_design(station: Station) -> dict[str, Any]:
    tree = load_yaml(station.chip_path, CampaignError)
    return tree if isinstance(tree, dict) else {}


def plan_campaign(station: Station, procedures: Sequence[type[Procedure]],
                  overrides: Mapping[str, Mapping[str, Any]] | None = None,
                  design: Mapping[str, Any] | None = None) -> list[PlannedRun]:
    """Build every procedure with the parameters known now and dry-run it (EnvelopeError,
    ParameterError propagate). Hand-offs change amplitudes later; the Runner dry-runs each
    procedure again with them before it touches an instrument."""
    overrides = overrides or {}
    unknown = sorted(set(overrides) - {p.name for p in CAMPAIGN})
    if unknown:
        raise CampaignError(f"--set names unknown procedure {unknown[0]!r}")
    context = PlanContext(chip_design=dict(design or {}), dry_run=True)
    planned = []
    for procedure in procedures:
        built = procedure(**hand_off(procedure, {}, overrides.get(procedure.name)))
        planned.append(PlannedRun(built, dry_run(built, station, context)))
    return planned


def plan_text(planned: Sequence[PlannedRun], station: Station) -> str:
    lines = [f"Campaign plan on {station.name} ({station.path}):"]
    for run in planned:
        lines.append(f"  {run.dry_run.summary()}")
    total = sum(r.dry_run.duration_s for r in planned)
    wall_s = sum(r.dry_run.wall_s(station.clock_acceleration) for r in planned)
    steps = sum(len(r.dry_run.steps) for r in planned)
    lines.append(f"  total: {len(planned)} procedures, {steps} steps, {total:.1f} s of lab time "
                 f"({total / 60:.1f} min; clock acceleration {station.clock_acceleration:g}x, bias ramps "
                 f"in real time, so at least {wall_s:.1f} s of wall time)")
    return "\n".join(lines)


def _weight_s(run: PlannedRun, station: Station) -> float:
    """Expected wall time of a run: it weighs the procedure in the overall bar and its time left."""
    return expected_wall_s(run.dry_run, station.clock_acceleration)


def _blocked(name: str, outcomes: Mapping[str, RunOutcome], not_run: Sequence[tuple[str, str]]) -> str | None:
    """Why `name` must not run: a dependency that ran and did not complete, or was skipped.
    A dependency left out of the campaign (`only`) blocks nothing: design values stand in."""
    skipped = {procedure for procedure, _ in not_run}
    for needed in DEPENDS_ON.get(name, ()):
        outcome = outcomes.get(needed)
        if outcome is not None and outcome.exit_status != "completed":
            return f"skipped: depends on {needed}, which {outcome.exit_status}"
        if needed in skipped:
            return f"skipped: depends on {needed}, which did not run"
    return None


def run_campaign(station_path: str | Path, out_dir: str | Path, *, only: Sequence[str] | None = None,
                 show_progress: bool = True, overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 command: str = "") -> CampaignOutcome:
    """Run the campaign (or the `only` procedures of it) and write `out_dir/report.md`.

    `overrides` maps procedure name -> parameter overrides (they win over hand-offs). Raises
    StationError, CampaignError, ParameterError or EnvelopeError before touching anything.
    Ctrl-C or SIGTERM ends the running procedure as "aborted", starts nothing new, and the
    report is still written (lab/execution/interrupts.py: only a run's steps are interruptible)."""
    with handling_stop_signals():
        return _run_campaign(station_path, out_dir, only=only, show_progress=show_progress,
                             overrides=overrides, command=command)


def _run_campaign(station_path: str | Path, out_dir: str | Path, *, only: Sequence[str] | None,
                  show_progress: bool, overrides: Mapping[str, Mapping[str, Any]] | None,
                  command: str) -> CampaignOutcome:
    from lab.execution.instruments import open_instruments
    from lab.app.report.markdown import CampaignNotes, write_report
    from lab.execution.run_lock import StationLock
    from lab.execution.runner import Runner, make_safe

    started = time.monotonic()
    station = load_station(station_path)
    design = chip_design(station)
    planned = plan_campaign(station, selected(only), overrides, design)
    say = print if show_progress else (lambda *a, **k: None)
    say(plan_text(planned, station))
    out_dir = check_for_runs(out_dir, [r.procedure for r in planned])  # before any instrument is opened
    outcome = CampaignOutcome(out_dir, estimated_lab_time_s=sum(r.dry_run.duration_s for r in planned))
    results: dict[str, dict[str, Result]] = {}
    with StationLock(station, out_dir=out_dir):  # refuse busy instruments or --out before touching instruments
        instruments = open_instruments(station)
        try:
            # The overall bar: dry-run estimates corrected by the rates runs measure (lab.execution.progress).
            progress = CampaignProgress.of(((r.name, _weight_s(r, station)) for r in planned), time.monotonic())
            runner = Runner(station, instruments.roles, archive_dir=out_dir, snapshot=instruments.snapshot,
                            chip_design=design, show_progress=show_progress, progress=progress)
            bar = ProgressBar("campaign", progress.fraction, lambda now_s: campaign_text(progress, now_s),
                              enabled=show_progress, clock=time.monotonic, position=0)
            progress.listeners.append(lambda: bar.refresh(force=False))
            try:
                _run_all(planned, runner, station, overrides or {}, results, outcome, bar)
            finally:
                bar.close()
        finally:
            if stop_requested():    # e.g. a Ctrl-C while the instruments were opened: no run ended it
                for problem in make_safe(instruments.roles):
                    say(problem)
            instruments.close()
    outcome.wall_time_s = time.monotonic() - started
    notes = CampaignNotes(
        station_path=str(station_path), command=command or _command(station_path, out_dir, only, overrides),
        not_run=outcome.not_run, estimated_lab_time_s=outcome.estimated_lab_time_s,
        wall_time_s=outcome.wall_time_s, remarks=_remarks(outcome))
    try:
        outcome.report_path = write_report(out_dir, notes, runs=_run_data(outcome))
    except ArchiveWriteError:
        if outcome.disk_error is None:
            raise
    if outcome.disk_error is not None:
        raise outcome.disk_error          # one line, exit 2 (run_cli); the report says the rest if it fit
    say(f"report: {outcome.report_path}")
    return outcome


def _run_all(planned, runner, station, overrides, results, outcome: CampaignOutcome, bar) -> None:
    for run in planned:
        name = run.name
        if stop_requested():               # a signal the last run's ending noted
            outcome.interrupted = True
        if outcome.interrupted:
            outcome.not_run.append((name, f"not run: the campaign was interrupted ({stop_cause()})"))
            continue
        if outcome.disk_error is not None:
            outcome.not_run.append((name, f"not run: {outcome.disk_error.path} failed earlier"))
            continue
        reason = _blocked(name, outcome.outcomes, outcome.not_run)
        if reason is not None:
            outcome.not_run.append((name, reason))
            bar.refresh()
            continue
        try:
            procedure = type(run.procedure)(**hand_off(type(run.procedure), results, overrides.get(name)))
        except ParameterError as error:    # a hand-off outside a parameter's bounds
            outcome.not_run.append((name, f"not run: {error}"))
            continue
        began = time.monotonic()
        try:
            result = runner.run(procedure)
        except KeyboardInterrupt:          # between steps the Runner does not own (lock, dry run)
            outcome.interrupted = True
            outcome.not_run.append((name, f"not run: the campaign was interrupted ({stop_cause()})"))
            continue
        except ArchiveWriteError as error:  # full, read-only, ...: no further run goes into that directory
            outcome.disk_error = error
            outcome.not_run.append((name, f"stopped: {error}"))
            continue
        except Exception as error:  # noqa: BLE001 - refused before its archive opened (envelope, lock)
            outcome.not_run.append((name, f"refused: {type(error).__name__}: {error}"))
            continue
        outcome.per_procedure_wall_s[name] = time.monotonic() - began
        outcome.outcomes[name] = result
        results[name] = result.results
        bar.refresh()
        if result.exit_status == "aborted" or stop_requested():
            outcome.interrupted = True


def _remarks(outcome: CampaignOutcome) -> list[str]:
    remarks = []
    failed = [n for n, o in outcome.outcomes.items() if o.exit_status == "failed"]
    if failed:
        remarks.append(f"Failed: {', '.join(failed)}. The campaign went on with the procedures that do not "
                       "depend on them (dependencies: " + "; ".join(
                           f"{n} ← {', '.join(d)}" for n, d in DEPENDS_ON.items() if d) + ").")
    if outcome.interrupted:
        done = [n for n, o in outcome.outcomes.items() if o.exit_status == "completed"]
        remarks.append(f"Interrupted by the operator; completed before that: {', '.join(done) or 'none'}.")
    return remarks


def _run_data(outcome: CampaignOutcome):
    return [Path(o.archive_path) for o in outcome.outcomes.values()   # the report leaves out unreadable ones
            if o.archive_path is not None and Path(o.archive_path).suffix == ".h5"]


def _command(station_path, out_dir, only, overrides) -> str:
    parts = ["nwlab", "campaign", "--station", str(station_path), "--out", str(out_dir)]
    for name in only or ():
        parts += ["--only", name]
    for procedure, values in (overrides or {}).items():
        for key, value in values.items():
            text = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
            parts += ["--set", f"{procedure}.{key}={text}"]
    return shlex.join(parts)

