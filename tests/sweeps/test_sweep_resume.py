"""A sweep killed mid-way (SIGKILL: nothing runs on the way out) resumes: the points it had written
are not computed again, their part files are left as they were, and the finished sweep equals
an uninterrupted one. A directory that holds another sweep is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import xarray as xr

from sweeps.execute import Executor, run_sweep
from sweeps.spec import read_spec
from sweeps.store import SweepStore
from tests.sweeps.conftest import (
    NWLAB,
    ROOT,
    assert_same_results,
    nwlab_sweep,
    open_results,
    write_spec,
)

POINTS = 12
SPEC = f"""\
format: nwlab-sweep/1
chip: default-neuron
seed: 5
parameters:
  ib.current: {{linspace: [21e-6, 25e-6, {POINTS}]}}
metrics: [fires, threshold_a, refractory_s]
stimulus: {{threshold_precision: 0.01, refractory_max_s: 20e-9}}
batch_points: 2
"""


def part_points(directory) -> dict[str, list[int]]:
    """Each part file's name -> the point indices it holds."""
    out = {}
    for path in sorted((directory / "parts").glob("part-*.nc")):
        with xr.open_dataset(path, engine="h5netcdf") as part:
            out[path.name] = [int(i) for i in part["point"].values]
    return out


def test_a_killed_sweep_resumes_without_recomputing_finished_points(tmp_path):
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "sweep"
    # flush every batch, so that parts appear while the sweep runs
    argv = [str(NWLAB), "sweep", str(spec), "--out", str(out), "--in-process", "--flush-s", "0", "--no-progress"]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(list((out / "parts").glob("part-*.nc"))) < 2:
            assert process.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "no part written in 60 s"
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    before = part_points(out)
    kept = {name: (out / "parts" / name).read_bytes() for name in before}
    finished = sorted(i for points in before.values() for i in points)
    assert 4 <= len(finished) < POINTS, "killed mid-way"
    assert not (out / "sweep.nc").exists()          # the run never reached its end

    summary, done = nwlab_sweep(str(spec), "--out", str(out), "--in-process")
    assert summary["already_done"] == len(finished)
    assert summary["computed"] == POINTS - len(finished)       # only the others were computed
    assert f"{len(finished)} already done" in done.stdout
    after = part_points(out)
    for name, content in kept.items():                          # the parts written before are untouched
        assert (out / "parts" / name).read_bytes() == content
    indices = sorted(i for points in after.values() for i in points)
    assert indices == list(range(POINTS))                       # every point once: none computed twice

    executor = Executor(in_process=True)
    run_sweep(read_spec(spec), tmp_path / "uninterrupted", executor, progress=False, log=lambda text: None)
    assert_same_results(open_results(out), open_results(tmp_path / "uninterrupted"))


def test_a_directory_holding_another_sweep_is_refused(tmp_path):
    spec = write_spec(tmp_path, SPEC)
    SweepStore(tmp_path / "sweep", read_spec(spec)).open()
    other = write_spec(tmp_path, SPEC.replace("seed: 5", "seed: 6"), "other.yaml")
    done = subprocess.run([str(NWLAB), "sweep", str(other), "--out", str(tmp_path / "sweep"), "--in-process"],
                          check=False, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds another sweep" in lines[0] and "give another --out" in lines[0]
