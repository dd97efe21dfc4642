"""The largest value of a function over an interval, found on a grid and then refined: for
profile likelihoods, whose inner maximum over a nuisance parameter can have two peaks (data on
both sides of a gap fit a step and a slope), where a search for one peak from a start point
finds the nearer and an interval's end then falls on the jump between them."""

from __future__ import annotations

import numpy as np

#: Each round evaluates REFINE_POINTS points across the best point's neighbours, dividing the
#: spacing by (REFINE_POINTS − 1)/2; REFINE_ROUNDS of them take a grid's spacing to 1/256 of it.
REFINE_POINTS, REFINE_ROUNDS = 9, 4


def grid_maximum(f, grid: np.ndarray, values: np.ndarray | None = None,
                 rounds: int = REFINE_ROUNDS) -> tuple[np.ndarray, np.ndarray]:
    """Row by row, the largest value of f over [grid[0], grid[-1]] and where it is. f maps points
    (rows × points, or one row for every row) to their values; `values` are f(grid), if known.
    f on `grid`, then `rounds` times on a finer grid around each row's best point so far, each
    evaluated at once. Never above the true maximum."""
    if values is None:
        values = f(grid[None, :])
    best = np.argmax(values, axis=-1)[:, None]
    value, at = np.take_along_axis(values, best, -1)[:, 0], grid[best[:, 0]]
    step = grid[1] - grid[0]
    offsets = np.linspace(-1.0, 1.0, REFINE_POINTS)
    for _ in range(rounds):
        points = np.clip(at[:, None] + step * offsets, grid[0], grid[-1])
        values = f(points)
        best = np.argmax(values, axis=-1)[:, None]
        found = np.take_along_axis(values, best, -1)[:, 0]
        better = found > value
        value = np.where(better, found, value)
        at = np.where(better, np.take_along_axis(points, best, -1)[:, 0], at)
        step *= 2.0 / (REFINE_POINTS - 1)
    return value, at
