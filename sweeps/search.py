"""Design search: parameter sets whose metrics meet targets ("refractory_s=10e-9±1e-9, ...").

First the sweep's own points are ranked; then scipy's differential evolution refines from the
best of them, its population evaluated as sweep points on the same executor (Dask or this
process) — each generation one parallel map. Differential evolution because the metrics are
neither smooth nor everywhere defined (a design that does not fire has no threshold): it needs
no gradient, keeps inside the bounds, and with `updating="deferred"` evaluates a whole
generation at once. The refinement's points get seeds from their own indices (after the
sweep's), so a search is reproducible too. They are written to DIR/search.nc.

Score of a point: sqrt(mean(((metric − value) / tolerance)²)) over the targets; a point meets the
targets when every metric is within its tolerance. A metric that is NaN (a failed point, no
spike) scores as far off (SCORE_MISSING).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from sweeps.spec import Parameter, SweepSpec

#: Score given to a point where a targeted metric is missing.
SCORE_MISSING = 1e3


def _metric(values: Any) -> float:
    """A metric's value at one point (the first width's, for a per-width metric)."""
    array = np.asarray(values, dtype=float).ravel()
    return float(array[0]) if array.size else math.nan


def score(metrics: dict[str, Any], targets) -> tuple[float, bool]:
    deviations = []
    for name, value, tolerance in targets:
        m = _metric(metrics.get(name, math.nan))
        deviations.append((m - value) / tolerance if math.isfinite(m) else SCORE_MISSING)
    d = np.asarray(deviations)
    return float(np.sqrt(np.mean(d**2))), bool(np.all(np.abs(d) <= 1))


def candidates_from(data: xr.Dataset, spec: SweepSpec) -> list[dict[str, Any]]:
    """One dict per point: parameter values, metrics, error."""
    out = []
    if "point" in data.dims:
        rows = range(data.sizes["point"])
        pick = lambda name, k: data[name].isel(point=k).values
    else:
        dims = list(data["point"].dims)
        flat = data.stack(flat=dims)
        rows = range(flat.sizes["flat"])
        pick = lambda name, k: flat[name].isel(flat=k).values
    for k in rows:
        entry = {"values": tuple(float(pick(p.name, k)) for p in spec.parameters),
                 "error": str(pick("error", k))}
        for name in spec.metrics:
            entry[name] = pick(name, k)
        out.append(entry)
    return out


def best_candidates(points: Sequence[dict[str, Any]], targets, count: int) -> list[dict[str, Any]]:
    """The `count` points with the lowest score (those that meet the targets first)."""
    ranked = []
    for entry in points:
        if entry.get("error"):
            continue
        s, meets = score(entry, targets)
        ranked.append(dict(entry, score=s, meets=meets))
    ranked.sort(key=lambda e: (not e["meets"], e["score"]))
    return ranked[:count]


def format_candidates(ranked: Sequence[dict[str, Any]], spec: SweepSpec, targets, title: str) -> str:
    from contracts.units import format_si
    from sweeps.spec import METRICS

    head = [p.key for p in spec.parameters] + [name for name, _, _ in targets] + ["score", "meets"]
    lines = [title, "  " + " | ".join(head)]
    for entry in ranked:
        cells = [format_si(v, p.unit) for v, p in zip(entry["values"], spec.parameters)]
        cells += [format_si(_metric(entry[name]), METRICS[name][0]) for name, _, _ in targets]
        cells += [f"{entry['score']:.3g}", "yes" if entry["meets"] else "no"]
        lines.append("  " + " | ".join(cells))
    if not ranked:
        lines.append("  (no point ran)")
    return "\n".join(lines)


def search_bounds(spec: SweepSpec) -> list[tuple[Parameter, float, float]]:
    """The parameters the search moves (a grid axis with one value stays put) and their bounds."""
    out = []
    for p in spec.parameters:
        low, high = p.bounds if p.bounds else (min(p.values), max(p.values))
        if high > low:
            out.append((p, low, high))
    return out


def _to_unit(p: Parameter, low: float, high: float, value: float) -> float:
    if p.log or (low > 0 and high / low > 100):       # a wide positive range is searched in log
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (value - low) / (high - low)


def _from_unit(p: Parameter, low: float, high: float, u: float) -> float:
    if p.log or (low > 0 and high / low > 100):
        return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


def refine(spec: SweepSpec, executor, targets, start: Sequence[dict[str, Any]], *, generations: int,
           first_index: int, log=print) -> list[dict[str, Any]]:
    """Differential evolution (scipy) over the searched parameters in [0, 1] each, its population
    seeded with the best sweep points, each generation evaluated as one map of sweep points.
    Returns every point it evaluated (values, metrics, error, score, meets)."""
    from scipy.optimize import differential_evolution

    from sweeps.execute import auto_batch_points

    moved = search_bounds(spec)
    if not moved:
        return []
    fixed = start[0]["values"] if start else tuple(p.values[0] if p.values else p.bounds[0] for p in spec.parameters)
    index = {"next": first_index}
    evaluated: list[dict[str, Any]] = []

    def full_values(u) -> tuple[float, ...]:
        values = list(fixed)
        for (p, low, high), x in zip(moved, u):
            values[spec.parameters.index(p)] = _from_unit(p, low, high, float(np.clip(x, 0.0, 1.0)))
        return tuple(values)

    def generation(_func, population) -> list[float]:
        population = list(population)
        batch = [(index["next"] + k, full_values(u)) for k, u in enumerate(population)]
        index["next"] += len(batch)
        results: dict[int, dict] = {}
        size = auto_batch_points(len(batch), executor.threads)
        executor.map_batches(spec, [batch[k:k + size] for k in range(0, len(batch), size)],
                             lambda rs: results.update({r["point"]: r for r in rs}))
        scores = []
        for point, _ in batch:
            r = results[point]
            s, meets = score(r, targets) if not r["error"] else (SCORE_MISSING, False)
            evaluated.append(dict(r, score=s, meets=meets))
            scores.append(s)
        best = min(evaluated, key=lambda e: e["score"])
        log(f"nwlab sweep: search generation of {len(batch)} points; best score so far {best['score']:.3g}")
        return scores

    dimensions = len(moved)
    popsize = 5
    size = popsize * dimensions
    seeds = [[_to_unit(p, low, high, e["values"][spec.parameters.index(p)]) for p, low, high in moved]
             for e in start[:size]]
    from scipy.stats import qmc

    fill = qmc.LatinHypercube(d=dimensions, seed=np.random.default_rng([spec.seed, 0xDE])).random(
        max(size - len(seeds), 0))
    init = np.clip(np.vstack([np.asarray(seeds, dtype=float).reshape(-1, dimensions), fill]), 0.0, 1.0)
    if init.shape[0] < 5:
        init = np.vstack([init, qmc.LatinHypercube(d=dimensions, seed=spec.seed).random(5 - init.shape[0])])
    differential_evolution(lambda u: 0.0, [(0.0, 1.0)] * dimensions, init=init, maxiter=generations,
                           workers=generation, updating="deferred", polish=False, seed=spec.seed, tol=0.0)
    return evaluated


def search_dataset(spec: SweepSpec, evaluated: Sequence[dict[str, Any]]) -> xr.Dataset:
    """The refinement's points as a Dataset (sweeps.store's layout) with their score."""
    from sweeps.store import points_dataset, provenance

    data = points_dataset(spec, evaluated)
    data["score"] = ("point", np.array([e["score"] for e in evaluated], dtype=float),
                     {"units": "1", "long_name": "sqrt(mean(((metric - target) / tolerance)^2)) over the targets"})
    data["meets"] = ("point", np.array([int(e["meets"]) for e in evaluated], dtype=np.int8),
                     {"long_name": "1 when every targeted metric is within its tolerance"})
    data.attrs.update(provenance(spec))
    return data
