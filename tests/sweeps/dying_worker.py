"""A point evaluation that takes its worker process down at one index (as a crash in native code
would), for the test that such a point is recorded and the sweep goes on."""

from __future__ import annotations

import os

from sweeps.execute import evaluate_point

DYING_INDEX = 0


def evaluate_or_die(spec, index, values):
    if index == DYING_INDEX:
        os._exit(13)
    return evaluate_point(spec, index, values)
