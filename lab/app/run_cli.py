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

from contracts.units import display_unit, format_si, prefix_for
from lab.app.cli_errors import reporting
from lab.app.watch_cli import DEFAULT_PORT


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
    campaign.add_argument("--out", required=True, help="directory for the run archives, campaign.json and "
                          "report.md (the report covers every run in it)")
    campaign.add_argument("--only", action="append", metavar="PROCEDURE",
                          help="run only these procedures (again, into a directory that has them); hand-offs "
                               "come from the completed runs in --out")
    campaign.add_argument("--resume", action="store_true",
                          help="continue the campaign in --out: keep its completed runs, recover and rerun "
                               "unfinished ones, run the rest")
    campaign.add_argument("--set", action="append", default=[], metavar="PROCEDURE.NAME=VALUE",
                          help="override a procedure parameter (SI units), e.g. iv_sweep.switching_events=200")
    campaign.add_argument("--quiet", action="store_true", help="no plan, no progress bars")
    campaign.add_argument("--watch", nargs="?", type=int, const=DEFAULT_PORT, default=None, metavar="PORT",
                          help=f"also serve the live page (`nwlab watch`) on 127.0.0.1:PORT (default {DEFAULT_PORT}; "
                               "0: any free port) while the campaign runs")
    campaign.set_defaults(handler=reporting(_campaign, _user_errors))

    listing = subparsers.add_parser("procedures", help="list the procedures: what each measures, what it needs "
                                    "and takes from the others")
    listing.set_defaults(handler=lambda args: print(procedures_text()) or 0)

    run = subparsers.add_parser("run", help="run one procedure and archive it", add_help=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("-h", "--help", action=ProcedureHelp, command="run")
    run.add_argument("procedure", help="the procedure to run (see below)")
    run.add_argument("--station", required=True, help="station file (e.g. stations/emulated.yaml)")
    run.add_argument("--out", required=True, help="directory for the run archive")
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="set a parameter (SI units), e.g. --set width_s=2e-9; `nwlab run PROCEDURE --help` "
                          "lists them")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(handler=reporting(_run, _user_errors))

    dry = subparsers.add_parser("dry-run", help="check a procedure's (or the campaign's) plan against the "
                                "envelope and estimate its duration; touches no instrument", add_help=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    dry.add_argument("-h", "--help", action=ProcedureHelp, command="dry-run")
    dry.add_argument("procedure", help="a procedure name, or 'campaign'")
    dry.add_argument("--station", required=True, help="station file (e.g. stations/emulated.yaml)")
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
    from lab.execution.interrupts import handle_stop_signals_until_exit

    handle_stop_signals_until_exit()     # from here to the process's end (lab/execution/interrupts.py)
    from lab.app.campaign import run_campaign

    overrides = parse_sets(args.set, dotted=True)
    outcome = run_campaign(args.station, args.out, only=args.only, show_progress=not args.quiet,
                           overrides=overrides, resume=args.resume, watch_port=args.watch)
    for name, path in outcome.kept.items():
        print(f"{name:<18} {'kept':<10} {path}")
    for name, run in outcome.outcomes.items():
        print(f"{name:<18} {run.exit_status:<10} {run.archive_path}")
    for name, why in outcome.not_run:
        print(f"{name:<18} {why}")
    from lab.app.report.html import REPORT_HTML_NAME

    html = outcome.report_path.with_name(REPORT_HTML_NAME)
    print(f"report: {html} (open it in a browser; Markdown beside it: {outcome.report_path.name})"
          if html.exists() else f"report: {outcome.report_path}")
    return 0 if outcome.all_completed else 1


def run_procedure(procedure, station, out_dir, *, show_progress: bool = True):
    """Run one built procedure on the loaded station (build_procedure) and archive it in
    `out_dir` (the path of `nwlab run` and of lab.app.api): returns the RunOutcome. Raises
    ParameterError, EnvelopeError, ... before any instrument is opened, KeyboardInterrupt if
    stopped before the run's archive was opened."""
    from lab.archive.output_dir import check_for_runs
    from lab.execution.instruments import open_instruments
    from lab.app.campaign import chip_design
    from lab.execution.dry_run import dry_run
    from contracts.procedure import PlanContext
    from lab.execution.run_lock import StationLock
    from lab.execution.runner import Runner

    design = chip_design(station)
    check_for_runs(out_dir, [procedure])  # room, writable, a directory: before any instrument is opened
    # The dry run refuses whatever the run would refuse for static reasons, before any
    # instrument is opened; the Runner repeats it (it is also the Runner's contract).
    dry_run(procedure, station, PlanContext(design, dry_run=True))
    with StationLock(station, out_dir=out_dir), open_instruments(station) as instruments:
        return Runner(station, instruments.roles, archive_dir=out_dir, snapshot=instruments.snapshot,
                      chip_design=design, show_progress=show_progress).run(procedure)


def build_procedure(cls, station, values: dict):
    """`cls` built with the loaded station's procedure_defaults under the operator's values (the
    same for `nwlab run` and lab.app.api: a station that says its scope samples at 16 GS/s, or
    its stage regulates at 2 K, says so to both)."""
    from lab.app.campaign import with_station_defaults

    return cls(**with_station_defaults(station, {cls.name: values}).get(cls.name, values))


def _run(args: argparse.Namespace) -> int:
    from lab.execution.interrupts import handle_stop_signals_until_exit

    # From here to the process's end a signal before the run's steps (loading, locking,
    # opening the instruments) or after them is noted, not raised (lab/execution/interrupts.py).
    handle_stop_signals_until_exit()
    from lab.execution.station_checks import load_station

    station = load_station(args.station)
    procedure = build_procedure(_procedure_class(args.procedure), station, parse_sets(args.set, dotted=False))
    try:
        outcome = run_procedure(procedure, station, args.out, show_progress=not args.quiet)
    except KeyboardInterrupt:          # stopped before the run's archive was opened
        print(f"nwlab run: interrupted before {procedure.name} started; nothing was measured", file=sys.stderr)
        return 1
    print(f"{outcome.run_id}: {outcome.exit_status}{' (' + outcome.message + ')' if outcome.message else ''}")
    print(f"archive: {outcome.archive_path}")
    for name, result in outcome.results.items():
        value = result.value
        try:
            shown = format_si(float(value), result.units)
        except (TypeError, ValueError):
            shown = f"{len(value)} values" if hasattr(value, "__len__") and not isinstance(value, str) else str(value)
        print(f"  {name} = {shown}")
    return 0 if outcome.exit_status == "completed" else 1


def _dry_run(args: argparse.Namespace) -> int:
    from lab.app.campaign import chip_design, plan_campaign, plan_text, selected, with_station_defaults
    from lab.execution.dry_run import step_text
    from lab.execution.station_checks import load_station

    station = load_station(args.station)
    design = chip_design(station)
    if args.procedure == "campaign":
        planned = plan_campaign(station, selected(None, design),
                                with_station_defaults(station, parse_sets(args.set, dotted=True)), design)
    else:
        procedure = _procedure_class(args.procedure)
        planned = plan_campaign(station, [procedure], with_station_defaults(
            station, {procedure.name: parse_sets(args.set, dotted=False)}), design)
    for run in planned:
        shown = run.dry_run.steps[:max(args.steps, 0)]
        if shown:
            print(f"{run.name}: first {len(shown)} of {len(run.dry_run.steps)} steps")
            for number, (step, estimate_s) in enumerate(shown, start=1):
                print(f"  {number:>5}  {format_si(estimate_s, 's'):>9}  {step_text(step)}")
    print(plan_text(planned, station))
    print("envelope: every step is within the station's safe envelope; no instrument was touched")
    return 0


# -- what the procedures are: `nwlab procedures`, `nwlab run PROCEDURE --help` --------------------

class ProcedureHelp(argparse.Action):
    """-h/--help: the command's help with the list of procedures, and after a procedure's name
    its parameters. The list is made here, not when the parser is built: it imports every
    procedure (scipy among them), which `nwlab archive ls` and the other commands need not wait for."""

    def __init__(self, option_strings, command: str, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0,
                         help=help or "show this help (after a procedure's name: its parameters) and exit")
        self.command = command

    def __call__(self, parser, namespace, values, option_string=None):
        name = getattr(namespace, "procedure", None)
        if not name or name == "campaign":
            parser.epilog = _procedures_epilog(f"{self.command} PROCEDURE --help")
            parser.print_help()
            parser.exit()
        procedure = _known(name)
        if procedure is None:
            parser.error(f"unknown procedure {name!r}; `nwlab procedures` lists them")
        print(procedure_help(procedure))
        parser.exit()


def _known(name: str):
    from procedures.catalog import CAMPAIGN

    return next((p for p in CAMPAIGN if p.name == name), None)


def what_it_measures(procedure) -> str:
    """The first sentence of the procedure's docstring (its class's, else its module's)."""
    doc = procedure.__dict__.get("__doc__") or sys.modules[procedure.__module__].__doc__ or ""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    sentence, dot, _ = paragraph.partition(". ")
    return sentence + dot.strip()


def _hand_off_lines(name: str) -> list[str]:
    """What `name` runs after (DEPENDS_ON), takes from earlier results and gives to later ones."""
    from procedures.catalog import DEPENDS_ON, HAND_OFFS, REQUIRED_HAND_OFFS

    lines = [f"runs after: {', '.join(DEPENDS_ON.get(name, ())) or 'nothing'}"]
    taken = HAND_OFFS.get(name, {})
    required = REQUIRED_HAND_OFFS.get(name, ())
    if taken:
        lines.append("takes: " + "; ".join(f"{parameter} ← {source}{' (required)' if parameter in required else ''}"
                                           for parameter, source in taken.items()))
    given = [f"{target}.{parameter}" for target, pairs in HAND_OFFS.items()
             for parameter, source in pairs.items() if source == name]
    if given:
        lines.append(f"gives: {', '.join(given)}")
    return lines


def _wrapped(lines: list[str], indent: int) -> list[str]:
    import shutil
    import textwrap

    width = max(shutil.get_terminal_size((100, 24)).columns, indent + 40)
    return [out for line in lines for out in textwrap.wrap(line, width, initial_indent=" " * indent,
                                                           subsequent_indent=" " * (indent + 4))]


def _procedures_epilog(usage: str) -> str:
    from procedures.catalog import CAMPAIGN

    width = max(len(p.name) for p in CAMPAIGN)
    rows = "\n".join(f"  {p.name:<{width}}  {what_it_measures(p)}" for p in CAMPAIGN)
    return f"procedures (`nwlab {usage}` lists a procedure's parameters):\n{rows}"


def procedures_text() -> str:
    """`nwlab procedures`: each procedure in campaign order, what it measures, its hand-offs."""
    from procedures.catalog import CAMPAIGN

    width = max(len(p.name) for p in CAMPAIGN)
    lines = ["The campaign's procedures, in the order `nwlab campaign` runs them",
             "(`nwlab run PROCEDURE --help` lists a procedure's parameters):", ""]
    for procedure in CAMPAIGN:
        lines.append(f"{procedure.name:<{width}}  {what_it_measures(procedure)}")
        lines += _wrapped(_hand_off_lines(procedure.name), width + 2)
    return "\n".join(lines)


def _bounds_text(info) -> str:
    low = None if info.minimum is None else format_si(info.minimum, info.unit)
    high = None if info.maximum is None else format_si(info.maximum, info.unit)
    if low is not None and high is not None:
        return f"{low} .. {high}"
    if low is not None:
        return f">= {low}"
    return f"<= {high}" if high is not None else "-"


def _default_text(info) -> str:
    if info.automatic:                  # 0: the plan chooses (its doc says how)
        return f"auto ({format_si(info.default, info.unit)})"
    if isinstance(info.default, tuple):      # one prefix for the list: "2, 3, 5, 10, 20 ns"
        factor, shown = prefix_for(info.default, info.unit)
        return f"{', '.join(f'{v * factor:.4g}' for v in info.default)} {shown}".strip() or "()"
    if isinstance(info.default, str):
        return repr(info.default)
    return format_si(info.default, info.unit)


def procedure_help(procedure) -> str:
    """`nwlab run PROCEDURE --help`: what it measures, hand-offs, every parameter."""
    import shutil
    import textwrap

    infos = procedure.parameter_info()
    rows = [(p.name, _default_text(p), _bounds_text(p), display_unit(p.unit) or "-", p.doc) for p in infos]
    head = ("NAME", "DEFAULT", "BOUNDS", "UNIT", "MEANING")
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(4)]
    indent = 2 + sum(widths) + 2 * 4
    doc_width = max(shutil.get_terminal_size((120, 24)).columns - indent, 30)
    lines = [f"{procedure.name}: {what_it_measures(procedure)}", *_wrapped(_hand_off_lines(procedure.name), 2),
             "", "parameters (SI units; set with --set NAME=VALUE, lists as A,B,C):"]
    for row in [head, *rows]:
        cells = "  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths))
        wrapped = textwrap.wrap(row[4], doc_width) or [""]
        lines.append(f"  {cells}  {wrapped[0]}".rstrip())
        lines += [f"{'':<{indent}}{more}" for more in wrapped[1:]]
    if procedure.minimum_valid_data:
        lines += ["", f"least data to report results: {procedure.minimum_valid_data}"]
    return "\n".join(lines)
