"""Closing a run's file: the fields that are only known at the end (shared by writer and recover).

These are written with the file open `r+` and not in SWMR mode, because SWMR cannot create
objects or change attributes. Then the file is fsynced and renamed from `.h5.partial` to `.h5`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import h5py

from lab.archive import layout
from contracts.records import Result


def write_status(entry: h5py.Group, *, status: str, end_time: str, message: str = "",
                 traceback: str = "") -> None:
    for name, value in (("end_time", end_time), ("exit_status", status),
                        ("exit_message", message), ("traceback", traceback)):
        if name in entry:
            del entry[name]
        layout.text(entry, name, value)


def snapshot_notes(entry: h5py.Group, *, drop_journal: bool = True) -> int:
    """Turn the live snapshot journal into one NXnote per change; return how many.

    `drop_journal=False` leaves the journal datasets for `drop_snapshot_journal`: the writer
    deletes them last, because deleting frees file space that HDF5 would hand to the next
    dataset, whose data goes to disk at once, while the metadata that still links the journal
    stays cached until close — a crash in between would leave the journal overwritten."""
    instrument = entry["instrument"]
    if layout.SNAPSHOT_LOG not in instrument:
        return 0
    lines = [s.decode() if isinstance(s, bytes) else s for s in instrument[layout.SNAPSHOT_LOG][()]]
    for n, line in enumerate(lines, start=1):
        change = json.loads(line)
        if f"snapshot_{n}" in instrument:  # left by a finishing step that died half-way
            del instrument[f"snapshot_{n}"]
        g = layout.note(instrument, f"snapshot_{n}", "application/json",
                        json.dumps(change["snapshot"], sort_keys=True), change["changed_at"])
        layout.text(g, "description", change.get("reason", ""))
        g.create_dataset("after_trace", data=int(change["after_trace"]))
    if drop_journal:
        drop_snapshot_journal(entry)
    return len(lines)


def drop_snapshot_journal(entry: h5py.Group) -> None:
    """Delete the live snapshot journal (once `snapshot_notes` has turned it into notes)."""
    instrument = entry["instrument"]
    for name in (layout.SNAPSHOT_LOG, "snapshot_change"):
        if name in instrument:
            del instrument[name]


def write_results(entry: h5py.Group, results: Iterable[Result]) -> None:
    for result in results:
        layout.write_result(entry, result)


def set_default(f: h5py.File, tables: Sequence[str] = ()) -> None:
    """Point @default at what a NeXus viewer should plot first. Viewers plot 1-D and 2-D data
    (nexusformat refuses scalars and 3-D), so: the results when they form a curve (the
    strength–duration, refractory or f–I curve), else the first of the procedure's `tables` (in
    the order it declared them: its main one first), else any other table; the traces (trace ×
    channel × time) only when nothing else is plottable, and the results when nothing is."""
    entry = f[layout.ENTRY]
    groups = [name for name, g in entry.items() if isinstance(g, h5py.Group) and g.attrs.get("NX_class") == "NXdata"]
    order = [layout.RESULTS, *tables, *sorted(groups)]
    for name in order:
        if name in groups and _plottable(entry[name]):
            entry.attrs["default"] = name
            return
    for name in (layout.TRACES, layout.RESULTS):
        if name in groups and "signal" in entry[name].attrs:
            entry.attrs["default"] = name
            return


def _plottable(group: h5py.Group) -> bool:
    signal = group.get(str(group.attrs.get("signal", "")))
    return isinstance(signal, h5py.Dataset) and signal.ndim in (1, 2) and signal.size > 0


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, final: Path) -> None:
    """fsync, then atomically rename, then fsync the directory so the rename itself survives."""
    fsync_path(tmp)
    os.replace(tmp, final)
    try:
        fsync_path(final.parent)
    except OSError:  # some filesystems refuse directory fsync; the rename is still atomic
        pass
