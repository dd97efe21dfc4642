"""One sweep, three places: this process, an embedded LocalCluster of worker processes, and a real
`dask scheduler` with `dask worker`s started as subprocesses on 127.0.0.1 — identical results
(seeds per point, not per worker), with different batchings; a point that fails is recorded
with its error and the others are not disturbed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from sweeps.execute import Executor, run_sweep
from sweeps.spec import read_spec
from tests.sweeps.conftest import (
    assert_same_results,
    nwlab_sweep,
    open_results,
    write_spec,
)

#: Four points; the chip reader refuses the two with a negative shunt.
SPEC = """\
format: nwlab-sweep/1
chip: default-neuron
seed: 11
parameters:
  ls.inductance: {values: [15e-9, 25e-9]}
  rc.resistance: {values: [5, -1]}
metrics: [fires, latches, threshold_a, energy_per_spike_j, refractory_s]
stimulus: {threshold_precision: 0.01}
"""
DASK = Path(sys.executable).parent / "dask"


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory):
    return write_spec(tmp_path_factory.mktemp("spec"), SPEC)


@pytest.fixture(scope="module")
def in_process(spec_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("in-process") / "sweep"
    summary, _ = nwlab_sweep(str(spec_path), "--out", str(out), "--in-process")
    assert summary["computed"] == 4 and summary["failed"] == 2 and summary["workers"] == 0
    return open_results(out)


def test_the_sweep_is_a_grid_with_units_intervals_and_provenance(in_process):
    data = in_process
    assert data["threshold_a"].dims == ("ls_inductance_h", "rc_resistance_ohm", "width_s")
    assert data["ls_inductance_h"].attrs["units"] == "H" and data["threshold_a"].attrs["units"] == "A"
    assert data["refractory_s_low"].attrs["bounds_of"] == "refractory_s"
    assert data.attrs["chip_name"] == "default-neuron" and "rc.resistance" in data.attrs["spec"]
    ok = data.sel(rc_resistance_ohm=5.0)
    assert np.all(ok["fires"] == 1) and np.all(ok["latches"] == 0) and np.all(ok["error"] == "")
    threshold = ok["threshold_a"].isel(width_s=0)
    assert np.all((ok["threshold_a_low"].isel(width_s=0) <= threshold)
                  & (threshold <= ok["threshold_a_high"].isel(width_s=0)))
    assert np.all((15e-6 < threshold) & (threshold < 40e-6))
    assert np.all((3e-18 < ok["energy_per_spike_j"]) & (ok["energy_per_spike_j"] < 40e-18))
    assert np.all((2e-9 < ok["refractory_s"]) & (ok["refractory_s"] < 40e-9))
    # the loop inductor changes the design: the sweep sees it
    assert float(threshold[0]) != float(threshold[1])


def test_a_failing_point_is_recorded_with_its_error(in_process):
    bad = in_process.sel(rc_resistance_ohm=-1.0)
    for error in bad["error"].values:
        assert error.startswith("ChipFileError: ") and "element 'rc', field 'resistance': must be positive" in error
    assert np.all(np.isnan(bad["threshold_a"])) and np.all(np.isnan(bad["fires"]))
    assert len(set(in_process["seed"].values.ravel())) == 4     # each point its own seed


def test_a_local_cluster_of_processes_gives_identical_results(spec_path, tmp_path, in_process):
    executor = Executor(workers=2)
    try:
        assert len(executor.client.nthreads()) == 2
        # the dashboard the command prints is served (on loopback, a free port)
        assert executor.dashboard.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(executor.dashboard, timeout=20) as page:
            assert page.status == 200
        summary = run_sweep(read_spec(spec_path), tmp_path / "sweep", executor, batch_points=1, progress=False,
                            log=lambda text: None)
    finally:
        executor.close()
    assert summary.computed == 4 and summary.batches == 4 and summary.workers == 2
    assert_same_results(open_results(tmp_path / "sweep"), in_process)


def scheduler_address(scheduler_file: Path, process: subprocess.Popen, timeout_s: float = 60.0) -> str:
    """The address a starting `dask scheduler` wrote to its scheduler file."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return json.loads(scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError):      # not written yet, or written halfway
            assert process.poll() is None, f"the scheduler ended (exit {process.returncode})"
            assert time.monotonic() < deadline, "the scheduler wrote no address"
            time.sleep(0.1)


def stop_group(process: subprocess.Popen) -> None:
    """Stop a process this test started, with the children it started (its own session)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def scheduler(tmp_path):
    """A `dask scheduler` and two `dask worker` processes on 127.0.0.1, as a cluster's would run."""
    if not DASK.exists():
        pytest.skip(f"dask is not installed in this environment ({DASK} missing)")
    from distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    started = []
    logs = [open(tmp_path / name, "w") for name in ("scheduler.log", "worker.log")]  # noqa: SIM115 — closed below
    try:
        # Port 0: the scheduler binds a free port itself and writes its address to the file (a
        # port picked here and released could be taken before the scheduler binds it).
        started.append(subprocess.Popen(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            stdout=subprocess.DEVNULL, stderr=logs[0], start_new_session=True))
        address = scheduler_address(scheduler_file, started[0])
        started.append(subprocess.Popen(
            [str(DASK), "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
             "--local-directory", str(tmp_path / "workers")],
            stdout=subprocess.DEVNULL, stderr=logs[1], start_new_session=True))
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield address
    finally:
        for process in reversed(started):
            stop_group(process)
        for log in logs:
            log.close()


def test_a_dask_scheduler_and_workers_give_identical_results(spec_path, tmp_path, scheduler, in_process):
    out = tmp_path / "sweep"
    summary, done = nwlab_sweep(str(spec_path), "--out", str(out), "--scheduler", scheduler, "--batch-points", "3")
    assert summary["computed"] == 4 and summary["batches"] == 2 and summary["workers"] == 2
    assert "2 Dask workers" in done.stdout
    assert_same_results(open_results(out), in_process)
    # the same cluster found through its scheduler file, as `dask scheduler --scheduler-file` writes it
    summary, _ = nwlab_sweep(str(spec_path), "--out", str(tmp_path / "by-file"), "--scheduler-file",
                             str(tmp_path / "scheduler.json"))
    assert summary["computed"] == 4 and summary["workers"] == 2
    assert_same_results(open_results(tmp_path / "by-file"), in_process)


def test_a_batch_whose_worker_dies_is_recorded_and_the_sweep_ends_normally(spec_path, tmp_path):
    """A point that takes its worker process down (as a crash in native code would): once Dask
    gives up on its task (KilledWorker), every point of that batch is recorded with the error,
    and the sweep ends with its Dataset written."""
    import dask

    from tests.sweeps.dying_worker import evaluate_or_die

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):    # no retry on another worker
        executor = Executor(workers=2)
        try:
            executor.evaluate = evaluate_or_die
            summary = run_sweep(read_spec(spec_path), tmp_path / "sweep", executor, batch_points=4,
                                progress=False, log=lambda text: None)
        finally:
            executor.close()
    assert summary.computed == 4 and summary.failed == 4 and summary.batches == 1
    errors = open_results(tmp_path / "sweep")["error"].values.ravel()
    assert all(e.startswith("KilledWorker: ") and e.endswith("(the task's worker died)") for e in errors), errors
