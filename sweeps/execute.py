"""Running a sweep: points in batches, on dask.distributed (an embedded LocalCluster, or a
scheduler's address or file) or in this process; results flushed to the sweep directory as
they come; progress with rate and ETA.

A point's result is a function of the spec and its index only (sweeps.spec.point_seed): which
worker ran it, in which batch, next to what, does not enter. Batches keep Dask's per-task
overhead (~1 ms of scheduling, plus the round trip) small against the points' simulations; a
window of batches in flight keeps every worker busy without submitting 10⁶ tasks at once.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sweeps.spec import SweepSpec, chip_variant, point_seed
from sweeps.store import SweepStore

#: Batches in flight per worker thread: one running, the next ones queued on it.
IN_FLIGHT_PER_THREAD = 3
#: Batches per worker thread the automatic batch size aims at (load balance at the end of a run).
BATCHES_PER_THREAD = 8
BATCH_POINTS_MAX = 256
#: Longest wait between two flushes of finished points to the sweep directory.
FLUSH_S = 2.0


def evaluate_point(spec: SweepSpec, index: int, values: Sequence[float]) -> dict[str, Any]:
    """One point: its metrics, or the error that stopped it (the type and message, one line)."""
    from sweeps.fast_path import ChipProbe, evaluate

    seed = point_seed(spec.seed, index)
    started = time.perf_counter()
    out: dict[str, Any] = {"point": int(index), "seed": seed, "values": tuple(float(v) for v in values), "error": ""}
    try:
        probe = ChipProbe(chip_variant(spec, values), spec.chip_path, spec.stimulus, seed, spec.pulse_inputs,
                          spec.readouts)
        out.update(evaluate(probe, spec.metrics))
    except Exception as exc:  # noqa: BLE001 — a point's failure is recorded, never fatal to the sweep
        last = traceback.extract_tb(exc.__traceback__)[-1]
        text = " ".join(str(exc).split())
        out["error"] = f"{type(exc).__name__}: {text} ({os.path.basename(last.filename)}:{last.lineno})"
    out["elapsed_s"] = time.perf_counter() - started
    return out


def failed_point(spec: SweepSpec, index: int, values: Sequence[float], exc: BaseException) -> dict[str, Any]:
    """The record of a point whose task died with its worker (no traceback of the point's own)."""
    return {"point": int(index), "seed": point_seed(spec.seed, index), "values": tuple(float(v) for v in values),
            "error": f"{type(exc).__name__}: {' '.join(str(exc).split())} (the task's worker died)",
            "elapsed_s": math.nan}


def run_batch(spec: SweepSpec, batch: Sequence[tuple[int, Sequence[float]]],
              evaluate: Callable | None = None) -> list[dict[str, Any]]:
    """A Dask task: the points of one batch, in order (by the fast path unless `evaluate` says)."""
    evaluate = evaluate or evaluate_point
    return [evaluate(spec, index, values) for index, values in batch]


def warm_up() -> float:
    """Load (or compile) the solver's numba kernels in this process: one short simulation of
    the shipped relaxation oscillator. Returns the seconds it took."""
    from sim_backend.chip.build import load_chip
    from sim_backend.physics.transient import simulate
    from sweeps.spec import SHIPPED_CHIPS

    started = time.perf_counter()
    chip = load_chip(SHIPPED_CHIPS / "relaxation-oscillator.yaml")
    simulate(chip.circuit, 1e-9, temperature_k=chip.temperature_k, rng=np.random.default_rng(0),
             sample_times_s=np.linspace(0, 1e-9, 11))
    return time.perf_counter() - started


@dataclass
class RunSummary:
    points: int
    already_done: int
    computed: int
    failed: int
    batches: int
    batch_points: int
    workers: int
    elapsed_s: float
    dashboard: str | None
    dataset_path: str | None = None
    map_s: float = 0.0            # from the first batch submitted to the last result in

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Executor:
    """Where batches run: this process, or a dask.distributed client (a LocalCluster it owns, or
    a scheduler it connects to)."""

    def __init__(self, *, scheduler: str | None = None, scheduler_file: str | None = None,
                 workers: int | None = None, in_process: bool = False):
        self.client = self.cluster = None
        #: How a point is measured: None for the fast path (sweeps.fast_path); the slow path's
        #: function (lab.app.sweep_slow) for a `measure: procedures` spec. Workers import it by name.
        self.evaluate: Callable | None = None
        self.in_process = in_process
        if in_process:
            return
        from distributed import Client, LocalCluster

        if scheduler or scheduler_file:
            self.client = Client(scheduler, scheduler_file=scheduler_file, timeout="20s")
        else:
            self.cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                        processes=True, dashboard_address="127.0.0.1:0", host="127.0.0.1",
                                        silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        self.client.run(warm_up)

    @property
    def threads(self) -> int:
        if self.client is None:
            return 1
        return max(1, sum(self.client.nthreads().values()))

    @property
    def dashboard(self) -> str | None:
        if self.client is None:
            return None
        if "dashboard" not in self.client.scheduler_info().get("services", {}):
            return None          # not served (bokeh missing): the sweep runs without it
        return self.client.dashboard_link

    def map_batches(self, spec: SweepSpec, batches: Iterable[list], on_result: Callable[[list], None]) -> None:
        """Run every batch; on_result(results) as each finishes (in completion order)."""
        if self.client is None:
            for batch in batches:
                on_result(run_batch(spec, batch, self.evaluate))
            return
        from distributed import as_completed

        [shared] = self.client.scatter([spec], broadcast=True)
        pending = iter(batches)
        batch_of = {}

        def submit(batch) -> Any:
            future = self.client.submit(run_batch, shared, batch, self.evaluate, pure=False)
            batch_of[future.key] = batch
            return future

        flow = as_completed([submit(b) for b in _take(pending, self.threads * IN_FLIGHT_PER_THREAD)])
        for future in flow:
            batch = batch_of.pop(future.key)
            try:
                results = future.result()
            except Exception as exc:  # noqa: BLE001 — a batch that kills its workers (Dask gives up
                # after its retries: KilledWorker) fails its points, not the sweep
                results = [failed_point(spec, index, values, exc) for index, values in batch]
            future.release()
            for b in _take(pending, 1):
                flow.add(submit(b))
            on_result(results)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _take(iterator, n: int) -> list:
    out = []
    for item in iterator:
        out.append(item)
        if len(out) == n:
            break
    return out


def auto_batch_points(todo: int, threads: int) -> int:
    return max(1, min(BATCH_POINTS_MAX, math.ceil(todo / (threads * BATCHES_PER_THREAD))))


def run_sweep(spec: SweepSpec, out_dir, executor: Executor, *, batch_points: int | None = None,
              progress: bool = True, flush_s: float = FLUSH_S, log=print) -> RunSummary:
    """Compute every point of the spec not yet in out_dir; write sweep.nc at the end."""
    from tqdm import tqdm

    if spec.measure == "procedures" and executor.evaluate is None:
        raise ValueError("a `measure: procedures` sweep needs the slow path's evaluate (lab.app.sweep_slow), "
                         "as `nwlab sweep` sets it")
    store = SweepStore(out_dir, spec)
    store.open()
    if spec.sampling == "adaptive":
        from sweeps.adaptive_sampling import run_adaptive

        return run_adaptive(spec, store, executor, batch_points=batch_points, progress=progress, log=log)
    started = time.perf_counter()
    values = spec.point_values()
    done = store.done()
    todo = [i for i in range(len(values)) if i not in done]
    size = batch_points or spec.batch_points or auto_batch_points(len(todo), executor.threads)
    batches = [[(i, tuple(values[i])) for i in todo[k:k + size]] for k in range(0, len(todo), size)]
    where = "this process" if executor.client is None else (
        f"{len(executor.client.nthreads())} Dask workers ({executor.threads} threads)")
    log(f"nwlab sweep: {len(values)} points; {len(done)} already done in {store.directory}; computing {len(todo)} "
        f"in {len(batches)} batches of up to {size} on {where}")
    if executor.dashboard:
        log(f"nwlab sweep: Dask dashboard {executor.dashboard}")
    counts = {"computed": 0, "failed": 0}
    pending: list[dict] = []
    last_flush = time.monotonic()
    bar = tqdm(total=len(todo), unit="pt", desc="sweep", file=sys.stderr, disable=not progress, smoothing=0.1)

    def flush() -> None:
        nonlocal last_flush
        if pending:
            store.write_part(pending)
            pending.clear()
        last_flush = time.monotonic()

    def on_result(results: list[dict]) -> None:
        pending.extend(results)
        counts["computed"] += len(results)
        counts["failed"] += sum(1 for r in results if r["error"])
        bar.update(len(results))
        if counts["failed"]:
            bar.set_postfix(failed=counts["failed"], refresh=False)
        if time.monotonic() - last_flush >= flush_s:
            flush()

    mapped = time.perf_counter()
    try:
        executor.map_batches(spec, batches, on_result)
        mapped = time.perf_counter() - mapped
    finally:
        flush()          # whatever finished is kept, however the run ends
        bar.close()
    path, _ = store.write_dataset()
    return RunSummary(len(values), len(done), counts["computed"], counts["failed"], len(batches), size,
                      len(executor.client.nthreads()) if executor.client else 0, time.perf_counter() - started,
                      executor.dashboard, str(path), mapped)
