"""Captures as trace records (procedures._pulsed.CaptureRecords): units per channel, one time
axis, a bounded number of captures spread over the run, and the same records in every plan."""

from __future__ import annotations

import math

import numpy as np
import pytest

from contracts import steps
from contracts.procedure import PlanContext
from contracts.records import ColumnSpec, TraceBlock
from lab.execution.dry_run import dry_run
from procedures import _pulsed
from procedures.energy_per_spike import EnergyPerSpike
from procedures.firing_rate import FiringRate
from procedures.refractory import Refractory
from procedures.strength_duration import StrengthDuration

SETTINGS = _pulsed.CaptureSettings("m", "c", 1e-3, record_s=1e-9, pretrigger_s=0.2e-9, sample_rate_hz=10e9)
COLUMNS = {_pulsed.CAPTURE_INDEX: ColumnSpec("1", "i8"), "amplitude_a": ColumnSpec("A")}


def capture(n: int, with_bias_node: bool = True) -> steps.ChipTraces:
    time_s = -0.2e-9 + np.arange(n) / 10e9
    nodes = {"m": np.full(n, 1e-4)} | ({"c": np.full(n, 2e-4)} if with_bias_node else {})
    return steps.ChipTraces(time_s, nodes, np.full(n, 3e-6))


def archived(step_list) -> list[TraceBlock]:
    return [s.record for s in step_list if isinstance(s, steps.Archive) and isinstance(s.record, TraceBlock)]


def test_node_voltages_in_volts_input_current_in_amperes_padded_to_the_declared_record():
    records = _pulsed.CaptureRecords(SETTINGS, COLUMNS)
    spec = records.spec()
    assert spec.channel_names == ("m", "c", "input_a") and spec.channel_units == ("V", "V", "A")
    assert spec.n_points == SETTINGS.record_length == 16
    [block] = archived(records.archive(capture(10, with_bias_node=False), SETTINGS, amplitude_a=5e-6))
    assert block.channel_units == spec.channel_units and block.time_s is spec.time_s
    np.testing.assert_allclose(block.samples[0, 0, :10], 1e-4, rtol=1e-6)
    np.testing.assert_allclose(block.samples[0, 2, :10], 3e-6, rtol=1e-6)
    assert np.isnan(block.samples[0, :, 10:]).all()        # a shorter record ends in NaN
    assert np.isnan(block.samples[0, 1]).all()             # node c was not recorded
    assert block.columns["capture"][0].tolist() == [0] and block.columns["amplitude_a"][1] == "A"


def test_at_most_archived_max_captures_every_kth_of_those_planned():
    records = _pulsed.CaptureRecords(SETTINGS, COLUMNS, archived_max=4, planned=10)
    blocks = [b for _ in range(12) for b in archived(records.archive(capture(16), SETTINGS, amplitude_a=1e-6))]
    assert [int(b.columns["capture"][0][0]) for b in blocks] == [0, 3, 6, 9]
    assert records.spec().traces_max == 4
    none = _pulsed.CaptureRecords(SETTINGS, COLUMNS, archived_max=0, planned=10)
    assert none.spec() is None and not archived(none.archive(capture(16), SETTINGS, amplitude_a=1e-6))


def test_values_must_match_the_declared_columns():
    records = _pulsed.CaptureRecords(SETTINGS, COLUMNS)
    with pytest.raises(ValueError, match="declared"):
        list(records.archive(capture(16), SETTINGS, width_s=1e-9))


@pytest.mark.parametrize("procedure, archived_max", [
    (StrengthDuration(widths_s=(2e-9, 5e-9), trials_max=6, reference_captures=2), 5),
    (Refractory(spacings=3, trials=2, reference_captures=2), 4),
    (FiringRate(points=3, captures=2), 4),
    (EnergyPerSpike(spikes=3, reference_captures=2), None),
], ids=lambda p: getattr(p, "name", str(p)))
def test_every_pulsed_plan_archives_records_of_what_it_declared(procedure, archived_max, station):
    if archived_max is not None:
        procedure = type(procedure)(**{**vars(procedure.parameters), "traces_archived_max": archived_max})
    context = PlanContext(dry_run=True)
    report = dry_run(procedure, station, context)
    spec, _ = procedure.declare(context)
    blocks = archived(s for s, _ in report.steps)
    captures = report.count(steps.Capture)
    if archived_max is None:
        assert len(blocks) == captures
    else:      # every k-th of the planned captures (all of them in a dry run), k = planned / max rounded up
        stride = math.ceil(captures / archived_max)
        assert [int(b.columns["capture"][0][0]) for b in blocks] == list(range(0, captures, stride))[:archived_max]
    for block in blocks:
        assert block.channel_names == spec.channel_names and block.channel_units == spec.channel_units
        assert block.samples.shape[2] == spec.n_points and set(block.columns) == set(spec.columns)
