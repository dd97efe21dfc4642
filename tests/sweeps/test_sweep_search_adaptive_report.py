"""Design search (--target: the sweep's points ranked, then refined by differential evolution),
adaptive sampling (python-adaptive's learner places points where the metric bends, and a resume
tells it what was done), and `nwlab sweep report` (maps, curves, a Pareto view, failed points)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import xarray as xr

from lab.app.cli import main
from lab.app.report.sweep import pareto_front
from sweeps.execute import Executor, run_sweep
from sweeps.spec import read_spec
from sweeps.store import SweepStore
from tests.sweeps.conftest import nwlab_sweep, open_results, write_spec

#: A loop inductor whose threshold falls from ~29 µA at 10 nH to ~24 µA at 40 nH.
ONE_PARAMETER = """\
format: nwlab-sweep/1
chip: default-neuron
seed: 9
parameters:
  ls.inductance: {range: [10e-9, 40e-9]}
sampling: SAMPLING
metrics: [threshold_a]
stimulus: {threshold_precision: 0.005}
"""


def test_a_target_the_sweep_misses_is_found_by_the_search(tmp_path):
    spec = write_spec(tmp_path, ONE_PARAMETER.replace("SAMPLING", "{method: latin_hypercube, points: 3}"))
    # 25.5 µA ± 0.15: the threshold at ~22 nH, between the three sampled inductors' thresholds
    summary, done = nwlab_sweep(str(spec), "--out", str(tmp_path / "sweep"), "--in-process",
                                "--target", "threshold_a=25.5e-6±0.15e-6", "--search-generations", "4",
                                "--candidates", "1")
    swept = open_results(tmp_path / "sweep")
    assert not np.any(np.abs(swept["threshold_a"].values - 25.5e-6) <= 0.15e-6), "the sweep alone misses it"
    best = done.stdout.split("best candidates after the search")[1].splitlines()[2]
    assert best.rstrip().endswith("| yes"), done.stdout
    with xr.open_dataset(tmp_path / "sweep" / "search.nc", engine="h5netcdf") as search:
        met = search.where(search["meets"] == 1, drop=True)
        assert met.sizes["point"] >= 1
        assert np.all(np.abs(met["threshold_a"].isel(width_s=0) - 25.5e-6) <= 0.15e-6)
        assert np.all(search["point"].values >= 3)             # indices after the sweep's: their own seeds
        assert np.all((10e-9 <= search["ls_inductance_h"]) & (search["ls_inductance_h"] <= 40e-9))
    assert summary["computed"] == 3


def test_adaptive_sampling_refines_where_the_threshold_bends_and_resumes(tmp_path):
    spec = read_spec(write_spec(tmp_path, ONE_PARAMETER.replace(
        "SAMPLING", "{method: adaptive, points: 12, metric: threshold_a}")))
    executor = Executor(in_process=True)
    run_sweep(spec, tmp_path / "whole", executor, progress=False, log=lambda text: None)
    whole = open_results(tmp_path / "whole")
    inductance = np.sort(whole["ls_inductance_h"].values)
    assert inductance.size == 12 and inductance[0] == 10e-9 and inductance[-1] == 40e-9
    # the threshold bends most at low inductance: the learner put more points in the lower half
    assert np.sum(inductance < 25e-9) > np.sum(inductance > 25e-9)
    assert whole["threshold_a"].dims == ("point", "width_s")

    # stopped after 8 points (a smaller budget, same learner), then resumed to 12: the same sweep
    partial = read_spec(write_spec(tmp_path, ONE_PARAMETER.replace(
        "SAMPLING", "{method: adaptive, points: 8, metric: threshold_a}"), "partial.yaml"))
    run_sweep(partial, tmp_path / "partial", executor, progress=False, log=lambda text: None)
    SweepStore(tmp_path / "resumed", spec).open()          # the full sweep's directory, holding those points
    for part in (tmp_path / "partial" / "parts").glob("part-*.nc"):
        shutil.copy(part, tmp_path / "resumed" / "parts" / part.name)
    summary = run_sweep(spec, tmp_path / "resumed", executor, progress=False, log=lambda text: None)
    assert summary.already_done == 8 and summary.computed == 4
    resumed = open_results(tmp_path / "resumed")
    for name in ("ls_inductance_h", "threshold_a", "seed"):
        np.testing.assert_array_equal(resumed[name].values, whole[name].values)


GRID_WITH_FAILURE = """\
format: nwlab-sweep/1
chip: default-neuron
seed: 3
parameters:
  ls.inductance: {values: [15e-9, 25e-9]}
  rc.resistance: {values: [5, -2]}
metrics: [fires, threshold_a, refractory_s]
stimulus: {threshold_precision: 0.01}
"""


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    executor = Executor(in_process=True)
    run_sweep(read_spec(write_spec(tmp, GRID_WITH_FAILURE)), tmp / "sweep", executor, progress=False,
              log=lambda text: None)
    return tmp / "sweep"


def test_the_report_draws_each_metric_a_pareto_view_and_lists_failed_points(grid_sweep, capsys):
    assert main(["sweep", "report", str(grid_sweep), "--pareto", "threshold_a,refractory_s"]) == 0
    html_path = grid_sweep / "report" / "report.html"
    assert capsys.readouterr().out.strip() == f"nwlab sweep report: {html_path}"
    for name in ("fires", "threshold_a", "refractory_s", "pareto_threshold_a_refractory_s"):
        png = grid_sweep / "report" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = html_path.read_text()
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 4      # self-contained
    assert "Pareto view" in page and "Failed points" in page
    assert page.count("must be positive") == 2                                  # both failed points, with why
    markdown = (grid_sweep / "report" / "report.md").read_text()
    assert "](threshold_a.png)" in markdown


def test_the_report_refuses_a_metric_the_sweep_does_not_have(grid_sweep, capsys):
    assert main(["sweep", "report", str(grid_sweep), "--pareto", "threshold_a,energy_per_spike_j"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "'energy_per_spike_j' is not a metric of this sweep" in lines[0]


def test_the_pareto_front_holds_the_points_no_other_beats_in_both():
    x = np.array([1.0, 2.0, 3.0, 2.5, 4.0, 1.5])
    y = np.array([5.0, 3.0, 1.0, 3.5, 0.5, 6.0])
    assert sorted(pareto_front(x, y).tolist()) == [0, 1, 2, 4]
