"""SIGKILL at random points of real `nwlab run` processes on private emulated stations.

Each kill leaves a `.h5.partial`; `nwlab archive ls` must list it as incomplete, `nwlab archive
recover` (a real subprocess) must turn it into a `.h5` that plain h5py and xarray open, and the
recovered file must hold every block the writer's flush journal (`NWLAB_FLUSH_LOG`) says was
flushed before the kill, with row indices 0..n-1 and the plan's own values (nothing duplicated,
nothing shifted). Kill delays are drawn from a fixed seed.

Three procedures: `cooldown` and `iv_sweep` write tables only; `energy_per_spike` writes
`entry/traces` (a block of 64 reference captures, a block of spiking captures) and its
`spike_energies` table. Half of its kills are timed from the `.partial` (any phase), half from
the first journal line that lists flushed traces, so they land while trace blocks are being
written or after them, never only on an empty skeleton.
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
from run_helpers import (check_table_indices, check_trace_indices, journal_lines, open_with_xarray,
                         private_station, run_nwlab, start_nwlab, stop, table_lengths, text)

from lab.archive import layout
from lab.archive.writer import ArchiveWriter, WriterOptions
from contracts.records import ColumnSpec, RunStart, RunStop, TableRows, TableSpec

SEED = 20261124
LOG_INTERVAL_S = 10.0
REFERENCE_CAPTURES = 64  # energy_per_spike: traces kept (flushed when a ~5 MB block fills or 1 s after the first)
THRESHOLD_A = 24e-6  # energy_per_spike: fires the emulated neuron (docs/reliability.md)

#: procedure, --set overrides, tables it writes, kill window after the .partial appears (wall s)
PROCEDURES = {
    "cooldown": ((f"log_interval_s={LOG_INTERVAL_S:g}", "log_duration_s=3000"), ("temperature_log",), 5.0),
    # 2000 events last ~9.7 s after the .partial appears, alone on the machine: the kill window
    # stays inside the run (the delays drawn reach 3.35 s) with room for a faster emulator (800
    # lasted ~12 s, then ~5 s, then 4.2 s as the solver got faster; 80 lasted 3.5 s and a kill at
    # 3.4 s found the run finished). A longer run costs nothing: every one is killed.
    "iv_sweep": (("switching_events=2000", "pilot_points=10", "pilot_sweeps=1", "ramp_a_per_s=1e-3"),
                 ("iv_curve", "switching_events"), 5.5),
    # The SMU ramps in wall time: 24 uA at 1e-5 A/s is ~2.4 s up before the captures and ~2.4 s
    # down after the trace blocks were archived, so a kill lands before, between or after trace
    # flushes (a block is written when it fills or its oldest trace is 1 s old).
    "energy_per_spike": ((f"reference_captures={REFERENCE_CAPTURES}", "spikes=300",
                          f"threshold_a={THRESHOLD_A:g}", "ramp_a_per_s=1e-5"), ("spike_energies",), 5.0),
}
#: Procedures that write `entry/traces` (checked trace by trace after recovery).
TRACE_PROCEDURES = frozenset({"energy_per_spike"})
#: Kill window after the first flushed trace block (wall s): the "flush" anchor.
AFTER_TRACE_FLUSH_S = 2.0
#: (procedure, anchor, kill delay) for every kill, delays seeded: 6 cooldowns and 4 I-V sweeps
#: after the `.partial` appeared; energy_per_spike 3 times after the `.partial` appeared (any
#: phase) and 3 times after the journal first listed traces (a trace block flushed, the next
#: being captured or written, or the ramp down). The trace runs come last, so the table runs
#: keep the delays they always had.
_rng = random.Random(SEED)
KILLS = [(name, "partial", round(_rng.uniform(0.05, PROCEDURES[name][2]), 3))
         for name in ["cooldown"] * 6 + ["iv_sweep"] * 4 + ["energy_per_spike"] * 3]
KILLS += [("energy_per_spike", "flush", round(_rng.uniform(0.0, AFTER_TRACE_FLUSH_S), 3)) for _ in range(3)]
PARALLEL = 4


def _start(tmp_path: Path, index: int, procedure: str) -> dict:
    work = tmp_path / f"kill-{index}"
    work.mkdir()
    station = private_station(work)
    journal = work / "flush.jsonl"
    sets = [a for s in PROCEDURES[procedure][0] for a in ("--set", s)]
    proc = start_nwlab("run", procedure, "--station", str(station), "--out", str(work / "out"), "--quiet",
                       *sets, env={"NWLAB_FLUSH_LOG": str(journal)})
    return {"proc": proc, "work": work, "journal": journal, "procedure": procedure}


def _anchor_reached(job: dict, anchor: str) -> bool:
    """"partial": the run's `.h5.partial` exists; "flush": its journal lists a flushed trace."""
    if anchor == "partial":
        out = job["work"] / "out"
        return out.is_dir() and any(out.glob("*.h5.partial"))
    return any(line["traces"] > 0 for line in journal_lines(job["journal"]))


def _kill_after_anchors(batch: list[tuple[dict, str, float]], timeout_s: float = 40.0) -> None:
    """SIGKILL each job `delay` seconds after its anchor was reached (all jobs at once)."""
    deadline = time.monotonic() + timeout_s
    seen: dict[int, float] = {}
    while len(seen) < len(batch) or any("killed_mid_run" not in job for job, _, _ in batch):
        now = time.monotonic()
        assert now < deadline, "a run did not reach its kill anchor within the start-up timeout"
        for index, (job, anchor, delay_s) in enumerate(batch):
            if "killed_mid_run" in job:
                continue
            if index not in seen:
                if _anchor_reached(job, anchor):
                    seen[index] = now
                else:
                    assert job["proc"].poll() is None, f"run ended before its kill anchor ({anchor}): " \
                                                       f"{job['proc'].communicate()}"
                    continue
            if now >= seen[index] + delay_s:
                job["killed_mid_run"] = job["proc"].poll() is None
                job["proc"].send_signal(signal.SIGKILL)
        time.sleep(0.01)
    for job, _, _ in batch:
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
    journal_traces = flushed[-1]["traces"] if flushed else 0
    lengths = table_lengths(final)
    if procedure in TRACE_PROCEDURES:
        _check_recovered_traces(final, journal_traces, lengths["traces"])
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
        assert text(entry, "exit_message").startswith("the writing process died; recovered "), \
            text(entry, "exit_message")
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
    return {"procedure": procedure, "rows": lengths, "journal": last, "journal_traces": journal_traces,
            "blocks": len(flushed)}


def _check_recovered_traces(final: Path, journal_traces: int, n: int) -> None:
    """energy_per_spike after recovery: every journalled trace, indices 0..n-1, the plan's own
    per-trace values (reference captures first, then spiking ones), finite voltages, xarray."""
    assert n >= journal_traces, (n, journal_traces)
    assert check_trace_indices(final) == n
    with h5py.File(final, "r") as f:
        entry = f["entry"]
        assert int(entry["recovered_traces"][()]) == n
        traces = entry["traces"]
        assert traces["voltage_code"].dtype == np.int8   # the scope's codes, kept through the recovery
        # m, c in V; input_a in A
        voltage, current = (layout.read_signal(traces, signal, range(n)) for signal in ("voltage", "current"))
        assert voltage.shape[:2] == (n, 2) and current.shape[:2] == (n, 1), (voltage.shape, current.shape)
        assert np.all(np.isfinite(voltage)) and np.all(np.isfinite(current)), "non-finite samples in recovered traces"
        # reference captures (kind 0, at 0.5 x threshold) first, then spiking ones (kind 1, 1.3 x):
        # nothing shifted between blocks (a capture the scope missed may shorten a block)
        kind, amplitude = traces["kind"][()], traces["amplitude_a"][()]
        references = int(np.count_nonzero(kind == 0))
        assert references <= REFERENCE_CAPTURES and np.all(kind[:references] == 0) \
            and np.all(kind[references:] == 1), kind
        np.testing.assert_allclose(amplitude, np.where(kind == 0, 0.5, 1.3) * THRESHOLD_A, rtol=1e-9)
        for column in ("bias_a", "input_energy_j", "bias_energy_j"):
            assert np.all(np.isfinite(traces[column][()])), column
        if "spike_energies" in entry and entry["spike_energies"]["row"].shape[0]:
            captures = entry["spike_energies"]["capture"][()]
            assert np.array_equal(captures, np.arange(captures.size)), captures
    ds = layout.decoded_traces(open_with_xarray(final, "entry/traces"))
    assert ds["voltage"].dims == ("trace", "channel", "time")
    assert ds.sizes["trace"] == n and ds["time"].attrs["units"] == "s"
    assert np.all(np.isfinite(ds["voltage"].values))


@pytest.mark.slow
@pytest.mark.timeout(160)
def test_sigkill_at_random_points_loses_at_most_the_unflushed_block(tmp_path):
    jobs: list[dict] = []
    try:
        for wave in range(0, len(KILLS), PARALLEL):
            batch = [(i, *KILLS[i]) for i in range(wave, min(wave + PARALLEL, len(KILLS)))]
            started = [(_start(tmp_path, i, name), anchor, delay) for i, name, anchor, delay in batch]
            jobs += [job for job, _, _ in started]
            _kill_after_anchors(started)
        summary = [_check_killed_run(job) for job in jobs if job["killed_mid_run"]]
    finally:
        for job in jobs:
            stop(job["proc"])
    mid_run = sum(job["killed_mid_run"] for job in jobs)
    assert mid_run >= len(KILLS) - 2, f"only {mid_run} of {len(KILLS)} kills landed while the run was going"
    # the kills must have exercised flushed data, not only empty skeletons
    assert sum(s["blocks"] > 0 for s in summary) >= len(KILLS) // 3, summary
    # ... and the trace runs must have been killed mid-run after trace blocks were flushed
    trace_kills = [s for s in summary if s["procedure"] in TRACE_PROCEDURES]
    with_traces = sum(s["journal_traces"] > 0 for s in trace_kills)
    wanted = sum(anchor == "flush" for _, anchor, _ in KILLS) - 1
    assert with_traces >= wanted, [(s["rows"], s["journal_traces"]) for s in trace_kills]
    print("kills (rows recovered, rows journalled):", [(s["rows"], s["journal"]) for s in summary])
    print("trace kills (traces recovered, traces journalled):",
          [(s["rows"]["traces"], s["journal_traces"]) for s in trace_kills])


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
