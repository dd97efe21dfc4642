"""The `nwlab` command: the top of the import graph, where the parts are composed.

Each part owns its subcommands in a module with `register(subparsers)`; this module only
collects them, so adding a command never means editing a shared switchboard.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from lab.app import archive_cli
from lab.app import chip_cli
from lab.app import record
from lab.app import run_cli
from lab.app import sweep_cli
from lab.app import watch_cli
from sim_backend import cli as sim_cli


def build_parser() -> argparse.ArgumentParser:
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
