"""Reading archived runs back for people: a one-line summary per run and a full description.

A damaged file (empty, truncated, a broken checksum, not HDF5, a directory) gives one
ArchiveError naming it, whatever h5py raised while reading it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import h5py
import numpy as np

from contracts.units import display_unit, format_si, format_si_range
from lab.archive import layout
from lab.archive.recover import check_file, open_partial, short

T = TypeVar("T")


@dataclass(frozen=True)
class RunSummary:
    path: Path
    run_id: str
    procedure: str
    status: str  # completed | aborted | failed | crashed | incomplete
    start_time: str
    n_traces: int
    size_bytes: int


def open_run_file(path: Path) -> h5py.File:
    """A run file open read-only: a `.partial` as a SWMR reader (recover.open_partial), a `.h5`
    after its signature is checked; one ArchiveError naming it when it is not readable HDF5."""
    if path.name.endswith(layout.PARTIAL_SUFFIX):
        return open_partial(path)
    check_file(path)
    try:
        return h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError or RuntimeError
        raise layout.ArchiveError(f"{path}: not a readable HDF5 file ({short(exc)})") from exc


def _damaged(path: Path, exc: Exception) -> layout.ArchiveError:
    return layout.ArchiveError(f"{path}: damaged run file ({short(exc)})")


def _str(group: h5py.Group, name: str, default: str = "") -> str:
    if name not in group:
        return default
    value = group[name][()]
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(f: h5py.File, path: Path) -> h5py.Group:
    if layout.ENTRY not in f:
        raise layout.ArchiveError(f"{path}: no /{layout.ENTRY} group; not an nwlab run file")
    return f[layout.ENTRY]


def summarize(path: str | os.PathLike[str]) -> RunSummary:
    return _naming_damage(Path(path), _summarize)


def _naming_damage(path: Path, read: Callable[[Path], T]) -> T:
    """`read(path)`; whatever damaged metadata raises becomes one ArchiveError naming the file."""
    try:
        return read(path)
    except layout.ArchiveError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged metadata: OSError, RuntimeError, KeyError, ...
        raise _damaged(path, exc) from exc


def _summarize(path: Path) -> RunSummary:
    with open_run_file(path) as f:
        entry = _entry(f, path)
        partial = path.name.endswith(layout.PARTIAL_SUFFIX)
        n = entry[layout.TRACES]["trace"].shape[0] if layout.TRACES in entry else 0
        return RunSummary(path, _str(entry, "run_id"), _str(entry, "procedure"),
                          "incomplete" if partial else _str(entry, "exit_status", "unknown"),
                          _str(entry, "start_time"), n, path.stat().st_size)


def check_readable(path: str | os.PathLike[str]) -> None:
    """Raise ArchiveError unless plain h5py reads the finished file's whole structure and every
    dataset's first and last row (where a cut or an unwritten block would show). Readers that
    hand files to other libraries (the report, through xarray) check with this first."""
    path = Path(path)
    if path.name.endswith(layout.PARTIAL_SUFFIX):
        raise layout.ArchiveError(f"{path}: an unfinished run (recover it with: nwlab archive recover {path})")
    try:
        with open_run_file(path) as f:
            if layout.ENTRY not in f or "run_id" not in f[layout.ENTRY]:
                raise layout.ArchiveError(f"{path}: not an nwlab run file (no /{layout.ENTRY}/run_id)")
            datasets: list[h5py.Dataset] = []
            f.visititems(lambda _, obj: datasets.append(obj) if isinstance(obj, h5py.Dataset) else None)
            for ds in datasets:
                dict(ds.attrs)
                if ds.shape == ():
                    ds[()]
                elif ds.size:
                    ds[:1], ds[-1:]
    except layout.ArchiveError:
        raise
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError, RuntimeError, KeyError, ...
        raise _damaged(path, exc) from exc


def run_files(directory: str | os.PathLike[str]) -> list[Path]:
    d = Path(directory)
    if not d.is_dir():
        raise layout.ArchiveError(f"{d}: not a directory")
    files = [p for p in d.iterdir() if p.name.endswith((layout.SUFFIX, layout.PARTIAL_SUFFIX))]
    return sorted(files, key=lambda p: p.name)


def _scalar(ds: h5py.Dataset):
    v = ds[()]
    return v.decode() if isinstance(v, bytes) else v


def _value(ds: h5py.Dataset) -> str:
    units = str(ds.attrs.get("units", ""))
    uncertainty = layout.read_uncertainty(ds.attrs)
    if ds.ndim == 0:
        v = _scalar(ds)
        if not isinstance(v, (int, float, np.integer, np.floating)):
            return f"{v} {display_unit(units)}".rstrip()
        if uncertainty is None:
            return format_si(v, units)
        return (f"{format_si(v, units)}, {uncertainty.level * 100:g} % interval "
                f"{format_si_range(float(uncertainty.low), float(uncertainty.high), units)} ({uncertainty.method})")
    dims = [d.label or (d[0].name.rsplit("/", 1)[1] if len(d) else "?") for d in ds.dims]
    shown = f"{ds.dtype}{list(ds.shape)} {display_unit(units)} along ({', '.join(dims)})".replace("  ", " ")
    return shown if uncertainty is None else f"{shown}, with {uncertainty.level * 100:g} % intervals ({uncertainty.method})"


def _parameter_value(ds: h5py.Dataset, results: h5py.Group | None, automatic: Collection[str] | None,
                     resolved: h5py.Group | None = None) -> str:
    """A parameter as set; one left at 0 where 0 means "automatic" (the plan chose: design values,
    a measured threshold) says so, with the value the run used beside it: from
    `entry/parameters_resolved`, or (archives from before it) a result of its name. `automatic`:
    the procedure's automatic parameters (None: not known, then a parameter the run resolved, or a
    0 with a non-zero result of its name, is taken as one)."""
    name = ds.name.rsplit("/", 1)[1]
    chosen = resolved.get(name) if resolved is not None else None
    if isinstance(chosen, h5py.Dataset) and chosen.ndim == 0 and np.isfinite(_scalar(chosen)):
        used = chosen
    else:
        used = results.get(name) if results is not None else None
        used = used if isinstance(used, h5py.Dataset) and used.ndim == 0 and used.dtype.kind in "fi" else None
    if not (ds.ndim == 0 and ds.dtype.kind == "f" and _scalar(ds) == 0):
        return _value(ds)
    declared = chosen is not None
    if automatic is None and not declared and (used is None or _scalar(used) == 0) \
            or automatic is not None and name not in automatic:
        return _value(ds)
    return f"automatic ({_value(used)} used)" if used is not None else "automatic (the value used is not archived)"


def _software(entry: h5py.Group) -> str:
    """"nwlab 0.1.0 (commit)": the version string already names the program."""
    program = _str(entry, "program_name", "nwlab")
    version = str(entry["program_name"].attrs.get("version", "?")) if "program_name" in entry else "?"
    return version if version.startswith(program) else f"{program} {version}"


def describe(path: str | os.PathLike[str], automatic: Collection[str] | None = None) -> str:
    """Everything a person checks first: status, parameters, results, data shapes, snapshots.
    `automatic`: the run's procedure's parameters where 0 means "the plan chooses" (if known)."""
    return _naming_damage(Path(path), lambda p: _describe(p, automatic))


def _describe(path: Path, automatic: Collection[str] | None = None) -> str:
    s = summarize(path)
    lines = [f"run {s.run_id} ({s.procedure}): {s.status}",
             f"  file {path} ({s.size_bytes / 1e6:.1f} MB)"]
    with open_run_file(path) as f:
        entry = _entry(f, path)
        lines.append(f"  started {s.start_time}; ended {_str(entry, 'end_time', '-')}")
        for field in ("exit_message", "traceback"):
            text = _str(entry, field).rstrip()
            if text:
                lines.append(f"  {field.replace('_', ' ')}:")
                lines += [f"    {line}" for line in text.splitlines()]
        instrument = entry["instrument"]
        seed = f" (seed {instrument['emulator_seed'][()]})" if "emulator_seed" in instrument else ""
        lines.append(f"  bench {_str(instrument, 'bench')}{seed}; software {_software(entry)}")
        results = entry[layout.RESULTS] if layout.RESULTS in entry else None
        resolved = entry.get(layout.PARAMETERS_RESOLVED)
        for group in ("parameters", layout.RESULTS):
            if group in entry:
                lines.append(f"{group}:")
                shown = [(name, _parameter_value(ds, results, automatic, resolved) if group == "parameters"
                          else _value(ds)) for name, ds in entry[group].items() if not h5py.h5ds.is_scale(ds.id)]
                width = max((len(name) for name, _ in shown), default=0)
                lines += [f"  {name:<{width}} = {text}" for name, text in shown]
        if layout.TRACES in entry:
            lines.append(_traces_line(entry[layout.TRACES], s.n_traces))
        tables = [k for k, g in entry.items() if isinstance(g, h5py.Group) and k not in
                  (layout.TRACES, layout.RESULTS) and g.attrs.get("NX_class") == "NXdata"]
        if tables:
            lines.append("tables:")
            for name in tables:
                g = entry[name]
                cols = ", ".join(_column(c, g[c]) for c in g if c != "row")
                lines.append(f"  {name}: {g['row'].shape[0]} rows; {cols}")
        lines.append(_snapshot_line(instrument))
    return "\n".join(lines)


def _traces_line(g: h5py.Group, n: int) -> str:
    """Channels with their units (one signal variable per unit), time axis and per-trace columns."""
    channels, skip = [], set(layout.TRACE_SCALES)
    for signal in layout.trace_signal_names(g):
        units = layout.signal_units(g, signal)
        names = layout.channel_names_of(signal)
        channels += [_column(x.decode() if isinstance(x, bytes) else x, units) for x in g[names][()]]
        skip |= {*layout.signal_parts(g, signal), layout.channel_dim(signal), names}
    time = g["time"]
    cols = [_column(c, g[c]) for c in g if c not in skip]
    return (f"traces: {n} x {len(channels)} channels ({', '.join(channels)}) x {time.shape[0]} points, "
            f"time {format_si(time[0], 's')} .. {format_si(time[-1], 's')}"
            + (f"; per trace: {', '.join(cols)}" if cols else ""))


def _column(name: str, units_or_ds) -> str:
    """"spike_energy_j [J]"; dimensionless columns without brackets."""
    units = units_or_ds if isinstance(units_or_ds, str) else str(units_or_ds.attrs.get("units", ""))
    shown = display_unit(units)
    return f"{name} [{shown}]" if shown else name


def _snapshot_line(instrument: h5py.Group) -> str:
    notes = sorted(k for k in instrument if k == "snapshot" or k.startswith("snapshot_")
                   and k[9:].isdigit())
    pending = instrument[layout.SNAPSHOT_LOG].shape[0] if layout.SNAPSHOT_LOG in instrument else 0
    top = sorted(json.loads(_str(instrument["snapshot"], "data") or "{}"))
    return (f"snapshot: {len(notes)} note(s) + {pending} journalled change(s); "
            f"top-level keys: {', '.join(top) or '-'}")
