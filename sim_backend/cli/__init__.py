"""Emulator subcommands of `nwlab`: `sim …` (the emulated bench)."""

from __future__ import annotations

import argparse

from sim_backend.cli import serve as serve_cli


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the emulator's subcommands to the `nwlab` parser."""
    serve_cli.register(subparsers)
