"""A whole-station snapshot reads every instrument without a failing parameter.

Parameters the stock drivers cannot read on these models (the Lake Shore HTRSET group in the
335's layout, the Keithley 2450's `sweep_axis` before any sweep) are kept out of snapshots;
everything else must be answered by the emulated instruments.
"""

from __future__ import annotations

import json
import logging

import pytest

from lab.execution.instruments import open_instruments
from contracts.files.station import read_station

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def station(private_station):
    from sim_backend import emulator

    loaded = read_station(private_station)
    yield loaded
    for library_path in {config.visalib.removesuffix("@nwlab") for config in loaded.instruments.values()}:
        emulator.close_bench(library_path)


def test_full_station_snapshot_logs_no_failed_parameter_and_is_json(station, caplog):
    caplog.set_level(logging.WARNING)
    with open_instruments(station, name_prefix="snap_") as opened:
        snapshot = opened.snapshot()
    failures = [r.getMessage() for r in caplog.records if "Could not update parameter" in r.getMessage()]
    assert failures == []
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["station"] == station.name
    assert set(snapshot["instruments"]) == set(station.instruments)
    # Read live, not just declared: the stage temperature and heater setpoint have values.
    cryostat = snapshot["instruments"]["cryostat"]
    assert isinstance(cryostat["submodules"]["A"]["parameters"]["temperature"]["value"], float)
    assert isinstance(cryostat["submodules"]["output_1"]["parameters"]["setpoint"]["value"], float)
    # The excluded parameters are absent, not reported as None.
    for output in ("output_1", "output_2", "output_3", "output_4"):
        assert "output_type" not in cryostat["submodules"][output]["parameters"]
    bias_modules = snapshot["instruments"]["bias"]["submodules"]
    assert any("_source_" in name for name in bias_modules)
    assert all("sweep_axis" not in module["parameters"] for module in bias_modules.values())


def test_excluded_parameters_would_fail_a_snapshot(station, caplog):
    """The exclusions are needed: the same parameters, read, fail on this station."""
    caplog.set_level(logging.WARNING, logger="qcodes")   # whatever level an earlier test left it at
    with open_instruments(station, name_prefix="snapx_") as opened:
        cryostat, bias = opened.instruments["cryostat"], opened.instruments["bias"]
        for output in (cryostat.output_1, cryostat.output_3):
            output.parameters["output_type"].snapshot_exclude = False
        for module in bias.submodules.values():
            if "sweep_axis" in module.parameters:
                module.parameters["sweep_axis"].snapshot_exclude = False
        opened.snapshot()
    failed = {r.getMessage().rsplit(": ", 1)[-1] for r in caplog.records
              if "Could not update parameter" in r.getMessage()}
    assert failed == {"output_type", "sweep_axis"}
