"""Parameter validation and envelope refusals, before any instrument is touched."""

from __future__ import annotations

import pytest

from lab.execution.dry_run import dry_run
from contracts.envelope import EnvelopeError
from contracts.procedure import ParameterError
from procedures.cooldown import Cooldown
from procedures.efficiency import Efficiency
from procedures.energy_per_spike import EnergyPerSpike
from procedures.firing_rate import FiringRate
from procedures.iv_sweep import IvSweep
from procedures.refractory import Refractory
from procedures.strength_duration import StrengthDuration
from tests.procedures.conftest import station_copy


@pytest.mark.parametrize("procedure, values, message", [
    (IvSweep, {"switching_events": 0}, "iv_sweep: parameter switching_events = 0 is below its minimum 1"),
    (IvSweep, {"bias_max_a": 2e-3}, "parameter bias_max_a = 2 mA is above its maximum 1 mA"),
    (Cooldown, {"setpoint_k": -1.0}, "parameter setpoint_k = -1 K is below its minimum 0.01 K"),
    (Refractory, {"threshold_factor": 5.0}, "parameter threshold_factor = 5 is above its maximum 3"),
    (StrengthDuration, {"widths_s": (2e-9, 5e-6)}, "parameter widths_s = 5 µs is above its maximum 1 µs"),
    (FiringRate, {"points": 1.5}, "parameter points: expected a whole number"),
    (EnergyPerSpike, {"reference_fraction": 0.95}, "reference_fraction = 0.95 is above its maximum 0.9"),
    (Efficiency, {"energy_per_spike_j": 0.0}, "energy_per_spike_j = 0 J is below its minimum"),
    (EnergyPerSpike, {"spike_count": 3}, "unknown parameter 'spike_count'"),
])
def test_parameters_out_of_bounds_are_refused_naming_parameter_and_bound(procedure, values, message):
    with pytest.raises(ParameterError) as error:
        procedure(**values)
    assert message in str(error.value)


@pytest.mark.parametrize("procedure, values, envelope, message", [
    (Cooldown, {"setpoint_k": 4.2}, {"cryostat": {"temperature_min_k": 5.0, "temperature_max_k": 12.0}},
     r"cooldown, step 1 \(SetTemperature\): refused: setpoint 4.2 K is below"),
    (Cooldown, {"ramp_k_per_min": 5.0}, {"cryostat": {"setpoint_ramp_max_k_per_min": 1.0}},
     r"cooldown, step 1 \(SetTemperature\): refused: setpoint ramp 5 K/min"),
    (IvSweep, {"bias_max_a": 26e-6, "switching_events": 5}, {"bias": {"bias_current_max_a": 20e-6}},
     r"iv_sweep, step \d+ \(SweepBias\): refused: bias current 2\.\d+e-05 A is above"),
    (IvSweep, {"switching_events": 5}, {"bias": {"bias_ramp_max_a_per_s": 10e-6}},
     r"iv_sweep, step 1 \(SweepBias\): refused: bias ramp rate [\d.e-]+ A/s is above"),
    (StrengthDuration, {"bracket_low_a": 5e-6, "bracket_high_a": 40e-6}, {"pulser": {"pulse_current_max_a": 10e-6}},
     r"strength_duration, step \d+ \(ConfigurePulses\): refused: pulse current at the chip"),
    (StrengthDuration, {"widths_s": (16e-9, 200e-9)}, {"pulser": {"pulse_width_max_s": 100e-9}},
     r"\(ConfigurePulses\): refused: pulse width 2e-07 s"),
    (FiringRate, {"current_max_a": 40e-6}, {"pulser": {"pulse_current_max_a": 30e-6}},
     r"firing_rate, step \d+ \(ConfigureDcInput\): refused"),
    (EnergyPerSpike, {"threshold_a": 20e-6}, {"pulser": {"pulse_current_max_a": 20e-6}},
     r"energy_per_spike, step \d+ \(ConfigurePulses\): refused: pulse current at the chip 2\.6e-05 A"),
    (Refractory, {"threshold_a": 20e-6}, {"pulser": {"pulse_current_max_a": 22e-6}},
     r"refractory, step \d+ \(ConfigurePulses\): refused"),
])
def test_a_tighter_envelope_refuses_the_plan_naming_the_step(tmp_path, procedure, values, envelope, message):
    station = station_copy(tmp_path, envelope)
    with pytest.raises(EnvelopeError, match=message):
        dry_run(procedure(**values), station)
    dry_run(procedure(**values), station_copy(tmp_path / "loose"))    # the shipped envelope allows it
