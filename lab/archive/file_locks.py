"""Advisory locks on open files, alike on POSIX and Windows: the one place that knows which.

POSIX: `flock` on the whole file; it never keeps anyone from reading the file, and a shared
lock lets other shared holders in. Windows (`msvcrt.locking`): byte-range locks, and a locked
range cannot be read by other processes, so the lock sits on one byte far past any data
(`WINDOWS_LOCK_OFFSET`) and a reader of the file (h5py opening a live archive) is not kept out.
Windows has no shared locks: `shared` is exclusive there, which is all nwlab needs (one writer
holds the lock; whoever asks whether it is held takes it exclusively for an instant). Either
way the lock dies with its process.
"""

from __future__ import annotations

import errno
import os
import sys
import time

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

#: Where the Windows lock byte sits: beyond any file nwlab writes (locking past the end is allowed).
WINDOWS_LOCK_OFFSET = 2**62
#: How often a lock held elsewhere is tried again: on Windows (msvcrt's own blocking mode gives up
#: after 10 s), and by a caller that waits only so long.
RETRY_S = 0.05
#: What msvcrt.locking raises when another process holds the byte.
_HELD_ERRNOS = {errno.EACCES, getattr(errno, "EDEADLOCK", errno.EDEADLK)}


def try_lock(fd: int, *, shared: bool = False) -> bool:
    """Take the lock on the open file `fd` without waiting: False if another process holds it.
    OSError: the filesystem cannot lock (some network shares)."""
    if sys.platform == "win32":
        return _windows_lock(fd, msvcrt.LK_NBLCK)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock(fd: int, *, wait_s: float | None = None) -> bool:
    """Take the lock on `fd` exclusively, waiting as long as another process holds it, or (with
    `wait_s`) that long at most: False if it was still held then."""
    if wait_s is None and sys.platform != "win32":
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    deadline = None if wait_s is None else time.monotonic() + wait_s
    while not try_lock(fd):
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(RETRY_S)
    return True


def unlock(fd: int) -> None:
    """Drop the lock on `fd` (closing the file drops it too)."""
    if sys.platform == "win32":
        _at_lock_byte(fd, lambda: msvcrt.locking(fd, msvcrt.LK_UNLCK, 1))
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


def _windows_lock(fd: int, mode: int) -> bool:
    try:
        _at_lock_byte(fd, lambda: msvcrt.locking(fd, mode, 1))
    except OSError as error:
        if error.errno in _HELD_ERRNOS:
            return False
        raise
    return True


def _at_lock_byte(fd: int, operation) -> None:
    """`operation` with the file position on the lock byte, the position restored after."""
    position = os.lseek(fd, 0, os.SEEK_CUR)
    os.lseek(fd, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    try:
        operation()
    finally:
        os.lseek(fd, position, os.SEEK_SET)
