"""One run file read for the live view (`nwlab watch`): finished (`.h5`) or still being written
(`.h5.partial`), in one open of the file, as plain numpy arrays and strings.

A `.partial` is opened the way lab/archive/recover.py opens it (`open_partial`): as a SWMR
reader while its writer holds it, outside SWMR mode once nobody does (a SWMR reader would retry
a dead file's broken checksum for minutes). Every growing dataset is refreshed and its shape read
once; the datasets that grow together (a table's columns, the traces and their columns) are cut
to the shortest of them, so a block being flushed while the file is read never shows half.

What it gives: the header (lab.archive.stored_run's fields), the parameters, resolved parameters
and results (a finished file's; a `.partial` has no results yet), every table with its columns'
units and its declared axis and signal, and of the traces the per-trace columns whole and the
samples of the last few traces (and of any others the caller picks from the columns: a
procedure's reference captures). A damaged, truncated or non-HDF5 file gives one ArchiveError
naming it; a file gone between listing and reading (a recovery renamed it) gives `FileGone`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lab.archive import layout
from lab.archive.reader import open_run_file
from lab.archive.recover import short
from lab.archive.stored_run import StoredQuantity, attributes, read_stored_entry, table_groups

#: Traces whose samples are read besides the last ones (a caller's picks), at most.
PICKED_TRACES_MAX = 64


class FileGone(layout.ArchiveError):
    """The file was there when the directory was listed and is not any more."""


@dataclass
class LiveTable:
    """A table as read: its columns (equal lengths), their units, its declared axis and signal."""
    name: str
    columns: dict[str, np.ndarray]
    units: dict[str, str]
    axis: str | None = None
    signal: str | None = None

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


@dataclass
class LiveTraces:
    """The traces group: how many traces it holds, the time axis, the per-trace columns whole,
    and the samples of the traces read (`indices`, ascending) per channel."""
    count: int
    time_s: np.ndarray
    indices: np.ndarray
    samples: dict[str, np.ndarray]             # channel -> (len(indices), len(time_s))
    channel_units: dict[str, str]
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    column_units: dict[str, str] = field(default_factory=dict)

    def trace(self, channel: str, index: int) -> np.ndarray | None:
        """One trace of one channel (None when it was not read or there is no such channel)."""
        if channel not in self.samples:
            return None
        where = np.searchsorted(self.indices, index)
        if where >= self.indices.size or self.indices[where] != index:
            return None
        return self.samples[channel][where]


@dataclass
class LiveRun:
    path: Path
    partial: bool
    fields: dict[str, Any]                                 # stored_run's header fields
    quantities: dict[str, dict[str, StoredQuantity]]      # parameters, results, parameters_resolved
    tables: dict[str, LiveTable] = field(default_factory=dict)
    traces: LiveTraces | None = None

    @property
    def procedure(self) -> str:
        return str(self.fields.get("procedure", ""))

    def parameter(self, name: str) -> float:
        """A numeric parameter as set (NaN when absent or not a number)."""
        return _number(self.quantities.get("parameters", {}).get(name))

    def resolved(self, name: str) -> float:
        """The value the plan used for an automatic parameter (NaN until it chose one)."""
        return _number(self.quantities.get("parameters_resolved", {}).get(name))


def _number(quantity: StoredQuantity | None) -> float:
    if quantity is None or isinstance(quantity.value, str) or np.ndim(quantity.value) != 0:
        return float("nan")
    try:
        return float(quantity.value)
    except (TypeError, ValueError):
        return float("nan")


#: Picks traces to read besides the last ones: (the run's procedure, the per-trace columns, the
#: trace count) -> trace indices.
Pick = Callable[[str, dict[str, np.ndarray], int], Iterable[int]]


def read_live_run(path: str | os.PathLike[str], *, last_traces: int | None = 4, pick: Pick | None = None) -> LiveRun:
    """Read `path` (see the module doc). `last_traces`: how many of the newest traces' samples
    to read (None: every trace's); `pick`: more traces to read (the newest PICKED_TRACES_MAX of
    those it names)."""
    path = Path(path)

    def entry(top: h5py.Group) -> LiveRun:
        stored = read_stored_entry(top)
        run = LiveRun(path, path.name.endswith(layout.PARTIAL_SUFFIX), stored.fields, stored.quantities)
        for name, group in table_groups(top).items():
            run.tables[name] = _table(name, group)
        traces = top.get(layout.TRACES)
        if isinstance(traces, h5py.Group):
            run.traces = _traces(traces, last_traces, pick, run.procedure)
        return run

    return _read(path, entry)


def read_live_traces(path: str | os.PathLike[str], *, last_traces: int | None = None) -> LiveTraces | None:
    """The traces of `path` alone (None if it has none), as `read_live_run` reads them; by
    default every trace's samples."""
    def entry(top: h5py.Group) -> LiveTraces | None:
        traces = top.get(layout.TRACES)
        return _traces(traces, last_traces, None, "") if isinstance(traces, h5py.Group) else None

    return _read(Path(path), entry)


def _read(path: Path, entry: Callable[[h5py.Group], Any]) -> Any:
    """`entry` of the file's /entry group, with the errors the module doc names."""
    try:
        with _open(path) as f:
            if layout.ENTRY not in f:
                raise layout.ArchiveError(f"{path}: no /{layout.ENTRY} group; not an nwlab run file")
            return entry(f[layout.ENTRY])
    except layout.ArchiveError:
        if not path.exists():
            raise FileGone(f"{path}: gone while it was read (a recovery renamed it?)") from None
        raise
    except FileNotFoundError:
        raise FileGone(f"{path}: gone while it was read (a recovery renamed it?)") from None
    except Exception as exc:  # noqa: BLE001 - damaged metadata: h5py raises OSError, RuntimeError, KeyError, ...
        if not path.exists():
            raise FileGone(f"{path}: gone while it was read (a recovery renamed it?)") from None
        raise layout.ArchiveError(f"{path}: damaged run file ({short(exc)})") from exc


def _open(path: Path) -> h5py.File:
    if not path.exists() and not path.is_symlink():
        raise FileGone(f"{path}: gone before it was read (a recovery renamed it?)")
    return open_run_file(path)


def _length(ds: h5py.Dataset) -> int:
    """The dataset's current length along its first dimension (refreshed for a SWMR reader)."""
    if ds.id.get_space().get_simple_extent_ndims() == 0:
        return 1
    try:
        ds.refresh()
    except (ValueError, RuntimeError, OSError):       # not opened as a SWMR reader: nothing to refresh
        pass
    return int(ds.shape[0])


def _units(ds: h5py.Dataset) -> str:
    return str(attributes(ds, "units").get("units", ""))


def _table(name: str, group: h5py.Group) -> LiveTable:
    datasets = {col: ds for col, ds in group.items()
                if isinstance(ds, h5py.Dataset) and not ds.is_scale and ds.ndim == 1}
    lengths = {col: _length(ds) for col, ds in datasets.items()}
    rows = min(lengths.values(), default=0)
    attrs = attributes(group, "signal", "axes")
    axes = attrs.get("axes")
    if isinstance(axes, np.ndarray):
        axes = axes[0] if axes.size else None
    axis = layout.text_value(axes) if axes is not None else None
    signal = layout.text_value(attrs["signal"]) if "signal" in attrs else None
    return LiveTable(name, {col: ds[:rows] for col, ds in datasets.items()},
                     {col: _units(ds) for col, ds in datasets.items()},
                     axis if axis in datasets else None, signal if signal in datasets else None)


def _traces(group: h5py.Group, last: int | None, pick: Pick | None, procedure: str) -> LiveTraces:
    signals = layout.trace_signal_names(group)
    skip = set(layout.TRACE_SCALES)
    for signal in signals:
        skip |= {*layout.signal_parts(group, signal), layout.channel_dim(signal), layout.channel_names_of(signal)}
    columns = {name: ds for name, ds in group.items()
               if name not in skip and isinstance(ds, h5py.Dataset) and not ds.is_scale and ds.ndim == 1}
    growing = [group["trace"]] if "trace" in group else []
    stored = [group[part] for s in signals for part in layout.signal_parts(group, s)]
    count = min((_length(ds) for ds in [*growing, *stored, *columns.values()]), default=0)
    column_values = {name: ds[:count] for name, ds in columns.items()}
    wanted = set(range(0 if last is None else max(count - last, 0), count))
    if pick is not None:
        picked = sorted({int(k) for k in pick(procedure, column_values, count) if 0 <= int(k) < count} - wanted)
        wanted |= set(picked[-PICKED_TRACES_MAX:])
    indices = np.array(sorted(wanted), dtype=np.int64)
    samples: dict[str, np.ndarray] = {}
    channel_units: dict[str, str] = {}
    for signal in signals:
        ds = layout.signal_dataset(group, signal)
        names_ds = group.get(layout.channel_names_of(signal))
        names = [layout.text_value(n) for n in names_ds[()]] if names_ds is not None else [
            f"{signal}{k}" for k in range(ds.shape[1])]
        block = layout.read_signal(group, signal, indices.tolist())
        for k, name in enumerate(names):
            samples[name] = block[:, k, :]
            channel_units[name] = layout.signal_units(group, signal)
    time_s = group["time"][()] if "time" in group else np.arange(next(iter(samples.values())).shape[-1]
                                                                 if samples else 0, dtype=float)
    return LiveTraces(count, np.asarray(time_s, dtype=float), indices, samples, channel_units, column_values,
                      {name: _units(ds) for name, ds in columns.items()})
