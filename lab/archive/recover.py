"""Recover a `.h5.partial` left by a process that died mid-run.

h5clear is not needed: the file is opened SWMR-read (which tolerates the "open for write" flag
a crash leaves behind) and every flushed object is copied into a fresh file. Dimension scales
are re-created and re-attached by path, because HDF5's object copy across files leaves the
scale references dangling. Datasets that grow together (traces, table rows, the snapshot
journal) are cut to their shortest flushed length, so the copy is always consistent.
The run is marked "crashed"; the `.partial` is removed only once the `.h5` is complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from lab.archive import finish, layout, liveness

SCALE_ATTRS = frozenset({"CLASS", "NAME", "DIMENSION_LIST", "REFERENCE_LIST"})
COPY_BYTES = 32 << 20  # copy big datasets in slabs of about this size


@dataclass(frozen=True)
class Recovery:
    path: Path
    n_traces: int
    table_rows: dict[str, int]
    snapshot_changes: int


def open_partial(path: Path) -> h5py.File:
    """Open a `.partial` read-only whether it crashed in SWMR mode or not."""
    errors = []
    for kwargs in ({"swmr": True}, {}):
        try:
            return h5py.File(path, "r", libver=layout.LIBVER, **kwargs)
        except OSError as exc:
            errors.append(str(exc))
    raise layout.ArchiveError(f"{path}: cannot be opened, even SWMR-read ({'; '.join(errors)}); "
                              "it died before its first flush and holds no data")


def recover(partial: str | os.PathLike[str], *, keep_partial: bool = False) -> Recovery:
    src_path = Path(partial)
    if not src_path.name.endswith(layout.PARTIAL_SUFFIX):
        raise layout.ArchiveError(f"{src_path}: not a {layout.PARTIAL_SUFFIX} file")
    if not src_path.exists():
        raise layout.ArchiveError(f"{src_path}: no such file")
    final = src_path.with_name(src_path.name[: -len(".partial")])
    tmp = src_path.with_name(src_path.name[: -len(".partial")] + ".recovering")
    if final.exists():
        raise layout.ArchiveError(f"{final} already exists; not overwriting it with a recovery")
    if liveness.is_live(src_path):
        raise layout.ArchiveError(f"{src_path}: a live process is still writing it")
    died_at = datetime.fromtimestamp(src_path.stat().st_mtime, timezone.utc).isoformat()
    with open_partial(src_path) as src, h5py.File(tmp, "w", libver=layout.LIBVER) as dst:
        lengths = _consistent_lengths(src)
        _copy_tree(src, dst, lengths)
        _copy_scales(src, dst)
        entry = dst[layout.ENTRY]
        n_traces = lengths.get(f"/{layout.ENTRY}/{layout.TRACES}", 0)
        changes = finish.snapshot_notes(entry)
        finish.write_status(entry, status="crashed", end_time=died_at,
                            message=f"the writing process died; recovered {n_traces} traces "
                                    f"flushed before {died_at} from {src_path.name}")
        entry.create_dataset("recovered_traces", data=np.int64(n_traces))
        finish.set_default(dst)
        rows = {g.rsplit("/", 1)[1]: n for g, n in lengths.items()
                if g.count("/") == 2 and g.split("/")[2] not in (layout.TRACES, "instrument")}
    finish.publish(tmp, final)
    with h5py.File(final, "r") as check:  # only a readable, complete copy replaces the original
        got = check[layout.ENTRY]["recovered_traces"][()]
        if got != n_traces:
            raise layout.ArchiveError(f"{final}: verification failed ({got} != {n_traces} traces)")
    if not keep_partial:
        src_path.unlink()
    return Recovery(final, n_traces, rows, changes)


def _growing(group: h5py.Group) -> list[h5py.Dataset]:
    return [d for d in group.values() if isinstance(d, h5py.Dataset)
            and d.maxshape and d.maxshape[0] is None]


def _consistent_lengths(src: h5py.File) -> dict[str, int]:
    """Group path -> the row count every growing dataset of that group reached at its last flush."""
    out: dict[str, int] = {}

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Group):
            growing = _growing(obj)
            if growing:
                out[obj.name] = min(d.shape[0] for d in growing)

    src.visititems(visit)
    return out


def _copy_tree(src: h5py.Group, dst: h5py.Group, lengths: dict[str, int]) -> None:
    _copy_attrs(src, dst)
    n = lengths.get(src.name)
    for name, obj in src.items():
        if isinstance(obj, h5py.Group):
            _copy_tree(obj, dst.create_group(name), lengths)
        elif isinstance(obj, h5py.Dataset):
            rows = n if (n is not None and obj.maxshape and obj.maxshape[0] is None) else None
            _copy_dataset(obj, dst, name, rows)


def _copy_dataset(src: h5py.Dataset, dst: h5py.Group, name: str, rows: int | None) -> None:
    shape = src.shape if rows is None else (rows, *src.shape[1:])
    if src.chunks is None:
        out = dst.create_dataset(name, data=src[()], dtype=src.dtype)
    else:
        out = dst.create_dataset(name, shape, dtype=src.dtype, maxshape=src.maxshape,
                                 chunks=src.chunks, compression=src.compression,
                                 compression_opts=src.compression_opts, shuffle=src.shuffle)
        row_bytes = max(1, src.dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64)))
        step = max(src.chunks[0], COPY_BYTES // row_bytes // src.chunks[0] * src.chunks[0])
        for start in range(0, shape[0], step):
            stop = min(shape[0], start + step)
            out[start:stop] = src[start:stop]
    _copy_attrs(src, out)


def _copy_attrs(src: h5py.HLObject, dst: h5py.HLObject) -> None:
    for key, value in src.attrs.items():
        if key not in SCALE_ATTRS:
            dst.attrs[key] = value


def _copy_scales(src: h5py.File, dst: h5py.File) -> None:
    """Make the same datasets scales and attach them to the same dimensions, by path."""
    datasets: list[h5py.Dataset] = []
    src.visititems(lambda _, obj: datasets.append(obj) if isinstance(obj, h5py.Dataset) else None)
    for ds in datasets:
        if h5py.h5ds.is_scale(ds.id):
            dst[ds.name].make_scale(ds.attrs.get("NAME", b"").decode() if isinstance(
                ds.attrs.get("NAME"), bytes) else str(ds.attrs.get("NAME", "")))
    for ds in datasets:
        if h5py.h5ds.is_scale(ds.id):
            continue
        for dim, dimension in enumerate(ds.dims):
            for scale in dimension.values():
                dst[ds.name].dims[dim].attach_scale(dst[scale.name])
