"""The Python API (lab.app.api) on the emulated station: running a procedure and a campaign,
a run opened as pandas/xarray objects, a directory listed, two runs compared (also as
`nwlab archive compare`)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from lab.app import api
from lab.app.cli import main
from lab.app.report.runs import RunFileError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "reliability"))
import run_helpers  # noqa: E402
IV_REDUCED = {"switching_events": 40, "pilot_points": 20}
STRENGTH_DURATION_REDUCED = {"widths_s": (2e-9, 5e-9, 10e-9), "trials_max": 20, "threshold_precision": 0.05,
                             "reference_captures": 4}


def station_copy(directory: Path) -> Path:
    """The emulated station with its own run lock and in-process bench."""
    return run_helpers.private_station(directory, name="emulated.yaml")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two iv_sweep runs (40 and 80 events) and a strength_duration run, in one directory."""
    directory = tmp_path_factory.mktemp("api")
    station = station_copy(directory)
    out = directory / "runs"
    few = api.run_procedure("iv_sweep", station, out, **IV_REDUCED)
    more = api.run_procedure("iv_sweep", station, out, **{**IV_REDUCED, "switching_events": 80})
    traced = api.run_procedure("strength_duration", station, out, **STRENGTH_DURATION_REDUCED)
    for outcome in (few, more, traced):
        assert outcome.exit_status == "completed", outcome.message
    return {"station": station, "out": out, "few": few.archive_path, "more": more.archive_path,
            "traced": traced.archive_path}


def archived(path: Path, group: str, name: str):
    with h5py.File(path, "r") as f:
        ds = f[f"entry/{group}/{name}"]
        return ds[()], ds.attrs.get("units", "")


def test_open_run_gives_parameters_results_with_uncertainties_and_tables(runs):
    run = api.open_run(runs["few"])
    assert (run.procedure, run.status, run.bench) == ("iv_sweep", "completed", "emulator")
    assert run.run_id in repr(run) and runs["few"].name.startswith(run.run_id)

    assert isinstance(run.parameters, pd.DataFrame)
    assert run.parameters.loc["switching_events", "value"] == 40
    assert run.parameters.loc["dwell_s", "units"] == "s"

    mean, units = archived(runs["few"], "results", "switching_current_mean_a")
    stderr, _ = archived(runs["few"], "results", "switching_current_stderr_a")
    std, _ = archived(runs["few"], "results", "switching_current_std_a")
    row = run.results.loc["switching_current_mean_a"]
    assert (row["value"], row["uncertainty"], row["spread"], row["units"]) == (mean, stderr, std, units == "A" and "A")
    # the companions are columns, not rows; the archived interval is in low/high/level/method; a
    # count has none (NaN, "")
    assert "switching_current_stderr_a" not in run.results.index
    assert "switching_current_std_a" not in run.results.index
    with h5py.File(runs["few"], "r") as f:
        attrs = f["entry/results/retrapping_current_a"].attrs
        archived_interval = (attrs["interval_low"], attrs["interval_high"], attrs["confidence_level"])
    retrap = run.results.loc["retrapping_current_a"]
    assert (retrap["low"], retrap["high"], retrap["level"]) == archived_interval and retrap["method"]
    assert math.isnan(run.results.loc["switching_events", "uncertainty"])
    assert run.results.loc["switching_events", "method"] == ""

    histogram = run.arrays["switching_current_histogram"]
    assert isinstance(run.arrays, xr.Dataset) and histogram.dims == ("switching_current_bin_a",)
    assert run.arrays["switching_current_bin_a"].attrs["units"] == "A"

    iv = run.tables["iv_curve"]
    assert isinstance(iv, pd.DataFrame)
    voltage, _ = archived(runs["few"], "iv_curve", "voltage_v")
    np.testing.assert_array_equal(iv["voltage_v"].to_numpy(), voltage)
    assert iv.attrs["units"]["voltage_v"] == "V" and iv.attrs["units"]["bias_a"] == "A"
    assert (iv.attrs["axis"], iv.attrs["signal"]) == ("bias_a", "voltage_v")
    assert run.traces is None


def test_open_run_gives_traces_as_xarray_with_time_and_units(runs):
    run = api.open_run(runs["traced"])
    assert isinstance(run.traces, xr.Dataset)
    assert run.traces["time"].attrs["units"] == "s"
    assert run.traces["voltage"].attrs["units"] == "V" and run.traces["voltage"].dims == ("trace", "channel", "time")
    with h5py.File(runs["traced"], "r") as f:   # the file: an index along channel, the names beside it
        g = f["entry/traces"]
        names = [n.decode() for n in g["channel_name"][()]]
        # ... and the scope's 8-bit codes with their scaling per trace and channel
        codes, step, origin, points = (g[f"voltage_{part}"][()] for part in ("code", "step", "origin", "points"))
    assert codes.dtype == np.int8 and step.shape == origin.shape == points.shape == codes.shape[:2]
    voltage = codes * step[..., None] + origin[..., None]
    voltage[np.arange(codes.shape[2]) >= points[..., None]] = np.nan
    assert np.isfinite(voltage).any() and np.unique(codes).size > 8
    assert list(run.traces["channel"].values) == names and "channel_name" not in run.traces
    assert not {"voltage_code", "voltage_step", "voltage_origin", "voltage_points"} & set(run.traces.variables)
    np.testing.assert_array_equal(run.traces["voltage"].sel(channel=names[-1]).values, voltage[:, -1, :])
    assert run.arrays["threshold_a"].dims == ("width_s",)
    np.testing.assert_allclose(run.arrays["width_s"].values, STRENGTH_DURATION_REDUCED["widths_s"])


def test_a_run_opened_is_the_callers_own_copy(runs):
    first = api.open_run(runs["traced"])
    first.traces["voltage"].values[...] = 99.0
    first.tables["probability"]["probability"] = -1.0
    first.parameters.loc["widths_s", "value"][...] = 0.0
    again = api.open_run(runs["traced"])
    assert not (again.traces["voltage"].values == 99.0).any()
    assert (again.tables["probability"]["probability"] >= 0).all()
    np.testing.assert_allclose(again.parameters.loc["widths_s", "value"], STRENGTH_DURATION_REDUCED["widths_s"])


def test_list_runs_is_a_dataframe_of_every_run_file(runs, tmp_path):
    listing = api.list_runs(runs["out"])
    assert list(listing["procedure"]) == ["iv_sweep", "iv_sweep", "strength_duration"]
    assert set(listing["status"]) == {"completed"}
    assert set(listing["path"]) == {runs["few"], runs["more"], runs["traced"]}
    assert listing.loc[listing["procedure"] == "strength_duration", "n_traces"].item() > 0

    (tmp_path / "20990101T000000-broken-000000.h5").write_bytes(b"not hdf5")
    broken = api.list_runs(tmp_path)
    assert list(broken["status"]) == ["unreadable"] and "broken" in broken["problem"].item()


def test_open_run_refuses_a_damaged_file_in_one_error(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\0" * 100)
    with pytest.raises(RunFileError, match="bad.h5"):
        api.open_run(bad)


def test_compare_runs_side_by_side_with_the_difference_in_sigma(runs):
    frame = api.compare_runs(runs["few"], runs["more"])
    a, b = api.open_run(runs["few"]).results, api.open_run(runs["more"]).results
    row = frame.loc["switching_current_mean_a"]
    assert row["units"] == "A"
    assert (row["a"], row["a_uncertainty"]) == (a.loc["switching_current_mean_a", "value"],
                                                 a.loc["switching_current_mean_a", "uncertainty"])
    assert row["difference"] == pytest.approx(row["b"] - row["a"])
    assert row["difference_sigma"] == pytest.approx(
        (row["b"] - row["a"]) / math.hypot(row["a_uncertainty"], row["b_uncertainty"]))
    assert math.isnan(frame.loc["switching_events", "difference_sigma"])   # a count: no uncertainty
    assert frame.loc["switching_events", "b"] > frame.loc["switching_events", "a"]
    assert frame.attrs["parameters_differing"] == {"switching_events": (40, 80, "1")}
    assert set(frame.index) == set(a.index) | set(b.index)


def test_nwlab_archive_compare_prints_the_comparison(runs, capsys):
    assert main(["archive", "compare", str(runs["few"]), str(runs["more"])]) == 0
    out = capsys.readouterr().out
    frame = api.compare_runs(runs["few"], runs["more"])
    line = next(line for line in out.splitlines() if line.startswith("switching_current_mean_a"))
    assert "±" in line and "µA" in line and f"{frame.loc['switching_current_mean_a', 'difference_sigma']:+.2g}" in line
    assert "in σ" in out and "parameters that differ:" in out
    assert any(line.split() == ["switching_events", "40", "→", "80"] for line in out.splitlines())
    header = next(line for line in out.splitlines() if line.startswith("result"))
    assert all(len(line) <= len(header) + 40 for line in out.splitlines() if line.startswith("switching"))


def test_nwlab_archive_compare_says_what_is_wrong_with_a_file(runs, tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    assert main(["archive", "compare", str(runs["few"]), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nwlab archive: ") and "bad.h5" in err and len(err.strip().splitlines()) == 1


def test_run_campaign_runs_the_campaign_and_writes_its_report(tmp_path):
    station = station_copy(tmp_path)
    outcome = api.run_campaign(station, tmp_path / "runs", only=["cooldown"],
                               overrides={"cooldown": {"log_duration_s": 60.0, "hold_s": 10.0}})
    assert outcome.all_completed and outcome.report_path.exists()
    run = api.open_run(outcome.outcomes["cooldown"].archive_path)
    assert run.parameters.loc["log_duration_s", "value"] == 60.0
    assert run.tables["temperature_log"].attrs["units"] == {"time_s": "s", "temperature_k": "K"}


def test_run_procedure_takes_the_stations_procedure_defaults_under_the_callers_values(tmp_path):
    """As `nwlab run` does: the synapse station regulates its stage at 2 K (procedure_defaults),
    where the cooldown's own default is another temperature; a value the caller gives wins."""
    from procedures.cooldown import Cooldown

    station = run_helpers.private_station(tmp_path, base=ROOT / "stations" / "emulated-synapse.yaml")
    assert Cooldown().parameters.setpoint_k != 2.0
    outcome = api.run_procedure("cooldown", station, tmp_path / "runs", log_duration_s=60.0, hold_s=10.0)
    assert outcome.exit_status == "completed", outcome.message
    parameters = api.open_run(outcome.archive_path).parameters
    assert parameters.loc["setpoint_k", "value"] == 2.0
    assert parameters.loc["log_duration_s", "value"] == 60.0
