"""Simulated node voltages of a chip (`nwlab chip simulate --out result.h5`) as one HDF5 file.

netCDF-shaped like the run archive: `time_s` is a dimension scale attached to every node's
dataset, so `xarray.open_dataset(path, engine="h5netcdf")` shows a `time_s` coordinate and
plain h5py sees the datasets `time_s` and one per node.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np

from lab.archive.layout import attach, scale

TIME = "time_s"


def write_chip_traces(path: Path, time_s: np.ndarray, node_voltage_v: Mapping[str, np.ndarray]) -> None:
    """Write `time_s` (s) and one dataset per node (V against ground) on that time axis."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        time = scale(f, TIME, time_s, units="s")
        for node, volts in node_voltage_v.items():
            ds = f.create_dataset(node, data=volts)
            ds.attrs["units"] = "V"
            ds.attrs["long_name"] = f"voltage of node {node} against ground"
            attach(ds, time)
