"""Emulator subcommands of `nwlab`: `chip …` (chip files standalone) and `sim …` (the bench)."""

from __future__ import annotations

import argparse

from sim_backend.cli import serve as serve_cli
from sim_backend.chip import cli as chip_cli


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the emulator's subcommands to the `nwlab` parser."""
    chip_cli.register(subparsers)
    serve_cli.register(subparsers)
