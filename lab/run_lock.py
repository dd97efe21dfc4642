"""One run at a time per station: an advisory lock file keyed by the station file's path."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path


class StationBusyError(RuntimeError):
    """Another run holds this station."""


class StationLock:
    def __init__(self, station_path: Path, *, lock_dir: Path | None = None) -> None:
        digest = hashlib.sha1(str(station_path.resolve()).encode()).hexdigest()[:16]
        self.station_path = station_path
        self.path = (lock_dir or Path(tempfile.gettempdir())) / f"nwlab-station-{digest}.lock"
        self._file = None

    def __enter__(self) -> StationLock:
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
        self._file = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.truncate(0)
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
