"""Emulator subcommands of `nwlab`: `sim …` (the emulated bench)."""

from __future__ import annotations

import argparse

from sim_backend.cli import conform as conform_cli
from sim_backend.cli import serve as serve_cli


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `nwlab sim` and its subcommands to the `nwlab` parser."""
    sim = subparsers.add_parser("sim", help="run the emulated bench, or check it against a recorded session")
    commands = sim.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    serve_cli.register(commands)
    conform_cli.register(commands)
