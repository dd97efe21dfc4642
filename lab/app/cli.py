"""The `nwlab` command: the top of the import graph, where the parts are composed.

Each part owns its subcommands in a module with `register(subparsers)`; this module only
collects them, so adding a command never means editing a shared switchboard.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lab.app import archive_cli
from lab.app import chip_cli
from lab.app import run_cli
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
