"""Crash safety of the archive's finishing step: a writer process is SIGKILLed while
`RunFile.finish` has the file closed from SWMR and reopened `r+` (or just after), and
`nwlab archive recover` (a real subprocess) must turn the `.partial` into a `.h5` that plain
h5py and xarray open, with every flushed block.

The writer is a small script using `ArchiveWriter`; to stop it at a known point of the finishing
step it wraps one `lab.archive.finish` function in its own process (no hook in the writer): it
prints "paused" there and sleeps until it is killed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from lab.archive import superblock

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from run_helpers import run_nwlab  # noqa: E402 - tests/reliability is not a package

N_BLOCKS, TRACES_PER_BLOCK, ROWS_PER_BLOCK, N_POINTS = 5, 8, 3, 100

# Trace i holds the value i, row r of table iv the value r; one snapshot change is journalled
# mid-run; an undeclared table and a Result are held in memory until RunStop (not crash-safe).
WRITER = f"""
import sys, time, numpy as np
from lab.archive import finish
from lab.archive.writer import ArchiveWriter, WriterOptions
from contracts.records import *
out, point = sys.argv[1], sys.argv[2]

def pause_before(fn):
    def paused(*args, **kwargs):
        print("paused", flush=True)
        time.sleep(120)
        return fn(*args, **kwargs)
    return paused

def pause_after(fn):
    def paused(*args, **kwargs):
        result = fn(*args, **kwargs)
        print("paused", flush=True)
        time.sleep(120)
        return result
    return paused

if point == "reopened":      # r+ open, undeclared rows written, nothing else yet
    finish.write_status = pause_before(finish.write_status)
elif point == "written":     # every finishing write made but the journal's deletion
    finish.set_default = pause_after(finish.set_default)
elif point == "dropped":     # ... and the journal deleted (its space freed); file not closed yet
    finish.drop_snapshot_journal = pause_after(finish.drop_snapshot_journal)
elif point == "closed":      # finishing closed the file, rename not done
    finish.publish = pause_before(finish.publish)
t = np.arange({N_POINTS}) * 1e-10
w = ArchiveWriter(out, WriterOptions(block_traces={TRACES_PER_BLOCK}, max_latency_s=60))
w(RunStart("fin", "stress", "2026-03-01T10:00:00+00:00", {{"n": (1, "1")}}, "s", "c", {{"v": 0}}, "0.1.0", 1,
           traces=TraceSpec(("main",), t, {{"t_trigger_s": ColumnSpec("s")}}),
           tables={{"iv": TableSpec({{"bias_a": ColumnSpec("A")}})}}))
n = rows = 0
for b in range({N_BLOCKS}):
    idx = np.arange(n, n + {TRACES_PER_BLOCK}, dtype=np.float32)
    w(TraceBlock(np.repeat(idx[:, None, None], t.size, 2), t, ("main",), {{"t_trigger_s": (idx * 1e-3, "s")}}))
    w(TableRows("iv", {{"bias_a": (np.arange(rows, rows + {ROWS_PER_BLOCK}) * 1.0, "A")}}))
    if b == 1:
        w(SnapshotChanged("2026-03-01T10:01:00+00:00", {{"v": 1}}, "gain"))
    w.flush()
    n += {TRACES_PER_BLOCK}
    rows += {ROWS_PER_BLOCK}
w(TableRows("late", {{"x": (np.arange(4.0), "1")}}))
w(Result("answer", 1.5, "1"))
w(RunStop("completed", "2026-03-01T10:02:00+00:00"))
print("finished", flush=True)
"""
TRACES, ROWS = N_BLOCKS * TRACES_PER_BLOCK, N_BLOCKS * ROWS_PER_BLOCK


def kill_while_finishing(directory: Path, point: str) -> Path:
    """Run the writer until it pauses at `point`, check that recover refuses the live file, then
    SIGKILL it; returns the `.partial` it left."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(directory), point],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line == "paused\n", (line, proc.communicate(timeout=10))
        partial = directory / "fin.h5.partial"
        # the writer's lock is held through the finishing step: nobody recovers a file in change
        busy = run_nwlab("archive", "recover", str(partial), timeout_s=60)
        assert busy.returncode == 2 and "a live process is still writing it" in busy.stderr, busy
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert partial.exists() and not (directory / "fin.h5").exists(), sorted(p.name for p in directory.iterdir())
    return partial


def check_flushed_data(final: Path) -> h5py.File:
    """Every flushed block, with its own values, in a file plain h5py and xarray open."""
    with h5py.File(final, "r") as f:
        e = f["entry"]
        idx = np.arange(TRACES, dtype=np.float32)
        np.testing.assert_array_equal(e["traces/trace"][()], np.arange(TRACES))
        np.testing.assert_array_equal(e["traces/voltage"][()], np.repeat(idx[:, None, None], N_POINTS, 2))
        np.testing.assert_array_equal(e["traces/t_trigger_s"][()], idx * 1e-3)
        np.testing.assert_array_equal(e["iv/row"][()], np.arange(ROWS))
        np.testing.assert_array_equal(e["iv/bias_a"][()], np.arange(ROWS) * 1.0)
        assert e["instrument/snapshot_1/data"][()] == b'{"v": 1}'
        assert "snapshot_log" not in e["instrument"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with xr.open_dataset(final, engine="h5netcdf", group="entry/traces") as ds:
            assert ds["voltage"].dims == ("trace", "channel", "time") and ds.sizes["trace"] == TRACES


@pytest.mark.timeout(90)
@pytest.mark.parametrize("point", ["reopened", "written", "dropped"])
def test_killed_inside_the_r_plus_window_is_recovered_with_every_flushed_block(tmp_path, point):
    partial = kill_while_finishing(tmp_path, point)
    sb = superblock.read_superblock(partial)
    # the state recover used to refuse: "open for write" without "SWMR write"
    assert sb.open_for_write and not sb.open_for_swmr_write, sb.flags
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(partial, "r")

    listed = run_nwlab("archive", "ls", str(tmp_path), timeout_s=60)
    assert listed.returncode == 0, listed.stderr
    assert "incomplete (recover with: nwlab archive recover" in listed.stdout, listed.stdout
    assert f"{TRACES} traces" in listed.stdout, listed.stdout

    recovered = run_nwlab("archive", "recover", str(partial), timeout_s=60)
    assert recovered.returncode == 0, recovered.stderr
    assert f"recovered {TRACES} traces; iv: {ROWS} rows" in recovered.stdout, recovered.stdout
    final = tmp_path / "fin.h5"
    assert final.exists() and not partial.exists()
    check_flushed_data(final)
    with h5py.File(final, "r") as f:
        e = f["entry"]
        assert e["exit_status"][()] == b"crashed"
        assert b"open outside SWMR mode (finishing the run" in e["exit_message"][()]
        assert e["recovered_traces"][()] == TRACES
    assert superblock.read_superblock(final).flags == 0


@pytest.mark.timeout(90)
def test_killed_after_finishing_closed_the_file_keeps_the_run_as_it_finished(tmp_path):
    """Only the rename was missing: recover publishes the file with its own status, results and
    the undeclared table written at RunStop."""
    partial = kill_while_finishing(tmp_path, "closed")
    assert superblock.read_superblock(partial).flags == 0
    recovered = run_nwlab("archive", "recover", str(partial), timeout_s=60)
    assert recovered.returncode == 0, recovered.stderr
    final = tmp_path / "fin.h5"
    assert final.exists() and not partial.exists()
    check_flushed_data(final)
    with h5py.File(final, "r") as f:
        e = f["entry"]
        assert e["exit_status"][()] == b"completed" and "recovered_traces" not in e
        assert e["results/answer"][()] == 1.5
        np.testing.assert_array_equal(e["late/x"][()], np.arange(4.0))
    shown = run_nwlab("archive", "show", str(final), timeout_s=60)
    assert shown.returncode == 0 and "completed" in shown.stdout, shown


def _truncate(partial: Path) -> None:
    """Half of what HDF5 had allocated (past it the writer may have reserved space it never used)."""
    end = superblock.read_superblock(partial).end_of_file
    with open(partial, "r+b") as f:
        f.truncate(end // 2)


def _overwrite_journal_chunk(partial: Path) -> None:
    """What a finishing step that deleted the journal first could leave: the journal's chunk
    (references into the global heap) overwritten by other data, the metadata still linking it."""
    with superblock.open_flags_cleared(partial) as f:
        offset = f["entry/instrument/snapshot_log"].id.get_chunk_info(0).byte_offset
    with open(partial, "r+b") as f:
        f.seek(offset)
        f.write(b"\xa5" * 64)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("damage, says", [(_truncate, "unreadable HDF5 file"),
                                          (_overwrite_journal_chunk, "damaged, not recovered: cannot read "
                                                                     "/entry/instrument/snapshot_log")])
def test_damaged_by_a_crash_while_finishing_recover_says_so_naming_the_file(tmp_path, damage, says):
    """HDF5 cannot read the file (or part of it) even with its flags cleared, as a torn write
    could leave it: recover fails with one line naming the file, writes nothing, and leaves it."""
    partial = kill_while_finishing(tmp_path, "written")
    damage(partial)
    before = partial.read_bytes()
    recovered = run_nwlab("archive", "recover", str(partial), timeout_s=60)
    assert recovered.returncode == 2, (recovered.stdout, recovered.stderr)
    err = recovered.stderr.strip()
    assert len(err.splitlines()) == 1 and str(partial) in err and says in err, err
    if damage is _truncate:
        assert "open for writing outside SWMR mode" in err, err
    assert partial.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fin.h5.partial"]


def test_superblock_view_clears_the_flags_without_touching_the_file(tmp_path):
    """The flag-cleared view: HDF5 accepts its recomputed checksum; the file's bytes are unchanged."""
    path = tmp_path / "open.h5"
    code = ("import sys, os, h5py, signal\n"
            "f = h5py.File(sys.argv[1], 'w', libver=('v110', 'v110')); f['x'] = [1, 2, 3]; f.flush()\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    before = path.read_bytes()
    assert superblock.read_superblock(path).flags == superblock.WRITE_ACCESS
    with superblock.open_flags_cleared(path) as f:
        np.testing.assert_array_equal(f["x"][()], [1, 2, 3])
    assert path.read_bytes() == before
    assert superblock.lookup3(b"") == 0xDEADBEEF and superblock.lookup3(b"Four score and seven years ago") \
        == 0x17770551  # lookup3.c's own self-test values (hashlittle, initval 0)
