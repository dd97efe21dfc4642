"""The characterization campaign: every procedure of the catalog on one chip, then the report.

Order: load and validate the station; build and dry-run every procedure (an out-of-envelope
step refuses the whole campaign before any instrument is touched); print the plan; open the
instruments; run each procedure in catalog order through one Runner, handing results forward;
close the instruments (always); write the report from the archives.

A failed procedure stops only the procedures that depend on it (procedures.catalog.DEPENDS_ON); Ctrl-C stops the
campaign: the Runner archives the current run as aborted and the report says what completed.

The output directory is a unit of work (lab/app/campaign_dir.py, its manifest lab/app/manifest.py):
a directory holding another station's, chip's or seed's campaign is refused; one holding an
earlier run of this campaign is continued only when asked — `resume` runs what has no completed
run there (`.partial` runs are recovered, then run again), `only` runs the procedures named —
and the completed runs there hand their results on. Each run is entered in the manifest when it
starts and ends, and the report, always of every run in the directory, is rewritten after each.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from lab.app.child_process import OWN_SESSION
from lab.app.report.writer_process import END_OF_REQUESTS, REPORT_WRITER
from lab.app.live_journal import (FINISHED, INTERRUPTED, RUN_ENDED, RUN_STARTED, LiveJournal,
                                  progress_snapshot)
from lab.app.watch_cli import WatchProcess
from lab.archive.output_dir import ArchiveWriteError, check_for_runs
from contracts.files.station import Station
from lab.execution.station_checks import load_station
from lab.execution.dry_run import DryRunReport, dry_run
from lab.execution.interrupts import handling_stop_signals, stop_cause, stop_requested
from lab.execution.progress import CampaignProgress, ProgressBar, campaign_text, steps_wall_s_by_kind
from contracts.procedure import ParameterError, PlanContext, Procedure
from lab.execution.runner import RunOutcome
from contracts.files.yaml12 import load_yaml
from procedures.catalog import CAMPAIGN, DEPENDS_ON, HAND_OFFS, campaign_for, hand_off, handed_on, missing_hand_offs


class CampaignError(ValueError):
    """A campaign that cannot start (unknown procedure, bad parameter, refused plan)."""


@dataclass
class PlannedRun:
    procedure: Procedure
    dry_run: DryRunReport
    dry_run_s: float = 0.0          # wall time the dry run took (a run a hand-off changed takes it again)

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
    kept: dict[str, Path] = field(default_factory=dict)      # resumed: procedure -> its completed archive
    recovered: list[str] = field(default_factory=list)       # what resuming found and did, one line each

    @property
    def all_completed(self) -> bool:
        return (not self.not_run and not self.interrupted and bool(self.outcomes or self.kept)
                and all(o.exit_status == "completed" for o in self.outcomes.values()))


def selected(only: Sequence[str] | None, design: Mapping[str, Any] | None = None) -> list[type[Procedure]]:
    """The procedures asked for by name (`only`), else the campaign for the station's chip
    (the synaptic procedures where it has a synapse: procedures.catalog.campaign_for)."""
    known = [p.name for p in CAMPAIGN]
    if not only:
        return list(campaign_for(design))
    unknown = [name for name in only if name not in known]
    if unknown:
        raise CampaignError(f"unknown procedure {unknown[0]!r}; the campaign has: {', '.join(known)}")
    return [p for p in CAMPAIGN if p.name in only]


def with_station_defaults(station: Station, overrides: Mapping[str, Mapping[str, Any]] | None = None
                          ) -> dict[str, dict[str, Any]]:
    """Per procedure of the catalog: the station's `procedure_defaults` that apply to it (a
    `procedure.name` one over a plain `name` one), then the operator's overrides (which win).
    CampaignError for a default no procedure takes."""
    parameters = {p.name: {f.name for f in fields(p.Parameters)} for p in CAMPAIGN}
    defaults: dict[str, dict[str, Any]] = {}
    # Plain names first, so that a procedure's own default is written over them.
    for key, value in sorted(station.procedure_defaults.items(), key=lambda item: "." in item[0]):
        procedure, _, name = key.rpartition(".")
        takers = [p for p, names in parameters.items() if name in names and procedure in ("", p)]
        if not takers:
            raise CampaignError(f"{station.path}: procedure_defaults.{key}: "
                                + (f"no procedure has a parameter {name!r}" if not procedure else
                                   f"{procedure!r} has no parameter {name!r}" if procedure in parameters
                                   else f"no procedure {procedure!r}"))
        for taker in takers:
            defaults.setdefault(taker, {})[name] = value
    return {name: {**defaults.get(name, {}), **(overrides or {}).get(name, {})}
            for name in {*defaults, *(overrides or {})}}


def chip_design(station: Station) -> dict[str, Any]:
    tree = load_yaml(station.chip_path, CampaignError)
    return tree if isinstance(tree, dict) else {}


def plan_campaign(station: Station, procedures: Sequence[type[Procedure]],
                  overrides: Mapping[str, Mapping[str, Any]] | None = None,
                  design: Mapping[str, Any] | None = None) -> list[PlannedRun]:
    """Build every procedure with the parameters known now and dry-run it (EnvelopeError,
    ParameterError propagate). Hand-offs change amplitudes later; each procedure is dry-run
    again with them before it touches an instrument (`_plan_again`, or the Runner)."""
    overrides = overrides or {}
    unknown = sorted(set(overrides) - {p.name for p in CAMPAIGN})
    if unknown:
        raise CampaignError(f"--set names unknown procedure {unknown[0]!r}")
    context = PlanContext(chip_design=dict(design or {}), dry_run=True)
    return [_planned(procedure(**hand_off(procedure, {}, overrides.get(procedure.name))), station, context)
            for procedure in procedures]


def _planned(procedure: Procedure, station: Station, context: PlanContext) -> PlannedRun:
    """`procedure` dry-run (EnvelopeError, ParameterError propagate), with the wall time it took."""
    began_s = time.monotonic()
    report = dry_run(procedure, station, context)
    return PlannedRun(procedure, report, time.monotonic() - began_s)


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


def _weight(run: PlannedRun, station: Station) -> tuple[str, dict[str, float], float]:
    """What the overall bar knows of a run before it starts: its name, its steps' expected wall
    time per kind of step and its dry run's, if hand-offs can make it walk its plan again
    (`_plan_again` and CampaignProgress correct both as runs go)."""
    return (run.name, steps_wall_s_by_kind(run.dry_run, station.clock_acceleration),
            run.dry_run_s if HAND_OFFS.get(run.name) else 0.0)


def _same_plan(run: PlannedRun, procedure: Procedure) -> DryRunReport | None:
    """The plan's dry run if `procedure` has the parameters it was planned with (no hand-off
    changed them), for the Runner to take instead of walking the same plan again."""
    return run.dry_run if procedure.parameter_records() == run.procedure.parameter_records() else None


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
                 command: str = "", resume: bool = False, watch_port: int | None = None) -> CampaignOutcome:
    """Run the campaign (or the `only` procedures of it) and write `out_dir/report.md`.

    `overrides` maps procedure name -> parameter overrides (they win over hand-offs). Raises
    StationError, CampaignError, ParameterError or EnvelopeError before touching anything.
    An `out_dir` holding an earlier run of this campaign needs `resume` (run only what has no
    completed run there) or `only` (run these procedures again); their hand-offs come from the
    completed runs there.
    Ctrl-C or SIGTERM ends the running procedure as "aborted", starts nothing new, and the
    report is still written (lab/execution/interrupts.py: only a run's steps are interruptible).
    The directory's live files (lab/app/live_journal.py) say how far it is as it runs;
    `watch_port` also serves them as a live page (`nwlab watch`) on that port of 127.0.0.1."""
    with handling_stop_signals():
        return _run_campaign(station_path, out_dir, only=only, show_progress=show_progress,
                             overrides=overrides, command=command, resume=resume, watch_port=watch_port)


def _run_campaign(station_path: str | Path, out_dir: str | Path, *, only: Sequence[str] | None,
                  show_progress: bool, overrides: Mapping[str, Mapping[str, Any]] | None,
                  command: str, resume: bool = False, watch_port: int | None = None) -> CampaignOutcome:
    from lab.execution.instruments import open_instruments
    from lab.execution.run_lock import StationLock
    from lab.execution.runner import Runner, make_safe

    started = time.monotonic()
    station = load_station(station_path)
    design = chip_design(station)
    command = command or _command(station_path, out_dir, only, overrides, resume)
    overrides = with_station_defaults(station, overrides)
    planned = plan_campaign(station, selected(only, design), overrides, design)
    say = print if show_progress else (lambda *a, **k: None)
    # What the directory holds: refusals before any lock is taken or instrument opened.
    directory, kept, results, sources = _earlier_campaign(out_dir, station, design, planned, overrides or {},
                                                          resume=resume, only=bool(only))
    planned = [r for r in planned if r.name not in kept]
    say(plan_text(planned, station))
    _tell_hand_offs(planned, results, sources, overrides or {})
    out_dir = check_for_runs(out_dir, [r.procedure for r in planned])  # before any instrument is opened
    outcome = CampaignOutcome(out_dir, estimated_lab_time_s=sum(r.dry_run.duration_s for r in planned), kept=kept)
    journal = _Journal(directory, outcome, str(station_path), command, started)
    if not planned:                  # resumed, and every procedure has completed: the report only
        with StationLock(station, out_dir=out_dir):
            journal.settle()
        say("nothing to run: every procedure asked for has a completed run in " + str(out_dir))
        return _finish(outcome, journal, say)
    with StationLock(station, out_dir=out_dir):  # refuse busy instruments or --out before touching instruments
        journal.settle()             # recovers .partial runs, lists every run file in the manifest
        # From here the directory is this campaign's: its live files, and the page that shows them.
        estimates: list[CampaignProgress] = []
        journal.live = LiveJournal(out_dir, lambda: progress_snapshot(estimates[0] if estimates else None,
                                                                      time.monotonic()))
        journal.live.start([r.name for r in planned])
        journal.start_writer()
        watcher = WatchProcess(out_dir, watch_port) if watch_port is not None else None
        try:
            instruments = open_instruments(station)
            try:
                # The overall bar: dry-run estimates corrected by the rates runs measure (lab.execution.progress).
                progress = CampaignProgress.of((_weight(r, station) for r in planned), time.monotonic())
                estimates.append(progress)
                runner = Runner(station, instruments.roles, archive_dir=out_dir, snapshot=instruments.snapshot,
                                chip_design=design, show_progress=show_progress, progress=progress)
                bar = ProgressBar("campaign", progress.fraction, lambda now_s: campaign_text(progress, now_s),
                                  enabled=show_progress, clock=time.monotonic, position=0)
                progress.listeners.append(lambda: bar.refresh(force=False))
                try:
                    _run_all(planned, runner, station, overrides or {}, results, outcome, bar,
                             journal=journal, sources=sources, design=design, progress=progress)
                finally:
                    bar.close()
            finally:
                if stop_requested():    # e.g. a Ctrl-C while the instruments were opened: no run ended it
                    for problem in make_safe(instruments.roles):
                        say(problem)
                instruments.close()
        finally:
            interrupted = outcome.interrupted or stop_requested()
            journal.live.stop(INTERRUPTED if interrupted else FINISHED,
                              f"interrupted ({stop_cause()})" if interrupted else "every planned run ended")
            if watcher is not None:
                watcher.close()
    return _finish(outcome, journal, say)


def _finish(outcome: CampaignOutcome, journal: _Journal, say) -> CampaignOutcome:
    """The manifest and the report of the whole directory, last; a disk error after them."""
    journal.not_run()
    for write in (journal.save, journal.write_report):
        try:
            write(final=True)
        except ArchiveWriteError:
            if outcome.disk_error is None:
                raise
    if outcome.disk_error is not None:
        raise outcome.disk_error          # one line, exit 2 (run_cli); the report says the rest if it fit
    return outcome


def _earlier_campaign(out_dir, station: Station, design: Mapping[str, Any], planned: Sequence[PlannedRun],
                      overrides: Mapping[str, Mapping[str, Any]], *, resume: bool, only: bool):
    """(directory, kept, results, sources): what `out_dir` holds of this campaign, checked;
    with `resume`, the planned procedures that have a completed run there (-> its archive);
    the results of the latest completed run of each procedure there, and their archives.
    Raises CampaignError: another campaign's directory, an earlier run of this one without
    `resume` or `only`, or a required hand-off that neither the directory nor this run gives."""
    from lab.app.campaign_dir import CampaignDirectory, CampaignDirectoryError, results_of
    from lab.app.report.runs import RunFileError, load_run
    from lab.app.manifest import Identity

    identity = Identity.of(station, str(design.get("name", "?")))
    try:
        directory = CampaignDirectory.inspect(out_dir, identity)
        directory.check(resume=resume, only=only)
    except CampaignDirectoryError as error:
        raise CampaignError(str(error)) from None
    completed = directory.completed()
    kept = {r.name: completed[r.name] for r in planned if resume and r.name in completed}
    sources = {name: path for name, path in completed.items()
               if any(name in HAND_OFFS.get(r.name, {}).values() for r in planned)}
    try:
        results = {name: results_of(load_run(path, data=False)) for name, path in sources.items()}
    except RunFileError as error:
        raise CampaignError(f"{error}; move it out of {directory.path} or choose another --out") from None
    running = {r.name for r in planned if r.name not in kept}
    for run in planned:
        if run.name in kept:
            continue
        for parameter, source in missing_hand_offs(type(run.procedure), results, overrides.get(run.name)).items():
            if source in running:
                continue
            there = (f"the completed {source} run in {directory.path} gives no usable value"
                     if source in completed else f"{directory.path} holds no completed {source} run")
            raise CampaignError(f"{run.name} needs {parameter} from {source}, and {there}: run {source} first "
                                f"(--only {source}, or both: --only {source} --only {run.name}), or give it with "
                                f"--set {run.name}.{parameter}=VALUE; nothing was started")
    return directory, kept, results, sources


def _tell_hand_offs(planned: Sequence[PlannedRun], results, sources: Mapping[str, Path],
                    overrides: Mapping[str, Mapping[str, Any]]) -> None:
    """Print each hand-off an archive of the directory gives (not one this campaign measures)."""
    from lab.app.report.plots import format_value

    running = {r.name for r in planned}
    for run in planned:
        kind = type(run.procedure)
        given = hand_off(kind, results, overrides.get(run.name))
        units = {f.name: f.metadata.get("unit", "") for f in fields(kind.Parameters)}
        for parameter, source in handed_on(kind, results, overrides.get(run.name)).items():
            if source in running or source not in sources:
                continue
            value = given[parameter]
            shown = format_value(value, units.get(parameter, "")) if isinstance(value, float) else str(value)
            print(f"hand-off: {run.name}.{parameter} = {shown} from {sources[source].name}")


#: How long the campaign waits for its report writer to end before it kills it (s).
REPORT_WRITER_WAIT_S = 60.0
#: After a stop signal, how long the last report waits for another writer's lock (s) before it
#: is written anyway: an outside holder must not keep the campaign from ending.
REPORT_LOCK_WAIT_AFTER_STOP_S = 5.0


class _Journal:
    """Keeps the manifest and the report of the campaign directory up to date as runs end."""

    def __init__(self, directory, outcome: CampaignOutcome, station_path: str, command: str,
                 started_s: float) -> None:
        self.directory, self.outcome = directory, outcome
        self.station_path, self.command, self.started_s = station_path, command, started_s
        self._writer: subprocess.Popen | None = None     # rewrites the report after each run
        self.live: LiveJournal | None = None            # the directory's live files, once it is this campaign's

    def settle(self) -> None:
        from lab.archive.output_dir import write_error

        def tell(line: str) -> None:
            print(line)
            self.outcome.recovered.append(line)

        try:
            self.directory.settle(self.command, tell)
        except OSError as exc:
            raise write_error(getattr(exc, "filename", None) or self.directory.path, exc,
                              "the campaign manifest was not written; nothing was started") from exc

    def started(self, name: str, hand_offs: Mapping[str, str]) -> None:
        from lab.execution.provenance import software_version

        self._quietly(lambda: self.directory.started(name, hand_offs, software_version()))
        if self.live is not None:
            self.live.event(RUN_STARTED, procedure=name, text=f"{name} started")

    def ended(self, name: str, result: RunOutcome | None) -> None:
        """After each run (or a run refused before its archive opened: `result` None)."""
        if self.live is not None:
            self.live.event(RUN_ENDED, procedure=name, text=(f"{name} {result.exit_status}" + (f": {result.message}" if result.message else "")
                                                             if result is not None else f"{name} refused"),
                            status=result.exit_status if result is not None else "refused",
                            archive=Path(result.archive_path).name if result is not None and result.archive_path
                            else None)
        if result is None:
            self._quietly(lambda: self.directory.finished(name, "", None, "", ""))
            return
        self._quietly(lambda: self.directory.finished(name, result.run_id, result.archive_path,
                                                      result.exit_status, result.message))

    def start_writer(self) -> None:
        """The report writer, started as the directory becomes this campaign's: a kill of the
        campaign at any moment from here leaves a report of every run that ended (the writer
        writes once more when its input ends without END_OF_REQUESTS)."""
        if self._writer is None or self._writer.poll() is not None:
            try:
                self._writer = subprocess.Popen(
                    [sys.executable, "-c", REPORT_WRITER, str(self.outcome.out_dir)], stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    **OWN_SESSION)  # a Ctrl-C at the terminal is the campaign's, not the writer's
            except OSError:
                self._writer = None

    def after_run(self) -> None:
        """The report, rewritten after each run by the writer process beside the runs, so that the
        next run starts at once: an emulated stage follows the wall clock, and a pause between two
        runs would change what the next one measures. The last report: write_report."""
        if stop_requested():          # a signal: the campaign ends now and writes the report once
            return
        for _ in range(2):            # a writer that died is replaced once
            self.start_writer()
            if self._send(json.dumps(asdict(self._notes()))):
                return
            self._stop_writer(wait=False)

    def _send(self, line: str) -> bool:
        if self._writer is None:
            return False
        try:
            self._writer.stdin.write((line + "\n").encode())
            self._writer.stdin.flush()
            return True
        except OSError:               # it had died (a broken pipe)
            return False

    def _stop_writer(self, *, wait: bool) -> None:
        """End the writer: at once (SIGTERM), or (`wait`) once it answered what it was asked."""
        writer = self._writer
        if writer is None:
            return
        self._send(END_OF_REQUESTS)
        self._writer = None
        try:
            writer.stdin.close()
        except OSError:
            pass
        if not wait:
            writer.terminate()
        try:
            writer.wait(timeout=REPORT_WRITER_WAIT_S)
        except subprocess.TimeoutExpired:
            writer.kill()
            writer.wait()

    def not_run(self) -> None:
        if self.directory.manifest is not None:
            self.directory.not_run(dict(self.outcome.not_run))

    def save(self, final: bool) -> None:
        from lab.archive.output_dir import write_error

        if self.directory.manifest is None:
            return
        try:
            self.directory.save()
        except OSError as exc:
            raise write_error(getattr(exc, "filename", None) or self.directory.path, exc,
                              "the campaign manifest was not updated") from exc

    def write_report(self, final: bool) -> None:
        """The report of every run in the directory (never of this campaign's runs alone)."""
        from lab.app.report.markdown import write_report, write_report_in_turn

        # The last report is the writer's, asked with the final notes as its requests end; or,
        # after a stop signal (the writer ended at once) or where the writer failed, this one,
        # which finds drawn the figures of the runs the writer was asked about. A writer stopped
        # halfway leaves its run's figures unlisted (figures.json is written last), so they are
        # drawn here.
        stopped = stop_requested()
        if not stopped and self._final_report_by_writer():
            return
        self._stop_writer(wait=not stopped)
        try:
            self.outcome.report_path = write_report_in_turn(self.outcome.out_dir, self._notes(),
                                                            wait_s=REPORT_LOCK_WAIT_AFTER_STOP_S if stopped else None)
        except OSError:               # no room for the lock file: the report alone says what it can
            self.outcome.report_path = write_report(self.outcome.out_dir, self._notes())

    def _final_report_by_writer(self) -> bool:
        """The last report written by the writer, asked with the final notes just before its
        requests end: it has the report's modules loaded and every figure drawn, so the campaign
        does not read every run again to write the same report. False where there is no writer
        or it failed (a full disk, a crash): the campaign then writes the report itself."""
        from lab.app.report.markdown import REPORT_NAME

        writer = self._writer
        if writer is None or writer.poll() is not None or not self._send(json.dumps(asdict(self._notes()))):
            return False
        self._stop_writer(wait=True)
        if writer.returncode != 0:
            return False
        self.outcome.report_path = self.outcome.out_dir / REPORT_NAME
        return True

    def _notes(self):
        from lab.app.report.markdown import CampaignNotes

        outcome = self.outcome
        outcome.wall_time_s = time.monotonic() - self.started_s
        manifest = self.directory.manifest
        not_run = dict(manifest.not_run) if manifest is not None else {}
        not_run.update(dict(outcome.not_run))
        commands = list(dict.fromkeys(manifest.commands if manifest is not None else []))
        return CampaignNotes(
            station_path=self.station_path, command=self.command.replace(" --resume", ""),
            not_run=list(not_run.items()),
            estimated_lab_time_s=outcome.estimated_lab_time_s, wall_time_s=outcome.wall_time_s,
            remarks=_remarks(outcome) + self.directory.remarks()
            + ([f"Commands run into this directory: {'; '.join(f'`{c}`' for c in commands)}."]
               if len(set(commands)) > 1 else []))

    def _quietly(self, write) -> None:
        """Between runs a directory that cannot take the manifest or the report stops nothing:
        the next run's own checks name the problem, and the last write raises it."""
        try:
            write()
        except (OSError, ArchiveWriteError):
            pass


def _plan_again(planned: list[PlannedRun], after: int, results, overrides, station: Station,
                design: Mapping[str, Any], progress: CampaignProgress | None) -> None:
    """Dry-run again, once every run they take hand-offs from has ended, the runs after index
    `after` whose parameters the hand-offs changed: the campaign's time left then counts the plans
    they will walk (a threshold handed on spares energy_per_spike its own search: 104 captures
    planned, 60 taken), and each takes that dry run at its start (`_same_plan`). One the dry run
    refuses is left as planned: its start dry-runs it again and reports the refusal."""
    to_come = {r.name for r in planned[after + 1:]}
    for index in range(after + 1, len(planned)):
        run = planned[index]
        sources = set(HAND_OFFS.get(run.name, {}).values())
        if not sources or sources & to_come or stop_requested():
            continue
        try:
            procedure = type(run.procedure)(**hand_off(type(run.procedure), results, overrides.get(run.name)))
        except ParameterError:
            continue
        if procedure.parameter_records() == run.procedure.parameter_records():
            continue
        try:
            planned[index] = _planned(procedure, station, PlanContext(chip_design=dict(design), dry_run=True))
        except Exception:  # noqa: BLE001 - refused: its start refuses it again, with the reason
            continue
        if progress is not None:
            progress.planned_again(run.name, steps_wall_s_by_kind(planned[index].dry_run, station.clock_acceleration))


def _run_all(planned, runner, station, overrides, results, outcome: CampaignOutcome, bar, *,
             journal: _Journal | None = None, sources: dict[str, Path] | None = None,
             design: Mapping[str, Any] | None = None, progress: CampaignProgress | None = None) -> None:
    for index, run in enumerate(planned):  # _plan_again replaces runs to come: the loop reads them as it goes
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
        if journal is not None:
            journal.started(name, {parameter: Path(sources[source]).name for parameter, source in
                                   handed_on(type(procedure), results, overrides.get(name)).items()
                                   if sources and source in sources})
        began = time.monotonic()
        result = None
        try:
            result = runner.run(procedure, _same_plan(run, procedure))
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
        finally:
            if journal is not None:
                if result is not None:
                    # The report's writer first: a kill as soon as the manifest says the run
                    # ended still leaves a report that covers it.
                    journal.after_run()
                journal.ended(name, result)
        outcome.per_procedure_wall_s[name] = time.monotonic() - began
        outcome.outcomes[name] = result
        results[name] = result.results
        if sources is not None and result.archive_path is not None:
            sources[name] = Path(result.archive_path)
        if result.exit_status == "completed":
            _plan_again(planned, index, results, overrides, station, design or {}, progress)
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


def _command(station_path, out_dir, only, overrides, resume: bool = False) -> str:
    parts = ["nwlab", "campaign", "--station", str(station_path), "--out", str(out_dir)]
    if resume:
        parts.append("--resume")
    for name in only or ():
        parts += ["--only", name]
    for procedure, values in (overrides or {}).items():
        for key, value in values.items():
            text = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
            parts += ["--set", f"{procedure}.{key}={text}"]
    return shlex.join(parts)

