"""The lab side opens a station through lab.execution.instruments; swapping models behind the roles changes
nothing a procedure sees: the same verbs, the same shapes and units of results."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from driver_helpers import write_station

from contracts import roles
from lab.execution.instruments import StationInstrumentError, open_instruments
from contracts.files.station import StationError
from lab.execution.station_checks import load_station

pytestmark = pytest.mark.timeout(30)

BENCHES = {  # label -> (models, options of the instruments whose model changed)
    "shipped models": ({"pulser": "keysight_33522b", "scope": "keysight_infiniium", "cryostat": "lakeshore_336"},
                       {"cryostat": {"sensor_input": "A", "heater_output": 1}, "pulser": {"channel": 1}}),
    "other models": ({"pulser": "keysight_81160a", "scope": "tektronix_dpo7254", "cryostat": "lakeshore_372"},
                     {"cryostat": {"sensor_input": 6}, "pulser": {"channel": 1}}),
}


def run_procedure(station_path):
    """What a procedure does through the roles: bias, fire one pulse, capture, read back."""
    with open_instruments(load_station(station_path), name_prefix=station_path.stem.replace("-", "_") + "_") as opened:
        bias, pulser = opened.roles["bias_source"], opened.roles["pulse_generator"]
        scope, fridge = opened.roles["oscilloscope"], opened.roles["temperature_controller"]
        for role, protocol in roles.ROLE_PROTOCOLS.items():
            assert isinstance(opened.roles[role], protocol)
        temperature_k = fridge.read_temperature_k()
        bias.set_compliance_v(0.5)
        bias.set_output_enabled(True)
        bias.set_current_a(5e-6, ramp_a_per_s=100e-6)
        pulser.configure_pulse(amplitude_v=0.8, width_s=50e-9, edge_s=9e-9, period_s=1e-6, count=1)
        pulser.set_output_enabled(True)
        scope.configure_acquisition(channel_ranges_v={1: 0.4, 2: 0.16}, record_length=2000, sample_rate_hz=20e9,
                                    pretrigger_s=20e-9, trigger_channel=2, trigger_level_v=0.02)
        scope.arm_single()
        pulser.trigger()
        assert scope.wait_acquired(5.0)
        traces = scope.fetch_traces([1, 2])
        snapshot = opened.snapshot()
        prefix = station_path.stem.replace('-', '_')
        assert set(opened.qcodes_station().components) == {f"{prefix}_{k}" for k in opened.instruments}
        for role in roles.ROLE_PROTOCOLS:
            opened.roles[role].safe_state()
        return temperature_k, traces, snapshot


def test_swapping_models_changes_no_procedure_facing_behaviour(bench, tmp_path):
    results = {label: run_procedure(write_station(tmp_path, models, options=options))
               for label, (models, options) in BENCHES.items()}
    (t_a, traces_a, snap_a), (t_b, traces_b, snap_b) = results.values()
    assert isinstance(t_a, float) and isinstance(t_b, float)
    for traces in (traces_a, traces_b):
        assert isinstance(traces, roles.Traces)
        assert traces.time_s.shape == (2000,) and traces.time_s.dtype == np.float64
        assert set(traces.voltage_v) == {1, 2}
        assert all(v.shape == (2000,) and v.dtype == np.float64 for v in traces.voltage_v.values())
        # Both models send 8-bit samples in 16-bit words; the driver hands on the 8-bit codes.
        for channel, record in traces.quantized_v.items():
            assert record.codes.dtype == np.int8 and np.unique(record.codes).size > 2
            np.testing.assert_allclose(record.values(), traces.voltage_v[channel], rtol=0, atol=1e-12)
        assert set(traces.quantized_v) == {1, 2}
    # Same time axis (s, relative to the trigger) and the same pulse on the monitor (V).
    np.testing.assert_allclose(traces_a.time_s, traces_b.time_s, rtol=0, atol=1e-15)
    assert traces_a.voltage_v[2].max() == pytest.approx(traces_b.voltage_v[2].max(), rel=0.25)
    for snapshot in (snap_a, snap_b):
        json.dumps(snapshot)
        assert set(snapshot["instruments"]) == {"cryostat", "pulser", "scope", "bias"}


def test_a_driver_that_cannot_be_imported_is_named(bench, tmp_path):
    path = write_station(tmp_path, {})
    root = yaml.safe_load(path.read_text())
    root["instruments"]["pulser"]["driver"] = "drivers.no_such_module.NoSuchDriver"
    path.write_text(yaml.safe_dump(root))
    with pytest.raises(StationError, match=r"instruments\.pulser\.driver.*no_such_module"):
        load_station(path)                   # refused at load, before anything is opened


def test_an_unreachable_instrument_is_named(bench, tmp_path):
    path = write_station(tmp_path, {})
    root = yaml.safe_load(path.read_text())
    root["instruments"]["bias"].update(address="TCPIP0::127.0.0.1::1::SOCKET", visalib="@py")
    path.write_text(yaml.safe_dump(root))
    with pytest.raises(StationInstrumentError, match=r"instruments\.bias: cannot open .*127\.0\.0\.1::1"):
        open_instruments(load_station(path), name_prefix="unreachable_")
