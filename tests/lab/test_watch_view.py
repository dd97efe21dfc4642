"""The live view's state of a campaign directory (lab/app/watch/campaign_view.py, figures.py and
lab/archive/live_reader.py), from run files written by the real ArchiveWriter with records shaped
like each procedure's (tests/lab/test_report.py builds them), a run kept open mid-run in this
process, damaged and abandoned files, and the live files a campaign keeps."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from contracts.records import ParametersResolved, RunStart, RunStop, TableRows, TraceBlock
from lab.app import live_journal
from lab.app.manifest import Identity, Manifest, ManifestRun, save_manifest
from lab.app.report.markdown import write_report
from lab.app.watch import campaign_view
from lab.app.watch.campaign_view import CRASHED, CampaignView
from lab.app.watch.figures import POINTS_MAX, decimated
from lab.archive import liveness
from lab.archive.live_reader import read_live_run
from lab.archive.writer import ArchiveWriter
from procedures.analysis.spikes import linear_excess_v, peak_count, peak_indices
from procedures.analysis.statistics import wilson_interval
from procedures.strength_duration import KIND_REFERENCE, KIND_TRIAL
from tests.lab.test_report import (STATION, Cooldown, Efficiency, EnergyPerSpike, FiringRate, IvSweep, Refractory,
                                   StrengthDuration, cooldown_records, efficiency_records, energy_records,
                                   firing_rate_records, iv_records, padded, refractory_records, rows, snapshot,
                                   strength_duration_records)

DETECT_V = 60e-6


def run_id(index: int, procedure) -> str:
    """As the Runner names a run: its start (UTC), procedure and a random part."""
    return f"20260101T000{index}00-{procedure.name}-{index:06x}"


def start(directory: Path, procedure, index: int, **options) -> ArchiveWriter:
    """A run opened through the real writer, declared as the Runner declares it (automatic
    parameters included, so the plan's choices are archived)."""
    traces, tables = procedure.declare()
    writer = ArchiveWriter(directory, **options)
    writer(RunStart(
        run_id=run_id(index, procedure), procedure=procedure.name, started_at=f"2026-01-01T00:0{index}:00+00:00",
        parameters=procedure.parameter_records(), station_text=STATION.text,
        chip_text=STATION.chip_path.read_text(), snapshot=snapshot(None), software_version="nwlab 0.1.0 (test)",
        emulator_seed=STATION.emulator_seed, metadata={"station": str(STATION.path)}, traces=traces, tables=tables,
        automatic=procedure.automatic_parameters()))
    writer._tables = tables
    return writer


def write(writer: ArchiveWriter, records) -> None:
    for record in records:
        writer(padded(record, writer._tables))


def archive(directory: Path, procedure, records, index: int, status="completed", message="") -> Path:
    writer = start(directory, procedure, index)
    write(writer, records)
    writer(RunStop(status, f"2026-01-01T00:0{index}:59+00:00", message=message))
    return writer.last_path


# -- strength_duration captures: references and trials, one trial spiking in its window, one late -----
SD_AMPLITUDE_A, SD_REFERENCE_A, SD_WIDTH_S = 30e-6, 8e-6, 2e-9
SD_SPIKE_AT_S, SD_LATE_AT_S = 5e-9, 30e-9          # the window ends at width + 2 edges + 10 ns = 14 ns


def strength_duration_traces(rng, procedure: StrengthDuration):
    spec, _ = procedure.declare()
    time_s = spec.time_s
    pulse = np.exp(-0.5 * ((time_s - 1e-9) / 1e-9) ** 2) * 4.0                 # volts per ampere of input
    bump = lambda at_s: 0.3e-3 * np.exp(-0.5 * ((time_s - at_s) / 0.3e-9) ** 2)

    def block(capture, kind, amplitude_a, extra):
        m = amplitude_a * pulse + extra + rng.normal(0, 3e-6, time_s.size)
        voltage = np.stack([m, 0.3 * m, amplitude_a * pulse / 4.0])[None]
        return TraceBlock(voltage, time_s, spec.channel_names, channel_units=spec.channel_units, columns={
            "capture": (np.array([capture]), "1"), "kind": (np.array([kind], np.int8), "1"),
            "width_s": (np.array([SD_WIDTH_S]), "s"), "amplitude_a": (np.array([amplitude_a]), "A"),
            "spike": (np.array([int(np.any(extra))], np.int8), "1"), "attempt": (np.array([0]), "1")})

    blocks = [block(k, KIND_REFERENCE, SD_REFERENCE_A, 0.0) for k in range(3)]
    blocks += [block(3, KIND_TRIAL, SD_AMPLITUDE_A, 0.0), block(4, KIND_TRIAL, SD_AMPLITUDE_A, bump(SD_SPIKE_AT_S)),
               block(5, KIND_TRIAL, SD_AMPLITUDE_A, bump(SD_LATE_AT_S))]
    return blocks


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """Seven finished runs (firing_rate failed), their manifest, and the report of two of them."""
    directory = tmp_path_factory.mktemp("campaign")
    rng = np.random.default_rng(11)
    energy = EnergyPerSpike(detect_v=DETECT_V)
    energy_records_ = energy_records(rng, energy)
    strength = StrengthDuration()
    energy_j = next(r.value for r in energy_records_ if getattr(r, "name", "") == "energy_per_spike_j")
    plan = [(Cooldown(), cooldown_records(rng), "completed", ""),
            (IvSweep(), iv_records(rng), "completed", ""),
            (strength, [ParametersResolved({"detect_v": DETECT_V})] + strength_duration_traces(rng, strength)
             + strength_duration_records(rng), "completed", ""),
            (Refractory(threshold_a=25e-6), refractory_records(rng), "completed", ""),
            (FiringRate(), firing_rate_records(rng)[:1], "failed", "StepError: scope never triggered"),
            (energy, energy_records_, "completed", ""),
            (Efficiency(), efficiency_records(energy_j), "completed", "")]
    records = {}
    manifest = Manifest(Identity.of(STATION, "default-neuron"), created_at="2026-01-01T00:00:00+00:00")
    for index, (procedure, procedure_records, status, message) in enumerate(plan):
        path = archive(directory, procedure, procedure_records, index, status, message)
        records[procedure.name] = procedure_records
        manifest.runs.append(ManifestRun(procedure.name, status, f"2026-01-01T00:0{index}:00+00:00",
                                         archive=path.name, finished_at=f"2026-01-01T00:0{index}:59+00:00",
                                         run_id=run_id(index, procedure), message=message))
    manifest.not_run = {"extra": "skipped: depends on firing_rate, which failed"}
    save_manifest(directory, manifest)
    write_report(directory, runs=sorted(directory.glob("*cooldown*.h5")) + sorted(directory.glob("*iv_sweep*.h5")))
    return directory, records


def state_of(directory) -> dict:
    state = CampaignView(directory).state()
    return json.loads(json.dumps(state, allow_nan=False))     # what the page gets: no NaN anywhere


def run_of(state: dict, procedure: str) -> dict:
    return next(r for r in state["runs"] if r["procedure"] == procedure)


def figure_of(run: dict, figure_id: str) -> dict:
    return next(f for f in run["figures"] if f["id"] == figure_id)


# -- a finished campaign ------------------------------------------------------------------------------
def test_finished_campaign_lists_every_run_in_order_with_its_archive(campaign):
    directory, _ = campaign
    state = state_of(directory)
    assert state["format"] == "nwlab-watch/1" and state["directory"] == str(directory)
    assert state["stop"] == {"available": False, "why_not": ""} and state["problems"] == []
    assert state["campaign"]["state"] == "finished"
    assert state["campaign"]["station"] == STATION.name and state["campaign"]["chip"] == "default-neuron"
    assert state["campaign"]["seed"] == STATION.emulator_seed
    assert [r["procedure"] for r in state["runs"]] == ["cooldown", "iv_sweep", "strength_duration", "refractory",
                                                      "firing_rate", "energy_per_spike", "efficiency", "extra"]
    failed = run_of(state, "firing_rate")
    assert failed["status"] == "failed" and failed["message"] == "StepError: scope never triggered"
    extra = state["runs"][-1]
    assert extra["status"] == "not run" and "depends on firing_rate" in extra["message"] and extra["archive"] is None
    for run in state["runs"][:-1]:
        assert (directory / run["archive"]).is_file() and run["problem"] is None
        assert run["run_id"] in run["archive"] and run["started"].startswith("2026-01-01")
        assert set(run) == {"procedure", "run_id", "status", "archive", "started", "finished", "message", "fraction",
                            "left_s", "problem", "results", "report_anchor", "figures"}


def test_report_anchor_once_the_report_has_the_runs_section(campaign):
    directory, _ = campaign
    page = (directory / "report.html").read_text()
    state = state_of(directory)
    for procedure in ("cooldown", "iv_sweep"):                     # the report written of these two
        run = run_of(state, procedure)
        assert run["report_anchor"] == f"report.html#run-{run['run_id']}"
        assert f'<h2 id="run-{run["run_id"]}">{procedure} — completed</h2>' in page
    assert run_of(state, "refractory")["report_anchor"] is None


def test_results_carry_the_archived_values_formatted_as_the_report(campaign):
    directory, records = campaign
    energy = {r["name"]: r for r in run_of(state_of(directory), "energy_per_spike")["results"]}
    archived = {r.name: r.value for r in records["energy_per_spike"] if hasattr(r, "name")}
    mean_aj, stderr_aj = archived["energy_per_spike_j"] * 1e18, archived["energy_per_spike_stderr_j"] * 1e18
    places = 1 - math.floor(math.log10(stderr_aj))                 # two significant digits of the standard error
    row = energy["energy_per_spike_j"]
    assert row["value"] == f"{mean_aj:.{places}f} aJ" and row["units"] == "J"
    assert f"standard uncertainty {stderr_aj:.{places}f} aJ" in row["uncertainty"]
    assert "energy_per_spike_stderr_j" not in energy                # shown in its mean's row, as in the report
    iv = {r["name"]: r for r in run_of(state_of(directory), "iv_sweep")["results"]}
    assert iv["retrapping_current_a"]["value"] == "9.2 µA"
    assert iv["retrapping_current_a"]["uncertainty"] == "no uncertainty archived"
    assert "(95 %)" in iv["switching_current_mean_a"]["uncertainty"]


def test_figure_points_are_the_tables_rows(campaign):
    directory, records = campaign
    state = state_of(directory)
    log = next(r for r in records["cooldown"] if isinstance(r, TableRows))
    temperature = figure_of(run_of(state, "cooldown"), "cooldown/temperature_log")
    assert temperature["x"]["unit"] == "s" and temperature["y"]["unit"] == "K"
    assert temperature["series"][0]["x"] == log.columns["time_s"][0].tolist()
    assert temperature["series"][0]["y"] == log.columns["temperature_k"][0].tolist()
    assert temperature["points"] == 21 and temperature["series"][1]["y"] == [4.2, 4.2]       # the setpoint

    curve = figure_of(run_of(state, "iv_sweep"), "iv_sweep/iv_curve")
    sweeps = [r for r in records["iv_sweep"] if isinstance(r, TableRows) and r.table == "iv_curve"]
    bias = np.concatenate([r.columns["bias_a"][0] for r in sweeps])
    direction = np.concatenate([r.columns["direction"][0] for r in sweeps])
    up, down = curve["series"]
    assert up["label"] == "bias increasing" and up["x"] == bias[direction == 1].tolist()
    assert down["x"] == bias[direction == -1].tolist() and curve["points"] == bias.size
    histogram = figure_of(run_of(state, "iv_sweep"), "iv_sweep/switching_histogram")
    assert histogram["points"] == 300 and sum(histogram["series"][0]["y"]) == 300

    probability = figure_of(run_of(state, "strength_duration"), "strength_duration/probability")
    assert len(probability["series"]) == len(StrengthDuration.Parameters().widths_s)
    first = probability["series"][0]
    assert first["label"] == "2 ns" and first["y"] == [3 / 8, 5 / 8]
    assert first["low"][0] == pytest.approx(wilson_interval(3, 8)[0])
    assert first["high"][1] == pytest.approx(wilson_interval(5, 8)[1])

    pairs = figure_of(run_of(state, "refractory"), "refractory/pairs")
    table = next(r for r in records["refractory"] if isinstance(r, TableRows))
    spacing, seconds = table.columns["spacing_s"][0], table.columns["second_spikes"][0]
    order = np.argsort(spacing)
    assert pairs["series"][0]["x"] == spacing[order].tolist()
    assert pairs["series"][0]["y"] == pytest.approx((seconds[order] / 10).tolist())
    assert pairs["series"][0]["low"] == pytest.approx([wilson_interval(int(k), 10)[0] for k in seconds[order]])

    comparison = figure_of(run_of(state, "efficiency"), "efficiency/comparison")
    assert comparison["y"]["log"] and comparison["markers"][0]["label"].startswith("this chip")


def test_spike_markers_are_where_the_energy_analysis_finds_them(campaign):
    directory, records = campaign
    traces = figure_of(run_of(state_of(directory), "energy_per_spike"), "energy_per_spike/traces")
    blocks = [r for r in records["energy_per_spike"] if isinstance(r, TraceBlock)]
    # As archived (float32): every capture of the run in order, the last attempt's references.
    samples = np.concatenate([b.samples for b in blocks]).astype(np.float32).astype(float)
    kind = np.concatenate([b.columns["kind"][0] for b in blocks])
    attempt = np.concatenate([b.columns["attempt"][0] for b in blocks])
    amplitude = np.concatenate([b.columns["amplitude_a"][0] for b in blocks])
    time_s = blocks[0].time_s
    reference = samples[(kind == 0) & (attempt == 1), 0].mean(axis=0)
    expected = []
    last = range(len(kind) - 4, len(kind))
    for index in last:
        excess = linear_excess_v(samples[index, 0], reference, amplitude[index] / 11e-6)
        assert peak_count(excess, DETECT_V) == 1                      # what the run counted
        expected += [time_s[k] for k in peak_indices(excess, DETECT_V)]
    assert [s["label"].split(" (")[0] for s in traces["series"]] == [f"capture {k}" for k in last]
    assert traces["series"][0]["y"] == samples[last[0], 0].tolist()
    assert [m["x"] for m in traces["markers"]] == pytest.approx(expected)
    assert all(19e-9 < m["x"] < 21e-9 for m in traces["markers"])       # the spike of energy_records, at 20 ns
    assert "detect_v 60 µV" in traces["note"]


def test_spike_markers_of_strength_duration_only_inside_the_window(campaign):
    directory, _ = campaign
    traces = figure_of(run_of(state_of(directory), "strength_duration"), "strength_duration/traces")
    assert len(traces["series"]) == 4                                  # the newest four of six captures
    assert [s["label"].split(" (")[0] for s in traces["series"]] == ["capture 2", "capture 3", "capture 4",
                                                                      "capture 5"]
    # capture 4 spikes at 5 ns, inside the window; capture 5's late bump at 30 ns is outside it
    assert [m["x"] for m in traces["markers"]] == pytest.approx([SD_SPIKE_AT_S], abs=0.06e-9)
    assert "capture 4" in traces["markers"][0]["label"]


def test_finished_files_are_read_once_and_a_warm_state_is_cheap(campaign, monkeypatch):
    directory, _ = campaign
    reads = []
    real = campaign_view.read_live_run
    monkeypatch.setattr(campaign_view, "read_live_run", lambda path, **kw: reads.append(path) or real(path, **kw))
    view = CampaignView(directory)
    first = view.state()
    assert len(reads) == 7
    began = time.perf_counter()
    for _ in range(10):
        again = view.state()
    warm_s = (time.perf_counter() - began) / 10
    assert len(reads) == 7 and warm_s < 0.05, warm_s
    assert again["runs"] == first["runs"]


# -- a live run ---------------------------------------------------------------------------------
def live_status(directory: Path, state="running", updated_unix_s=None, run=None, planned=None, states=None) -> None:
    status = {"format": live_journal.FORMAT, "pid": 4242, "host": "bench-pc", "started_unix_s": time.time() - 100,
              "updated_unix_s": time.time() if updated_unix_s is None else updated_unix_s, "state": state,
              "campaign": {"fraction": 0.25, "elapsed_s": 100.0, "left_s": 300.0, "position": [1, 3],
                           "planned": planned or ["cooldown", "iv_sweep", "strength_duration"],
                           **({"states": states} if states else {})},
              "run": run}
    (directory / live_journal.STATUS_NAME).write_text(json.dumps(status))


def live_manifest(directory: Path, *runs: ManifestRun) -> None:
    save_manifest(directory, Manifest(Identity.of(STATION, "default-neuron"), "2026-01-01T00:00:00+00:00",
                                      list(runs)))


def readings(start_s: float, count: int) -> TableRows:
    time_s = start_s + 30.0 * np.arange(count)
    return rows("temperature_log", time_s=(time_s, "s"), temperature_k=(4.2 + 0.01 * np.sin(time_s), "K"))


def test_a_live_partial_shows_its_rows_as_they_are_flushed(tmp_path):
    writer = start(tmp_path, Cooldown(), 0)
    try:
        live_manifest(tmp_path, ManifestRun("cooldown", "running", "2026-01-01T00:00:00+00:00"))
        live_status(tmp_path, run={"procedure": "cooldown", "fraction": 0.4, "elapsed_s": 12.0, "left_s": 18.0,
                                   "message": "reading 5 of 21: 4.201 K"},
                    states=["running", "waiting", "waiting"])
        write(writer, [readings(0.0, 5)])
        writer.flush()
        view = CampaignView(tmp_path)
        state = json.loads(json.dumps(view.state(), allow_nan=False))
        running = state["runs"][0]
        assert state["campaign"]["state"] == "running" and state["campaign"]["position"] == [1, 3]
        assert running["status"] == "running" and running["archive"] == writer.last_path.name
        assert running["archive"].endswith(".h5.partial") and running["problem"] is None
        assert running["fraction"] == 0.4 and running["left_s"] == 18.0
        assert running["message"] == "reading 5 of 21: 4.201 K" and running["results"] == []
        assert figure_of(running, "cooldown/temperature_log")["points"] == 5
        assert [(r["procedure"], r["status"]) for r in state["runs"][1:]] == [("iv_sweep", "planned"),
                                                                            ("strength_duration", "planned")]
        write(writer, [readings(150.0, 7)])
        writer.flush()
        grown = figure_of(view.state()["runs"][0], "cooldown/temperature_log")
        assert grown["points"] == 12 and grown["series"][0]["x"] == (30.0 * np.arange(12)).tolist()
        writer(RunStop("completed", "2026-01-01T00:00:59+00:00"))
        # The run has ended; the manifest still says running until the campaign updates it.
        ended = view.state()["runs"]
        assert [(r["procedure"], r["status"], r["archive"]) for r in ended[:2]] == [
            ("cooldown", "completed", writer.last_path.name), ("iv_sweep", "planned", None)]
        assert ended[0]["fraction"] is None and figure_of(ended[0], "cooldown/temperature_log")["points"] == 12
    finally:
        if writer.run is not None:
            writer(RunStop("completed", "2026-01-01T00:00:59+00:00"))


def test_live_traces_grow_and_only_the_newest_are_read(tmp_path):
    procedure = EnergyPerSpike(detect_v=DETECT_V)
    blocks = [r for r in energy_records(np.random.default_rng(3), procedure) if isinstance(r, TraceBlock)]
    writer = start(tmp_path, procedure, 5)
    try:
        write(writer, blocks[:2])                      # the void attempt and the references
        writer.flush()
        first = read_live_run(writer.last_path, last_traces=4)
        assert first.partial and first.traces.count == 25 and first.traces.indices.tolist() == [21, 22, 23, 24]
        write(writer, blocks[2:])
        writer.flush()
        view = CampaignView(tmp_path)
        traces = figure_of(view.state()["runs"][0], "energy_per_spike/traces")
        assert traces["title"] == "Newest captures (65 archived)" and len(traces["markers"]) == 4
        histogram = figure_of(view.state()["runs"][0], "energy_per_spike/spike_energies")
        assert histogram["points"] == 40 and histogram["note"].endswith("the archived captures so far (last attempt)")
    finally:
        writer(RunStop("completed", "2026-01-01T00:05:59+00:00"))


def test_a_partial_nobody_writes_is_a_crashed_run(tmp_path):
    writer = start(tmp_path, Cooldown(), 0)
    write(writer, [readings(0.0, 6)])
    writer.flush()
    run = writer.run                           # the process "dies": its file closed, its lock gone, no end
    run.file.close()
    liveness.release(run.lock)
    writer.run = None
    old = time.time() - 60
    os.utime(run.path, (old, old))
    live_manifest(tmp_path, ManifestRun("cooldown", "running", "2026-01-01T00:00:00+00:00"))
    live_status(tmp_path, updated_unix_s=time.time() - 42)
    state = json.loads(json.dumps(CampaignView(tmp_path).state(), allow_nan=False))
    crashed = state["runs"][0]
    assert crashed["status"] == "crashed" and crashed["problem"] == f"{run.path.name}: {CRASHED}"
    assert figure_of(crashed, "cooldown/temperature_log")["points"] == 6       # what it flushed still shows
    assert state["campaign"]["state"] == "stale"
    assert state["campaign"]["message"].startswith("no status update for 42 s")
    assert "pid 4242 on bench-pc" in state["campaign"]["message"]


def test_a_partial_renamed_between_listing_and_reading(tmp_path, monkeypatch):
    writer = start(tmp_path, Cooldown(), 0)
    write(writer, [readings(0.0, 3)])
    writer.flush()
    real = campaign_view.read_live_run

    def recovered_first(path, **options):      # a recovery renames the file just after the listing
        if Path(path).exists():
            os.rename(path, str(path) + ".moved")
        return real(path, **options)

    monkeypatch.setattr(campaign_view, "read_live_run", recovered_first)
    try:
        state = CampaignView(tmp_path).state()
        run = state["runs"][0]
        assert run["problem"].startswith(f"{writer.last_path.name}: gone") and "renamed" in run["problem"]
        assert run["figures"] == [] and state["problems"] == []
    finally:
        os.rename(str(writer.last_path) + ".moved", writer.last_path)
        writer(RunStop("completed", "2026-01-01T00:00:59+00:00"))


# -- damage --------------------------------------------------------------------------------------
def test_damaged_run_files_are_one_line_each_and_the_rest_still_shows(campaign, tmp_path):
    directory, _ = campaign
    for path in directory.glob("*.h5"):
        if "cooldown" in path.name or "iv_sweep" in path.name:
            shutil.copy(path, tmp_path / path.name)
    cooldown = next(tmp_path.glob("*cooldown*.h5"))
    data = cooldown.read_bytes()
    cooldown.write_bytes(data[: len(data) // 3])                          # cut short
    (tmp_path / "20260109T000000-cooldown-000009.h5").write_bytes(b"not an HDF5 file " * 100)
    state = json.loads(json.dumps(CampaignView(tmp_path).state(), allow_nan=False))
    damaged = {r["archive"]: r for r in state["runs"] if r["problem"]}
    assert set(damaged) == {cooldown.name, "20260109T000000-cooldown-000009.h5"}
    for name, run in damaged.items():
        assert run["problem"].startswith(str(tmp_path / name)) and "\n" not in run["problem"]
        assert run["figures"] == []
    iv = run_of(state, "iv_sweep")
    assert iv["problem"] is None and figure_of(iv, "iv_sweep/iv_curve")["points"] == 160
    assert state["campaign"]["state"] == "no campaign"


def test_unreadable_manifest_and_status_and_a_malformed_event(tmp_path):
    archive(tmp_path, Cooldown(), cooldown_records(np.random.default_rng(2)), 0)
    (tmp_path / "campaign.json").write_text("{ not json")
    (tmp_path / live_journal.STATUS_NAME).write_text("[]")
    events = tmp_path / live_journal.EVENTS_NAME
    incident = lambda n: json.dumps({"format": live_journal.FORMAT, "unix_s": 1000.0 + n, "kind": "incident",
                                     "procedure": "cooldown", "text": f"stage excursion {n}", "source": "lab.x"})
    events.write_text(incident(1) + "\n" + "{half a line\n" + incident(2) + "\n"
                      + json.dumps({"format": live_journal.FORMAT, "unix_s": 1.0, "kind": "run_started"}) + "\n")
    view = CampaignView(tmp_path)
    state = json.loads(json.dumps(view.state(), allow_nan=False))
    assert len(state["problems"]) == 3
    assert state["problems"][0].startswith(str(tmp_path / "campaign.json"))
    assert state["problems"][1].startswith(str(tmp_path / live_journal.STATUS_NAME))
    assert state["problems"][2].startswith(f"{live_journal.EVENTS_NAME}: a line that is not an event")
    assert [i["text"] for i in state["incidents"]] == ["stage excursion 1", "stage excursion 2"]
    assert state["incidents"][0] == {"unix_s": 1001.0, "procedure": "cooldown", "text": "stage excursion 1",
                                     "source": "lab.x"}
    assert state["campaign"]["state"] == "no campaign"
    assert run_of(state, "cooldown")["figures"]                # the run file still shows, unlisted
    with open(events, "a") as more:                              # only what is added is read
        more.write(incident(3) + "\n")
    assert [i["text"] for i in view.state()["incidents"]] == [f"stage excursion {n}" for n in (1, 2, 3)]


def test_no_campaign_here(tmp_path):
    state = CampaignView(tmp_path).state()
    assert state["campaign"]["state"] == "no campaign" and state["runs"] == [] and state["problems"] == []
    missing = CampaignView(tmp_path / "nowhere").state()
    assert missing["problems"] == [f"{tmp_path / 'nowhere'}: no such directory"]


# -- decimation ------------------------------------------------------------------------------------
def test_a_long_series_is_decimated_keeping_its_envelope(tmp_path):
    count = 12_363
    time_s = np.arange(count) * 1.0
    temperature_k = 4.2 + 0.01 * np.sin(time_s / 50.0)
    temperature_k[7777], temperature_k[123] = 9.9, -1.0                 # a spike each way
    temperature_k[4000] = np.nan                                        # a reading that failed
    archive(tmp_path, Cooldown(), [rows("temperature_log", time_s=(time_s, "s"), temperature_k=(temperature_k, "K"))],
            0)
    state = CampaignView(tmp_path).state()
    json.dumps(state, allow_nan=False)
    log = figure_of(state["runs"][0], "cooldown/temperature_log")
    series = log["series"][0]
    assert len(series["x"]) <= POINTS_MAX and log["points"] == count - 1
    assert 9.9 in series["y"] and -1.0 in series["y"] and 7777.0 in series["x"]
    assert series["x"] == sorted(series["x"])
    assert log["note"] == f"{len(series['x']):,} of {count - 1:,} points shown (min/max decimated)"
    assert decimated(np.arange(10.0)).tolist() == list(range(10))
