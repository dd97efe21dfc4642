"""One run per set of instruments, one run writing into an output directory.

A run holds an advisory lock (flock) per instrument of its station, keyed on the instrument
itself: its normalised VISA address (`contracts.files.addresses.normalise_address`), or for an instrument that an
in-process emulator serves, that bench (its `visalib`) and the address. A copy of the station file,
another working directory or another TMPDIR therefore meets the same locks. All of a station's
locks, and the one on `--out`, are taken all-or-nothing before any instrument is opened; a refusal
names the station, the instrument's address and the holder's pid.

The lock files live in one fixed directory, never under TMPDIR: `/run/lock/nwlab` (the system's
directory for lock files, `/var/lock` on older systems; shared by every user, emptied at boot,
which is harmless since a flock dies with its process) and, where neither is writable, the fixed
per-user `/tmp/nwlab-locks-<uid>` (per user so that no other user can plant files in it; two users
then do not see each other's runs: give them a writable /run/lock). On Windows: `%ProgramData%/nwlab/locks`,
else the user's `%LOCALAPPDATA%/nwlab/locks`. The lock itself: `lab.archive.file_locks`.

The lock is re-entrant within a process: a campaign holds it around all its runs (from before
the instruments are opened), and each run's Runner takes it again without blocking itself.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from contracts.files.station import Station, read_station
from lab.archive import file_locks

#: System lock directories tried in order; the first writable one gets an `nwlab` directory.
SYSTEM_LOCK_DIRS = (Path("/run/lock"), Path("/var/lock"))


class StationBusyError(RuntimeError):
    """Another run holds one of this station's instruments, or its output directory."""


_held: dict[Path, tuple[int, int]] = {}     # lock file -> (open descriptor, depth) in this process
_held_guard = threading.Lock()


#: Opened without following a symbolic link planted in place of a lock file (POSIX).
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def lock_directory() -> Path:
    """The fixed directory of the lock files (see the module doc)."""
    if sys.platform == "win32":
        return _windows_lock_directory()
    for system in SYSTEM_LOCK_DIRS:
        if os.access(system, os.W_OK | os.X_OK):
            shared = system / "nwlab"
            try:
                shared.mkdir(mode=0o1777, exist_ok=True)
                if shared.stat().st_uid == os.getuid():
                    os.chmod(shared, 0o1777)       # every user's runs meet here (sticky: none deletes another's)
            except OSError:
                continue
            if not shared.is_symlink() and os.access(shared, os.W_OK | os.X_OK):
                return shared
    private = Path(f"/tmp/nwlab-locks-{os.getuid()}")
    private.mkdir(mode=0o700, exist_ok=True)
    if private.is_symlink() or private.lstat().st_uid != os.getuid():
        raise StationBusyError(f"{private} is not this user's directory: run locks cannot be kept there "
                               "(remove it, or make /run/lock writable)")
    return private


def _windows_lock_directory() -> Path:
    for root in (os.environ.get("ProgramData"), os.environ.get("LOCALAPPDATA")):
        if root:
            directory = Path(root) / "nwlab" / "locks"
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
            if os.access(directory, os.W_OK):
                return directory
    raise StationBusyError("no writable directory for run locks: neither %ProgramData% nor %LOCALAPPDATA% "
                           "holds a writable nwlab\\locks")


@dataclass(frozen=True)
class _Lock:
    path: Path
    busy: str        # what the refusal says is busy, before "(holder)"


class StationLock:
    """Locks on every instrument of `station` (a Station, or a station file to load) and on
    `out_dir` if given; `lock_dir` only for tests that need a private directory."""

    def __init__(self, station: Station | str | Path, *, out_dir: str | Path | None = None,
                 lock_dir: Path | None = None) -> None:
        self.station = station if isinstance(station, Station) else read_station(station)
        self.station_path = self.station.path
        directory = lock_dir or lock_directory()
        locks = {}
        for config in self.station.instruments.values():
            path = directory / f"instrument-{_digest(config.resource_key)}.lock"
            locks[path] = _Lock(path, f"station {self.station.path} is busy: instruments.{config.name} "
                                      f"({config.address}) is in use by another run")
        ordered = [locks[path] for path in sorted(locks)]      # one order everywhere
        if out_dir is not None:
            resolved = Path(out_dir).resolve()
            path = directory / f"out-{_digest(str(resolved))}.lock"
            ordered.append(_Lock(path, f"--out {resolved} is busy: another run is writing there"))
        self.locks = tuple(ordered)

    def __enter__(self) -> StationLock:
        with _held_guard:
            taken: list[Path] = []
            try:
                for lock in self.locks:
                    _acquire(lock, self.station.path)
                    taken.append(lock.path)
            except BaseException:
                for path in reversed(taken):
                    _release(path)
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        with _held_guard:
            for lock in reversed(self.locks):
                _release(lock.path)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _acquire(lock: _Lock, station_path: Path) -> None:
    if lock.path in _held:
        fd, depth = _held[lock.path]
        _held[lock.path] = (fd, depth + 1)
        return
    try:
        fd = os.open(lock.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o666)
    except PermissionError:            # another user's lock file: a read-only descriptor locks too
        fd = os.open(lock.path, os.O_RDONLY | _NOFOLLOW)
    try:
        if hasattr(os, "getuid") and os.fstat(fd).st_uid == os.getuid():
            os.fchmod(fd, 0o666)       # other users' runs must be able to open it (umask aside)
        held = file_locks.try_lock(fd)
        if not held:
            os.lseek(fd, 0, os.SEEK_SET)
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
    except BaseException:
        os.close(fd)
        raise
    if not held:
        os.close(fd)
        raise StationBusyError(f"{lock.busy} ({holder}); wait for it to finish or stop it first")
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()}, station {station_path}".encode())
    except OSError:                    # read-only descriptor: the lock holds, unlabelled
        pass
    _held[lock.path] = (fd, 1)


def _release(path: Path) -> None:
    fd, depth = _held[path]
    if depth > 1:
        _held[path] = (fd, depth - 1)
        return
    del _held[path]
    try:
        os.ftruncate(fd, 0)
    except OSError:
        pass
    file_locks.unlock(fd)
    os.close(fd)
