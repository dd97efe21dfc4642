"""Dry runs walk a plan without instruments: step list, envelope refusals, duration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from contracts import steps
from contracts.files.station import read_station
from lab.execution.dry_run import dry_run
from contracts.envelope import EnvelopeError
from contracts.procedure import ParameterError, Procedure, parameter

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SweepParameters:
    bias_max_a: float = parameter(20e-6, unit="A", doc="top of the sweep", minimum=0.0, maximum=1e-3)
    ramp_a_per_s: float = parameter(10e-6, unit="A/s", doc="bias ramp rate", minimum=1e-9)
    points: int = parameter(5, unit="1", doc="points per sweep", minimum=2)
    settle_s: float = parameter(1.0, unit="s", doc="wait after each point", minimum=0.0)
    pulse_current_a: float = parameter(10e-6, unit="A", doc="input pulse at the chip", minimum=0.0)


class Sweep(Procedure):
    name = "sweep"
    Parameters = SweepParameters

    def plan(self, context):
        p = self.parameters
        yield steps.SetTemperature(setpoint_k=4.0)
        yield steps.WaitTemperatureStable(setpoint_k=4.0, tolerance_k=0.01, hold_s=60.0, timeout_s=600.0)
        for k in range(p.points):
            yield steps.SetBias(current_a=p.bias_max_a * k / (p.points - 1), ramp_a_per_s=p.ramp_a_per_s)
            yield steps.Wait(duration_s=p.settle_s)
            voltage_v = yield steps.MeasureBiasVoltage()
            assert voltage_v == 0.0
        yield steps.ConfigurePulses(current_a=p.pulse_current_a, width_s=2e-9, edge_s=1e-9, period_s=1e-6)
        yield steps.ConfigureCapture(node_ranges_v={"m": 2e-3}, input_range_a=40e-6, record_length=1000,
                                     sample_rate_hz=20e9, pretrigger_s=5e-9)
        traces = yield steps.Capture()
        assert traces.input_a.shape == (1000,) and set(traces.node_voltage_v) == {"m"}
        yield steps.SetBias(current_a=0.0, ramp_a_per_s=p.ramp_a_per_s)


@pytest.fixture
def station(tmp_path):
    chip = ROOT / "stations" / "chips" / "default-neuron.yaml"    # the station refuses a file that is no chip
    text = (ROOT / "stations" / "emulated.yaml").read_text().replace(
        "chip: chips/default-neuron.yaml", f"chip: {chip}")
    path = tmp_path / "station.yaml"
    path.write_text(text)
    return read_station(path)


def test_dry_run_lists_steps_and_estimates_lab_time(station):
    report = dry_run(Sweep(), station)
    assert report.count(steps.SetBias) == 6
    assert report.count(steps.MeasureBiasVoltage) == 5
    assert report.count(steps.Capture) == 1
    # 60 s hold + 5 × 1 s settle + ramps: up to 20 µA in 5 µA steps and back down, at 10 µA/s.
    assert report.duration_s == pytest.approx(60 + 5 + 4 * 0.5 + 2.0 + 0.05)
    assert "6×SetBias" in report.summary()
    # On a 600x clock the hold and settles shrink; the bias source still ramps in real time.
    assert report.wall_s(600.0) == pytest.approx((60 + 5 + 0.05) / 600 + 4 * 0.5 + 2.0)
    assert report.wall_s(1.0) == pytest.approx(report.duration_s)


@dataclass(frozen=True)
class ListParameters:
    top_a: float = parameter(10e-6, unit="A", doc="top of the sweep", minimum=0.0, maximum=1e-3)
    dwell_s: float = parameter(1e-3, unit="s", doc="dwell per level", minimum=0.0)
    drop_a: float = parameter(1e-6, unit="A", doc="first step of the way down", minimum=0.0)


class ListSweep(Procedure):
    name = "list_sweep"
    Parameters = ListParameters

    def plan(self, context):
        p = self.parameters
        volts = yield steps.SweepBias(levels_a=tuple(np.linspace(0.0, p.top_a, 11)), dwell_s=p.dwell_s)
        assert isinstance(volts, np.ndarray) and volts.shape == (11,) and not volts.any()
        down = p.top_a - p.drop_a
        yield steps.SweepBias(levels_a=tuple(np.linspace(down, 0.0, 11)), dwell_s=p.dwell_s)


def test_sweep_bias_estimate_stand_in_and_refusals(station):
    report = dry_run(ListSweep(), station)
    assert report.count(steps.SweepBias) == 2
    assert report.duration_s == pytest.approx(22 * 1e-3)
    # 1 uA per 1 ms is 1 mA/s, the envelope's limit; 0.5 ms makes it 2 mA/s.
    with pytest.raises(EnvelopeError, match=r"step 1 \(SweepBias\): refused: bias ramp rate 0.002 A/s"):
        dry_run(ListSweep(dwell_s=0.5e-3), station)
    # The step from the present level (the first sweep's last) into the next sweep counts too.
    with pytest.raises(EnvelopeError, match=r"step 2 \(SweepBias\): refused: bias ramp rate 0.003 A/s"):
        dry_run(ListSweep(drop_a=3e-6), station)
    with pytest.raises(EnvelopeError, match="bias current 5e-05 A"):
        dry_run(ListSweep(top_a=50e-6, dwell_s=10e-3), station)


def test_dry_run_refuses_out_of_envelope_steps_naming_the_step(station):
    with pytest.raises(EnvelopeError, match=r"sweep, step 15 \(SetBias\): refused: bias current 6e-05 A"):
        dry_run(Sweep(bias_max_a=60e-6), station)
    with pytest.raises(EnvelopeError, match=r"pulse current at the chip 0.0002 A is above"):
        dry_run(Sweep(pulse_current_a=200e-6), station)
    with pytest.raises(EnvelopeError, match="bias ramp rate"):
        dry_run(Sweep(ramp_a_per_s=1.0), station)


@pytest.mark.parametrize("values, message", [
    ({"bias_max_a": -1e-6}, "bias_max_a = -1 µA is below its minimum 0 A"),
    ({"points": 2.5}, "points: expected a whole number"),
    ({"settle_s": "long"}, "settle_s: expected a finite number in s"),
    ({"colour": "red"}, "unknown parameter 'colour'"),
])
def test_parameters_are_validated_with_names_and_units(values, message):
    with pytest.raises(ParameterError, match=message):
        Sweep(**values)


def test_parameter_records_carry_units():
    records = Sweep(points=3).parameter_records()
    assert records["points"] == (3, "1")
    assert records["ramp_a_per_s"] == (10e-6, "A/s")
