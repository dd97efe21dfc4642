"""One archived run read back for the report.

Everything the report needs is loaded into memory at once and the file is closed: status and
provenance, parameters and results with their units, each table and the traces (if any). The
header (all but tables and traces) is read with h5py in one open of the file, giving exactly what
xarray gives (tests/lab/test_run_header_read.py); tables and traces through xarray (h5netcdf).

A file is checked with plain h5py first (lab.archive.reader.check_readable: every object's
metadata, the first and last row of every dataset) and read only if that went cleanly: a damaged
file (a full disk, a copy cut short) gives a RunFileError naming it, and `load_runs` skips it with
a note, so one bad file never takes the report down.
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from contracts.files.yaml12 import parse_yaml
from contracts.records import Uncertainty
from lab.archive.layout import (CONFIDENCE_LEVEL, ENTRY, EXACT, INTERVAL_HIGH, INTERVAL_LOW,
                                STANDARD_UNCERTAINTY, UNCERTAINTY_METHOD, read_uncertainty)

TRACES, RESULTS, PARAMETERS_RESOLVED = "traces", "results", "parameters_resolved"
UNCERTAINTY_ATTRS = (UNCERTAINTY_METHOD, CONFIDENCE_LEVEL, INTERVAL_LOW, INTERVAL_HIGH, STANDARD_UNCERTAINTY)
NOT_TABLES = frozenset({TRACES, RESULTS, "parameters", PARAMETERS_RESOLVED, "instrument", "sample", "metadata"})


class RunFileError(ValueError):
    """A run file the report cannot read (damaged, empty, not a run file)."""


@dataclass(frozen=True)
class Quantity:
    """A parameter or result: value (scalar, array or text), units, and its axis if any."""
    value: Any
    units: str
    axis_name: str | None = None
    axis_values: np.ndarray | None = None
    axis_units: str = ""
    uncertainty: Uncertainty | None = None
    exact: str = ""                   # why a number has no uncertainty, as the run archived it

    @property
    def is_text(self) -> bool:
        return isinstance(self.value, str)

    @property
    def is_scalar(self) -> bool:
        return not self.is_text and np.ndim(self.value) == 0

    def scalar(self) -> float:
        """The value as a float; NaN for text or arrays."""
        return float(self.value) if self.is_scalar else float("nan")


@dataclass
class RunData:
    path: Path
    run_id: str
    procedure: str
    status: str
    message: str
    started_at: str
    ended_at: str
    software_version: str
    bench: str                        # "emulator" or "hardware"
    emulator_seed: int | None
    station_text: str
    chip_text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Quantity] = field(default_factory=dict)
    #: The values the plan chose for automatic parameters left at 0 (absent: not archived).
    parameters_resolved: dict[str, Quantity] = field(default_factory=dict)
    results: dict[str, Quantity] = field(default_factory=dict)
    tables: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    table_units: dict[str, dict[str, str]] = field(default_factory=dict)
    traces: Any = None                # xarray.Dataset (loaded) or None
    with_data: bool = True            # tables and traces read (False: `load_run(..., data=False)`)
    #: The stage temperature the controller read as the run started (its snapshot); NaN if not archived.
    stage_temperature_k: float = float("nan")

    def result(self, name: str) -> Quantity | None:
        return self.results.get(name)

    def scalar(self, name: str) -> float:
        found = self.results.get(name)
        return found.scalar() if found is not None else float("nan")


def _text(value: Any) -> str:
    value = np.asarray(value).item() if np.ndim(value) == 0 else value
    return value.decode() if isinstance(value, bytes) else str(value)


def _attrs(obj: h5py.HLObject, *names: str) -> dict[str, Any]:
    """The named attributes of `obj` as xarray (h5netcdf) gives them: fixed-length byte strings
    decoded, and a one-element array as its element (so a reader sees the same values either way)."""
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


def _quantities(group: h5py.Group) -> dict[str, Quantity]:
    """Datasets of a results/parameters group with their units and uncertainty; dimension
    scales are not quantities but the axes of those that have one."""
    out: dict[str, Quantity] = {}
    for name, ds in group.items():
        if not isinstance(ds, h5py.Dataset) or ds.is_scale:
            continue
        attrs = _attrs(ds, "units", EXACT, *UNCERTAINTY_ATTRS)
        units = str(attrs.get("units", ""))
        if h5py.check_string_dtype(ds.dtype) is not None:
            out[name] = Quantity(_text(ds.asstr()[()]), units)
            continue
        values = ds[()]
        uncertainty = read_uncertainty(attrs)
        exact = _text(attrs.get(EXACT, ""))
        if ds.ndim == 0:
            out[name] = Quantity(values.item(), units, uncertainty=uncertainty, exact=exact)
            continue
        axis = _axis(group, ds)
        out[name] = Quantity(values, units, axis.name.rsplit("/", 1)[-1] if axis is not None else None,
                             axis[()] if axis is not None else None,
                             str(_attrs(axis, "units").get("units", "")) if axis is not None else "",
                             uncertainty, exact)
    return out


def _short(exc: BaseException) -> str:
    text = str(exc).split("\n", 1)[0].strip().strip("\"'")
    return text.split(" (file read failed", 1)[0][:200] or type(exc).__name__


def load_run(path: str | Path, *, data: bool = True) -> RunData:
    """Read a run file (`.h5`); raises RunFileError if it is damaged or not a run file. With
    `data=False` its tables and traces are left out (`with_data` False): status, provenance,
    parameters and results only, read in under a tenth of the time.

    A finished run file does not change, so the runs read last are kept (by path, size and
    modification time): a campaign rewrites its report after every run without reading every
    earlier run again. Callers must not change the RunData they get."""
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None
    if key is not None and key in _loaded and (_loaded[key].with_data or not data):
        _loaded.move_to_end(key)
        return _loaded[key]
    run = _checked_load(path, data)
    if key is not None:
        _loaded[key] = run
        while len(_loaded) > KEPT_RUNS:
            _loaded.popitem(last=False)
    return run


#: How many runs `load_run` keeps (about a campaign's worth, twice).
KEPT_RUNS = 16
_loaded: OrderedDict[tuple[str, int, int], RunData] = OrderedDict()


def _checked_load(path: Path, data: bool = True) -> RunData:
    from lab.archive.layout import ArchiveError
    from lab.archive.reader import check_readable

    try:
        check_readable(path)
    except ArchiveError as exc:
        raise RunFileError(str(exc)) from exc
    try:
        return _load(path) if data else _load_without_data(path)
    except Exception as exc:  # noqa: BLE001 - readable by h5py, yet not the layout the report reads
        raise RunFileError(f"{path}: not readable as a run ({type(exc).__name__}: {_short(exc)})") from exc


def _load(path: Path) -> RunData:
    """The header and tables read with h5py in one open of the file; the traces, an xarray
    Dataset, through xarray opening that one group (not the whole tree: it walks every group)."""
    with h5py.File(path, "r") as f:
        run = _header(f[ENTRY], path)
        run.with_data = True
        for name, group in f[ENTRY].items():
            if name in NOT_TABLES or not isinstance(group, h5py.Group) \
                    or _attrs(group, "NX_class").get("NX_class") != "NXdata":
                continue
            columns = {col: ds for col, ds in group.items() if isinstance(ds, h5py.Dataset) and not ds.is_scale}
            run.tables[name] = {col: ds[()] for col, ds in columns.items()}
            run.table_units[name] = {col: str(_attrs(ds, "units").get("units", "")) for col, ds in columns.items()}
        traced = isinstance(f[ENTRY].get(TRACES), h5py.Group)
    if traced:
        import xarray as xr     # only here: importing it takes most of a second

        with xr.open_dataset(path, engine="h5netcdf", group=f"{ENTRY}/{TRACES}") as traces:
            run.traces = traces.load()
    return run


def _load_without_data(path: Path) -> RunData:
    """A run's header, parameters and results, without tables and traces, read with h5py in one
    open of the file (xarray walks the whole file for each group it opens)."""
    with h5py.File(path, "r") as f:
        return _header(f[ENTRY], path)


def _header(top: h5py.Group, path: Path) -> RunData:
    """Status, provenance, parameters and results from an open run file's entry group."""
    instrument = top["instrument"]

    def text(group: h5py.Group | None, name: str, default: str = "") -> str:
        return _text(group[name][()]) if group is not None and name in group else default

    station, chip = top.get("instrument/station"), top.get("sample/chip")
    snapshot, metadata = top.get("instrument/snapshot"), top.get("metadata")
    seed = instrument.get("emulator_seed")
    run = RunData(
        path=path, run_id=_text(top["run_id"][()]), procedure=_text(top["procedure"][()]),
        status=text(top, "exit_status", "unknown"), message=text(top, "exit_message"),
        started_at=_text(top["start_time"][()]), ended_at=text(top, "end_time"),
        software_version=str(_attrs(top["program_name"], "version").get("version", "?")),
        bench=_text(instrument["bench"][()]),
        emulator_seed=int(seed[()]) if seed is not None else None,
        station_text=text(station, "data"), chip_text=text(chip, "data"),
        metadata=json.loads(text(metadata, "data")) if metadata is not None else {},
        with_data=False,
    )
    if snapshot is not None and station is not None:
        run.stage_temperature_k = stage_temperature_k(text(snapshot, "data"), run.station_text)
    for name, target in (("parameters", run.parameters), (RESULTS, run.results)):
        if name in top:
            target.update(_quantities(top[name]))
    if PARAMETERS_RESOLVED in top:  # NaN: the run ended before its plan chose the value
        run.parameters_resolved.update({name: q for name, q in _quantities(top[PARAMETERS_RESOLVED]).items()
                                        if np.isfinite(q.value)})
    return run


def stage_temperature_k(snapshot_text: str, station_text: str) -> float:
    """The temperature controller's reading of its control sensor in a run's instrument snapshot
    (the instrument with role temperature_controller in the station file); NaN if absent."""
    try:
        instruments = json.loads(snapshot_text).get("instruments", {})
        controller = instruments[_temperature_controller(station_text)]
        sensor = controller["parameters"]["control_sensor"]["value"]
        reading = controller["submodules"][sensor]["parameters"]["temperature"]
        value = float(reading["value"])
        return value if reading.get("unit", "K") == "K" and np.isfinite(value) else float("nan")
    except (ValueError, KeyError, TypeError, AttributeError, StopIteration):
        return float("nan")


@functools.lru_cache(maxsize=8)
def _temperature_controller(station_text: str) -> str:
    """The instrument with role temperature_controller in the station file; its YAML is parsed
    once per text (a campaign's runs share one); StopIteration if there is none."""
    return next(n for n, i in archived_mapping(station_text).get("instruments", {}).items()
                if isinstance(i, dict) and i.get("role") == "temperature_controller")


def trace_channel(traces, name: str) -> tuple[np.ndarray, str] | None:
    """One channel of the archived traces, (trace, time) as floats, and its units; None if no
    channel has that name. Each unit has its own variable (voltage (trace, channel, time),
    current (trace, current_channel, time), ...), whose channel names sit along its channel
    dimension in `<dimension>_name`; an archive from before units per channel has only voltage."""
    if traces is None:
        return None
    for var in traces.data_vars.values():
        if var.ndim != 3 or var.dims[0] != "trace" or var.dims[2] != "time":
            continue
        names_var = traces.get(f"{var.dims[1]}_name")
        names = [_text(n) for n in names_var.values] if names_var is not None else []
        if name in names:
            return var.values[:, names.index(name), :].astype(float), str(var.attrs.get("units", ""))
    return None


def load_readable(paths, skipped: list[str] | None = None, *, data: bool = True) -> list[RunData]:
    """The runs of `paths` in start order; each file that cannot be read is left out, and one
    line saying why is appended to `skipped`."""
    runs = []
    for path in paths:
        try:
            runs.append(load_run(path, data=data))
        except RunFileError as error:
            if skipped is not None:
                skipped.append(str(error))
    return sorted(runs, key=lambda r: (r.started_at, r.run_id))


def load_runs(directory: str | Path, skipped: list[str] | None = None, *, data: bool = True) -> list[RunData]:
    """Every finished run file (`*.h5`) in a directory that can be read, in start order."""
    return load_readable(sorted(Path(directory).glob("*.h5")), skipped, data=data)


def archived_mapping(text: str) -> dict:
    """A YAML mapping from archived text (station, chip); {} for anything else, so that a report
    or a campaign directory never fails on an old or damaged archive's text."""
    try:
        tree = parse_yaml(text, Path("<archived text>"), ValueError) if text else {}
    except ValueError:
        return {}
    return tree if isinstance(tree, dict) else {}
