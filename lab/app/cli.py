"""The `nwlab` command: the top of the import graph, where the parts are composed.

Each part owns its subcommands in a module with `register(subparsers)`; this module only
collects them, so adding a command never means editing a shared switchboard. They are imported
in `build_parser`, inside `main`'s handling of a Ctrl-C that comes before a command has installed
its own (lab/execution/interrupts.py): importing this module is all that precedes it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from lab.app import archive_cli, chip_cli, record, run_cli, sweep_cli, watch_cli
    from sim_backend import cli as sim_cli

    parser = argparse.ArgumentParser(
        prog="nwlab",
        description="Lab control for superconducting nanowire spiking neurons.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chip_cli.register(subparsers)
    sim_cli.register(subparsers)
    archive_cli.register(subparsers)
    run_cli.register(subparsers)
    record.register(subparsers)
    sweep_cli.register(subparsers)
    watch_cli.register(subparsers)
    return parser


#: Exit status when the reader of stdout went away (`nwlab archive show X | head`): 128 + SIGPIPE,
#: what a tool the signal ended would report.
CLOSED_PIPE_EXIT = 128 + 13
#: Exit status of a command a Ctrl-C stopped where no handler of nwlab's took it: 128 + SIGINT,
#: what a shell reports for a command the signal ended.
INTERRUPTED_EXIT = 128 + signal.SIGINT


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
            return int(args.handler(args) or 0)
        finally:
            sys.stdout.flush()      # here, not at exit, so a closed pipe is caught below
    except BrokenPipeError:
        _discard_stdout()
        return CLOSED_PIPE_EXIT
    except KeyboardInterrupt:
        # Python's own Ctrl-C: the command had not installed nwlab's handler (a run or campaign
        # does before it loads or opens anything), or has none (the archive and chip commands).
        print(f"nwlab: stopped by Ctrl-C (SIGINT){_before(argv)}", file=sys.stderr)
        return INTERRUPTED_EXIT


def _before(argv: Sequence[str] | None) -> str:
    """", before the run had started; nothing was opened" for `nwlab run` and `nwlab campaign` while
    Python's handler still takes Ctrl-C (theirs is installed before they load the station), else ""."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] in (["run"], ["campaign"]) and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        return f", before the {words[0]} had started; nothing was opened"
    return ""


def _discard_stdout() -> None:
    """Point stdout at /dev/null: the interpreter flushes it again at exit, and a second
    BrokenPipeError there would print "Exception ignored" (the Python signal docs' recipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):   # a stdout without a descriptor (tests)
        pass


if __name__ == "__main__":
    sys.exit(main())
