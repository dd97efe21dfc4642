"""`nwlab chip …`: simulate a chip file standalone."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `nwlab chip` to the parser."""
