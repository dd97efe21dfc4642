"""The output directory a run archives into: checked before any instrument is opened, and the
one-line message for every way writing into it can fail (full disk, read-only, not a directory).

`check_output_dir` makes the directory if needed and refuses, naming the path and the problem,
when it is a file or under one, cannot be written (a probe file is really created and removed:
permission bits say little to root or on a read-only mount), or has less free space than a
run's first block and the room its end needs. The writer (writer.py) checks the same room before
each block, so a filling disk stops the run with everything measured archived instead of
HDF5 failing half-way through a write.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lab.archive import layout
from contracts.records import TableSpec, TraceSpec

START_BYTES = 1 << 20   # the file's skeleton: NeXus groups, station, chip and snapshot texts
FINISH_BYTES = 1 << 20  # the run's end: status, results, snapshot notes, the report beside it
#: errno values that mean "this directory cannot take the archive", not a bug
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG,
                         errno.EIO, errno.ENOTDIR, errno.EISDIR, errno.ENOENT})
PROBLEMS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
            errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
            errno.EPERM: "operation not permitted", errno.EFBIG: "file too large",
            errno.EIO: "input/output error", errno.ENOTDIR: "not a directory",
            errno.EISDIR: "is a directory", errno.ENOENT: "no such file or directory"}
#: What to do about each, in a message that asks for it before `nwlab archive recover`.
REMEDIES = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space or raise the quota",
            errno.EFBIG: "raise the file-size limit (ulimit -f) or move to a file system that takes larger files",
            errno.EROFS: "make the file system writable",
            errno.EACCES: "make the directory writable", errno.EPERM: "make the directory writable (its "
            "permissions, or an immutable or append-only attribute: lsattr)", errno.EIO: "check the disk"}
_H5_ERRNO = re.compile(r"errno = (\d+)")


class ArchiveWriteError(layout.ArchiveError):
    """The archive could not be written where it was asked to go; `path` names where."""

    def __init__(self, message: str, path: Path | str, errno_: int | None = None) -> None:
        super().__init__(message)
        self.path, self.errno = Path(path), errno_


def errno_of(exc: BaseException) -> int | None:
    """The OS error number behind an OSError or an h5py error (HDF5 quotes it in its text)."""
    number = getattr(exc, "errno", None)
    if isinstance(number, int) and number > 0:
        return number
    found = _H5_ERRNO.search(str(exc))
    return int(found.group(1)) if found else None


def problem(exc: BaseException) -> str:
    """A short lower-case description of what went wrong, without HDF5's error stack."""
    number = errno_of(exc)
    if number is not None:
        return PROBLEMS.get(number, os.strerror(number).lower())
    text = str(exc).split("\n", 1)[0].strip()
    return text[:200] or type(exc).__name__


def remedy(errno_: int | None) -> str:
    """What to do about a write that failed with `errno_`, as a request ("free some space")."""
    return REMEDIES.get(errno_, "fix that") if errno_ is not None else "fix that"


def write_error(path: Path | str, exc: BaseException, then: str = "") -> ArchiveWriteError:
    """`<path>: <problem>[; <then>]` as an ArchiveWriteError."""
    return ArchiveWriteError(f"{path}: {problem(exc)}" + (f"; {then}" if then else ""), path, errno_of(exc))


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on the directory's filesystem."""
    return shutil.disk_usage(directory).free


def megabytes(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


def first_block_bytes(traces: TraceSpec | None, tables: Mapping[str, TableSpec],
                      block_traces: int | None = None, skeleton_bytes: int = START_BYTES) -> int:
    """Bytes of a run's file up to its first flushed block: the skeleton, one block of traces
    (whole chunks) and one chunk of every table column (a column's first rows allocate a chunk)."""
    total = skeleton_bytes
    if traces is not None:
        per_trace = layout.trace_bytes(traces) + 8 * (1 + len(traces.columns))
        chunk = layout.trace_chunk(traces)
        total += layout.block_traces(chunk, per_trace, block_traces) * per_trace
    for spec in tables.values():
        itemsize = max((max(8, np.dtype(c.dtype).itemsize) for c in spec.columns.values()), default=8)
        total += (1 + len(spec.columns)) * layout.COLUMN_CHUNK * itemsize
    return total


def _existing_ancestor(path: Path) -> Path:
    for parent in (path, *path.parents):
        if parent.exists():
            return parent
    return Path("/")


def check_output_dir(directory: str | os.PathLike[str], need_bytes: int = START_BYTES + FINISH_BYTES) -> Path:
    """Make `directory` if needed and check it can take a run; raise ArchiveWriteError if not."""
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise ArchiveWriteError(f"{path}: is a file, not a directory", path, errno.ENOTDIR)
    ancestor = _existing_ancestor(path.absolute())
    if not ancestor.is_dir():
        raise ArchiveWriteError(f"{path}: cannot be a directory: {ancestor} is a file", path, errno.ENOTDIR)
    free = free_bytes(ancestor)  # before anything is made: a refused run leaves no directory behind
    if free >= need_bytes:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(path, exc, "cannot create the output directory") from exc
        probe = path / f".nwlab-probe-{uuid.uuid4().hex[:8]}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            probe.unlink()
        except OSError as exc:
            raise write_error(path, exc, "cannot write a file into the output directory") from exc
        free = free_bytes(path)  # another filesystem may be mounted there
    if free < need_bytes:
        raise ArchiveWriteError(f"{path}: no space left on device: {megabytes(free)} free, a run needs "
                                f"{megabytes(need_bytes)} to start (its first block and the room to end it); "
                                "nothing was started", path, errno.ENOSPC)
    return path


def check_for_runs(directory: str | os.PathLike[str], procedures) -> Path:
    """`check_output_dir` with room for the largest first block of `procedures` (each has
    `declare() -> (TraceSpec | None, tables)`) and the end of the run."""
    need = max((first_block_bytes(*p.declare()) for p in procedures), default=START_BYTES)
    return check_output_dir(directory, need + FINISH_BYTES)
