"""SIGKILL at random points of real `nwlab run` processes on private emulated stations.

Each kill leaves a `.h5.partial`; `nwlab archive ls` must list it as incomplete, `nwlab archive
recover` (a real subprocess) must turn it into a `.h5` that plain h5py and xarray open, and the
recovered file must hold every block the writer's flush journal (`NWLAB_FLUSH_LOG`) says was
flushed before the kill, with row indices 0..n-1 and the plan's own values (nothing duplicated,
nothing shifted). Kill delays are drawn from a fixed seed.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from run_helpers import (check_table_indices, journal_lines, open_with_xarray, private_station, run_nwlab,
                         start_nwlab, stop, table_lengths, text)

from lab.archive.writer import ArchiveWriter, WriterOptions
from lab.records import ColumnSpec, RunStart, RunStop, TableRows, TableSpec

SEED = 20261124
LOG_INTERVAL_S = 10.0

#: procedure, --set overrides, tables it writes, kill window after the .partial appears (wall s)
PROCEDURES = {
    "cooldown": ((f"log_interval_s={LOG_INTERVAL_S:g}", "log_duration_s=3000"), ("temperature_log",), 5.0),
    "iv_sweep": (("switching_events=80", "pilot_points=10", "pilot_sweeps=1", "ramp_a_per_s=1e-3"),
                 ("iv_curve", "switching_events"), 5.5),
}
#: (procedure, kill delay) for every kill: 6 cooldowns and 4 I-V sweeps, delays seeded.
_rng = random.Random(SEED)
KILLS = [(name, round(_rng.uniform(0.05, PROCEDURES[name][2]), 3))
         for name in ["cooldown"] * 6 + ["iv_sweep"] * 4]
PARALLEL = 2


def _start(tmp_path: Path, index: int, procedure: str) -> dict:
    work = tmp_path / f"kill-{index}"
    work.mkdir()
    station = private_station(work)
    journal = work / "flush.jsonl"
    sets = [a for s in PROCEDURES[procedure][0] for a in ("--set", s)]
    proc = start_nwlab("run", procedure, "--station", str(station), "--out", str(work / "out"), "--quiet",
                       *sets, env={"NWLAB_FLUSH_LOG": str(journal)})
    return {"proc": proc, "work": work, "journal": journal, "procedure": procedure}


def _kill_after_partials(batch: list[tuple[dict, float]], timeout_s: float = 40.0) -> None:
    """SIGKILL each job `delay` seconds after its `.h5.partial` appeared (all jobs at once)."""
    deadline = time.monotonic() + timeout_s
    seen: dict[int, float] = {}
    while len(seen) < len(batch) or any("killed_mid_run" not in job for job, _ in batch):
        now = time.monotonic()
        assert now < deadline, "a run did not start its archive within the start-up timeout"
        for index, (job, delay_s) in enumerate(batch):
            if "killed_mid_run" in job:
                continue
            if index not in seen:
                out = job["work"] / "out"
                if out.is_dir() and any(out.glob("*.h5.partial")):
                    seen[index] = now
                else:
                    assert job["proc"].poll() is None, f"run ended before its archive appeared: " \
                                                       f"{job['proc'].communicate()}"
                    continue
            if now >= seen[index] + delay_s:
                job["killed_mid_run"] = job["proc"].poll() is None
                job["proc"].send_signal(signal.SIGKILL)
        time.sleep(0.01)
    for job, _ in batch:
        job["proc"].communicate(timeout=10)


def _check_killed_run(job: dict) -> dict:
    """All assertions on one killed run; returns counts for the summary."""
    out, procedure = job["work"] / "out", job["procedure"]
    assert job["proc"].returncode == -signal.SIGKILL
    partials = sorted(out.glob("*.h5.partial"))
    assert len(partials) == 1 and not list(out.glob("*.h5")), sorted(p.name for p in out.iterdir())
    partial = partials[0]
    run_id = partial.name[: -len(".h5.partial")]

    listed = run_nwlab("archive", "ls", str(out), timeout_s=60)
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith(run_id))
    assert "incomplete" in line and "nwlab archive recover" in line, line

    recovered = run_nwlab("archive", "recover", str(partial), timeout_s=60)
    assert recovered.returncode == 0, recovered.stderr
    final = partial.with_name(run_id + ".h5")
    assert final.exists() and not partial.exists(), recovered.stdout

    flushed = [line for line in journal_lines(job["journal"]) if line["run_id"] == run_id]
    last = flushed[-1]["rows"] if flushed else {}
    lengths = table_lengths(final)
    for table in PROCEDURES[procedure][1]:
        # every block the journal lists as flushed is in the recovered file
        assert lengths.get(table, 0) >= last.get(table, 0), (table, lengths, flushed[-1:])
        if lengths.get(table, 0):
            check_table_indices(final, table)
            ds = open_with_xarray(final, f"entry/{table}")
            assert ds.sizes[next(iter(ds.dims))] == lengths[table]
    with h5py.File(final, "r") as f:
        entry = f["entry"]
        assert text(entry, "exit_status") == "crashed"
        assert text(entry, "run_id") == run_id
        if procedure == "cooldown" and "temperature_log" in entry:
            log = entry["temperature_log"]
            times = log["time_s"][()]
            np.testing.assert_allclose(times, np.arange(times.size) * LOG_INTERVAL_S)  # nothing shifted
            temps = log["temperature_k"][()]
            assert np.all(np.isfinite(temps)) and np.all((temps > 0.5) & (temps < 400)), temps
        if procedure == "iv_sweep" and "switching_events" in entry:
            events = entry["switching_events"]["event"][()]
            assert np.all(np.diff(events) > 0), events                                # no duplicate
    return {"rows": lengths, "journal": last, "blocks": len(flushed)}


@pytest.mark.timeout(110)
def test_sigkill_at_random_points_loses_at_most_the_unflushed_block(tmp_path):
    jobs: list[dict] = []
    try:
        for wave in range(0, len(KILLS), PARALLEL):
            batch = [(i, *KILLS[i]) for i in range(wave, min(wave + PARALLEL, len(KILLS)))]
            started = [(_start(tmp_path, i, name), delay) for i, name, delay in batch]
            jobs += [job for job, _ in started]
            _kill_after_partials(started)
        summary = [_check_killed_run(job) for job in jobs if job["killed_mid_run"]]
    finally:
        for job in jobs:
            stop(job["proc"])
    mid_run = sum(job["killed_mid_run"] for job in jobs)
    assert mid_run >= len(KILLS) - 2, f"only {mid_run} of {len(KILLS)} kills landed while the run was going"
    # the kills must have exercised flushed data, not only empty skeletons
    assert sum(s["blocks"] > 0 for s in summary) >= len(KILLS) // 3, summary
    print("kills (rows recovered, rows journalled):", [(s["rows"], s["journal"]) for s in summary])


@pytest.mark.timeout(30)
def test_flush_journal_lists_what_each_flush_made_durable(tmp_path, monkeypatch):
    """The writer's flush journal (used above): one line per flushed block, totals so far,
    from `WriterOptions.flush_log` or `$NWLAB_FLUSH_LOG`; no journal when neither is set."""
    spec = {"iv": TableSpec({"bias_a": ColumnSpec("A")})}

    def write(directory: Path, options: WriterOptions, blocks: int) -> None:
        w = ArchiveWriter(directory, options)
        w(RunStart(f"journal-{directory.name}", "stress", "2026-03-01T10:00:00+00:00", {}, "s", "c", {}, "0.1.0",
                   1, tables=spec))
        for b in range(blocks):
            w(TableRows("iv", {"bias_a": (np.arange(3) * 1e-6 + b, "A")}))
            w.flush()
        w(RunStop("completed", "2026-03-01T10:01:00+00:00"))

    explicit = tmp_path / "explicit.jsonl"
    write(tmp_path / "a", WriterOptions(flush_log=str(explicit)), 4)
    lines = journal_lines(explicit)
    assert [(line["block"], line["rows"]["iv"], line["traces"]) for line in lines] == [
        (1, 3, 0), (2, 6, 0), (3, 9, 0), (4, 12, 0)]
    assert {line["run_id"] for line in lines} == {"journal-a"}

    from_env = tmp_path / "env.jsonl"
    monkeypatch.setenv("NWLAB_FLUSH_LOG", str(from_env))
    write(tmp_path / "b", WriterOptions(), 2)
    assert [line["rows"]["iv"] for line in journal_lines(from_env)] == [3, 6]

    monkeypatch.delenv("NWLAB_FLUSH_LOG")
    write(tmp_path / "c", WriterOptions(), 2)
    assert not any(p.suffix == ".jsonl" for p in (tmp_path / "c").iterdir())
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "c", "env.jsonl", "explicit.jsonl"]
