"""`nwlab archive ls|show|recover`: look at archived runs and rescue the ones a crash left behind."""

from __future__ import annotations

import argparse

from lab.app import archive_compare_cli
from lab.app.cli_errors import reporting


def _archive_errors() -> tuple[type[Exception], ...]:
    """Archive problems end the command with one clear line, not a traceback."""
    from lab.archive.layout import ArchiveError

    return (ArchiveError,)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `archive` and its subcommands to the `nwlab` parser."""
    archive = subparsers.add_parser("archive", help="list, show and recover archived runs (HDF5)")
    sub = archive.add_subparsers(dest="archive_command", required=True, metavar="ACTION")
    ls = sub.add_parser("ls", help="one line per run file in a directory")
    ls.add_argument("directory")
    ls.set_defaults(handler=reporting(_ls, _archive_errors))
    show = sub.add_parser("show", help="parameters, results, status and data shapes of one run")
    show.add_argument("file")
    show.set_defaults(handler=reporting(_show, _archive_errors))
    recover = sub.add_parser("recover", help="turn a .h5.partial left by a crash into a .h5")
    recover.add_argument("file")
    recover.add_argument("--keep-partial", action="store_true",
                         help="keep the .partial after a successful recovery")
    recover.set_defaults(handler=reporting(_recover, _archive_errors))
    archive_compare_cli.register(sub)   # compare, export-qcodes


def _ls(args: argparse.Namespace) -> int:
    """One line per run file, columns aligned over the whole listing: run, procedure, start,
    traces, size, status (an unreadable file: its name and why)."""
    from lab.archive.layout import ArchiveError
    from lab.archive.reader import run_files, summarize

    status = 0
    rows: list[tuple[str, ...] | str] = []
    for path in run_files(args.directory):
        try:
            s = summarize(path)
        except ArchiveError as exc:  # summarize turns every damage into one
            rows.append(f"{path.name}  unreadable: {exc}")
            status = 1
            continue
        state = s.status
        if state == "incomplete":
            state = f"incomplete (recover with: nwlab archive recover {path})"
        rows.append((s.run_id, s.procedure, s.start_time, f"{s.n_traces} traces", f"{s.size_bytes / 1e6:.1f} MB",
                     state))
    table = [row for row in rows if isinstance(row, tuple)]
    widths = [max((len(row[i]) for row in table), default=0) for i in range(5)]
    right = (False, False, False, True, True)
    for row in rows:
        if isinstance(row, str):
            print(row)
            continue
        cells = [cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(row, widths, right)]
        print("  ".join([*cells, row[5]]))
    return status


def _show(args: argparse.Namespace) -> int:
    from lab.archive.reader import describe, summarize
    from procedures.catalog import CAMPAIGN

    # The procedure says which of its parameters are "automatic" at 0 (the archive keeps values only).
    procedure = next((p for p in CAMPAIGN if p.name == summarize(args.file).procedure), None)
    automatic = None if procedure is None else {p.name for p in procedure.parameter_info() if p.automatic}
    print(describe(args.file, automatic))
    return 0


def _recover(args: argparse.Namespace) -> int:
    from lab.archive.recover import recover

    r = recover(args.file, keep_partial=args.keep_partial)
    tables = ", ".join(f"{k}: {n} rows" for k, n in r.table_rows.items())
    print(f"recovered {r.n_traces} traces{'; ' + tables if tables else ''}; "
          f"{r.snapshot_changes} snapshot change(s) -> {r.path}")
    return 0
