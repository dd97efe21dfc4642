"""Adaptive sampling: the `adaptive` library (python-adaptive) chooses each next round of points
where the followed metric changes fastest — `Learner1D` for one parameter, `Learner2D` for two.

Rounds keep it reproducible: the learner is asked for a round of points, they are computed (on
Dask or here), and told back in index order before the next round is asked; its choices depend
on the values only, never on which worker finished first. A point without a value of the
metric (it failed, or never fired) is told as the lowest value seen so far, so that the edge of
the region that works is refined too. A resume tells the learner the finished points first.
Parameters with `log: true` are learnt in log space.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from sweeps.spec import SweepSpec

#: Points per round: enough to keep every worker thread busy.
ROUND_PER_THREAD = 2
ROUND_MIN = 4


def _forward(spec: SweepSpec, values) -> tuple[float, ...]:
    return tuple(math.log(v) if p.log else float(v) for p, v in zip(spec.parameters, values))


def _back(spec: SweepSpec, coordinates) -> tuple[float, ...]:
    return tuple(math.exp(c) if p.log else float(c) for p, c in zip(spec.parameters, np.atleast_1d(coordinates)))


def _value(result: dict, metric: str) -> float:
    value = np.asarray(result.get(metric, math.nan), dtype=float).ravel()
    return float(value[0]) if value.size and not result.get("error") else math.nan


def make_learner(spec: SweepSpec):
    import adaptive

    bounds = [(math.log(p.bounds[0]), math.log(p.bounds[1])) if p.log else p.bounds for p in spec.parameters]
    if len(bounds) == 1:
        return adaptive.Learner1D(None, bounds=bounds[0])
    return adaptive.Learner2D(None, bounds=bounds)


def run_adaptive(spec: SweepSpec, store, executor, *, batch_points=None, progress=True, log=print):
    from tqdm import tqdm

    from sweeps.execute import RunSummary

    started = time.perf_counter()
    learner = make_learner(spec)
    lowest = [math.inf]

    def tell(coordinates, value: float) -> None:
        if math.isfinite(value):
            lowest[0] = min(lowest[0], value)
        told = value if math.isfinite(value) else (lowest[0] if math.isfinite(lowest[0]) else 0.0)
        learner.tell(coordinates[0] if len(spec.parameters) == 1 else tuple(coordinates), told)

    done = store.finished(spec.adaptive_metric)
    for index in sorted(done):
        values, value = done[index]
        tell(_forward(spec, values), value)
    next_index = max(done, default=-1) + 1
    round_size = max(ROUND_MIN, ROUND_PER_THREAD * executor.threads)
    size = batch_points or spec.batch_points or 1
    where = "this process" if executor.client is None else f"{executor.threads} Dask worker threads"
    log(f"nwlab sweep: adaptive sampling of {spec.adaptive_metric} over {', '.join(p.key for p in spec.parameters)}: "
        f"{spec.points_requested} points; {len(done)} already done in {store.directory}; rounds of {round_size} "
        f"on {where}")
    if executor.dashboard:
        log(f"nwlab sweep: Dask dashboard {executor.dashboard}")
    todo = spec.points_requested - len(done)
    bar = tqdm(total=max(todo, 0), unit="pt", desc="sweep", file=sys.stderr, disable=not progress)
    computed = failed = batches = 0
    mapped = 0.0
    try:
        while next_index < spec.points_requested:
            n = min(round_size, spec.points_requested - next_index)
            asked, _ = learner.ask(n)          # pending until told: a round has no point twice
            points = [(next_index + k, _back(spec, c)) for k, c in enumerate(asked)]
            next_index += len(points)
            results: dict[int, dict] = {}
            chunks = [points[k:k + size] for k in range(0, len(points), size)]
            batches += len(chunks)
            begun = time.perf_counter()
            executor.map_batches(spec, chunks, lambda rs, into=results: (into.update({r["point"]: r for r in rs}),
                                                                         bar.update(len(rs))))
            mapped += time.perf_counter() - begun
            ordered = [results[i] for i, _ in points]
            store.write_part(ordered)          # a round is the unit a resume keeps
            for r in ordered:
                tell(_forward(spec, r["values"]), _value(r, spec.adaptive_metric))
            computed += len(ordered)
            failed += sum(1 for r in ordered if r["error"])
    finally:
        bar.close()
    path, _ = store.write_dataset()
    return RunSummary(spec.points_requested, len(done), computed, failed, batches, size,
                      len(executor.client.nthreads()) if executor.client else 0, time.perf_counter() - started,
                      executor.dashboard, str(path), mapped)
