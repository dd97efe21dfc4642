"""The sweep's fast path measures what the procedures measure on the emulated bench: for two
design points (the default neuron, and the same with a 15 nH loop inductor), the firing
threshold (strength_duration), the energy per spike (energy_per_spike), the refractory period
(refractory) and the f–I onset and gain (firing_rate) run end to end on a fresh emulated
station — real drivers, the in-process emulator, archives — agree with the sweep's figures for
the same chip at the bench's stage temperature with the station's wiring loads (`station:` in
the spec).

Tolerances: the procedures stop at their own precision (a threshold to 3 % by default) and see
the chip through the scope (8-bit samples, noise, 20 GS/s); the sweep bisects noise-free
simulations to 1 %. The refractory procedure's period is a probit midpoint over pairs repeated
on one chip (3 % from the sweep's on the default neuron, 18 % with the 15 nH loop).

What the sweep does not see: the bench's chip remembers earlier pulses. Where the control wire
switches alone below threshold and traps flux (a stronger bias or loop, as the strength_duration
procedure notes for long pulses), later pulses fire lower, and a bench run reads a threshold
some 5-8 % below the fresh chip's that the sweep reports (ib 25 µA, ls 25 nH). The points here
are ones without that memory."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import yaml

from procedures.energy_per_spike import EnergyPerSpike
from procedures.firing_rate import FiringRate
from procedures.refractory import Refractory
from procedures.strength_duration import StrengthDuration
from sweeps.execute import evaluate_point
from sweeps.spec import chip_variant, read_spec
from tests.procedures.conftest import EMULATED
from tests.procedures.test_end_to_end import Bench
from tests.sweeps.conftest import write_spec

SPEC = f"""\
format: nwlab-sweep/1
chip: default-neuron
station: {EMULATED}
seed: 2
parameters:
  temperature: {{values: [TEMPERATURE_K]}}
  ls.inductance: {{values: [20e-9, 15e-9]}}
metrics: [threshold_a, energy_per_spike_j, refractory_s, fi_onset_a, fi_gain_hz_per_a]
# the procedures' pulses: 2 ns wide, 1 ns 10-90 % edges (a 1.25 ns ramp on the generator)
stimulus: {{widths_s: [2e-9], rise_s: 1.25e-9, threshold_precision: 0.01}}
"""


def results(station: Bench, procedure) -> dict:
    return station.results(station.run(procedure))


@pytest.mark.parametrize("loop_h", [20e-9, 15e-9])
def test_the_sweep_measures_what_the_procedures_measure_on_the_bench(tmp_path, loop_h):
    logging.getLogger("qcodes").setLevel(logging.ERROR)
    probe = read_spec(write_spec(tmp_path, SPEC.replace("TEMPERATURE_K", "2.0"), "probe.yaml"))
    chip_path = tmp_path / "chip.yaml"
    station = None
    try:
        # the bench's chip is the design point's chip file
        chip_path.write_text(yaml.safe_dump(chip_variant(probe, (2.0, loop_h)), sort_keys=False))
        station = Bench(tmp_path, chip_path)
        temperature_k = station.bench.world.stage_temperature_k()
        threshold = results(station, StrengthDuration(widths_s=(2e-9,)))["threshold_a"][0]
        energy = results(station, EnergyPerSpike(threshold_a=float(threshold)))["energy_per_spike_j"]
        refractory = results(station, Refractory(threshold_a=float(threshold)))["refractory_period_s"]
        rates = results(station, FiringRate())
        assert station.bench.world.stage_temperature_k() == pytest.approx(temperature_k, abs=0.01)
    finally:
        if station is not None:
            station.instruments.close()

    spec = read_spec(write_spec(tmp_path, SPEC.replace("TEMPERATURE_K", repr(temperature_k))))
    point = evaluate_point(spec, 0 if loop_h == 20e-9 else 1, (temperature_k, loop_h))
    assert point["error"] == ""
    assert point["threshold_a"][0] == pytest.approx(threshold, rel=0.03)
    assert point["energy_per_spike_j"] == pytest.approx(energy, rel=0.05)
    # pairs fired again and again on a chip with memory: the procedures' own end-to-end test allows
    # 35 % between this procedure and a fresh chip's paired-pulse bisection (test_end_to_end.py)
    assert point["refractory_s"] == pytest.approx(refractory, rel=0.25)
    assert point["fi_onset_a"] == pytest.approx(rates["onset_current_a"], rel=0.03)
    # the bench's gain is an estimate of its own (standard uncertainty ~6.5 % here); over six bench
    # seeds it lies 14 % above the sweep's with the 15 nH loop (seed to seed spread 3-4 %), 6-10 %
    # on the default neuron
    assert point["fi_gain_hz_per_a"] == pytest.approx(rates["firing_gain_hz_per_a"], rel=0.20)


SLOW = f"""\
format: nwlab-sweep/1
chip: default-neuron
station: {EMULATED}
measure: procedures
seed: 4
parameters:
  ib.current: {{values: [24e-6]}}
metrics: [threshold_a, rheobase_a]
stimulus: {{widths_s: [2e-9, 5e-9]}}
"""


def test_the_procedures_path_runs_the_procedures_per_point_and_archives_each_run(tmp_path):
    from lab.app.report.runs import load_run
    from tests.sweeps.conftest import nwlab_sweep, open_results

    summary, _ = nwlab_sweep(str(write_spec(tmp_path, SLOW)), "--out", str(tmp_path / "sweep"), "--in-process")
    data = open_results(tmp_path / "sweep")
    assert summary["computed"] == 1 and summary["failed"] == 0, data["error"].values.ravel().tolist()
    point = tmp_path / "sweep" / "runs" / "point-000000"
    archives = {load_run(path).procedure: load_run(path) for path in point.glob("*.h5")}
    assert set(archives) == {"strength_duration"}
    assert all(run.status == "completed" for run in archives.values())
    # the Dataset holds what the runs archived
    threshold = archives["strength_duration"].results["threshold_a"].value
    assert data["threshold_a"].values.ravel().tolist() == np.ravel(threshold).tolist()
    assert data["rheobase_a"].values.ravel().tolist() == [float(archives["strength_duration"].results["rheobase_a"]
                                                                .value)]
    assert "procedure's own 95 % interval" in data["threshold_a_low"].attrs["uncertainty_method"]


def test_a_point_through_the_procedures_leaves_the_callers_qcodes_logging_as_it_found_it(tmp_path):
    """The procedures path quiets the drivers' logger for the point only: a notebook that runs a
    sweep in process keeps its own level. The point here fails in its run (a stage temperature
    outside the station's window), after the instruments were opened: the error is the point's."""
    from lab.app.sweep_slow import evaluate_point_slow
    from sweeps.spec import read_spec

    spec = read_spec(write_spec(tmp_path, SLOW.replace("ib.current: {values: [24e-6]}",
                                                       "temperature: {values: [300.0]}")))
    qcodes_log = logging.getLogger("qcodes")
    before = qcodes_log.level
    qcodes_log.setLevel(logging.DEBUG)
    try:
        out = evaluate_point_slow(spec, 0, (300.0,), runs_dir=str(tmp_path / "runs"))
        assert qcodes_log.level == logging.DEBUG
    finally:
        qcodes_log.setLevel(before)
    assert out["error"] and "300" in out["error"], out
