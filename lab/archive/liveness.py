"""Is a `.h5.partial` still being written? An advisory flock answers it.

HDF5 drops its own file lock when SWMR starts (so readers can open the file), which would let
`recover` copy a live file. The writer therefore holds a shared flock on the `.partial` while
the run is open; the system releases it when the process dies (`file_locks`: flock, or a
byte-range lock on Windows). Filesystems without locks (some network shares) make this
best-effort: the lock is skipped there.
"""

from __future__ import annotations

import os
from pathlib import Path

from lab.archive import file_locks


def hold(path: Path) -> int | None:
    """Take a shared lock for the writer; returns the fd to pass to `release`."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if file_locks.try_lock(fd, shared=True):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the open file description drops its flock


def is_live(path: Path) -> bool:
    """True if some process still holds the writer's lock."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return not file_locks.try_lock(fd)
    except OSError:
        return False  # no locks here: cannot tell
    finally:
        os.close(fd)
