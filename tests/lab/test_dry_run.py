"""Dry runs walk a plan without instruments: step list, envelope refusals, duration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from lab import steps
from lab.config import load_station
from lab.dry_run import dry_run
from lab.envelope import EnvelopeError
from lab.procedure import ParameterError, Procedure, parameter

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
        yield steps.ConfigurePulses(current_a=p.pulse_current_a, width_s=2e-9, edge_s=0.3e-9, period_s=1e-6)
        yield steps.ConfigureCapture(node_ranges_v={"m": 2e-3}, input_range_a=40e-6, record_length=1000,
                                     sample_rate_hz=20e9, pretrigger_s=5e-9)
        traces = yield steps.Capture()
        assert traces.input_a.shape == (1000,) and set(traces.node_voltage_v) == {"m"}
        yield steps.SetBias(current_a=0.0, ramp_a_per_s=p.ramp_a_per_s)


@pytest.fixture
def station(tmp_path):
    chip = tmp_path / "chip.yaml"
    chip.write_text("# placeholder\n")
    text = (ROOT / "stations" / "emulated.yaml").read_text().replace(
        "chip: chips/default-neuron.yaml", f"chip: {chip}")
    path = tmp_path / "station.yaml"
    path.write_text(text)
    return load_station(path)


def test_dry_run_lists_steps_and_estimates_lab_time(station):
    report = dry_run(Sweep(), station)
    assert report.count(steps.SetBias) == 6
    assert report.count(steps.MeasureBiasVoltage) == 5
    assert report.count(steps.Capture) == 1
    # 60 s hold + 5 × 1 s settle + ramps: up to 20 µA in 5 µA steps and back down, at 10 µA/s.
    assert report.duration_s == pytest.approx(60 + 5 + 4 * 0.5 + 2.0 + 0.05)
    assert "6×SetBias" in report.summary()


def test_dry_run_refuses_out_of_envelope_steps_naming_the_step(station):
    with pytest.raises(EnvelopeError, match=r"sweep, step 15 \(SetBias\): refused: bias current 6e-05 A"):
        dry_run(Sweep(bias_max_a=60e-6), station)
    with pytest.raises(EnvelopeError, match=r"pulse current at the chip 0.0002 A is above"):
        dry_run(Sweep(pulse_current_a=200e-6), station)
    with pytest.raises(EnvelopeError, match="bias ramp rate"):
        dry_run(Sweep(ramp_a_per_s=1.0), station)


@pytest.mark.parametrize("values, message", [
    ({"bias_max_a": -1e-6}, "bias_max_a = -1e-06 A is below its minimum 0.0 A"),
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
