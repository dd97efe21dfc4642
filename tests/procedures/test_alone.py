"""Every pulsed procedure runs alone: without a threshold handed on, given or documented in the
chip file, it measures one (a quick search at its width) before measuring, archives that it did,
and the dry run counts the search. With a threshold it takes the same steps as before."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest

from contracts import steps
from contracts.procedure import PlanContext
from contracts.records import Result, TableRows
from lab.app.report.runs import load_run
from lab.execution.dry_run import dry_run
from lab.execution.runner import Runner
from procedures import _pulsed
from procedures.energy_per_spike import KIND_SEARCH, EnergyPerSpike
from procedures.refractory import Refractory
from tests.procedures.conftest import ROOT
from tests.procedures.ground_truth import Chip
from tests.procedures.test_end_to_end import BIAS_A, bench  # noqa: F401  (fixture)

#: Captures of a quick search in a dry run (flat data never fire: it takes every trial).
SEARCH_CAPTURES = _pulsed.QUICK_REFERENCE_CAPTURES + _pulsed.QUICK_TRIALS_MAX


def results(report) -> dict[str, Result]:
    return {s.record.name: s.record for s, _ in report.steps
            if isinstance(s, steps.Archive) and isinstance(s.record, Result)}


def search_rows(report) -> list[TableRows]:
    return [s.record for s, _ in report.steps
            if isinstance(s, steps.Archive) and isinstance(s.record, TableRows)
            and s.record.table == _pulsed.QUICK_SEARCH_TABLE]


@pytest.mark.parametrize("procedure, captures", [
    (EnergyPerSpike(spikes=7, reference_captures=5), 5 + 7),
    (Refractory(spacings=3, trials=2, trials_max=6, reference_captures=2), 2 * 2 + 3 * 2),
], ids=lambda p: getattr(p, "name", ""))
def test_the_dry_run_counts_the_search_a_run_without_threshold_makes(procedure, captures, station):
    report = dry_run(procedure, station)
    assert report.count(steps.Capture) == captures + SEARCH_CAPTURES
    rows = search_rows(report)          # one row per amplitude tried; the dry run takes every trial
    assert sum(int(t.columns["trials"][0].sum()) for t in rows) == _pulsed.QUICK_TRIALS_MAX
    r = results(report)
    assert r["threshold_source"].value == _pulsed.SOURCE_DESIGN_ESTIMATE     # flat data never fire
    _, tables = procedure.declare()
    assert _pulsed.QUICK_SEARCH_TABLE in tables


@pytest.mark.parametrize("procedure, captures", [
    (EnergyPerSpike(spikes=7, reference_captures=5, threshold_a=25e-6), 5 + 7),
    (Refractory(spacings=3, trials=2, trials_max=6, reference_captures=2, threshold_a=25e-6),
     2 * 2 + 3 * 2),
], ids=lambda p: getattr(p, "name", ""))
def test_a_given_threshold_takes_no_search_and_archives_nothing_more(procedure, captures, station):
    report = dry_run(procedure, station)
    assert report.count(steps.Capture) == captures and not search_rows(report)
    assert not {"threshold_a", "threshold_source"} & set(results(report))
    _, tables = procedure.declare()
    assert _pulsed.QUICK_SEARCH_TABLE not in tables


def test_a_threshold_the_chip_file_documents_is_taken_without_search(station):
    report = dry_run(EnergyPerSpike(spikes=3, reference_captures=2), station,
                     PlanContext({"neuron": {"firing_threshold": {"value": 20, "unit": "uA"}}}, dry_run=True))
    assert report.count(steps.Capture) == 5 and not search_rows(report)
    pulses = [s.current_a for s, _ in report.steps if isinstance(s, steps.ConfigurePulses)]
    assert max(pulses) == pytest.approx(1.3 * 20e-6)


def test_energy_per_spike_alone_measures_its_threshold_then_the_energy(bench):  # noqa: F811
    outcome = bench.run(EnergyPerSpike(spikes=10, reference_captures=6))
    r = bench.results(outcome)
    truth_a = Chip(bench.bench, BIAS_A).threshold_a(2e-9, 1e-9)
    assert r["threshold_source"] == _pulsed.SOURCE_MEASURED
    interval = outcome.results["threshold_a"].uncertainty
    assert interval.level == 0.95 and interval.low < r["threshold_a"] < interval.high
    assert interval.high - interval.low <= 2 * _pulsed.QUICK_PRECISION * r["threshold_a"] * 1.001 \
        or r["threshold_trials"] == _pulsed.QUICK_TRIALS_MAX
    # The fresh chip's threshold lies within the interval, give or take the 3 % the chip's memory
    # of earlier pulses moves it by (test_end_to_end's tolerance).
    assert interval.low - 0.03 * truth_a <= truth_a <= interval.high + 0.03 * truth_a
    assert r["amplitude_a"] == pytest.approx(1.3 * r["threshold_a"])
    # The chip remembers earlier pulses (its loops keep their currents), so the search's curve is
    # wide (sigma ~3 uA at 2 ns) and 1.3 x its midpoint fires 8 of 10 captures here, not all.
    assert r["spikes_averaged"] >= 8 and 3e-18 < r["energy_per_spike_j"] < 30e-18
    run = load_run(outcome.archive_path)
    assert run.results["threshold_source"].value == _pulsed.SOURCE_MEASURED
    with h5py.File(outcome.archive_path, "r") as f:
        rows = f[f"entry/{_pulsed.QUICK_SEARCH_TABLE}/amplitude_a"][()]
        kinds = f["entry/traces/kind"][()]
    assert 1 <= rows.size <= r["threshold_trials"] <= _pulsed.QUICK_TRIALS_MAX    # one row per amplitude tried
    # Its reference captures and trials are archived too.
    assert np.count_nonzero(kinds == KIND_SEARCH) == _pulsed.QUICK_REFERENCE_CAPTURES + r["threshold_trials"]


def test_refractory_alone_measures_its_threshold_then_the_pairs(bench):  # noqa: F811
    r = bench.results(bench.run(Refractory(spacings=4, trials=2, reference_captures=3, order_seed=1)))
    assert r["threshold_source"] == _pulsed.SOURCE_MEASURED
    assert r["pulse_amplitude_a"] == pytest.approx(1.2 * r["threshold_a"])
    # At the longest spacing the second pulse fires from most states the chip passes through (not
    # from all: the current its loop keeps from spike to spike lengthens the period in some).
    assert r["second_spike_probability"][0] >= 0.5
    assert min(r["second_spike_probability"]) < 1.0          # the scan reached into the refractory period


def test_a_search_that_finds_no_threshold_says_what_to_give_and_does_not_blame_the_chip(bench):  # noqa: F811
    outcome = Runner(bench.station, bench.instruments.roles, archive_dir=bench.archive_dir, snapshot=dict,
                     chip_design=bench.design, show_progress=False).run(
        EnergyPerSpike(spikes=2, reference_captures=2, detect_v=0.5))     # no spike is ever 0.5 V
    assert outcome.exit_status == "failed"
    assert outcome.message.startswith("MeasurementError: energy_per_spike: no threshold_a given and the chip file "
                                      "documents none, so the run searched for it: at 2 ns"), outcome.message
    assert "Give threshold_a (strength_duration measures it)" in outcome.message
    assert "latched" not in outcome.message and "does not fire" not in outcome.message


def test_nwlab_run_energy_per_spike_alone_prints_the_threshold_it_measured(bench, tmp_path):  # noqa: F811
    done = subprocess.run([sys.executable, "-m", "lab.app.cli", "run", "energy_per_spike", "--station",
                           str(bench.station.path), "--out", str(tmp_path / "out"), "--quiet",
                           "--set", "spikes=5", "--set", "reference_captures=4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "threshold_source = measured in this run (quick search)" in done.stdout, done.stdout
    assert ": completed" in done.stdout
