"""A sweep's results on disk: written incrementally, safe against a kill, resumable.

Layout of a sweep directory:

    DIR/manifest.json        what sweep this is (spec digest, chip, point count); a resume must match
    DIR/spec.yaml            the spec as it was read
    DIR/parts/part-NNNNNN.nc finished points, a few seconds' worth each (netCDF-4 through xarray)
    DIR/sweep.nc             the assembled Dataset (rewritten at the end of every run)

Why part files: only the client writes (workers hand their results back with the futures), so
no concurrent writers need Zarr; and an HDF5 file that is open when the process is killed can be
left unreadable, while a part is written under a temporary name and renamed when complete
(atomic on POSIX), so a kill loses at most the points not yet flushed. A resume reads the point
indices of the parts present and computes only the others. Assembling concatenates the parts
and, for a complete grid, gives the Dataset the swept parameters as dimensions.
The netCDF files are written by xarray's h5netcdf engine: nothing here imports h5py.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from sweeps.spec import METRICS, SYNAPTIC_METRICS, SweepSpec

MANIFEST_FORMAT = "nwlab-sweep-dir/1"
PART = re.compile(r"^part-(\d{6,})\.nc$")
#: Variables with one value per stimulus width.
PER_WIDTH = ("threshold_a", "threshold_a_low", "threshold_a_high")
#: Interval variables: name -> the metric they bound.
BOUNDS = {"threshold_a_low": "threshold_a", "threshold_a_high": "threshold_a",
          "refractory_s_low": "refractory_s", "refractory_s_high": "refractory_s",
          "fi_onset_a_low": "fi_onset_a", "fi_onset_a_high": "fi_onset_a",
          "transfer_probability_low": "transfer_probability", "transfer_probability_high": "transfer_probability",
          "transfer_delay_s_low": "transfer_delay_s", "transfer_delay_s_high": "transfer_delay_s"}
#: Counts recorded beside a metric: name -> what it counts.
COUNTS = {"energy_spikes": "spikes counted in the energy record",
          "pre_spikes": "trials of the synaptic transfer in which the pre-neuron spiked (the proportion's trials)"}
INTERVAL_METHOD = ("95 % profile-likelihood interval of the probit fit to the bisection's trials "
                   "(procedures.analysis.recovery)")
#: Metrics whose interval is not the probit fit's: metric -> its method.
INTERVAL_METHODS = {"transfer_probability": "95 % Wilson interval of the proportion (procedures.analysis.statistics)",
                    "transfer_delay_s": "range (lowest to highest) of the delay over the trials that transmitted"}
#: Bounds that are a range over trials, not a confidence interval.
RANGES = ("transfer_delay_s",)
PROCEDURE_INTERVALS = "the procedure's own 95 % interval (its method is archived with the run, DIR/runs/point-N/)"


class SweepDirError(ValueError):
    """A sweep directory that cannot take this sweep (another spec's results, unreadable parts)."""


def software_version() -> str:
    try:
        return metadata.version("nwlab")
    except metadata.PackageNotFoundError:
        return "unknown"


def variables(spec: SweepSpec) -> list[str]:
    """The result variables of a spec's metrics, in order (intervals and counts included)."""
    names = []
    for m in spec.metrics:
        names.append(m)
        if m in ("threshold_a", "refractory_s", "fi_onset_a", "transfer_probability", "transfer_delay_s"):
            names += [f"{m}_low", f"{m}_high"]
        if m == "energy_per_spike_j":
            names.append("energy_spikes")
        if m in SYNAPTIC_METRICS and "pre_spikes" not in names:
            names.append("pre_spikes")
    return names


class SweepStore:
    def __init__(self, directory: str | Path, spec: SweepSpec):
        self.directory = Path(directory)
        self.spec = spec
        self.parts = self.directory / "parts"

    def open(self) -> None:
        """Create the directory, or check that it holds this sweep (same spec digest)."""
        manifest = self.directory / "manifest.json"
        want = {"format": MANIFEST_FORMAT, "spec_digest": self.spec.digest, "chip_file": str(self.spec.chip_path),
                "points": self.spec.point_count, "sampling": self.spec.sampling}
        if manifest.exists():
            try:
                have = json.loads(manifest.read_text())
            except (OSError, ValueError) as exc:
                raise SweepDirError(f"{manifest}: unreadable ({exc})") from None
            if have.get("spec_digest") != self.spec.digest:
                raise SweepDirError(f"{self.directory}: holds another sweep (spec digest {have.get('spec_digest')}, "
                                    f"this spec {self.spec.digest}); give another --out")
            return
        if self.directory.exists() and any(self.directory.iterdir()):
            raise SweepDirError(f"{self.directory}: exists and is not a sweep directory; give another --out")
        self.parts.mkdir(parents=True, exist_ok=True)
        (self.directory / "spec.yaml").write_text(self.spec.text)
        _atomic_write_text(manifest, json.dumps(want, indent=1) + "\n")

    def part_files(self) -> list[Path]:
        if not self.parts.exists():
            return []
        return sorted(p for p in self.parts.iterdir() if PART.match(p.name))

    def done(self) -> dict[int, tuple[float, ...]]:
        """Finished points: index -> parameter values (adaptive sweeps tell their learner these)."""
        out = {}
        names = [p.name for p in self.spec.parameters]
        for path in self.part_files():
            with xr.open_dataset(path, engine="h5netcdf") as part:
                index = part["point"].values
                values = np.column_stack([part[n].values for n in names])
            out.update({int(i): tuple(float(v) for v in row) for i, row in zip(index, values)})
        return out

    def finished(self, metric: str) -> dict[int, tuple[tuple[float, ...], float]]:
        """Finished points with one metric's value (the first width's): index -> (values, value)."""
        out = {}
        names = [p.name for p in self.spec.parameters]
        for path in self.part_files():
            with xr.open_dataset(path, engine="h5netcdf") as part:
                metric_values = part[metric].values.reshape(part.sizes["point"], -1)[:, 0]
                errors = part["error"].values
                for k, index in enumerate(part["point"].values):
                    value = float(metric_values[k]) if not errors[k] else math.nan
                    out[int(index)] = (tuple(float(part[n].values[k]) for n in names), value)
        return out

    def write_part(self, results: list[Mapping[str, Any]]) -> Path:
        """Write finished points as the next part file (temporary name, then renamed)."""
        files = self.part_files()
        number = int(PART.match(files[-1].name).group(1)) + 1 if files else 0
        path = self.parts / f"part-{number:06d}.nc"
        temporary = self.parts / f".{path.name}.partial"
        points_dataset(self.spec, results).to_netcdf(temporary, engine="h5netcdf")
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
        return path

    def assemble(self) -> xr.Dataset:
        """Every finished point as one Dataset (grid dimensions when the grid is complete)."""
        files = self.part_files()
        if not files:
            data = points_dataset(self.spec, [])
        else:
            parts = [xr.load_dataset(p, engine="h5netcdf") for p in files]
            data = xr.concat(parts, dim="point", data_vars="all", coords="different", compat="equals",
                             combine_attrs="override").sortby("point")
        data.attrs.update(provenance(self.spec))
        shape = self.spec.grid_shape
        if shape is not None and data.sizes["point"] == math.prod(shape):
            data = to_grid(self.spec, data)
        return data

    def write_dataset(self) -> tuple[Path, xr.Dataset]:
        data = self.assemble()
        path = self.directory / "sweep.nc"
        temporary = self.directory / ".sweep.nc.partial"
        data.to_netcdf(temporary, engine="h5netcdf")
        os.replace(temporary, path)
        return path, data


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(text)
    os.replace(temporary, path)


def points_dataset(spec: SweepSpec, results: Iterable[Mapping[str, Any]]) -> xr.Dataset:
    """Points as a Dataset on a `point` dimension: parameter values (coordinates), seed, each
    metric with its interval, the error text of a failed point ("" when it ran) and its time."""
    results = list(results)
    widths = np.asarray(spec.stimulus["widths_s"], dtype=float)
    coords: dict[str, Any] = {"point": ("point", np.array([r["point"] for r in results], dtype=np.int64))}
    for k, p in enumerate(spec.parameters):
        coords[p.name] = ("point", np.array([r["values"][k] for r in results], dtype=float),
                          {"units": p.unit or "1", "parameter": p.key,
                           "long_name": f"{p.key} of chip file {spec.chip_path.name}"})
    data: dict[str, Any] = {
        "seed": ("point", np.array([r["seed"] for r in results], dtype=np.int64),
                 {"long_name": "the point's seed: SeedSequence([spec seed, point index])"}),
        "error": ("point", np.array([r.get("error", "") for r in results], dtype=object),
                  {"long_name": "why the point failed (empty when it ran)"}),
        "elapsed_s": ("point", np.array([r.get("elapsed_s", math.nan) for r in results], dtype=float),
                      {"units": "s", "long_name": "wall time of the point on its worker (not part of the result)"}),
    }
    for name in variables(spec):
        metric = BOUNDS.get(name, name)
        unit = METRICS[metric][0] if metric in METRICS else "1"
        described = METRICS[metric][1] if metric in METRICS else COUNTS[name]
        attrs: dict[str, Any] = {"units": unit, "long_name": described}
        if name in BOUNDS:
            method = (INTERVAL_METHODS.get(metric, INTERVAL_METHOD) if spec.measure == "simulation"
                      else PROCEDURE_INTERVALS)
            attrs.update(uncertainty_method=method, bounds_of=metric)
            if metric not in RANGES:          # a range over trials has no confidence level
                attrs["level"] = 0.95
        elif f"{name}_low" in variables(spec):
            attrs["ancillary_variables"] = f"{name}_low {name}_high"
        if name in PER_WIDTH:
            values = np.array([list(r.get(name) or [math.nan] * widths.size) for r in results],
                              dtype=float).reshape(len(results), widths.size)
            data[name] = (("point", "width_s"), values, attrs)
        else:
            data[name] = ("point", np.array([_number(r.get(name)) for r in results], dtype=float), attrs)
    if any(name in PER_WIDTH for name in data):
        coords["width_s"] = ("width_s", widths, {"units": "s", "long_name": "input pulse width (50 %)"})
    return xr.Dataset(data, coords=coords)


def _number(value) -> float:
    return math.nan if value is None else float(value)


def provenance(spec: SweepSpec) -> dict[str, Any]:
    return {"title": f"nwlab design sweep of {spec.chip_path.name}", "chip_file": str(spec.chip_path),
            "chip_name": str(spec.chip_tree.get("name", "")), "spec_file": str(spec.path), "spec": spec.text,
            "spec_digest": spec.digest, "software": f"nwlab {software_version()}", "seed": spec.seed,
            "seeds": "point seed = SeedSequence([seed, point index]).generate_state(1)[0]",
            "sampling": spec.sampling, "points_planned": spec.point_count,
            "stimulus": json.dumps({k: v for k, v in spec.stimulus.items()}),
            "assembled": datetime.now(UTC).isoformat(timespec="seconds")}


def to_grid(spec: SweepSpec, data: xr.Dataset) -> xr.Dataset:
    """A complete grid's points reshaped so that the swept parameters are dimensions."""
    shape = spec.grid_shape
    dims = [p.name for p in spec.parameters]
    coords = {p.name: (p.name, np.asarray(p.values), data[p.name].attrs) for p in spec.parameters}
    if "width_s" in data.coords:
        coords["width_s"] = data["width_s"]
    out = {}
    for name, variable in data.data_vars.items():
        rest = [d for d in variable.dims if d != "point"]
        values = variable.transpose("point", *rest).values.reshape(shape + tuple(data.sizes[d] for d in rest))
        out[name] = (dims + rest, values, variable.attrs)
    out["point"] = (dims, data["point"].values.reshape(shape), {"long_name": "point index"})
    return xr.Dataset(out, coords=coords, attrs=data.attrs)
