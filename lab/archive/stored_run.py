"""A run file's contents as stored, read with h5py in one open: the header's fields, the
parameters and results with their attributes and axes, and (on request) the tables.

The report (lab/app/report/runs.py) turns this into its RunData; reading stays here, with the
rest of the archive's knowledge of the file (only lab.archive imports h5py). Attributes come out
as xarray (h5netcdf) gives them, so that both readings of a file agree: fixed-length byte
strings decoded, a one-element array as its element.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lab.archive.layout import (CONFIDENCE_LEVEL, ENTRY, EXACT, INTERVAL_HIGH, INTERVAL_LOW, STANDARD_UNCERTAINTY,
                                UNCERTAINTY_METHOD, text_value)

TRACES, RESULTS, PARAMETERS, PARAMETERS_RESOLVED = "traces", "results", "parameters", "parameters_resolved"
#: Groups of the entry that are not tables.
NOT_TABLES = frozenset({TRACES, RESULTS, PARAMETERS, PARAMETERS_RESOLVED, "instrument", "sample", "metadata"})
#: The attributes a parameter or result is read with: its units, its uncertainty, or why it has none.
QUANTITY_ATTRS = ("units", EXACT, UNCERTAINTY_METHOD, CONFIDENCE_LEVEL, INTERVAL_LOW, INTERVAL_HIGH,
                  STANDARD_UNCERTAINTY)


@dataclass(frozen=True)
class StoredQuantity:
    """A dataset of a parameters or results group: its value (text, a scalar or an array), its
    attributes (QUANTITY_ATTRS), and the named axis of its first dimension if it has one."""
    value: Any
    attrs: dict[str, Any]
    axis_name: str | None = None
    axis_values: np.ndarray | None = None
    axis_units: str = ""


@dataclass
class StoredRun:
    fields: dict[str, Any]                                  # header: run_id, procedure, ... (see _fields)
    quantities: dict[str, dict[str, StoredQuantity]]       # parameters, results, parameters_resolved
    tables: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    table_units: dict[str, dict[str, str]] = field(default_factory=dict)
    traced: bool = False                                    # the run holds a traces group


def attributes(obj: h5py.HLObject, *names: str) -> dict[str, Any]:
    """The named attributes of `obj`, as xarray gives them."""
    out: dict[str, Any] = {}
    for name in names:
        if name not in obj.attrs:
            continue
        value = obj.attrs[name]
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.ndarray) and len(value) == 1:
            value = value[0]
        out[name] = value
    return out


def read_stored_run(path: str | Path, *, tables: bool = False) -> StoredRun:
    """Read `path` (raises what h5py raises on a file that is not a run file: callers check
    readability first with lab.archive.reader.check_readable)."""
    with h5py.File(path, "r") as f:
        return read_stored_entry(f[ENTRY], tables=tables)


def read_stored_entry(top: h5py.Group, *, tables: bool = False) -> StoredRun:
    """`read_stored_run` of an entry group already open (the live view reads a `.partial` as a
    SWMR reader and its tables itself: without `tables`, nothing of a growing dataset is read)."""
    run = StoredRun(_fields(top), {name: _quantities(top[name]) for name in
                                   (PARAMETERS, RESULTS, PARAMETERS_RESOLVED) if name in top})
    run.traced = isinstance(top.get(TRACES), h5py.Group)
    if tables:
        for name, group in table_groups(top).items():
            columns = {col: ds for col, ds in group.items() if isinstance(ds, h5py.Dataset) and not ds.is_scale}
            run.tables[name] = {col: ds[()] for col, ds in columns.items()}
            run.table_units[name] = {col: str(attributes(ds, "units").get("units", "")) for col, ds in columns.items()}
    return run


def table_groups(top: h5py.Group) -> dict[str, h5py.Group]:
    """The entry's tables: its NXdata groups other than the traces and the results."""
    return {name: group for name, group in top.items()
            if name not in NOT_TABLES and isinstance(group, h5py.Group)
            and attributes(group, "NX_class").get("NX_class") == "NXdata"}


def _fields(top: h5py.Group) -> dict[str, Any]:
    instrument = top["instrument"]

    def read(group: h5py.Group | None, name: str, default: str = "") -> str:
        return text_value(group[name][()]) if group is not None and name in group else default

    station, chip = top.get("instrument/station"), top.get("sample/chip")
    snapshot, metadata = top.get("instrument/snapshot"), top.get("metadata")
    seed = instrument.get("emulator_seed")
    return {
        "run_id": text_value(top["run_id"][()]), "procedure": text_value(top["procedure"][()]),
        "exit_status": read(top, "exit_status", "unknown"), "exit_message": read(top, "exit_message"),
        "start_time": text_value(top["start_time"][()]), "end_time": read(top, "end_time"),
        "software_version": str(attributes(top["program_name"], "version").get("version", "?")),
        "bench": text_value(instrument["bench"][()]), "emulator_seed": int(seed[()]) if seed is not None else None,
        "station_text": read(station, "data"), "chip_text": read(chip, "data"),
        "snapshot_text": read(snapshot, "data") if snapshot is not None else None,
        "metadata_text": read(metadata, "data") if metadata is not None else None,
    }


def _axis(group: h5py.Group, ds: h5py.Dataset) -> h5py.Dataset | None:
    """The dimension scale of `ds`'s first dimension, if it is a named axis in `group` (not the
    plain index scale the archive gives a dimension without one)."""
    dim = ds.dims[0]
    if not len(dim):
        return None
    scale = dim[len(dim) - 1]                    # the last one attached, as netCDF readers take it
    name = scale.name.rsplit("/", 1)[-1]
    axis = group.get(name)
    if not isinstance(axis, h5py.Dataset) or not axis.is_scale or name.endswith(("_index", "_dim0")):
        return None
    return axis


def _quantities(group: h5py.Group) -> dict[str, StoredQuantity]:
    """The datasets of a parameters or results group; dimension scales are not quantities but
    the axes of those that have one."""
    out: dict[str, StoredQuantity] = {}
    for name, ds in group.items():
        if not isinstance(ds, h5py.Dataset) or ds.is_scale:
            continue
        attrs = attributes(ds, *QUANTITY_ATTRS)
        if h5py.check_string_dtype(ds.dtype) is not None:
            out[name] = StoredQuantity(text_value(ds.asstr()[()]), attrs)
            continue
        values = ds[()]
        if ds.ndim == 0:
            out[name] = StoredQuantity(values.item(), attrs)
            continue
        axis = _axis(group, ds)
        out[name] = StoredQuantity(values, attrs, axis.name.rsplit("/", 1)[-1] if axis is not None else None,
                                   axis[()] if axis is not None else None,
                                   str(attributes(axis, "units").get("units", "")) if axis is not None else "")
    return out
