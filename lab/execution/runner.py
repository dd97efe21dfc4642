"""Runs a procedure's plan against the station's roles, with progress, abort and safe shutdown.

Order of a run: dry run (refuses out-of-envelope plans before any instrument is touched),
station lock (one run at a time), RunStart to the archive, steps, then — always — every role's
`safe_state()` and a RunStop with the exit status: "completed", "aborted" (Ctrl-C or SIGTERM)
or "failed" (an exception, its traceback recorded). Its message also lists what the run met
and dealt with on the way (a temperature excursion sat out, a bias cycled to free a latch, a
source reading that disagreed with the level last commanded).

Only the steps are interruptible (lab/execution/interrupts.py): a signal there ends them at once; the
ending — safe state and RunStop — runs to its end however many signals arrive.
"""

from __future__ import annotations

import hashlib
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from contracts import steps
from lab.archive.writer import ArchiveWriter
from contracts.clock import LabTime
from contracts.files.station import Station
from lab.execution.dry_run import DryRunReport, dry_run
from contracts.error_text import failure_message
from lab.execution.executor import StepExecutor, estimate_s
from lab.execution.interrupts import deferred, handling_stop_signals, interruptible, stop_cause
from lab.execution.progress import (CampaignProgress, ProgressBar, RunProgress, WallModel, expected_wall_s,
                                    run_text, step_kind, steps_wall_s)
from contracts.procedure import PlanContext, Procedure
from lab.execution.provenance import software_version
from contracts.records import ParametersResolved, Result, RunStart, RunStop
from lab.execution.run_lock import StationLock


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    archive_path: Path
    exit_status: str
    message: str
    results: dict[str, Result] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Runner:
    def __init__(
        self, station: Station, roles: Mapping[str, object], *, archive_dir: str | Path,
        clock: LabTime | None = None, snapshot: Callable[[], dict] = dict,
        chip_design: Mapping[str, Any] | None = None, show_progress: bool = True,
        progress: CampaignProgress | None = None, monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.station = station
        self.roles = roles
        self.archive_dir = Path(archive_dir)
        self.clock = clock or LabTime(station.clock_acceleration)
        self.snapshot = snapshot
        self.context = PlanContext(chip_design=chip_design or {})
        self.show_progress = show_progress
        #: The campaign's estimate this runner's runs report to (lab.execution.progress), if any.
        self.progress = progress
        self.monotonic = monotonic

    def run(self, procedure: Procedure, planned: DryRunReport | None = None) -> RunOutcome:
        """Dry-run `procedure` (refusing it before any instrument is touched), then run it.
        `planned`: the dry run of an equal procedure on this station and chip design (a campaign's
        plan), taken instead of walking the same plan again (a dry run is a function of those alone)."""
        began_s = self.monotonic()
        outcome = None
        try:
            with handling_stop_signals():
                estimate = planned if planned is not None else dry_run(
                    procedure, self.station, PlanContext(self.context.chip_design, dry_run=True))
                progress = self._run_progress(procedure, estimate, began_s)
                with StationLock(self.station, out_dir=self.archive_dir):
                    outcome = self._run_locked(procedure, estimate.duration_s, progress)
                    return outcome
        finally:
            if self.progress is not None and self.progress.current is not None:
                self.progress.end(procedure.name, outcome is not None and outcome.exit_status == "completed",
                                  self.monotonic())

    def _run_progress(self, procedure: Procedure, estimate: DryRunReport, began_s: float) -> RunProgress:
        acceleration = self.station.clock_acceleration
        if self.progress is not None:
            return self.progress.start(procedure.name, estimate, acceleration, began_s,
                                       dry_run_s=self.monotonic() - began_s)
        return RunProgress(steps_wall_s(estimate, acceleration), expected_wall_s(estimate, acceleration), began_s)

    def _run_locked(self, procedure: Procedure, duration_s: float, progress: RunProgress) -> RunOutcome:
        run_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{procedure.name}-{uuid.uuid4().hex[:6]}"
        trace_spec, tables = procedure.declare(self.context)
        scope = self.roles.get("oscilloscope")
        if trace_spec is not None and trace_spec.code_bits is None and scope is not None:
            # Traces are kept as the scope's ADC codes: a byte per sample from an 8-bit scope.
            trace_spec = replace(trace_spec, code_bits=scope.adc_bits)
        writer = ArchiveWriter(self.archive_dir)
        results: dict[str, Result] = {}
        notes: dict[str, Any] = {}
        status, message, trace_text = "completed", "", ""
        executor = StepExecutor(self.station, self.roles, self.clock)
        bar = ProgressBar(procedure.name, lambda now_s: progress.fraction, lambda now_s: run_text(progress, now_s),
                          enabled=self.show_progress, clock=self.monotonic)
        started, failure = False, None
        try:
            with interruptible():
                with deferred():
                    writer(RunStart(
                        run_id=run_id, procedure=procedure.name, started_at=_now(),
                        parameters=procedure.parameter_records(), station_text=self.station.text,
                        chip_text=self.station.chip_path.read_text(), snapshot=self.snapshot(),
                        software_version=software_version(),
                        emulator_seed=self.station.emulator_seed if self.station.is_emulated else None,
                        metadata={"station": str(self.station.path), "estimated_lab_time_s": duration_s},
                        traces=trace_spec, tables=tables, automatic=procedure.automatic_parameters(),
                    ))
                    started = True
                self._execute(procedure, executor, writer, results, notes, bar, progress)
        except KeyboardInterrupt as stop:
            status, message = "aborted", f"interrupted by the operator ({stop_cause(stop)})"
        except Exception as error:  # noqa: BLE001 - every failure ends the run as "failed"
            status, message, trace_text = "failed", failure_message(error), traceback.format_exc()
            failure = error
        # Not interruptible from here on (lab/execution/interrupts.py): signals are noted, not raised.
        message = "; ".join(filter(None, [message, *executor.incidents]))
        problems = self._make_safe()
        if problems:
            message = "; ".join(filter(None, [message, *problems]))
            if status == "completed":
                status = "failed"
        message = "; ".join(filter(None, [message, *self._safety_notes()]))
        progress.end(self.monotonic())
        bar.close()
        if not started:             # the archive never opened: nothing to close, say why
            if failure is not None:
                raise failure
            raise KeyboardInterrupt("interrupted before the run's archive was opened")
        writer(RunStop(status, _now(), message=message, traceback=trace_text))
        return RunOutcome(run_id, writer.last_path, status, message, results, notes)

    def _plan_seed(self, procedure: Procedure) -> int | None:
        """The emulated station's seed, mixed with the procedure's name (each its own draws)."""
        seed = self.station.emulator_seed if self.station.is_emulated else None
        if seed is None:
            return None
        digest = hashlib.sha256(f"{seed}:{procedure.name}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % (2**31 - 2) + 1

    def _execute(self, procedure, executor, writer, results, notes, bar, progress: RunProgress) -> None:
        context = PlanContext(self.context.chip_design, seed=self._plan_seed(procedure))   # its own `resolved`
        plan = procedure.plan(context)
        wall = WallModel(self.station.clock_acceleration)
        progress.steps_begin(self.monotonic())
        reply, archived = None, {}
        try:
            while True:
                try:
                    step = plan.send(reply)
                except StopIteration:
                    self._archive_resolved(context, archived, writer)
                    return
                except BaseException:
                    self._archive_resolved(context, archived, writer)
                    raise
                self._archive_resolved(context, archived, writer)
                reply = None
                # Before the step: its estimate reads the state it starts from, as in the dry run.
                expected_s = wall.step_s(step, estimate_s(step, self.station, executor.state))
                match step:
                    case steps.Archive(record=record):
                        with deferred():
                            writer(record)
                        if isinstance(record, Result):
                            results[record.name] = record
                    case steps.Progress(fraction=fraction, message=text):
                        progress.reported(fraction, text, self.monotonic())
                    case steps.Note(values=values):
                        notes.update(values)
                    case _:
                        reply = executor.execute(step)
                        with deferred():
                            writer.flush_if_due()
                progress.step_done(expected_s, self.monotonic(), step_kind(step))
                bar.refresh(force=False)
                if self.progress is not None:
                    self.progress.changed()
        finally:
            plan.close()

    @staticmethod
    def _archive_resolved(context: PlanContext, archived: dict[str, float], writer: ArchiveWriter) -> None:
        """The values the plan chose since the last step, to the archive at once."""
        new = {name: value for name, value in context.resolved.items() if archived.get(name) != value}
        if new:
            with deferred():
                writer(ParametersResolved(new))
            archived.update(new)

    def _safety_notes(self) -> list[str]:
        """What the drivers' safe paths met and did (a reading that disagreed with the level
        last commanded, a start outside the envelope): said in the run's message."""
        collected = []
        for role in self.roles.values():
            collected.extend(getattr(role, "safety_notes", ()))
            if hasattr(role, "safety_notes"):
                role.safety_notes.clear()
        return collected

    def _make_safe(self) -> list[str]:
        return make_safe(self.roles)


def make_safe(roles: Mapping[str, object], attempts: int = 2) -> list[str]:
    """safe_state() on every role, each attempted even if another fails, and tried again
    once: a link that just dropped often answers the second time."""
    problems = []
    for name, role in roles.items():
        for attempt in range(1, attempts + 1):
            try:
                role.safe_state()
                break
            except Exception as error:  # noqa: BLE001 - report, and keep making the others safe
                if attempt == attempts:
                    problems.append(f"safe_state of {name} failed {attempts} times: "
                                    f"{failure_message(error)}")
    return problems
