"""Helpers of the sweep tests: specs in tmp_path, `nwlab sweep` as a subprocess, datasets compared."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]
NWLAB = Path(sys.executable).parent / "nwlab"
#: Variables that say how a point ran rather than what it measured.
RUN_ONLY = ("elapsed_s",)
#: Attributes that say when the Dataset was assembled.
RUN_ONLY_ATTRS = ("assembled",)


def write_spec(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def nwlab_sweep(*argv: str, timeout_s: float = 120) -> tuple[dict, subprocess.CompletedProcess]:
    """Run `nwlab sweep ARGV` to the end; its summary (the last stdout line, JSON) and the process."""
    done = subprocess.run([str(NWLAB), "sweep", *argv, "--no-progress"], check=False, capture_output=True, text=True,
                          timeout=timeout_s, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done


def open_results(directory: Path) -> xr.Dataset:
    with xr.open_dataset(directory / "sweep.nc", engine="h5netcdf") as data:
        return data.load()


def assert_same_results(a: xr.Dataset, b: xr.Dataset) -> None:
    """Every measured variable, coordinate and provenance attribute identical (NaN equal to NaN)."""
    assert sorted(a.data_vars) == sorted(b.data_vars)
    assert dict(a.sizes) == dict(b.sizes)
    for name in list(a.data_vars) + list(a.coords):
        if name in RUN_ONLY:
            continue
        left, right = a[name], b[name]
        assert left.dims == right.dims, name
        if left.dtype.kind in "fc":
            np.testing.assert_array_equal(left.values, right.values, err_msg=name)
        else:
            assert left.values.tolist() == right.values.tolist(), name
        assert left.attrs == right.attrs, name
    for key in set(a.attrs) | set(b.attrs):
        if key not in RUN_ONLY_ATTRS and key != "spec_file":
            assert a.attrs.get(key) == b.attrs.get(key), key
