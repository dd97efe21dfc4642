"""`nwlab campaign | run | dry-run`: the characterization campaign, one procedure, or a plan
checked without instruments.

Problems the user can fix (station file, procedure name, parameter, envelope) end the command
with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from lab.app.cli_errors import reporting


def parse_value(text: str) -> Any:
    """A --set value: true/false, a whole number, a number, a comma list of numbers, or text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if "," in text:
        return tuple(parse_value(part) for part in text.split(",") if part.strip())
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_sets(items: Sequence[str], *, dotted: bool) -> dict:
    """["a=1", ...] -> {"a": 1}; with dotted=True, ["proc.a=1"] -> {"proc": {"a": 1}}."""
    from lab.app.campaign import CampaignError

    values: dict = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise CampaignError(f"--set {item!r}: expected NAME=VALUE")
        name = name.strip()
        if dotted:
            procedure, dot, name = name.partition(".")
            if not dot or not name:
                raise CampaignError(f"--set {item!r}: expected PROCEDURE.NAME=VALUE in a campaign")
            values.setdefault(procedure, {})[name] = parse_value(text)
        else:
            values[name] = parse_value(text)
    return values


def _user_errors() -> tuple[type[Exception], ...]:
    """The problems a user can fix: station file, procedure name, parameter, envelope, a busy station."""
    from lab.archive.output_dir import ArchiveWriteError
    from lab.execution.instruments import StationInstrumentError
    from lab.app.campaign import CampaignError
    from contracts.files.station import StationError
    from contracts.envelope import EnvelopeError
    from contracts.procedure import ParameterError
    from lab.execution.run_lock import StationBusyError

    return (StationError, CampaignError, ParameterError, EnvelopeError, StationInstrumentError, StationBusyError,
            ArchiveWriteError)


def register(subparsers: argparse._SubParsersAction) -> None:
    campaign = subparsers.add_parser("campaign", help="run the whole characterization campaign and write the report")
    campaign.add_argument("--station", required=True, help="station file (e.g. stations/emulated.yaml)")
    campaign.add_argument("--out", required=True, help="directory for the run archives and report.md")
    campaign.add_argument("--only", action="append", metavar="PROCEDURE", help="run only these procedures")
    campaign.add_argument("--set", action="append", default=[], metavar="PROCEDURE.NAME=VALUE",
                          help="override a procedure parameter (SI units), e.g. iv_sweep.switching_events=200")
    campaign.add_argument("--quiet", action="store_true", help="no plan, no progress bars")
    campaign.set_defaults(handler=reporting(_campaign, _user_errors))

    run = subparsers.add_parser("run", help="run one procedure and archive it")
    run.add_argument("procedure")
    run.add_argument("--station", required=True)
    run.add_argument("--out", required=True, help="directory for the run archive")
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    run.add_argument("--quiet", action="store_true")
    run.set_defaults(handler=reporting(_run, _user_errors))

    dry = subparsers.add_parser("dry-run", help="check a procedure's (or the campaign's) plan against the "
                                "envelope and estimate its duration; touches no instrument")
    dry.add_argument("procedure", help="a procedure name, or 'campaign'")
    dry.add_argument("--station", required=True)
    dry.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="NAME=VALUE for a procedure, PROCEDURE.NAME=VALUE for the campaign")
    dry.add_argument("--steps", type=int, default=20, metavar="N", help="list the first N steps (default 20)")
    dry.set_defaults(handler=reporting(_dry_run, _user_errors))


def _procedure_class(name: str):
    from lab.app.campaign import CampaignError, selected

    if name == "campaign":
        raise CampaignError("'campaign' is not a single procedure: use `nwlab campaign`")
    return selected([name])[0]


def _campaign(args: argparse.Namespace) -> int:
    from lab.app.campaign import run_campaign
    from lab.execution.interrupts import handle_stop_signals_until_exit

    handle_stop_signals_until_exit()     # from here to the process's end (lab/execution/interrupts.py)

    overrides = parse_sets(args.set, dotted=True)
    outcome = run_campaign(args.station, args.out, only=args.only, show_progress=not args.quiet,
                           overrides=overrides)
    for name, run in outcome.outcomes.items():
        print(f"{name:<18} {run.exit_status:<10} {run.archive_path}")
    for name, why in outcome.not_run:
        print(f"{name:<18} {why}")
    print(f"report: {outcome.report_path}")
    return 0 if outcome.all_completed else 1


def run_procedure(procedure, station_path, out_dir, *, show_progress: bool = True):
    """Run one built procedure on the station and archive it in `out_dir` (the path of `nwlab
    run` and of lab.app.api): returns the RunOutcome. Raises StationError, ParameterError,
    EnvelopeError, ... before any instrument is opened, KeyboardInterrupt if stopped before the
    run's archive was opened."""
    from lab.archive.output_dir import check_for_runs
    from lab.execution.instruments import open_instruments
    from lab.app.campaign import chip_design
    from lab.execution.station_checks import load_station
    from lab.execution.dry_run import dry_run
    from contracts.procedure import PlanContext
    from lab.execution.run_lock import StationLock
    from lab.execution.runner import Runner

    station = load_station(station_path)
    design = chip_design(station)
    check_for_runs(out_dir, [procedure])  # room, writable, a directory: before any instrument is opened
    # The dry run refuses whatever the run would refuse for static reasons, before any
    # instrument is opened; the Runner repeats it (it is also the Runner's contract).
    dry_run(procedure, station, PlanContext(design, dry_run=True))
    with StationLock(station, out_dir=out_dir), open_instruments(station) as instruments:
        return Runner(station, instruments.roles, archive_dir=out_dir, snapshot=instruments.snapshot,
                      chip_design=design, show_progress=show_progress).run(procedure)


def _run(args: argparse.Namespace) -> int:
    from lab.execution.interrupts import handle_stop_signals_until_exit
    from lab.app.report.plots import format_value

    # From here to the process's end a signal before the run's steps (loading, locking,
    # opening the instruments) or after them is noted, not raised (lab/execution/interrupts.py).
    handle_stop_signals_until_exit()
    procedure = _procedure_class(args.procedure)(**parse_sets(args.set, dotted=False))
    try:
        outcome = run_procedure(procedure, args.station, args.out, show_progress=not args.quiet)
    except KeyboardInterrupt:          # stopped before the run's archive was opened
        print(f"nwlab run: interrupted before {procedure.name} started; nothing was measured", file=sys.stderr)
        return 1
    print(f"{outcome.run_id}: {outcome.exit_status}{' (' + outcome.message + ')' if outcome.message else ''}")
    print(f"archive: {outcome.archive_path}")
    for name, result in outcome.results.items():
        value = result.value
        try:
            shown = format_value(float(value), result.units)
        except (TypeError, ValueError):
            shown = f"{len(value)} values" if hasattr(value, "__len__") and not isinstance(value, str) else str(value)
        print(f"  {name} = {shown}")
    return 0 if outcome.exit_status == "completed" else 1


def _dry_run(args: argparse.Namespace) -> int:
    from lab.app.campaign import chip_design, plan_campaign, plan_text, selected
    from lab.execution.station_checks import load_station

    station = load_station(args.station)
    design = chip_design(station)
    if args.procedure == "campaign":
        planned = plan_campaign(station, selected(None), parse_sets(args.set, dotted=True), design)
    else:
        procedure = _procedure_class(args.procedure)
        planned = plan_campaign(station, [procedure], {procedure.name: parse_sets(args.set, dotted=False)}, design)
    for run in planned:
        shown = run.dry_run.steps[:max(args.steps, 0)]
        if shown:
            print(f"{run.name}: first {len(shown)} of {len(run.dry_run.steps)} steps")
            for number, (step, estimate_s) in enumerate(shown, start=1):
                print(f"  {number:>5}  {estimate_s:9.3f} s  {_step_text(step)}")
    print(plan_text(planned, station))
    print("envelope: every step is within the station's safe envelope; no instrument was touched")
    return 0


def _step_text(step) -> str:
    text = repr(step)
    return text if len(text) <= 110 else text[:107] + "..."
