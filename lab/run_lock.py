"""One run at a time per station: an advisory lock file keyed by the station file's path.

The lock is re-entrant within a process: a campaign holds it around all its runs (from before
the instruments are opened), and each run's Runner takes it again without blocking itself.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import threading
from pathlib import Path


class StationBusyError(RuntimeError):
    """Another run holds this station."""


_held: dict[Path, tuple[object, int]] = {}     # lock path -> (open file, depth) in this process
_held_guard = threading.Lock()


class StationLock:
    def __init__(self, station_path: Path, *, lock_dir: Path | None = None) -> None:
        digest = hashlib.sha1(str(Path(station_path).resolve()).encode()).hexdigest()[:16]
        self.station_path = station_path
        self.path = (lock_dir or Path(tempfile.gettempdir())) / f"nwlab-station-{digest}.lock"

    def __enter__(self) -> StationLock:
        with _held_guard:
            if self.path in _held:
                handle, depth = _held[self.path]
                _held[self.path] = (handle, depth + 1)
                return self
            handle = open(self.path, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise StationBusyError(
                    f"station {self.station_path} is busy: a run is already in progress ({holder}); "
                    "wait for it to finish or stop it first") from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
            _held[self.path] = (handle, 1)
        return self

    def __exit__(self, *exc: object) -> None:
        with _held_guard:
            handle, depth = _held[self.path]
            if depth > 1:
                _held[self.path] = (handle, depth - 1)
                return
            del _held[self.path]
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
