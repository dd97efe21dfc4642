"""Damaged run files and a filling disk, in process: `nwlab archive ls|show|recover` and the
report's loader answer each damaged file with one line (never a traceback, never a hang) and
leave it unchanged; the writer on a small tmpfs stops a run while its end still fits, with
every trace it was given archived in a finished file."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from lab.archive.output_dir import ArchiveWriteError, check_output_dir, remedy
from lab.archive.writer import ArchiveWriter, WriterOptions
from lab.app.cli import main as nwlab_main
from contracts.records import RunStart, RunStop, TraceBlock, TraceSpec
from lab.app.report.markdown import write_report

SPEC = TraceSpec(("m",), np.arange(100) * 1e-9)


def write_run(directory: Path, run_id: str, blocks: int = 1) -> Path:
    w = ArchiveWriter(directory)
    w(RunStart(run_id, "cooldown", "2026-03-01T10:00:00+00:00", {}, "station: x\n", "name: chip\n", {}, "0.1.0",
               traces=SPEC))
    for _ in range(blocks):
        w(TraceBlock(np.random.default_rng(1).normal(size=(64, 1, 100)), SPEC.time_s, ("m",)))
    w(RunStop("completed", "2026-03-01T10:01:00+00:00"))
    return directory / f"{run_id}.h5"


def damaged(kind: str, good: bytes) -> bytes | None:
    """The bytes of a damaged copy of `good` (None: a directory)."""
    if kind == "zero bytes":
        return b""
    if kind == "truncated":
        return good[:len(good) // 3]
    if kind == "garbage":
        return np.random.default_rng(2).bytes(5000)
    if kind == "metadata checksum":       # object headers just after the superblock
        b = bytearray(good)
        b[248:308] = np.random.default_rng(3).bytes(60)
        return bytes(b)
    if kind == "superblock checksum":
        b = bytearray(good)
        b[20] ^= 0xFF
        return bytes(b)
    return None


KINDS = ["zero bytes", "truncated", "garbage", "metadata checksum", "superblock checksum", "directory"]


def make(directory: Path, name: str, kind: str, good: bytes) -> Path:
    path = directory / name
    data = damaged(kind, good)
    if data is None:
        path.mkdir()
    else:
        path.write_bytes(data)
    return path


def snapshot(directory: Path) -> dict[str, bytes | None]:
    return {p.name: (p.read_bytes() if p.is_file() else None) for p in directory.iterdir()}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("suffix", [".h5", ".h5.partial"])
def test_ls_and_show_name_every_damaged_file_in_one_line(tmp_path, capsys, suffix):
    good = write_run(tmp_path, "good").read_bytes()
    for kind in KINDS:
        make(tmp_path, kind.replace(" ", "_") + suffix, kind, good)
    before = snapshot(tmp_path)
    assert nwlab_main(["archive", "ls", str(tmp_path)]) == 1
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert "Traceback" not in out.out + out.err
    assert len(lines) == len(KINDS) + 1, lines
    assert sum("unreadable:" in line for line in lines) == len(KINDS), lines
    assert any(line.startswith("good ") and "completed" in line for line in lines), lines
    for kind in KINDS:
        path = tmp_path / (kind.replace(" ", "_") + suffix)
        assert nwlab_main(["archive", "show", str(path)]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and str(path) in err, err
    assert snapshot(tmp_path) == before


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_recover_of_a_damaged_partial_exits_2_with_one_line_and_changes_nothing(tmp_path, capsys, kind):
    good = write_run(tmp_path / "src", "good").read_bytes()
    work = tmp_path / "work"
    work.mkdir()
    path = make(work, "run.h5.partial", kind, good)
    before = snapshot(work)
    assert nwlab_main(["archive", "recover", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and str(path) in err and "Traceback" not in err, err
    assert snapshot(work) == before


def test_the_report_leaves_out_a_damaged_run_file_and_says_so(tmp_path):
    good = write_run(tmp_path, "good").read_bytes()
    make(tmp_path, "broken.h5", "metadata checksum", good)
    make(tmp_path, "empty.h5", "zero bytes", good)
    report = write_report(tmp_path).read_text()
    assert "`good.h5`" in report
    assert "Left out, unreadable:" in report and "broken.h5" in report and "empty.h5" in report


# -- a small filesystem --------------------------------------------------------------------------

@pytest.fixture
def small_fs(tmp_path):
    where = tmp_path / "fs"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(where)],
                             capture_output=True, text=True, timeout=10)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=10)


def fill(fs: Path, leave_bytes: int) -> None:
    st = os.statvfs(fs)
    (fs / "filler").write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - leave_bytes))


@pytest.mark.timeout(60)
def test_writer_stops_a_run_while_its_end_fits_with_every_trace_archived(small_fs):
    spec = TraceSpec(("a", "b"), np.arange(2000) * 1e-9)     # 16 kB a trace, 64-trace blocks of 1 MB
    w = ArchiveWriter(small_fs / "out", WriterOptions(block_traces=64))
    w(RunStart("r", "p", "2026-03-01T10:00:00+00:00", {}, "", "", {}, "0.1.0", traces=spec))
    fill(small_fs, 3_600_000)
    sent = 0
    with pytest.raises(ArchiveWriteError, match="no space left on device") as stopped:
        for i in range(1000):
            sent += 4
            w(TraceBlock(np.full((4, 2, 2000), i + 1, np.float32), spec.time_s, ("a", "b")))
    assert "the run was stopped" in str(stopped.value)
    with pytest.raises(ArchiveWriteError, match="archived in") as ended:
        w(RunStop("failed", "2026-03-01T10:01:00+00:00", message=str(stopped.value)))
    final = small_fs / "out" / "r.h5"
    assert str(final) in str(ended.value) and not list((small_fs / "out").glob("*.partial"))
    with h5py.File(final, "r") as f:
        voltage = f["entry/traces/voltage"][()]
        assert f["entry/exit_status"][()] == b"failed"
    assert voltage.shape[0] == sent                                  # nothing it was given is lost
    np.testing.assert_array_equal(voltage[::4, 0, 0], np.arange(1, sent // 4 + 1))


@pytest.mark.timeout(30)
def test_no_run_starts_without_room_for_its_first_block(small_fs):
    fill(small_fs, 1_000_000)
    with pytest.raises(ArchiveWriteError, match="no space left on device.*nothing was started"):
        check_output_dir(small_fs / "out", 2 << 20)
    assert not (small_fs / "out").exists()
    w = ArchiveWriter(small_fs)
    with pytest.raises(ArchiveWriteError, match="it was not started"):
        w(RunStart("r", "p", "2026-03-01T10:00:00+00:00", {}, "", "", {}, "0.1.0", traces=SPEC))
    assert sorted(p.name for p in small_fs.iterdir()) == ["filler"]     # no empty .partial


@pytest.mark.parametrize("error, asked", [
    (errno.ENOSPC, "free some space"), (errno.EDQUOT, "raise the quota"), (errno.EFBIG, "file-size limit"),
    (errno.EROFS, "writable"), (errno.EACCES, "writable"), (errno.EPERM, "immutable"), (errno.EIO, "check the disk"),
    (None, "fix that"),
])
def test_a_broken_write_asks_for_what_its_error_needs(error, asked):
    # A directory made immutable mid-run (EPERM) was told to "free some space".
    assert asked in remedy(error)
    assert (error in (errno.ENOSPC, errno.EDQUOT)) == ("free some space" in remedy(error))
