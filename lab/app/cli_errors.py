"""How a `nwlab` subcommand ends on a problem the user can fix: one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

Handler = Callable[[argparse.Namespace], int]
USAGE_ERROR = 2


def reporting(handler: Handler, errors: Callable[[], tuple[type[Exception], ...]]) -> Handler:
    """`handler`, printing ``nwlab <command>: <message>`` and returning USAGE_ERROR on `errors()`.

    The exceptions carry complete messages. `errors` names their types when the command runs,
    so the modules that define them are imported only then.
    """

    def run(args: argparse.Namespace) -> int:
        caught = errors()
        try:
            return handler(args)
        except caught as exc:
            print(f"nwlab {args.command}: {exc}", file=sys.stderr)
            return USAGE_ERROR

    return run
