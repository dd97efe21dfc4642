"""Simulated chip traces in HDF5: the datasets h5py sees, the coordinate xarray sees."""

import h5py
import numpy as np
import xarray as xr

from lab.archive.chip_traces import write_chip_traces


def test_time_is_a_coordinate_of_every_node(tmp_path):
    path = tmp_path / "sub" / "r.h5"
    time_s = np.linspace(0.0, 1e-9, 11)
    volts = {"m": np.sin(time_s * 1e9), "c": np.cos(time_s * 1e9)}
    write_chip_traces(path, time_s, volts)
    with h5py.File(path) as f:
        assert sorted(f) == ["c", "m", "time_s"]
        assert f["time_s"].attrs["units"] == "s" and f["m"].attrs["units"] == "V"
        assert f["c"].attrs["long_name"] == "voltage of node c against ground"
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert list(ds.coords) == ["time_s"] and ds.time_s.attrs["units"] == "s"
        assert ds["m"].dims == ds["c"].dims == ("time_s",)
        np.testing.assert_array_equal(ds["time_s"].values, time_s)
        np.testing.assert_array_equal(ds["m"].values, volts["m"])
