"""One archived run read back for the report.

Status and provenance, parameters and results with their units, and each table are loaded into
memory at once and the file is closed. The header and tables are
read with h5py in one open of the file (lab.archive.stored_run), giving exactly what xarray gives
(tests/lab/test_run_header_read.py). The traces (if any) are read when first asked for: as an
xarray Dataset (h5netcdf) for the Python API, or as arrays with h5py (`trace_arrays`) for the
report's figures, which so never import xarray (with what it imports, about a second in a fresh
process).

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

import numpy as np

from contracts.files.yaml12 import parse_yaml
from contracts.records import Uncertainty
from lab.archive.layout import ENTRY, EXACT, decoded_traces, read_uncertainty, text_value
from lab.archive.live_reader import LiveTraces, read_live_traces
from lab.archive.stored_run import (PARAMETERS, PARAMETERS_RESOLVED, RESULTS, TRACES, StoredQuantity, StoredRun,
                                    read_stored_run)


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
    with_data: bool = True            # tables and traces read (False: `load_run(..., data=False)`)
    traced: bool = False              # the file holds traces (`traces` reads them)
    _traces: Any = field(default=None, repr=False)
    #: The stage temperature the controller read as the run started (its snapshot); NaN if not archived.
    stage_temperature_k: float = float("nan")

    @property
    def traces(self) -> Any:
        """The archived traces as an xarray Dataset (read from the file on first use); None if
        the run has none or was read without its data."""
        if self._traces is None and self.traced and self.with_data:
            self._traces = _read_traces(self.path)
        return self._traces

    @traces.setter
    def traces(self, dataset: Any) -> None:
        self._traces = dataset

    def trace_arrays(self) -> LiveTraces | None:
        """Every trace's samples per channel (decoded, in the channel's units) and the per-trace
        columns, read with h5py (lab.archive.live_reader): what a figure draws, without xarray;
        None if the run has no traces. RunFileError if they cannot be read."""
        if not self.traced:
            return None
        try:
            return read_live_traces(self.path)
        except Exception as exc:  # noqa: BLE001 - as _checked_load: the file changed or is not the layout
            raise _traces_unreadable(self.path, exc) from exc

    def result(self, name: str) -> Quantity | None:
        return self.results.get(name)

    def scalar(self, name: str) -> float:
        found = self.results.get(name)
        return found.scalar() if found is not None else float("nan")


def _quantity(stored: StoredQuantity) -> Quantity:
    units = str(stored.attrs.get("units", ""))
    if isinstance(stored.value, str):
        return Quantity(stored.value, units)
    return Quantity(stored.value, units, stored.axis_name, stored.axis_values, stored.axis_units,
                    read_uncertainty(stored.attrs), text_value(stored.attrs.get(EXACT, "")))


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
        return _load(path, data)
    except Exception as exc:  # noqa: BLE001 - readable by h5py, yet not the layout the report reads
        raise RunFileError(f"{path}: not readable as a run ({type(exc).__name__}: {_short(exc)})") from exc


def _load(path: Path, data: bool = True) -> RunData:
    """The header (and with `data` the tables) read with h5py in one open of the file
    (lab.archive.stored_run)."""
    return run_from_stored(path, read_stored_run(path, tables=data), data)


def _read_traces(path: Path) -> Any:
    """The traces group as an xarray Dataset, xarray opening that one group (not the whole tree:
    it walks every group); RunFileError if it cannot be read."""
    import xarray as xr     # only here: importing it (and dask, which it imports) takes a second

    try:
        with xr.open_dataset(path, engine="h5netcdf", group=f"{ENTRY}/{TRACES}") as traces:
            return decoded_traces(traces.load())
    except Exception as exc:  # noqa: BLE001 - as _checked_load: the file changed or is not the layout
        raise _traces_unreadable(path, exc) from exc


def _traces_unreadable(path: Path, exc: BaseException) -> RunFileError:
    return RunFileError(f"{path}: traces not readable ({type(exc).__name__}: {_short(exc)})")


def run_from_stored(path: Path, stored: StoredRun, data: bool = True) -> RunData:
    """A RunData of what lab.archive.stored_run read (its traces left out: None)."""
    fields = stored.fields
    run = RunData(
        path=path, run_id=fields["run_id"], procedure=fields["procedure"], status=fields["exit_status"],
        message=fields["exit_message"], started_at=fields["start_time"], ended_at=fields["end_time"],
        software_version=fields["software_version"], bench=fields["bench"], emulator_seed=fields["emulator_seed"],
        station_text=fields["station_text"], chip_text=fields["chip_text"],
        metadata=json.loads(fields["metadata_text"]) if fields["metadata_text"] is not None else {},
        with_data=data, traced=stored.traced, tables=stored.tables, table_units=stored.table_units,
    )
    if fields["snapshot_text"] is not None and fields["station_text"]:
        run.stage_temperature_k = stage_temperature_k(fields["snapshot_text"], run.station_text)
    quantities = stored.quantities
    run.parameters.update({name: _quantity(q) for name, q in quantities.get(PARAMETERS, {}).items()})
    run.results.update({name: _quantity(q) for name, q in quantities.get(RESULTS, {}).items()})
    resolved = {name: _quantity(q) for name, q in quantities.get(PARAMETERS_RESOLVED, {}).items()}
    # NaN: the run ended before its plan chose the value
    run.parameters_resolved.update({name: q for name, q in resolved.items() if np.isfinite(q.value)})
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
