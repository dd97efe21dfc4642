"""Is a `.h5.partial` still being written? An advisory flock answers it.

HDF5 drops its own file lock when SWMR starts (so readers can open the file), which would let
`recover` copy a live file. The writer therefore holds a shared flock on the `.partial` while
the run is open; the kernel releases it when the process dies. Filesystems without flock
(some network shares) make this best-effort: the lock is skipped there.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def hold(path: Path) -> int | None:
    """Take a shared lock for the writer; returns the fd to pass to `release`."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the open file description drops its flock


def is_live(path: Path) -> bool:
    """True if some process still holds the writer's lock."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False  # no flock here: cannot tell
    finally:
        os.close(fd)
    return False
