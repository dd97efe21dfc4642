"""Disk faults under real `nwlab` subprocesses: a full disk (a size-limited tmpfs mounted for the
test, filled while the run goes on), a read-only directory, `--out` that is a file or under one,
and a file-size limit (RLIMIT_FSIZE: the kernel fails HDF5's write with EFBIG past the limit,
which no free-space check can see coming — the path a quota or an I/O error takes).

Each must end with one line naming the path and the problem, exit code 2, every output safe
(read from the served bench after the process ended), nothing measured lost (every block the
flush journal lists is in the archive), no further run started, and an archive that is either
finished or recoverable with `nwlab archive recover`. Tests that need a tmpfs are skipped where
the machine does not allow mounting one; the file-size-limit test needs no mount.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
import pytest
from lab.archive import layout
from run_helpers import (check_trace_indices, exit_status, journal_lines, nwlab_argv, private_station, run_nwlab,
                         scpi_query, served_bench, start_nwlab, stop, table_lengths, tcp_station)
from reliability_helpers import ROOT

USAGE_ERROR = 2
#: energy_per_spike above the bench's threshold: every capture fires, traces keep coming (and
#: the bias and the generator stay on) until something ends the run.
LONG_RUN = ("energy_per_spike", "--set", "spikes=5000", "--set", "threshold_a=24e-6")
COOLDOWN = ("cooldown", "--set", "hold_s=10", "--set", "log_duration_s=60")


@contextmanager
def small_fs(where: Path, size_bytes: int, *, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of `size_bytes` mounted at `where` for the test (skipped if mounting is refused)."""
    where.mkdir()
    options = f"size={size_bytes}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                             capture_output=True, text=True, timeout=10)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=10)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(fs: Path, leave_bytes: int) -> None:
    """Take all but `leave_bytes` of the filesystem with one file."""
    with open(fs / "filler", "wb") as f:
        f.write(b"\0" * max(0, free_bytes(fs) - leave_bytes))


def one_line(stderr: str, command: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith(f"nwlab {command}:")]
    assert len(lines) == 1, stderr
    return lines[0]


def wait_for(predicate, timeout_s: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert proc.poll() is None, f"the run ended first: {proc.communicate()}"
        assert time.monotonic() < deadline, f"not within {timeout_s} s"
        time.sleep(0.02)


def outputs_live(addresses: dict[str, str]) -> bool:
    return (scpi_query(addresses["bias"], ":OUTP?") == "1"
            and scpi_query(addresses["pulser"], ":OUTP1?") == "1")


def assert_safe(addresses: dict[str, str]) -> None:
    state = {"smu output": scpi_query(addresses["bias"], ":OUTP?"),
             "smu level": float(scpi_query(addresses["bias"], ":SOUR:CURR?")),
             "generator 1": scpi_query(addresses["pulser"], ":OUTP1?"),
             "generator 2": scpi_query(addresses["pulser"], ":OUTP2?"),
             "heater range": scpi_query(addresses["cryostat"], "RANGE? 1")}
    assert state == {"smu output": "0", "smu level": 0.0, "generator 1": "0", "generator 2": "0",
                     "heater range": "0"}, state


def flushed_traces(journal: Path) -> int:
    return max((line["traces"] for line in journal_lines(journal)), default=0)


# -- refused before any instrument is opened ----------------------------------------------------

@pytest.mark.timeout(60)
def test_full_disk_refuses_the_run_before_any_instrument_with_one_line(tmp_path):
    with small_fs(tmp_path / "fs", 4 << 20) as fs:
        fill(fs, 1 << 20)
        out = fs / "out"
        done = run_nwlab("run", *COOLDOWN, "--station", str(private_station(tmp_path)), "--out", str(out),
                         "--quiet", timeout_s=45)
        line = one_line(done.stderr, "run")
        assert done.returncode == USAGE_ERROR, (done.stdout, done.stderr)
        assert f"{out}: no space left on device" in line and "nothing was started" in line, line
        assert "Connected to" not in done.stdout + done.stderr      # no instrument was opened
        assert sorted(p.name for p in fs.iterdir()) == ["filler"]    # not even the directory


@pytest.mark.timeout(60)
def test_bad_output_directories_are_refused_with_one_line_before_any_instrument(tmp_path, capsys):
    """A read-only mount, `--out` a file, `--out` under a file: the same check as above, in
    process (the command line's own `main`) to keep the suite short; nothing is changed."""
    from lab.app.cli import main as nwlab_main

    station = str(private_station(tmp_path))
    file = tmp_path / "file"
    file.write_text("keep me\n")
    with small_fs(tmp_path / "ro", 4 << 20, read_only=True) as ro:
        cases = [("run", ro / "out", "read-only file system"),
                 ("campaign", ro / "out", "read-only file system"),
                 ("run", file, "is a file, not a directory"),
                 ("campaign", file, "is a file, not a directory"),
                 ("run", file / "sub", f"cannot be a directory: {file} is a file"),
                 ("campaign", file / "sub" / "deeper", f"cannot be a directory: {file} is a file")]
        for command, out, says in cases:
            args = list(COOLDOWN) if command == "run" else ["--only", "cooldown"]
            code = nwlab_main([command, *args, "--station", station, "--out", str(out), "--quiet"])
            captured = capsys.readouterr()
            line = one_line(captured.err, command)
            assert code == USAGE_ERROR, (command, out, captured)
            assert f"{out}: {says}" in line, line
            assert "Connected to" not in captured.out + captured.err
        assert list(ro.iterdir()) == []
    assert file.read_text() == "keep me\n"


# -- the disk fills while a run goes on ---------------------------------------------------------

@pytest.mark.timeout(120)
def test_disk_full_mid_run_stops_it_with_outputs_safe_and_everything_archived(tmp_path):
    """Over TCP, so the instruments can be asked after the process ended."""
    journal = tmp_path / "flush.jsonl"
    with small_fs(tmp_path / "fs", 16 << 20) as fs, \
            served_bench(private_station(tmp_path, name="served.yaml")) as served:
        station = tcp_station(tmp_path, served)
        out = fs / "out"
        proc = start_nwlab("run", *LONG_RUN, "--station", str(station), "--out", str(out), "--quiet",
                           env={"NWLAB_FLUSH_LOG": str(journal)})
        try:
            wait_for(lambda: outputs_live(served.addresses) and flushed_traces(journal) > 0, 60, proc)
            fill(fs, 1_200_000)    # room for the run's end, not for another block and the end
            out_text, err = proc.communicate(timeout=60)
        finally:
            stop(proc)
        line = one_line(err, "run")
        assert proc.returncode == USAGE_ERROR, (out_text, err)
        assert f"{out}: no space left on device" in line and "the run was stopped" in line, line
        assert_safe(served.addresses)
        archives = sorted(out.iterdir())
        assert len(archives) == 1 and archives[0].name.endswith(".h5"), archives   # finished, not .partial
        assert f"archived in {archives[0]}" in line, line
        status, message = exit_status(archives[0])
        assert status == "failed" and "no space left on device" in message, (status, message)
        n = check_trace_indices(archives[0])
        assert n >= flushed_traces(journal) > 0, (n, journal_lines(journal))


@pytest.mark.timeout(120)
def test_campaign_starts_no_run_after_the_disk_filled(tmp_path):
    """The disk fills during cooldown: cooldown ends (stopped, or finished into the room kept
    for a run's end), iv_sweep never starts into the full directory (no file of it, not even
    an empty .partial, as before), and the campaign exits 2 with one line."""
    journal = tmp_path / "flush.jsonl"
    with small_fs(tmp_path / "fs", 16 << 20) as fs:
        out = fs / "out"
        proc = start_nwlab("campaign", "--only", "cooldown", "--only", "iv_sweep", "--station",
                           str(private_station(tmp_path)), "--out", str(out), "--quiet",
                           "--set", "cooldown.hold_s=10", "--set", "cooldown.log_duration_s=60",
                           env={"NWLAB_FLUSH_LOG": str(journal)})
        try:
            wait_for(lambda: out.exists() and any(out.glob("*cooldown*.partial")), 60, proc)
            fill(fs, 1_050_000)
            out_text, err = proc.communicate(timeout=60)
        finally:
            stop(proc)
        line = one_line(err, "campaign")
        assert proc.returncode == USAGE_ERROR, (out_text, err)
        assert f"{out}: no space left on device" in line, line
        runs = sorted(p for p in out.iterdir() if ".h5" in p.name)
        assert [p.name.split("-")[1] for p in runs] == ["cooldown"], runs
        assert runs[0].suffix == ".h5", runs
        rows = max((line["rows"]["temperature_log"] for line in journal_lines(journal)), default=0)
        assert table_lengths(runs[0])["temperature_log"] >= rows


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_file_size_limit_mid_run_keeps_every_flushed_block_and_no_zeros(tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse writes past 3 MB (EFBIG) while the disk has room, so
    no free-space check sees it coming. The writer reserves each block's space before HDF5
    writes it, so the refusal comes before a flush, not halfway through one: the run stops with
    one line, and the archive (finished, or a .partial that `recover` finishes) holds every
    flushed block, each trace real data. Before, the failed flush's metadata landed and its
    data did not: `recover` returned the block as traces of zeros."""
    journal = tmp_path / "flush.jsonl"
    out = tmp_path / "out"

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # the write fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (3_000_000, resource.RLIM_INFINITY))

    proc = subprocess.Popen(nwlab_argv("run", *LONG_RUN, "--station", str(private_station(tmp_path)),
                                       "--out", str(out), "--quiet"),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NWLAB_FLUSH_LOG": str(journal)}, preexec_fn=limit_file_size)
    try:
        out_text, err = proc.communicate(timeout=90)
    finally:
        stop(proc)
    line = one_line(err, "run")
    assert proc.returncode == USAGE_ERROR, (out_text, err)
    assert f"{out}: file too large" in line, line
    flushed = flushed_traces(journal)
    assert flushed > 0, journal_lines(journal)
    partials = list(out.glob("*.h5.partial"))
    if partials:      # no room even to finish it: recover does
        assert f"nwlab archive recover {partials[0]}" in line, line
        assert "file-size limit" in line and "free some space" not in line, line
        listed = run_nwlab("archive", "ls", str(out), timeout_s=30)
        assert listed.returncode == 0 and "incomplete (recover with" in listed.stdout, listed
        recovered = run_nwlab("archive", "recover", str(partials[0]), timeout_s=30)
        assert recovered.returncode == 0, recovered.stderr
    archives = list(out.glob("*.h5"))
    assert len(archives) == 1 and not list(out.glob("*.partial")), list(out.iterdir())
    n = check_trace_indices(archives[0])
    assert n >= flushed, (n, journal_lines(journal))     # every flushed block
    with h5py.File(archives[0], "r") as f:
        traces = f["entry/traces"]
        voltage = layout.read_signal(traces, "voltage", range(n))
        step = traces["voltage_step"][()]
    # a block whose metadata landed without its data reads as HDF5's fill: codes, scaling, points 0
    assert np.all(step[:, 0] > 0), "an archived trace has no scaling (its data never landed)"
    assert not np.any(np.all((voltage == 0) | np.isnan(voltage), axis=(1, 2))), "an archived trace is all zeros"
