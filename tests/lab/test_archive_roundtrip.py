"""Archive round trips: every record type in, the same values out, readable by h5py and xarray."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from lab.archive.layout import ArchiveError
from lab.archive.writer import ArchiveWriter, WriterOptions, start_writeback
from contracts.records import (Axis, ColumnSpec, ParametersResolved, Result, RunStart, RunStop, SnapshotChanged,
                              TableRows, TableSpec, TraceBlock, TraceSpec)

ROOT = Path(__file__).resolve().parents[2]
CHANNELS = ("main", "control")
TIME_S = np.arange(500) * 2e-11
STATION = "instruments:\n  scope: {driver: tektronix_dpo7000}\n"
CHIP = "netlist: neuron\nic_main_a: 1.2e-05\n"


def start(run_id: str = "run-1", traces: bool = True, **kw) -> RunStart:
    spec = TraceSpec(CHANNELS, TIME_S, {"t_trigger_s": ColumnSpec("s"), "spike_detected": ColumnSpec("1", "i1")})
    fields = dict(
        run_id=run_id, procedure="spike_threshold", started_at="2026-03-01T10:00:00+00:00",
        parameters={"width_s": (2e-9, "s"), "n_repeats": (50, "1"), "use_monitor": (True, "1"),
                    "mode": ("sweep", "1"), "amplitudes_a": (np.array([1e-6, 2e-6]), "A")},
        station_text=STATION, chip_text=CHIP, snapshot={"scope": {"timebase_s": 1e-9}},
        software_version="0.1.0", emulator_seed=7, metadata={"operator": "ada"},
        traces=spec if traces else None,
        tables={"iv": TableSpec({"bias_a": ColumnSpec("A"), "voltage_v": ColumnSpec("V")})},
    )
    fields.update(kw)
    return RunStart(**fields)


def block(first: int, n: int, rng: np.random.Generator) -> TraceBlock:
    v = rng.normal(size=(n, 2, TIME_S.size)).astype(np.float32)
    idx = np.arange(first, first + n)
    return TraceBlock(v, TIME_S, CHANNELS, {"t_trigger_s": (idx * 1e-3, "s"),
                                            "spike_detected": (idx % 3 == 0, "1")})


def full_run(directory, status="completed", n_blocks=5, per_block=13, changes=2):
    rng = np.random.default_rng(0)
    w = ArchiveWriter(directory, WriterOptions(block_traces=16))
    w(start())
    blocks = []
    for b in range(n_blocks):
        blocks.append(block(b * per_block, per_block, rng))
        w(blocks[-1])
        w(TableRows("iv", {"bias_a": (np.arange(4) * 1e-6 + b, "A"), "voltage_v": (np.full(4, b * 1e-3), "V")}))
        if b < changes:
            w(SnapshotChanged(f"2026-03-01T10:0{b + 1}:00+00:00", {"scope": {"timebase_s": 2e-9 * (b + 1)}}, "zoom"))
    w(Result("energy_per_spike_j", 1.5e-17, "J"))
    w(Result("firing_probability", np.array([0.1, 0.5, 0.9]), "1", Axis("input_amplitude_a", [1e-6, 2e-6, 3e-6], "A")))
    w(Result("baseline_v", np.zeros((3, 2)), "V"))
    w(RunStop(status, "2026-03-01T10:05:00+00:00", message="done" if status == "completed" else "stopped",
              traceback="Traceback: boom" if status == "failed" else ""))
    return w.last_path, blocks


def test_every_record_round_trips(tmp_path):
    path, blocks = full_run(tmp_path)
    assert path == tmp_path / "run-1.h5" and not (tmp_path / "run-1.h5.partial").exists()
    with h5py.File(path, "r") as f:
        e = f["entry"]
        assert e["run_id"][()].decode() == "run-1" and e["procedure"][()].decode() == "spike_threshold"
        assert e["start_time"][()].decode() == "2026-03-01T10:00:00+00:00"
        assert e["end_time"][()].decode() == "2026-03-01T10:05:00+00:00"
        assert e["exit_status"][()].decode() == "completed" and e["exit_message"][()].decode() == "done"
        p = e["parameters"]
        assert p["width_s"][()] == 2e-9 and p["width_s"].attrs["units"] == "s"
        assert p["n_repeats"][()] == 50 and p["use_monitor"].dtype == np.int8 and p["use_monitor"][()] == 1
        assert p["mode"][()].decode() == "sweep"
        np.testing.assert_array_equal(p["amplitudes_a"][()], [1e-6, 2e-6])
        assert e["instrument/station/data"][()].decode() == STATION
        assert e["sample/chip/data"][()].decode() == CHIP
        assert json.loads(e["instrument/snapshot/data"][()]) == {"scope": {"timebase_s": 1e-9}}
        assert json.loads(e["metadata/data"][()]) == {"operator": "ada"}
        assert e["program_name"].attrs["version"] == "0.1.0"
        assert e["instrument/emulator_seed"][()] == 7 and e["instrument/bench"][()].decode() == "emulator"
        t = e["traces"]
        np.testing.assert_array_equal(t["voltage"][()], np.concatenate([b.samples for b in blocks]))
        np.testing.assert_array_equal(t["trace"][()], np.arange(65))
        np.testing.assert_array_equal(t["time"][()], TIME_S)
        assert [c.decode() for c in t["channel_name"][()]] == list(CHANNELS)
        np.testing.assert_array_equal(t["t_trigger_s"][()], np.arange(65) * 1e-3)
        np.testing.assert_array_equal(t["spike_detected"][()], (np.arange(65) % 3 == 0).astype(np.int8))
        assert t["voltage"].chunks[0] * 4 * 2 * TIME_S.size <= 1 << 20
        iv = e["iv"]
        assert iv["bias_a"].attrs["units"] == "A" and iv["row"].shape == (20,)
        np.testing.assert_array_equal(iv["voltage_v"][()], np.repeat(np.arange(5) * 1e-3, 4))
        r = e["results"]
        assert r["energy_per_spike_j"][()] == 1.5e-17 and r["energy_per_spike_j"].attrs["units"] == "J"
        np.testing.assert_array_equal(r["firing_probability"][()], [0.1, 0.5, 0.9])
        assert r["firing_probability"].dims[0][0].name == "/entry/results/input_amplitude_a"
        assert r["input_amplitude_a"].attrs["units"] == "A"
        assert r["baseline_v"].shape == (3, 2)


def test_resolved_parameters_round_trip_and_older_archives_read(tmp_path):
    from lab.app.api import open_run
    from lab.archive.reader import describe

    parameters = {"bias_a": (0.0, "A"), "detect_v": (0.0, "V"), "width_s": (2e-9, "s")}
    w = ArchiveWriter(tmp_path)
    w(start("run-r", traces=False, parameters=parameters, automatic=("bias_a", "detect_v")))
    w(ParametersResolved({"bias_a": 24e-6, "width_s": 5e-9}))     # width_s was set: not kept
    w(RunStop("completed", "2026-03-01T10:01:00+00:00"))
    with h5py.File(w.last_path, "r") as f:
        g = f["entry/parameters_resolved"]
        assert sorted(g) == ["bias_a", "detect_v"] and g["bias_a"].attrs["units"] == "A"
        assert g["bias_a"][()] == 24e-6 and np.isnan(g["detect_v"][()])
    text = describe(w.last_path, {"bias_a", "detect_v"})
    assert "bias_a   = automatic (24 µA used)" in text, text
    assert "detect_v = automatic (the value used is not archived)" in text, text
    run = open_run(w.last_path)
    assert run.parameters.loc["bias_a", "resolved"] == 24e-6
    assert np.isnan(run.parameters.loc["detect_v", "resolved"]) and np.isnan(run.parameters.loc["width_s", "resolved"])
    # An archive from before: no group, nothing resolved, still readable.
    w(start("run-old", traces=False, parameters=parameters))
    w(RunStop("completed", "2026-03-01T10:01:00+00:00"))
    with h5py.File(w.last_path, "r") as f:
        assert "parameters_resolved" not in f["entry"]
    assert "bias_a   = automatic (the value used is not archived)" in describe(w.last_path, {"bias_a"})
    assert open_run(w.last_path).parameters["resolved"].isna().all()


def test_xarray_reads_traces_with_dims_coords_and_units(tmp_path):
    path, blocks = full_run(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_dataset(path, engine="h5netcdf", group="entry/traces")
        results = xr.open_dataset(path, engine="h5netcdf", group="entry/results")
        iv = xr.open_dataset(path, engine="h5netcdf", group="entry/iv")
    with ds, results, iv:
        assert ds["voltage"].dims == ("trace", "channel", "time")
        assert set(ds.coords) == {"trace", "channel", "time"}
        assert ds["voltage"].attrs["units"] == "V" and ds["time"].attrs["units"] == "s"
        assert ds["t_trigger_s"].dims == ("trace",) and ds["t_trigger_s"].attrs["units"] == "s"
        assert list(ds["channel_name"].values) == list(CHANNELS)
        np.testing.assert_array_equal(ds["voltage"].values[13:26], blocks[1].samples)
        np.testing.assert_allclose(ds["time"].values, TIME_S)
        assert results["firing_probability"].dims == ("input_amplitude_a",)
        assert iv["bias_a"].dims == ("row",) and iv.sizes["row"] == 20


def test_nexus_default_chain_and_classes(tmp_path):
    path, _ = full_run(tmp_path)
    with h5py.File(path, "r") as f:
        assert f.attrs["default"] == "entry"
        e = f["entry"]
        # Viewers plot 1-D and 2-D data: the results' signal is a scalar and the traces are 3-D,
        # so the default is the first declared table.
        assert e.attrs["NX_class"] == "NXentry" and e.attrs["default"] == "iv"
        t = e["traces"]
        assert t.attrs["NX_class"] == "NXdata" and t.attrs["signal"] == "voltage"
        assert list(t.attrs["axes"]) == ["trace", "channel", "time"]
        assert (t.attrs["trace_indices"], t.attrs["channel_indices"], t.attrs["time_indices"]) == (0, 1, 2)
        assert e["results"].attrs["NX_class"] == "NXdata" and e["results"].attrs["signal"] == "energy_per_spike_j"
        assert e["iv"].attrs["signal"] == "voltage_v" and list(np.atleast_1d(e["iv"].attrs["axes"])) == ["bias_a"]
        assert e["parameters"].attrs["NX_class"] == "NXcollection"
        assert e["instrument"].attrs["NX_class"] == "NXinstrument"
        assert e["sample"].attrs["NX_class"] == "NXsample"
        for note in ("instrument/snapshot", "instrument/station", "sample/chip", "metadata"):
            assert e[note].attrs["NX_class"] == "NXnote", note
        assert e["instrument/snapshot/type"][()].decode() == "application/json"
        assert f.id.get_create_plist().get_version()[0] == 3  # superblock v3: the v110 format


def test_every_dimension_of_every_dataset_has_a_scale(tmp_path):
    path, _ = full_run(tmp_path)
    unscaled = []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.ndim and not h5py.h5ds.is_scale(obj.id):
                unscaled.extend(f"{name}[{d}]" for d in range(obj.ndim) if len(obj.dims[d]) == 0)
        f.visititems(visit)
    assert unscaled == []


def test_one_note_per_snapshot_change(tmp_path):
    path, _ = full_run(tmp_path, changes=3)
    with h5py.File(path, "r") as f:
        inst = f["entry/instrument"]
        notes = sorted(k for k in inst if k.startswith("snapshot_"))
        assert notes == ["snapshot_1", "snapshot_2", "snapshot_3"]
        for n, name in enumerate(notes, start=1):
            assert inst[name].attrs["NX_class"] == "NXnote"
            assert json.loads(inst[name]["data"][()]) == {"scope": {"timebase_s": 2e-9 * n}}
            assert inst[name]["after_trace"][()] == 13 * n
            assert inst[name]["date"][()].decode() == f"2026-03-01T10:0{n}:00+00:00"


@pytest.mark.parametrize("status", ["aborted", "failed"])
def test_aborted_and_failed_runs_are_recorded_and_closed(tmp_path, status):
    path, _ = full_run(tmp_path, status=status)
    assert path.name == "run-1.h5" and list(tmp_path.iterdir()) == [path]
    with h5py.File(path, "r") as f:
        e = f["entry"]
        assert e["exit_status"][()].decode() == status and e["exit_message"][()].decode() == "stopped"
        assert e["traceback"][()].decode() == ("Traceback: boom" if status == "failed" else "")
        assert e["traces/voltage"].shape[0] == 65


def test_writer_closed_without_runstop_records_failure(tmp_path):
    rng = np.random.default_rng(1)
    with ArchiveWriter(tmp_path) as w:
        w(start())
        w(block(0, 5, rng))
    with h5py.File(tmp_path / "run-1.h5", "r") as f:
        assert f["entry/exit_status"][()].decode() == "failed"
        assert b"without a RunStop" in f["entry/exit_message"][()]
        assert f["entry/traces/voltage"].shape[0] == 5


def test_live_file_is_partial_and_swmr_readable(tmp_path):
    rng = np.random.default_rng(2)
    w = ArchiveWriter(tmp_path, WriterOptions(block_traces=64))
    w(start())
    w(block(0, 10, rng))  # buffered: less than a block
    w(block(10, 60, rng))  # now over a block: all 70 are written and flushed
    assert [p.name for p in tmp_path.iterdir()] == ["run-1.h5.partial"]
    with h5py.File(tmp_path / "run-1.h5.partial", "r", swmr=True) as f:
        assert f["entry/traces/voltage"].shape[0] == 70
        assert f["entry/traces/trace"].shape[0] == 70
    w(RunStop("completed", "2026-03-01T10:05:00+00:00"))
    assert [p.name for p in tmp_path.iterdir()] == ["run-1.h5"]


def test_undeclared_traces_and_tables_are_kept_and_written_at_stop(tmp_path):
    rng = np.random.default_rng(3)
    w = ArchiveWriter(tmp_path)
    w(start(traces=False, tables={}))
    with pytest.warns(UserWarning, match="not crash-safe"):
        w(block(0, 3, rng))
    with pytest.warns(UserWarning, match="'events' was not declared"):
        w(TableRows("events", {"switching_current_a": (np.array([1e-5, 1.1e-5]), "A")}))
    w(RunStop("completed", "2026-03-01T10:05:00+00:00"))
    ds = xr.open_dataset(w.last_path, engine="h5netcdf", group="entry/traces")
    ev = xr.open_dataset(w.last_path, engine="h5netcdf", group="entry/events")
    with ds, ev:
        assert ds.sizes["trace"] == 3 and ds["t_trigger_s"].attrs["units"] == "s"
        assert ev["switching_current_a"].attrs["units"] == "A" and ev.sizes["row"] == 2


def test_block_that_does_not_match_the_spec_is_refused_naming_the_file(tmp_path):
    w = ArchiveWriter(tmp_path)
    w(start())
    bad = TraceBlock(np.zeros((2, 2, 10)), np.arange(10) * 1e-9, CHANNELS,
                     {"t_trigger_s": (np.zeros(2), "s"), "spike_detected": (np.zeros(2), "1")})
    with pytest.raises(ArchiveError, match=r"run-1\.h5\.partial.*time axis"):
        w(bad)


def test_records_validate_their_inputs():
    with pytest.raises(ValueError, match="file name"):
        start(run_id="a/b")
    with pytest.raises(ValueError, match="exit_status"):
        RunStop("ok", "2026-03-01T10:05:00+00:00")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not match"):
        TraceBlock(np.zeros((1, 3, 4)), np.arange(4), CHANNELS)
    with pytest.raises(ValueError, match="differ in length"):
        TableRows("iv", {"a": ([1, 2], "A"), "b": ([1], "V")})
    with pytest.raises(ValueError, match="must be \\(value, units\\)"):
        start(parameters={"width_s": 2e-9})


def test_run_ids_are_never_overwritten(tmp_path):
    full_run(tmp_path)
    with pytest.raises(ArchiveError, match="already exists"):
        ArchiveWriter(tmp_path)(start())


def test_a_partial_block_is_written_once_it_is_old_enough(tmp_path):
    rng = np.random.default_rng(4)
    w = ArchiveWriter(tmp_path, WriterOptions(max_latency_s=0.0))
    w(start())
    w(block(0, 3, rng))
    with h5py.File(tmp_path / "run-1.h5.partial", "r", swmr=True) as f:
        assert f["entry/traces/voltage"].shape[0] == 3
    w(RunStop("completed", "2026-03-01T10:05:00+00:00"))


def test_a_quiet_plan_still_gets_its_block_written_when_the_runner_asks(tmp_path):
    """No record follows the last block (a plan ramping its bias down): flush_if_due, called by
    the runner between steps, writes it once it is max_latency_s old, not before."""
    rng = np.random.default_rng(6)
    w = ArchiveWriter(tmp_path, WriterOptions(max_latency_s=0.2))
    w(start())
    w(block(0, 3, rng))
    w.flush_if_due()

    def written() -> int:
        with h5py.File(tmp_path / "run-1.h5.partial", "r", swmr=True) as f:
            return f["entry/traces/voltage"].shape[0]

    assert written() == 0
    time.sleep(0.25)
    w.flush_if_due()
    assert written() == 3
    w(RunStop("completed", "2026-03-01T10:05:00+00:00"))


def test_fsync_cadence_and_a_refused_start_leave_no_debris(tmp_path):
    rng = np.random.default_rng(5)
    w = ArchiveWriter(tmp_path, WriterOptions(max_latency_s=0.0, fsync_every_blocks=1))
    w(start())
    w(block(0, 3, rng))
    w(RunStop("completed", "2026-03-01T10:05:00+00:00"))
    with h5py.File(w.last_path, "r") as f:
        assert f["entry/traces/voltage"].shape[0] == 3
    bad = start(run_id="run-2", tables={"results": TableSpec({"x_a": ColumnSpec("A")})})
    with pytest.raises(ArchiveError, match="'results' is reserved"):
        w(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-1.h5"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range(2) is Linux's; elsewhere the "
                    "writer starts no writeback and the fsync at the run's end writes everything")
def test_the_writers_writeback_request_reaches_the_kernel_and_a_refused_one_raises_nothing(tmp_path):
    path = tmp_path / "dirty.bin"
    with open(path, "wb") as f:
        f.write(bytes(1 << 20))
        f.flush()
        assert start_writeback(f.fileno())
        fd = os.dup(f.fileno())
    os.close(fd)
    assert not start_writeback(fd)  # a closed descriptor: refused (EBADF), and nothing raised


MIXED = ("m", "c", "input_a")
MIXED_UNITS = ("V", "V", "A")


def mixed_run(directory, n_blocks=3, per_block=5, stop=True):
    """A run whose traces hold node voltages (V) and an input current (A)."""
    spec = TraceSpec(MIXED, TIME_S, {"kind": ColumnSpec("1", "i1")}, MIXED_UNITS)
    w = ArchiveWriter(directory, WriterOptions(block_traces=8))
    w(dataclasses.replace(start(run_id="mixed", tables={}), traces=spec))
    blocks = []
    for b in range(n_blocks):
        samples = np.stack([np.full((per_block, TIME_S.size), b + 1.0), np.full((per_block, TIME_S.size), -b - 1.0),
                            np.full((per_block, TIME_S.size), (b + 1) * 1e-6)], axis=1)
        blocks.append(spec.block(samples, {"kind": (np.full(per_block, b % 2), "1")}))
        w(blocks[-1])
    if stop:
        w(RunStop("completed", "2026-03-01T10:05:00+00:00"))
    return w, blocks


def test_channels_in_other_units_get_their_own_variable_with_its_units(tmp_path):
    w, blocks = mixed_run(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_dataset(w.last_path, engine="h5netcdf", group="entry/traces")
    with ds:
        assert ds["voltage"].dims == ("trace", "channel", "time") and ds["voltage"].attrs["units"] == "V"
        assert ds["current"].dims == ("trace", "current_channel", "time") and ds["current"].attrs["units"] == "A"
        assert list(ds["channel_name"].values) == ["m", "c"]
        assert list(ds["current_channel_name"].values) == ["input_a"]
        samples = np.concatenate([b.samples for b in blocks])
        np.testing.assert_array_equal(ds["voltage"].values, samples[:, :2])
        np.testing.assert_array_equal(ds["current"].values, samples[:, 2:])
        assert ds.sizes["trace"] == 15 and ds["kind"].dims == ("trace",)
    with h5py.File(w.last_path, "r") as f:
        assert f["entry/traces"].attrs["signal"] == "voltage"
        assert f["entry/traces/current"].dims[1][0].name == "/entry/traces/current_channel"


def test_blocks_must_carry_the_declared_units(tmp_path):
    w, _ = mixed_run(tmp_path, n_blocks=0, stop=False)
    wrong = TraceBlock(np.zeros((1, 3, TIME_S.size)), TIME_S, MIXED, {"kind": (np.zeros(1), "1")})  # all "V"
    with pytest.raises(ArchiveError, match="channel units"):
        w(wrong)
    with pytest.raises(ValueError, match="one unit per channel"):
        TraceSpec(MIXED, TIME_S, channel_units=("V", "A"))


def test_mixed_units_are_shown_recovered_and_read_by_the_report(tmp_path):
    from lab.app.report.runs import load_run
    from lab.archive.reader import describe
    from lab.archive.recover import recover

    w, _ = mixed_run(tmp_path)
    assert "(m [V], c [V], input_a [A])" in describe(w.last_path)
    traces = load_run(w.last_path).trace_arrays()
    values = traces.samples["input_a"]
    assert traces.channel_units["input_a"] == "A" and values.shape == (15, TIME_S.size)
    assert values[0, 0] == pytest.approx(1e-6)
    assert traces.channel_units["c"] == "V" and set(traces.samples) == {"m", "c", "input_a"}

    # A writer that dies before its RunStop: recover keeps both variables and their scales.
    died = tmp_path / "died"
    code = ("import os, sys; sys.path.insert(0, %r); from tests.lab.test_archive_roundtrip import mixed_run; "
            "w, _ = mixed_run(%r, stop=False); w.flush(); os._exit(0)") % (str(ROOT), str(died))
    subprocess.run([sys.executable, "-c", code], check=True)
    recovered = recover(died / "mixed.h5.partial")
    assert recovered.n_traces == 15
    with xr.open_dataset(recovered.path, engine="h5netcdf", group="entry/traces") as ds:
        assert ds["current"].attrs["units"] == "A" and ds.sizes["current_channel"] == 1
        assert list(ds["current_channel_name"].values) == ["input_a"]


def test_an_archive_from_before_units_per_channel_still_reads(tmp_path):
    """Old energy_per_spike archives held the input current inside `voltage`: found by name."""
    from lab.app.report.runs import load_run

    w = ArchiveWriter(tmp_path)
    w(dataclasses.replace(start(run_id="old", tables={}), traces=TraceSpec(MIXED, TIME_S)))
    w(TraceBlock(np.ones((2, 3, TIME_S.size)), TIME_S, MIXED))
    w(RunStop("completed", "2026-03-01T10:05:00+00:00"))
    assert load_run(w.last_path).trace_arrays().samples["input_a"].shape == (2, TIME_S.size)


def test_uncertainties_round_trip_to_the_file_the_report_and_the_api(tmp_path):
    from contracts.records import Uncertainty
    from lab.app import api
    from lab.app.report.runs import load_run

    w = ArchiveWriter(tmp_path, WriterOptions(block_traces=16))
    w(start(traces=False))
    w(Result("energy_per_spike_j", 1.5e-17, "J",
             uncertainty=Uncertainty("Student t interval on the mean (n = 40)", 0.95, 1.4e-17, 1.6e-17, 5e-19)))
    axis = Axis("input_amplitude_a", [1e-6, 2e-6, 3e-6], "A")
    w(Result("firing_probability", np.array([0.1, 0.5, 0.9]), "1", axis,
             Uncertainty("Wilson score interval", 0.95, [0.02, 0.3, 0.7], [0.3, 0.7, 0.98])))
    w(Result("captures", 40, "1"))
    w(Result("pulse_amplitude_a", 31e-6, "A", exact="setting the run used"))
    w(RunStop("completed", "2026-03-01T10:05:00+00:00"))

    with h5py.File(w.last_path, "r") as f:
        attrs = f["entry/results/energy_per_spike_j"].attrs
        assert attrs["uncertainty_method"] == "Student t interval on the mean (n = 40)"
        assert (attrs["confidence_level"], attrs["interval_low"], attrs["interval_high"]) == (0.95, 1.4e-17, 1.6e-17)
        assert "uncertainty_method" not in f["entry/results/captures"].attrs
    quantity = load_run(w.last_path).results["firing_probability"]
    np.testing.assert_array_equal(quantity.uncertainty.high, [0.3, 0.7, 0.98])
    assert quantity.uncertainty.method == "Wilson score interval"

    run = api.open_run(w.last_path)
    row = run.results.loc["energy_per_spike_j"]
    assert (row["low"], row["high"], row["level"], row["uncertainty"]) == (1.4e-17, 1.6e-17, 0.95, 5e-19)
    assert row["method"].startswith("Student t")
    assert np.isnan(run.results.loc["captures", "low"]) and run.results.loc["captures", "method"] == ""
    assert run.results.loc["pulse_amplitude_a", "method"] == "exact (setting the run used)"
    assert load_run(w.last_path).results["pulse_amplitude_a"].exact == "setting the run used"
    low = run.arrays["firing_probability_low"]
    np.testing.assert_array_equal(low.values, [0.02, 0.3, 0.7])
    assert low.attrs["confidence_level"] == 0.95 and low.dims == ("input_amplitude_a",)

    from lab.archive.reader import describe
    shown = describe(w.last_path)
    assert "energy_per_spike_j = 15 aJ, 95 % interval 14 to 16 aJ (Student t interval on the mean (n = 40))" in shown
    assert "with 95 % intervals (Wilson score interval)" in shown


def test_an_uncertainty_that_does_not_fit_its_result_is_refused():
    from contracts.records import Uncertainty

    with pytest.raises(ValueError, match="probability"):
        Uncertainty("Wilson score interval", 95, 0.1, 0.2)
    with pytest.raises(ValueError, match="exact"):
        Result("p", 0.5, "1", uncertainty=Uncertainty("Wilson score interval", 0.95, 0.4, 0.6), exact="a setting")
    with pytest.raises(ValueError, match="shape"):
        Result("p", np.array([0.1, 0.5]), "1", uncertainty=Uncertainty("Wilson score interval", 0.95, 0.0, 1.0))
