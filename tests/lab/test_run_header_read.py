"""The report reads a run's header (status, provenance, parameters, results with their units,
axes and uncertainties) and its tables with h5py in one open of the file, and its traces through
xarray opening that one group; it must give exactly what reading each group (the header) and the
whole tree (tables and traces) through xarray (h5netcdf), as the report did before, gives. The
xarray reading is kept here as the reference only.

The runs are the real writer's files of the report tests' campaign directory (every procedure of
the campaign, shaped as each declares its records) and of a reduced emulated I–V sweep."""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from lab.app import api
from lab.app.report.runs import (PARAMETERS_RESOLVED, RESULTS, TRACES, Quantity, RunData, RunFileError,
                                 _checked_load, _load, stage_temperature_k)
from lab.archive.stored_run import NOT_TABLES
from lab.archive.layout import EXACT, read_uncertainty, text_value
from test_report import campaign_dir  # noqa: F401 - the module fixture: a campaign directory of every procedure

ROOT = Path(__file__).resolve().parents[2]
EMULATED_STATION = ROOT / "stations" / "emulated.yaml"


# -- the reference: each group opened alone through xarray, as the report read runs before --------------------

def reference_quantities(ds) -> dict[str, Quantity]:
    out: dict[str, Quantity] = {}
    for name, var in ds.data_vars.items():
        units = str(var.attrs.get("units", ""))
        values = var.values
        if values.dtype.kind in "USO":
            out[name] = Quantity(text_value(values), units)
            continue
        uncertainty = read_uncertainty(var.attrs)
        exact = text_value(var.attrs.get(EXACT, ""))
        if values.ndim == 0:
            out[name] = Quantity(values.item(), units, uncertainty=uncertainty, exact=exact)
            continue
        dim = var.dims[0]
        axis = ds[dim] if dim in ds.coords else None
        named = axis is not None and not dim.endswith(("_index", "_dim0"))
        out[name] = Quantity(values, units, dim if named else None,
                             np.asarray(axis.values) if named else None,
                             str(axis.attrs.get("units", "")) if named else "", uncertainty, exact)
    return out


def reference_load(path: Path) -> RunData:
    import xarray as xr

    def group(name: str):
        try:
            with xr.open_dataset(path, engine="h5netcdf", group=name) as ds:
                return ds.load()
        except OSError:          # no such group
            return None

    top, instrument, snapshot = group("entry"), group("entry/instrument"), group("entry/instrument/snapshot")
    station, chip, metadata = group("entry/instrument/station"), group("entry/sample/chip"), group("entry/metadata")
    seed = instrument.get("emulator_seed")
    run = RunData(
        path=path, run_id=text_value(top["run_id"].values), procedure=text_value(top["procedure"].values),
        status=text_value(top["exit_status"].values) if "exit_status" in top else "unknown",
        message=text_value(top["exit_message"].values) if "exit_message" in top else "",
        started_at=text_value(top["start_time"].values),
        ended_at=text_value(top["end_time"].values) if "end_time" in top else "",
        software_version=str(top["program_name"].attrs.get("version", "?")),
        bench=text_value(instrument["bench"].values),
        emulator_seed=int(seed.values) if seed is not None else None,
        station_text=text_value(station["data"].values) if station is not None else "",
        chip_text=text_value(chip["data"].values) if chip is not None else "",
        metadata=json.loads(text_value(metadata["data"].values)) if metadata is not None else {},
        with_data=False,
    )
    if snapshot is not None and station is not None:
        run.stage_temperature_k = stage_temperature_k(text_value(snapshot["data"].values), text_value(station["data"].values))
    for name, target in (("parameters", run.parameters), (RESULTS, run.results)):
        found = group(f"entry/{name}")
        if found is not None:
            target.update(reference_quantities(found))
    resolved = group(f"entry/{PARAMETERS_RESOLVED}")
    if resolved is not None:
        run.parameters_resolved.update({name: q for name, q in reference_quantities(resolved).items()
                                        if np.isfinite(q.value)})
    return run


def reference_load_data(path: Path) -> RunData:
    import xarray as xr

    run = reference_load(path)
    run.with_data = True
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        entry = tree["entry"]
        for name, child in entry.children.items():
            if name in NOT_TABLES or child.attrs.get("NX_class") != "NXdata":
                continue
            ds = child.to_dataset()
            run.tables[name] = {col: np.asarray(var.values) for col, var in ds.data_vars.items()}
            run.table_units[name] = {col: str(var.attrs.get("units", "")) for col, var in ds.data_vars.items()}
        if TRACES in entry.children:
            run.traces = entry[TRACES].to_dataset().load()
    return run


# -- exact comparison --------------------------------------------------------------------------------------

def assert_same_value(new, old, where: str) -> None:
    """Same type, dtype, shape and values; NaN equal to NaN and nothing else."""
    assert type(new) is type(old), (where, type(new), type(old))
    if isinstance(old, np.ndarray):
        assert (new.dtype, new.shape) == (old.dtype, old.shape), (where, new.dtype, new.shape, old.dtype, old.shape)
        assert np.array_equal(new, old, equal_nan=old.dtype.kind in "fc"), where
    elif isinstance(old, float):
        assert new == old or (math.isnan(new) and math.isnan(old)), (where, new, old)
    else:
        assert new == old, (where, new, old)


def assert_same_quantities(new: dict[str, Quantity], old: dict[str, Quantity], where: str) -> None:
    assert list(new) == list(old), where               # the same names, in the same order
    for name, q in old.items():
        n, at = new[name], f"{where}/{name}"
        assert_same_value(n.value, q.value, at)
        assert (n.units, n.axis_name, n.axis_units, n.exact) == (q.units, q.axis_name, q.axis_units, q.exact), at
        assert_same_value(n.axis_values, q.axis_values, f"{at} axis")
        assert (n.uncertainty is None) == (q.uncertainty is None), at
        if q.uncertainty is not None:
            for part in ("method", "level", "low", "high", "standard"):
                assert_same_value(getattr(n.uncertainty, part), getattr(q.uncertainty, part), f"{at} {part}")


def assert_same_traces(new, old, where: str) -> None:
    """The same xarray Dataset: names, dims, coordinates and their indexes, attributes, values,
    each variable's dtype and encoding (the Dataset's encoding also names its source file)."""
    import xarray as xr

    assert type(new) is type(old), where
    if old is None:
        return
    xr.testing.assert_identical(new, old)
    assert list(new.variables) == list(old.variables) and list(new.coords) == list(old.coords), where
    for name, var in old.variables.items():
        assert new[name].dtype == var.dtype and new[name].encoding == var.encoding, (where, name)
        assert_same_value(new[name].values, var.values, f"{where} {name}")
    assert list(new.indexes) == list(old.indexes), where
    assert {k: v for k, v in new.encoding.items() if k != "source"} == old.encoding, where


def assert_same_run(new: RunData, old: RunData) -> None:
    path = old.path
    for name in ("path", "run_id", "procedure", "status", "message", "started_at", "ended_at", "software_version",
                 "bench", "emulator_seed", "station_text", "chip_text", "metadata", "with_data", "table_units"):
        assert_same_value(getattr(new, name), getattr(old, name), f"{path.name} {name}")
    assert list(new.tables) == list(old.tables), path.name
    for table, columns in old.tables.items():
        assert list(new.tables[table]) == list(columns), (path.name, table)
        for column, values in columns.items():
            assert_same_value(new.tables[table][column], values, f"{path.name} {table}/{column}")
    assert_same_traces(new.traces, old.traces, f"{path.name} traces")
    assert_same_value(new.stage_temperature_k, old.stage_temperature_k, f"{path.name} stage_temperature_k")
    for name in ("parameters", "parameters_resolved", "results"):
        assert_same_quantities(getattr(new, name), getattr(old, name), f"{path.name} {name}")


def assert_same_header(path: Path) -> RunData:
    new = _load(path, data=False)
    assert_same_run(new, reference_load(path))
    return new


def assert_same_data(path: Path) -> RunData:
    new = _load(path)
    assert_same_run(new, reference_load_data(path))
    return new


@pytest.fixture(scope="module")
def emulated_iv_run(tmp_path_factory) -> Path:
    """A reduced iv_sweep on a private copy of the emulated station."""
    directory = tmp_path_factory.mktemp("header")
    station = directory / "emulated.yaml"
    text = EMULATED_STATION.read_text().replace(
        "chip: chips/default-neuron.yaml", f"chip: {EMULATED_STATION.parent / 'chips' / 'default-neuron.yaml'}")
    station.write_text(text.replace("visalib: emulated.yaml@nwlab",
                                    f"visalib: {station}#private-header@nwlab"))
    outcome = api.run_procedure("iv_sweep", station, directory / "runs", switching_events=40, pilot_points=20)
    assert outcome.exit_status == "completed", outcome.message
    return outcome.archive_path


def test_header_of_every_campaign_run_is_the_xarray_reading(campaign_dir):  # noqa: F811
    paths = sorted(campaign_dir.glob("*.h5"))
    assert len(paths) == 7
    runs = [assert_same_header(path) for path in paths]
    # the comparison covered what it is meant to: every kind of quantity the report shows
    results = [q for run in runs for q in run.results.values()]
    assert any(q.is_text for q in results)
    assert any(q.uncertainty is not None and q.is_scalar for q in results)
    assert any(q.uncertainty is not None and not q.is_scalar and not q.is_text for q in results)
    assert any(q.axis_name is not None for q in results) and any(q.exact for q in results)
    assert any(not q.is_text and not q.is_scalar and q.axis_name is None for run in runs
               for q in [*run.results.values(), *run.parameters.values()])
    assert any(q.is_scalar and math.isnan(q.value) for q in results)
    assert {run.status for run in runs} == {"completed", "failed"}
    assert any(math.isfinite(run.stage_temperature_k) for run in runs)


def test_tables_and_traces_of_every_campaign_run_are_the_xarray_reading(campaign_dir):  # noqa: F811
    runs = [assert_same_data(path) for path in sorted(campaign_dir.glob("*.h5"))]
    assert all(run.with_data for run in runs) and sum(run.traces is not None for run in runs) >= 2
    assert sum(len(run.tables) for run in runs) >= 7


def test_header_and_tables_of_an_emulated_run_are_the_xarray_reading(emulated_iv_run):
    assert assert_same_data(emulated_iv_run).tables
    run = assert_same_header(emulated_iv_run)
    assert run.bench == "emulator" and run.emulator_seed is not None and run.results
    assert run.parameters_resolved and any(q.axis_name is not None for q in run.results.values())


def test_a_one_point_array_result_reads_as_xarray_reads_it(campaign_dir, tmp_path):  # noqa: F811
    """A result of one point: h5netcdf gives its uncertainty arrays as their one element."""
    path = tmp_path / "one_point.h5"
    path.write_bytes(next(campaign_dir.glob("*iv_sweep*.h5")).read_bytes())
    with h5py.File(path, "r+") as f:
        results = f["entry/results"]
        index = results.create_dataset("one_point_index", data=np.arange(1))
        index.make_scale("one_point_index")
        ds = results.create_dataset("one_point_a", data=np.array([2.5e-5]))
        ds.dims[0].attach_scale(index)
        ds.attrs.update(units="A", uncertainty_method="test", confidence_level=0.95,
                        interval_low=np.array([2.4e-5]), interval_high=np.array([2.6e-5]),
                        standard_uncertainty=np.array([0.05e-5]))
    run = assert_same_header(path)
    assert run.results["one_point_a"].uncertainty.low == 2.4e-5


def test_a_file_without_the_layout_is_a_run_file_error(campaign_dir, tmp_path):  # noqa: F811
    path = tmp_path / "no_instrument.h5"
    path.write_bytes(next(campaign_dir.glob("*cooldown*.h5")).read_bytes())
    with h5py.File(path, "r+") as f:
        del f["entry/instrument"]
    with pytest.raises(RunFileError, match="not readable as a run"):
        _checked_load(path, data=False)
