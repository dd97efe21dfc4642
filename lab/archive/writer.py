"""The archive writer: subscribes to run records and writes one HDF5 file per run.

Life of a file (reference/hdf5.md §5):
1. `RunStart`: create `<dir>/.<run_id>.h5.starting` (libver v110) with the whole NeXus skeleton
   and every dataset the run declared, close it, rename it `<run_id>.h5.partial`, reopen it and
   switch SWMR on. A SIGKILL before the rename leaves no `.partial` (nothing was measured yet);
   from the rename on it loses at most the records not yet flushed, and the file stays readable
   (`recover`).
2. Data: trace blocks and table rows are buffered; per block one resize + one slice write per
   dataset, then one `flush()`. A block is written when it holds `block_traces` traces (by
   default about 5 MB of them, whole chunks: `layout.block_traces`), `table_rows` rows, or its
   oldest record is `max_latency_s` old. After each flush the kernel is asked to start writing
   the file's dirty pages to disk (`start_writeback`), so they go while the run goes on, not all
   at once in the fsync that ends it, and a long run does not pile up unwritten page cache.
3. `RunStop`: write what is buffered, close, reopen `r+` for end_time/exit status/results/
   snapshot notes, close, fsync, rename to `<run_id>.h5`. Aborted and failed runs too.
   The writer's lock on the `.partial` (liveness.py) is held until the rename, so `recover`
   refuses a file that is still being finished. A death in this step leaves a `.partial` that
   `recover` turns into a `.h5` (recover.py says how, per state): the SWMR close has flushed
   every block first, and the `r+` session only adds objects, deleting the snapshot journal
   last, so no file space that flushed data used is handed out again before the close. HDF5
   marks the file "open for write" in its superblock when it reopens it, which tells recover
   that the finishing was interrupted.

Flush journal (for crash tests and post-mortems): with `WriterOptions.flush_log` set, or the
environment variable `NWLAB_FLUSH_LOG` naming a file, each block flush appends one line after
the HDF5 flush returned: `{"run_id": ..., "block": n, "traces": n, "rows": {table: n}}`
(JSON, totals so far). What a line lists is in the file; a kill may lose what came after it.

Disk faults (output_dir.py): before each block the writer checks that the filesystem still has
room for the block and for the run's end (`FINISH_BYTES` plus what the end will add); after each
block, that it has room for the next one. When it has not, the run is stopped with everything
measured archived, and the end still fits (status, results, rename to `.h5`). Each block's space
is also reserved (posix_fallocate from HDF5's end of allocation) before HDF5 writes: a quota, a
file-size limit or another process filling the disk refuses the reservation, and the run stops
the same way, instead of HDF5 failing halfway through a flush (its metadata lands, its data does
not). A write that fails anyway (an I/O error) detaches the file at once: HDF5's
file descriptor is pointed at /dev/null, so nothing HDF5 writes after the failure (half a
metadata flush, the close) reaches the file, which keeps its last flushed state — what a kill
leaves, and what `recover` turns into a `.h5`. Either way `RunStop` raises ArchiveWriteError,
after the file is closed, so the caller stops writing into that directory.

Trade-off: SWMR forbids creating objects, so data the `RunStart` did not declare (no
`TraceSpec`, an unknown table) is held in memory and written at `RunStop`; it is lost if the
process dies. Declare everything in `RunStart` to make it crash-safe. `Result`s (computed at
the end of a run) are likewise written at `RunStop`; snapshot changes are journalled at once.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from lab.archive import finish, layout, liveness, output_dir, superblock
from lab.archive.blocks import Appender, Buffer
from lab.archive.output_dir import ArchiveWriteError
from contracts.records import (ParametersResolved, Record, Result, RunStart, RunStop, SnapshotChanged, TableRows,
                              TraceBlock, TraceSpec)


@dataclass(frozen=True)
class WriterOptions:
    block_traces: int | None = None  # traces per write (whole chunks); None: ~5 MB of them (layout)
    table_rows: int = 4096  # table rows per write
    max_latency_s: float = 1.0  # write a partial block once its oldest record is this old
    fsync_every_blocks: int | None = None  # also fsync (power-loss safety) every N blocks
    flush_log: str | None = None  # append one JSON line per flushed block (default: $NWLAB_FLUSH_LOG)
    finish_bytes: int = output_dir.FINISH_BYTES  # free space kept for the run's end (see module doc)


class RunFile:
    """One run's open file."""

    def __init__(self, directory: Path, start: RunStart, options: WriterOptions) -> None:
        self.start, self.options, self.directory = start, options, directory
        self.final_path = directory / f"{start.run_id}{layout.SUFFIX}"
        self.path = directory / f"{start.run_id}{layout.PARTIAL_SUFFIX}"
        for p in (self.final_path, self.path):
            if p.exists():
                raise layout.ArchiveError(f"{p} already exists: run ids must be unique")
        self.spec = start.traces
        self.tables = dict(start.tables)
        self.n_traces = 0
        self.blocks = 0
        self.traces = Buffer()
        self.rows: dict[str, Buffer] = {name: Buffer() for name in self.tables}
        self.results: list[Result] = []
        self.late_traces: list[TraceBlock] = []  # undeclared: written at RunStop (see module doc)
        self.late_rows: list[TableRows] = []
        self.stopped: ArchiveWriteError | None = None  # the disk filled up: the run was stopped in time
        self.broken: ArchiveWriteError | None = None  # a write failed: the file is detached (module doc)
        self.journal_bytes = 0
        self.dropped: list[str] = []  # blocks the end of a stopped run had no room for
        self._check_room_to_start()
        # The skeleton is written under a hidden name and becomes the `.partial` only once it is
        # whole: a death while it is written (tens of ms, more on a loaded machine) leaves a file
        # no listing or recovery reads, not a `.partial` whose metadata is torn mid-write.
        starting = directory / f".{start.run_id}{layout.SUFFIX}.starting"
        try:
            self.file = h5py.File(starting, "w", libver=layout.LIBVER)
        except Exception as exc:  # noqa: BLE001 - h5py reports write failures as OSError or RuntimeError
            starting.unlink(missing_ok=True)
            raise output_dir.write_error(self.path, exc, "the run was not started") from exc
        try:
            self._skeleton()
            self.file.close()
            os.replace(starting, self.path)   # (a file open elsewhere cannot be renamed on Windows)
            self.file = h5py.File(self.path, "r+", libver=layout.LIBVER)
            self.file.swmr_mode = True
        except BaseException as exc:
            if not isinstance(exc, layout.ArchiveError) and isinstance(exc, (OSError, RuntimeError)):
                _detach(self.file)
            try:
                self.file.close()
            except Exception:  # noqa: BLE001 - the file is removed below
                pass
            for path in (starting, self.path):
                path.unlink(missing_ok=True)  # a run that could not start has nothing to keep
            if isinstance(exc, layout.ArchiveError) or not isinstance(exc, (OSError, RuntimeError)):
                raise
            raise output_dir.write_error(self.path, exc, "the run was not started") from exc
        self.lock = liveness.hold(self.path)
        self.entry = self.file[layout.ENTRY]
        self.appenders = {"instrument": Appender(self.entry["instrument"], "snapshot_change")}
        if self.spec is not None:
            self.appenders[layout.TRACES] = Appender(self.entry[layout.TRACES], "trace")
        for name in self.tables:
            self.appenders[name] = Appender(self.entry[name], "row")

    def _check_room_to_start(self) -> None:
        s = self.start
        texts = sum(len(t.encode()) for t in (s.station_text, s.chip_text, layout.json_text(s.snapshot),
                                              layout.json_text(s.metadata)))
        skeleton = (64 << 10) + 2 * texts
        need = output_dir.first_block_bytes(s.traces, s.tables, self.options.block_traces, skeleton) \
            + self.options.finish_bytes
        self.next_block_bytes = output_dir.first_block_bytes(s.traces, s.tables, self.options.block_traces, 0)
        free = output_dir.free_bytes(self.directory)
        if free < need:
            raise ArchiveWriteError(
                f"{self.directory}: no space left on device: {output_dir.megabytes(free)} free, run "
                f"{s.run_id} needs {output_dir.megabytes(need)} to start (its first block and the room to "
                "end it); it was not started", self.directory, errno.ENOSPC)

    def _skeleton(self) -> None:
        s, f = self.start, self.file
        f.attrs["default"] = layout.ENTRY
        entry = f.create_group(layout.ENTRY)
        layout.set_nx(entry, "NXentry")
        if s.traces is not None:
            entry.attrs["default"] = layout.TRACES
        for name, value in (("run_id", s.run_id), ("procedure", s.procedure), ("start_time", s.started_at)):
            layout.text(entry, name, value)
        layout.text(entry, "program_name", "nwlab").attrs["version"] = s.software_version
        layout.write_parameters(entry, s.parameters)
        if s.automatic:
            layout.create_parameters_resolved(entry, s.automatic, s.parameters)
        if s.metadata:
            layout.note(entry, "metadata", "application/json", layout.json_text(s.metadata))
        instrument = entry.create_group("instrument")
        layout.set_nx(instrument, "NXinstrument")
        layout.text(instrument, "bench", "hardware" if s.emulator_seed is None else "emulator")
        if s.emulator_seed is not None:
            instrument.create_dataset("emulator_seed", data=np.int64(s.emulator_seed))
        layout.note(instrument, "snapshot", "application/json", layout.json_text(s.snapshot), s.started_at)
        layout.identities(instrument, s.snapshot)
        layout.note(instrument, "station", "application/yaml", s.station_text)
        sample = entry.create_group("sample")
        layout.set_nx(sample, "NXsample")
        layout.note(sample, "chip", "application/yaml", s.chip_text)
        change = layout.scale(instrument, "snapshot_change", unlimited=True)
        log = instrument.create_dataset(layout.SNAPSHOT_LOG, (0,), dtype=h5py.string_dtype(),
                                        maxshape=(None,), chunks=(16,))
        layout.attach(log, change)
        if s.traces is not None:
            layout.create_traces(entry, s.traces)
            self.block_traces = layout.block_traces(layout.trace_chunk(s.traces),
                                                    layout.trace_bytes(s.traces),
                                                    self.options.block_traces)
        for name, spec in self.tables.items():
            layout.create_table(entry, name, spec)

    # -- records ---------------------------------------------------------------------------
    def add_traces(self, block: TraceBlock) -> None:
        if self.spec is None:
            if not self.late_traces:
                warnings.warn(f"{self.path}: traces arrived but RunStart declared no TraceSpec; "
                              "they are kept in memory until RunStop (not crash-safe)", stacklevel=4)
            self.late_traces.append(block)
            return
        self._check(block, self.spec)
        arrays = {name: values for name, (values, _) in block.columns.items()}
        self.traces.add({**layout.trace_arrays(self.spec, block), **arrays}, block.n_traces)
        self.n_traces += block.n_traces
        if self.traces.rows >= self.block_traces:
            self.flush()

    def add_rows(self, rows: TableRows) -> None:
        spec = self.tables.get(rows.table)
        if spec is None:
            if all(r.table != rows.table for r in self.late_rows):
                warnings.warn(f"{self.path}: table {rows.table!r} was not declared in RunStart; "
                              "its rows are kept in memory until RunStop (not crash-safe)", stacklevel=4)
            self.late_rows.append(rows)
            return
        if set(rows.columns) != set(spec.columns):
            raise layout.ArchiveError(f"{self.path}: table {rows.table!r} got columns "
                                      f"{sorted(rows.columns)}, declared {sorted(spec.columns)}")
        self.rows[rows.table].add({n: v for n, (v, _) in rows.columns.items()}, rows.n_rows)
        if self.rows[rows.table].rows >= self.options.table_rows:
            self.flush()

    def snapshot_changed(self, change: SnapshotChanged) -> None:
        """Journal the change at once (rare, small) so a crash keeps it."""
        line = layout.json_text({"changed_at": change.changed_at, "reason": change.reason,
                                 "after_trace": self.n_traces, "snapshot": change.snapshot})
        if self.broken is not None:
            raise self.broken
        try:
            self.appenders["instrument"].append({layout.SNAPSHOT_LOG: np.array([line], dtype=object)})
            self.file.flush()
        except layout.ArchiveError:
            raise
        except (OSError, RuntimeError) as exc:
            raise self._break(exc) from exc
        self.journal_bytes += len(line.encode())

    def parameters_resolved(self, resolved: ParametersResolved) -> None:
        """Write the values at once (a few scalars) so a crash keeps them."""
        if self.broken is not None:
            raise self.broken
        try:
            layout.write_parameters_resolved(self.entry, resolved.values)
            self.file.flush()
        except (OSError, RuntimeError) as exc:
            raise self._break(exc) from exc

    def _check(self, block: TraceBlock, spec: TraceSpec) -> None:
        problems = []
        if block.channel_names != spec.channel_names:
            problems.append(f"channels {block.channel_names} != {spec.channel_names}")
        elif block.channel_units != spec.channel_units:
            problems.append(f"channel units {block.channel_units} != {spec.channel_units}")
        same_time = block.time_s is spec.time_s or (
            block.time_s.shape == spec.time_s.shape and np.allclose(block.time_s, spec.time_s))
        if not same_time:
            problems.append("time axis differs from the declared one")
        if set(block.columns) != set(spec.columns):
            problems.append(f"columns {sorted(block.columns)} != declared {sorted(spec.columns)}")
        if problems:
            raise layout.ArchiveError(f"{self.path}: trace block does not match TraceSpec: "
                                      + "; ".join(problems))

    def due(self) -> bool:
        now, limit = time.monotonic(), self.options.max_latency_s
        return any(b.rows and now - b.since >= limit for b in (self.traces, *self.rows.values()))

    def flush(self, *, keep_room: bool = True) -> None:
        """Write every buffered block, then one HDF5 flush (and an fsync every N blocks).

        With `keep_room` (always but at the run's end), a block is written only if the room for
        the run's end stays free, and the run is stopped once the next block would not fit. At
        the end, a block that does not fit at all is dropped (and said so in `dropped`) rather
        than written half, so the file can still be finished."""
        if self.broken is not None:
            raise self.broken
        pending = [(layout.TRACES, self.traces)] if self.traces.rows else []
        pending += [(name, buffer) for name, buffer in self.rows.items() if buffer.rows]
        if not pending:
            return
        need = sum(self.appenders[name].bytes_needed(buffer.rows, buffer.parts) for name, buffer in pending)
        free = output_dir.free_bytes(self.directory)
        if keep_room and free < need + self._finish_bytes():
            raise self._stop(free, need + self._finish_bytes())
        # at the end, a block that would leave too little for the finishing is dropped before any
        # room is reserved for it: a reservation stays in the file, and took the finishing's room
        fits = keep_room or free >= need + 2 * METADATA_BYTES + self._finishing_bytes()
        refused = _reserve(self.file, need + METADATA_BYTES) if fits else None
        if keep_room and refused is not None:
            raise self._stop(free, need + self._finish_bytes(), refused)
        if not fits or refused is not None:
            for name, buffer in pending:
                self.dropped.append(f"{buffer.rows} {'traces' if name == layout.TRACES else name + ' rows'}")
                buffer.take()
            return
        try:
            for name, buffer in pending:
                self.appenders[name].append(buffer.take())
            self.file.flush()
            fd = _descriptor(self.file)
            if fd is not None:
                start_writeback(fd)
            self.blocks += 1
            every = self.options.fsync_every_blocks
            if every and self.blocks % every == 0:
                os.fsync(self.file.id.get_vfd_handle())
        except layout.ArchiveError:
            raise
        except (OSError, RuntimeError) as exc:
            raise self._break(exc) from exc
        journal = self.options.flush_log or os.environ.get("NWLAB_FLUSH_LOG")
        if journal:
            self._journal(journal)
        left = free - need
        if keep_room and left < self.next_block_bytes + self._finish_bytes():
            raise self._stop(left, self.next_block_bytes + self._finish_bytes())

    def _finishing_bytes(self) -> int:
        """Room the `r+` session of the run's end adds to the closed file (reserved in `_finish`):
        the last block is written only where it leaves this, its own metadata and the close's."""
        return self._finish_bytes() - self.options.finish_bytes + 2 * METADATA_BYTES

    def _finish_bytes(self) -> int:
        """Room the run's end needs: the fixed reserve, the snapshot notes the journal becomes,
        results and whatever undeclared data waits in memory."""
        held = sum(np.asarray(r.value).nbytes for r in self.results)
        held += sum(b.samples.nbytes for b in self.late_traces)
        held += sum(sum(np.asarray(v).nbytes for v, _ in r.columns.values()) for r in self.late_rows)
        return self.options.finish_bytes + 2 * self.journal_bytes + 2 * held

    def _stop(self, free: int, need: int, refused: OSError | None = None) -> ArchiveWriteError:
        """The disk is (nearly) full: stop the run while its end still fits."""
        if refused is None:
            why, number = (f"no space left on device: {output_dir.megabytes(max(free, 0))} free, the next "
                           f"block and the run's end need {output_dir.megabytes(need)}"), errno.ENOSPC
        else:
            why, number = f"{output_dir.problem(refused)}: no room for the next block", refused.errno
        self.stopped = ArchiveWriteError(f"{self.directory}: {why}; the run was stopped with everything "
                                         "written so far kept", self.directory, number)
        return self.stopped

    def _break(self, exc: BaseException) -> ArchiveWriteError:
        """A write failed: detach the file so it keeps its last flushed state (module doc)."""
        _detach(self.file)
        self.broken = output_dir.write_error(
            self.directory, exc, f"writing {self.path.name} failed; the run was stopped; the blocks flushed "
            "before the failure are kept in it")
        return self.broken

    def _journal(self, journal: str) -> None:
        traces = self.appenders[layout.TRACES].length if layout.TRACES in self.appenders else 0
        line = json.dumps({"run_id": self.start.run_id, "block": self.blocks, "traces": traces,
                           "rows": {name: self.appenders[name].length for name in self.tables}})
        with open(journal, "a", encoding="utf-8") as log:
            log.write(line + "\n")

    # -- end of run ------------------------------------------------------------------------
    def finish(self, stop: RunStop) -> Path:
        """Close, finish and publish the file. After a disk fault, raise ArchiveWriteError once
        the file is closed: published as `.h5` if the run was stopped in time, else the
        `.partial` with its flushed blocks, for `recover` once there is room."""
        try:
            try:
                self.flush(keep_room=False)  # into the room kept for the end
            except ArchiveWriteError:
                pass  # self.broken says what happened
            if self.broken is not None:
                self._close_detached()
            else:
                self._finish(stop)
        finally:
            liveness.release(self.lock)
        if self.broken is not None:
            raise ArchiveWriteError(
                f"{self.broken}; the file is {self.path}: {output_dir.remedy(self.broken.errno)}, then run "
                f"`nwlab archive recover {self.path}`", self.broken.path, self.broken.errno)
        if self.stopped is not None:
            lost = f" (no room for the last {' and '.join(self.dropped)})" if self.dropped else ""
            raise ArchiveWriteError(f"{self.stopped}{lost}; archived in {self.final_path}", self.stopped.path,
                                    self.stopped.errno)
        return self.final_path

    def _close_detached(self) -> None:
        try:
            self.file.close()
        except Exception:  # noqa: BLE001 - detached: nothing HDF5 says now reaches the file
            pass

    def _finish(self, stop: RunStop) -> None:
        refused = _reserve(self.file, METADATA_BYTES)
        try:
            self.file.close()
        except Exception as exc:  # noqa: BLE001 - h5py reports write failures as OSError or RuntimeError
            self._break(exc)
            self._close_detached()
            return
        if refused is None:
            refused = _reserve_path(self.path, self._finishing_bytes())
        if refused is not None:  # the closed file holds every block; recover finishes it elsewhere
            self.broken = output_dir.write_error(self.directory, refused, f"no room to finish {self.path.name}; "
                                                 "every block flushed before is kept in it")
            return
        try:
            # HDF5's own file lock is off for this open: it would conflict with the writer's
            # lock, which stays held so that no `recover` copies the file while it changes.
            f = h5py.File(self.path, "r+", libver=layout.LIBVER, locking=False)
        except Exception as exc:  # noqa: BLE001 - as above
            self.broken = output_dir.write_error(self.directory, exc, f"finishing {self.path.name} failed")
            return
        try:
            with f:
                entry = f[layout.ENTRY]
                self._write_late(entry)
                finish.write_status(entry, status=stop.exit_status, end_time=stop.ended_at,
                                    message=stop.message, traceback=stop.traceback)
                finish.snapshot_notes(entry, drop_journal=False)
                finish.write_results(entry, self.results)
                finish.set_default(f, tuple(self.start.tables))
                finish.drop_snapshot_journal(entry)  # last: see finish.snapshot_notes
        except layout.ArchiveError:
            raise
        except (OSError, RuntimeError) as exc:
            _detach(f)  # what finishing wrote so far stays out of the file; recover reads the rest
            try:
                f.close()
            except Exception:  # noqa: BLE001 - detached
                pass
            self.broken = output_dir.write_error(self.directory, exc, f"finishing {self.path.name} failed; "
                                                 "every block flushed before is kept in it")
            return
        try:
            finish.publish(self.path, self.final_path)
        except OSError as exc:
            self.broken = output_dir.write_error(self.directory, exc, f"publishing {self.path.name} failed")

    def _write_late(self, entry: h5py.Group) -> None:
        if self.late_traces:
            spec = TraceSpec.like(self.late_traces[0])
            layout.create_traces(entry, spec)
            traces = Appender(entry[layout.TRACES], "trace")
            for block in self.late_traces:
                self._check(block, spec)
                traces.append({**layout.trace_arrays(spec, block),
                               **{n: v for n, (v, _) in block.columns.items()}})
        for rows in self.late_rows:
            if rows.table not in entry:
                layout.create_table(entry, rows.table, rows.spec())
            Appender(entry[rows.table], "row").append({n: v for n, (v, _) in rows.columns.items()})


#: room for the metadata HDF5 writes with a block or at a close (object headers, chunk index, heap)
METADATA_BYTES = 64 << 10


def _allocate(fd: int, nbytes: int, start: int | None = None) -> OSError | None:
    try:
        os.posix_fallocate(fd, os.fstat(fd).st_size if start is None else start, max(1, nbytes))
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return None  # no fallocate here: the free-space check is all there is
        return exc
    return None


def _reserve(file: h5py.File, nbytes: int) -> OSError | None:
    """Allocate `nbytes` past the file's end before HDF5 writes there (it allocates new space at
    the end): a full disk, a quota or a file-size limit then refuses this call, not HDF5's write
    halfway through a flush — whose metadata would land and whose data would not. Returns the
    refusal, None when the space is the file's (HDF5 trims what it does not use when it flushes)."""
    fd = _descriptor(file)
    if fd is None:          # nothing to reserve with
        return None
    try:  # from HDF5's end of allocation at its last flush: reservations overlap, not pile up
        sb = superblock.read_superblock(Path(file.filename))
        start = sb.offset + sb.end_of_file
    except (OSError, superblock.SuperblockError):
        start = None
    return _allocate(fd, nbytes, start)


def _descriptor(file: h5py.File) -> int | None:
    """The OS file descriptor HDF5 writes the file through; None for a file already closed or
    a driver without one."""
    try:
        return file.id.get_vfd_handle()
    except Exception:  # noqa: BLE001 - h5py says either in several ways
        return None


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's sync_file_range(2) from the C library, or None where there is none."""
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError, TypeError):  # TypeError: Windows has no process-wide CDLL(None)
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_SYNC_FILE_RANGE = _sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2  # start writing dirty pages not already being written; do not wait


def start_writeback(fd: int) -> bool:
    """Start writing the file's dirty pages to disk without waiting for them (sync_file_range
    with SYNC_FILE_RANGE_WRITE over the whole file; nothing where the C library lacks it).
    True if the kernel took the request. A hint, as PostgreSQL's `*_flush_after`: it makes
    nothing durable (the fsync at the run's end does), and a failure it meets is the fsync's to
    report, so the writer does not read the result."""
    return _SYNC_FILE_RANGE is not None and _SYNC_FILE_RANGE(fd, 0, 0, _SYNC_FILE_RANGE_WRITE) == 0


def _reserve_path(path: Path, nbytes: int) -> OSError | None:
    fd = os.open(path, os.O_WRONLY)
    try:
        return _allocate(fd, nbytes)
    finally:
        os.close(fd)


def _detach(file: h5py.File) -> None:
    """Point HDF5's file descriptor at /dev/null: whatever the library writes from now on (the
    rest of a failed flush, the close) is dropped, and the file keeps its last flushed state."""
    fd = _descriptor(file)
    if fd is None:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


class ArchiveWriter:
    """Record subscriber: `writer(record)` for each record of each run; one file per run.

    `close()` (or leaving a `with` block) ends a run that never got its `RunStop` as "failed".
    """

    def __init__(self, directory: str | os.PathLike[str], options: WriterOptions | None = None) -> None:
        self.directory = Path(directory)
        self.options = options or WriterOptions()
        self.run: RunFile | None = None
        self.last_path: Path | None = None

    def __call__(self, record: Record) -> None:
        if not isinstance(record, RunStart) and self.run is None:
            raise layout.ArchiveError(f"{type(record).__name__} arrived with no run open")
        match record:
            case RunStart():
                if self.run is not None:
                    raise layout.ArchiveError(f"RunStart {record.run_id!r} while run "
                                              f"{self.run.start.run_id!r} is still open")
                output_dir.check_output_dir(self.directory, need_bytes=0)  # RunFile checks the room
                self.run = RunFile(self.directory, record, self.options)
                self.last_path = self.run.path
            case TraceBlock():
                self.run.add_traces(record)
            case TableRows():
                self.run.add_rows(record)
            case Result():
                self.run.results.append(record)
            case ParametersResolved():
                self.run.parameters_resolved(record)
            case SnapshotChanged():
                self.run.snapshot_changed(record)
            case RunStop():
                run, self.run = self.run, None
                self.last_path = run.finish(record)
                return
            case _:
                raise TypeError(f"not a run record: {record!r}")
        if self.run is not None and self.run.due():
            self.run.flush()

    def flush(self) -> None:
        """Write buffered data now (a runner may call this when idle)."""
        if self.run is not None:
            self.run.flush()

    def flush_if_due(self) -> None:
        """Write buffered data whose oldest record is max_latency_s old: a runner calls this
        between steps, so records do not wait for the next record while a plan goes quiet."""
        if self.run is not None and self.run.due():
            self.run.flush()

    def close(self) -> None:
        if self.run is not None:
            self(RunStop("failed", datetime.now(timezone.utc).isoformat(),
                         message="the run ended without a RunStop record"))

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
