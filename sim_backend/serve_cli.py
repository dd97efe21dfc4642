"""`nwlab sim …`: serve a station's emulated bench over TCP."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `nwlab sim` to the parser."""
