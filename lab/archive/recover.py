"""Recover a `.h5.partial` left by a process that died mid-run or while finishing the run.

h5clear is not needed: the file is opened SWMR-read (which tolerates the "open for write" flag
a crash leaves behind) and every flushed object is copied into a fresh file. Dimension scales
are re-created and re-attached by path, because HDF5's object copy across files leaves the
scale references dangling. Datasets that grow together (traces, table rows, the snapshot
journal) are cut to their shortest flushed length, so the copy is always consistent.
The run is marked "crashed"; the `.partial` is removed only once the `.h5` is complete.

The writer's finishing step (writer.py, `RunFile.finish`) closes the SWMR file and reopens it
`r+` outside SWMR mode. What a death there leaves, read from the superblock's consistency flags
(superblock.py), and what recover does with it:
- flags clear, `exit_status` written: the finishing step closed the file, only the rename to
  `.h5` is missing. The file is published as it is, with the run's own status and results.
- flags clear, no `exit_status`: died between the SWMR close and the reopen. Copied as above.
- "open for write" without "SWMR write": died inside the `r+` window (or in the short set-up
  before SWMR starts). HDF5 refuses such a file; it is read through a view with the flags
  cleared (the file is not changed) and copied as above: every flushed block is in it, since
  finishing flushes before it closes. Undeclared data and results the writer held in memory
  are lost. If HDF5 cannot read it even so (metadata torn mid-write), recover says so, naming
  the file, and leaves it alone.

A `.partial` no process holds any more is read outside SWMR mode (through the flag-cleared view
when its flags are set): a SWMR reader retries a metadata block whose checksum fails for minutes
(HDF5 assumes the writer is still changing it), which is the wrong thing for a dead file. Only
a live file is read as a SWMR reader. Any damage — zero bytes, truncation, a broken checksum,
garbage, a directory — ends in one ArchiveError naming the file; the file is left unchanged.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from lab.archive import finish, layout, liveness, output_dir, superblock

SCALE_ATTRS = frozenset({"CLASS", "NAME", "DIMENSION_LIST", "REFERENCE_LIST"})
COPY_BYTES = 32 << 20  # copy big datasets in slabs of about this size


@dataclass(frozen=True)
class Recovery:
    path: Path
    n_traces: int
    table_rows: dict[str, int]
    snapshot_changes: int
    finished: bool = False  # the run had been finished (own status kept); only the rename was missing


def open_partial(path: Path) -> h5py.File:
    """Open a `.partial` read-only whether it crashed in SWMR mode, outside it, or not at all."""
    return _open_partial(Path(path))[0]


def short(exc: BaseException) -> str:
    """HDF5's first line without its error stack details (the time, buffer addresses, ...)."""
    text = str(exc).split("\n", 1)[0].strip()
    for noise in (" (file read failed: time =", ", filename ="):
        text = text.split(noise, 1)[0]
    return (text.strip(" (\"'") or type(exc).__name__)[:200]


def check_file(path: Path) -> None:
    """Refuse what is not a regular, non-empty file with one clear line."""
    if path.is_dir():
        raise layout.ArchiveError(f"{path}: a directory, not a run file")
    if not path.exists():
        raise layout.ArchiveError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise layout.ArchiveError(f"{path}: empty (0 bytes): its writer never wrote to it; it holds no run "
                                  "data and nothing can be recovered from it")


def _open_partial(path: Path) -> tuple[h5py.File, superblock.Superblock | None]:
    """The open file and its superblock (see the module doc for which way it is opened)."""
    check_file(path)
    try:
        sb = superblock.read_superblock(path)
    except (OSError, superblock.SuperblockError) as exc:
        raise layout.ArchiveError(f"{exc}; it died before its first flush or is damaged, and nothing can be "
                                  "recovered from it") from exc
    if liveness.is_live(path):
        try:
            return h5py.File(path, "r", libver=layout.LIBVER, swmr=True), sb
        except Exception as exc:  # noqa: BLE001 - h5py raises OSError or RuntimeError
            raise layout.ArchiveError(f"{path}: a live process is still writing it, and it cannot be read "
                                      f"now ({short(exc)})") from exc
    try:
        if sb.flags == 0:
            return h5py.File(path, "r", libver=layout.LIBVER, locking=False), sb
        return superblock.open_flags_cleared(path), sb
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError or RuntimeError
        died_in = ("while it was open for writing outside SWMR mode (finishing the run, or setting the file up)"
                   if sb.open_for_write and not sb.open_for_swmr_write else "before its first flush")
        raise layout.ArchiveError(
            f"{path}: unreadable HDF5 file ({short(exc)}): its writer died {died_in} or it is damaged; "
            "nothing can be recovered from it; the file is left as it is") from exc


def recover(partial: str | os.PathLike[str], *, keep_partial: bool = False) -> Recovery:
    src_path = Path(partial)
    if not src_path.name.endswith(layout.PARTIAL_SUFFIX):
        raise layout.ArchiveError(f"{src_path}: not a {layout.PARTIAL_SUFFIX} file")
    check_file(src_path)
    final = src_path.with_name(src_path.name[: -len(".partial")])
    tmp = src_path.with_name(src_path.name[: -len(".partial")] + ".recovering")
    if final.exists():
        raise layout.ArchiveError(f"{final} already exists; not overwriting it with a recovery")
    if liveness.is_live(src_path):
        raise layout.ArchiveError(f"{src_path}: a live process is still writing it")
    died_at = datetime.fromtimestamp(src_path.stat().st_mtime, timezone.utc).isoformat()
    src, sb = _open_partial(src_path)
    with src:
        try:
            lengths = _read_lengths(src, src_path)
            finished = sb.flags == 0 and "exit_status" in src[layout.ENTRY]
            changes = sum(1 for k in src[layout.ENTRY]["instrument"] if k.startswith("snapshot_")
                          and k[len("snapshot_"):].isdigit()) if finished else 0
        except layout.ArchiveError:
            raise
        except Exception as exc:  # noqa: BLE001 - damaged metadata: h5py raises OSError, RuntimeError, ...
            raise layout.ArchiveError(f"{src_path}: damaged, not recovered: {short(exc)}; the file is left as "
                                      "it is") from exc
        n_traces = lengths.get(f"/{layout.ENTRY}/{layout.TRACES}", 0)
        rows = {g.rsplit("/", 1)[1]: n for g, n in lengths.items()
                if g.count("/") == 2 and g.split("/")[2] not in (layout.TRACES, "instrument")}
        if not finished:
            died_in = (" while the file was open outside SWMR mode (finishing the run, or setting it up)"
                       if sb is not None and sb.open_for_write and not sb.open_for_swmr_write else "")
            free, need = output_dir.free_bytes(src_path.parent), src_path.stat().st_size + (1 << 20)
            if free < need:
                raise output_dir.ArchiveWriteError(
                    f"{src_path.parent}: no space left on device: {output_dir.megabytes(free)} free, the recovered "
                    f"copy needs up to {output_dir.megabytes(need)}; nothing was changed: free some space and run "
                    "it again", src_path.parent, errno.ENOSPC)
            try:
                with h5py.File(tmp, "w", libver=layout.LIBVER) as dst:
                    _copy_tree(src, dst, lengths)
                    _copy_scales(src, dst)
                    entry = dst[layout.ENTRY]
                    changes = finish.snapshot_notes(entry)
                    finish.write_status(entry, status="crashed", end_time=died_at,
                                        message=f"the writing process died{died_in}; recovered {n_traces} "
                                                f"traces flushed before {died_at} from {src_path.name}")
                    if "recovered_traces" in entry:
                        del entry["recovered_traces"]
                    entry.create_dataset("recovered_traces", data=np.int64(n_traces))
                    finish.set_default(dst)
            except Exception as exc:  # noqa: BLE001 - h5py raises OSError, RuntimeError, KeyError, ...
                tmp.unlink(missing_ok=True)
                if output_dir.errno_of(exc) in output_dir.DISK_ERRNOS - {errno.ENOENT}:
                    raise output_dir.write_error(tmp, exc, f"the recovery of {src_path.name} was not written; "
                                                 "nothing was changed") from exc
                raise layout.ArchiveError(f"{src_path}: damaged, not recovered: {short(exc)}; the file is left as "
                                          "it is") from exc
    if finished:
        # The finishing step closed the file: it is complete, with the run's own status and
        # results; only the rename was lost. Publish it as it is (a copy if it is to be kept).
        with h5py.File(src_path, "r") as check:  # plain h5py opens it (the flags are clear) before it moves
            entry = check[layout.ENTRY]
            got = entry[layout.TRACES]["trace"].shape[0] if layout.TRACES in entry else 0
        if got != n_traces:
            raise layout.ArchiveError(f"{src_path}: verification failed ({got} != {n_traces} traces); the file "
                                      "is left as it is")
        if keep_partial:
            try:
                shutil.copyfile(src_path, tmp)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise output_dir.write_error(tmp, exc, "nothing was changed") from exc
            finish.publish(tmp, final)
        else:
            finish.publish(src_path, final)
        return Recovery(final, n_traces, rows, changes, finished=True)
    finish.publish(tmp, final)
    with h5py.File(final, "r") as check:  # only a readable, complete copy replaces the original
        got = check[layout.ENTRY]["recovered_traces"][()]
        if got != n_traces:
            raise layout.ArchiveError(f"{final}: verification failed ({got} != {n_traces} traces)")
    if not keep_partial:
        src_path.unlink()
    return Recovery(final, n_traces, rows, changes)


def _read_lengths(src: h5py.File, path: Path) -> dict[str, int]:
    if layout.ENTRY not in src:
        raise layout.ArchiveError(f"{path}: no /{layout.ENTRY} group: it died before its first flush "
                                  "and holds no run data")
    return _consistent_lengths(src)


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
            try:
                out[start:stop] = src[start:stop]
            except OSError as exc:
                raise layout.ArchiveError(f"cannot read {src.name}[{start}:{stop}] ({exc})") from exc
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
