"""Read an HDF5 file whose superblock still says "open for write" after its writer was killed.

The archive writes files with libver v110, i.e. superblock version 3, which carries file
consistency flags (HDF5 file format spec, "Superblock" version 2/3): bit 0 "open for write",
bit 2 "open for SWMR write". HDF5 sets them when a writer opens the file and clears them when it
closes. A SWMR writer that is killed leaves both bits set, and SWMR readers accept that. A writer
that had reopened the file `r+` *without* SWMR (the writer's finishing step, or the short
set-up before SWMR starts) leaves only bit 0, and then HDF5 refuses every open ("file is already
open for write (may use <h5clear file> to clear file consistency flags)").

`open_flags_cleared` reads such a file as if the flags were clear, without touching it: a
read-only file object that returns the real bytes except for the superblock, whose flag byte is
zeroed, whose end of allocation is raised to the file's size, and whose checksum (Jenkins lookup3,
as HDF5 computes it) is recomputed. This is what `h5clear --increment` does, but on a view
instead of on the file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import h5py

SIGNATURE = b"\x89HDF\r\n\x1a\n"
WRITE_ACCESS, SWMR_WRITE_ACCESS = 0x01, 0x04
_FLAGS_AT = 11  # signature (8), version, size of offsets, size of lengths, then the flags


class SuperblockError(ValueError):
    """No superblock this module can read (not HDF5, truncated, or an old superblock version)."""


@dataclass(frozen=True)
class Superblock:
    offset: int  # where the superblock starts (0 unless the file has a user block)
    version: int
    flags: int
    raw: bytes  # the whole superblock, checksum included

    @property
    def open_for_write(self) -> bool:
        return bool(self.flags & WRITE_ACCESS)

    @property
    def open_for_swmr_write(self) -> bool:
        return bool(self.flags & SWMR_WRITE_ACCESS)

    @property
    def size_of_offsets(self) -> int:
        return self.raw[9]

    @property
    def _end_of_allocation_at(self) -> int:
        return 12 + 2 * self.size_of_offsets  # after the base and superblock extension addresses

    @property
    def end_of_file(self) -> int:
        """The end-of-allocation address (relative to the superblock) HDF5 last wrote."""
        at = self._end_of_allocation_at
        return int.from_bytes(self.raw[at:at + self.size_of_offsets], "little")

    def patched(self, *, flags: int | None = None, end_of_file: int | None = None) -> bytes:
        """This superblock's bytes with the consistency flags and/or the end-of-allocation address
        (`end_of_file`, an address in the file) replaced, and the checksum recomputed."""
        body = bytearray(self.raw[:-4])
        if flags is not None:
            body[_FLAGS_AT] = flags
        if end_of_file is not None:
            at, relative = self._end_of_allocation_at, end_of_file - self.offset  # addresses start at the superblock
            body[at:at + self.size_of_offsets] = relative.to_bytes(self.size_of_offsets, "little")
        return bytes(body) + lookup3(bytes(body)).to_bytes(4, "little")

    def cleared(self, end_of_file: int | None = None) -> bytes:
        """The same superblock with the consistency flags zeroed, the end-of-allocation address
        raised to `end_of_file` if that is larger, and the checksum recomputed."""
        end = None if end_of_file is None else max(end_of_file, self.offset + self.end_of_file)
        return self.patched(flags=0, end_of_file=end)


def read_superblock(path: Path) -> Superblock:
    """The version 2/3 superblock at 0, 512, 1024, ... (HDF5 looks there), checksum verified."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        offset = 0
        while offset + len(SIGNATURE) <= size:
            f.seek(offset)
            if f.read(len(SIGNATURE)) == SIGNATURE:
                return _parse(f, offset, path)
            offset = 512 if offset == 0 else offset * 2
    raise SuperblockError(f"{path}: no HDF5 superblock (not an HDF5 file, or truncated)")


def _parse(f: io.BufferedReader, offset: int, path: Path) -> Superblock:
    head = f.read(3)
    if len(head) < 3:
        raise SuperblockError(f"{path}: HDF5 superblock truncated")
    version, size_of_offsets = head[0], head[1]
    if version not in (2, 3):
        raise SuperblockError(f"{path}: HDF5 superblock version {version} has no consistency flags to clear")
    length = 8 + 4 + 4 * size_of_offsets + 4  # signature..flags, 4 addresses, checksum
    f.seek(offset)
    raw = f.read(length)
    if len(raw) < length:
        raise SuperblockError(f"{path}: HDF5 superblock truncated")
    stored = int.from_bytes(raw[-4:], "little")
    if lookup3(raw[:-4]) != stored:
        raise SuperblockError(f"{path}: HDF5 superblock checksum does not match (damaged superblock)")
    return Superblock(offset, version, raw[_FLAGS_AT], raw)


class _PatchedView(io.RawIOBase):
    """The file's bytes, read-only, with `patch` laid over them at `at`."""

    def __init__(self, path: Path, at: int, patch: bytes) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._at, self._patch = at, patch
        self.name = str(path)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer) -> int:
        start = self._file.tell()
        n = self._file.readinto(buffer)
        lo, hi = max(start, self._at), min(start + n, self._at + len(self._patch))
        if lo < hi:
            memoryview(buffer)[lo - start:hi - start] = self._patch[lo - self._at:hi - self._at]
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def open_flags_cleared(path: Path) -> h5py.File:
    """Open `path` read-only as HDF5 with its consistency flags read as clear (file unchanged).

    Raises `SuperblockError` when there is no readable v2/v3 superblock, `OSError` when HDF5
    cannot read the file even so (damaged metadata)."""
    sb = read_superblock(path)
    # Flushed metadata may point past the end of allocation the superblock records, which HDF5
    # rewrites only when it flushes or closes it: outside SWMR mode, metadata moved or grown since
    # (a global heap collection that got more strings); in SWMR mode, a chunk and the index entry
    # pointing at it, written before the superblock in a flush the kill cut short (HDF5's SWMR
    # readers skip the end-of-allocation check for this reason). So allocate the whole file, as
    # `h5clear --increment` would. HDF5 writes a chunk before the metadata pointing at it (and the
    # writer keeps a failed write from landing metadata alone, writer.py `_reserve`), so what
    # metadata reaches past the recorded end was written; the space the writer reserved and never
    # used is reached by nothing.
    view = _PatchedView(path, sb.offset, sb.cleared(end_of_file=path.stat().st_size))
    try:
        f = h5py.File(view, "r")
    except BaseException:
        view.close()
        raise
    f._nwlab_view = view  # keep the file object alive as long as the h5py file
    return f


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 `hashlittle`, byte-wise, as in HDF5's H5_checksum_lookup3."""
    m = 0xFFFFFFFF

    def rot(x: int, k: int) -> int:
        return ((x << k) | (x >> (32 - k))) & m

    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & m
    k = 0
    while length > 12:
        a = (a + int.from_bytes(data[k:k + 4], "little")) & m
        b = (b + int.from_bytes(data[k + 4:k + 8], "little")) & m
        c = (c + int.from_bytes(data[k + 8:k + 12], "little")) & m
        a = (a - c) & m; a ^= rot(c, 4); c = (c + b) & m  # noqa: E702 - the mix() of lookup3
        b = (b - a) & m; b ^= rot(a, 6); a = (a + c) & m  # noqa: E702
        c = (c - b) & m; c ^= rot(b, 8); b = (b + a) & m  # noqa: E702
        a = (a - c) & m; a ^= rot(c, 16); c = (c + b) & m  # noqa: E702
        b = (b - a) & m; b ^= rot(a, 19); a = (a + c) & m  # noqa: E702
        c = (c - b) & m; c ^= rot(b, 4); b = (b + a) & m  # noqa: E702
        length -= 12
        k += 12
    if length == 0:
        return c
    tail = data[k:k + length] + bytes(12 - length)  # the switch's fall-through adds zero bytes
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c ^= b; c = (c - rot(b, 14)) & m  # noqa: E702 - the final() of lookup3
    a ^= c; a = (a - rot(c, 11)) & m  # noqa: E702
    b ^= a; b = (b - rot(a, 25)) & m  # noqa: E702
    c ^= b; c = (c - rot(b, 16)) & m  # noqa: E702
    a ^= c; a = (a - rot(c, 4)) & m  # noqa: E702
    b ^= a; b = (b - rot(a, 14)) & m  # noqa: E702
    c ^= b; c = (c - rot(b, 24)) & m  # noqa: E702
    return c
