"""Emulator subcommands of `nwlab`: `chip simulate` and `sim serve`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the emulator's subcommands to the `nwlab` parser."""
