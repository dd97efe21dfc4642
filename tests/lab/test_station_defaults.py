"""A station file's `procedure_defaults`: which procedures they reach, what wins, what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from contracts.files.station import StationError, read_station
from lab.app.campaign import CampaignError, with_station_defaults

ROOT = Path(__file__).resolve().parents[2]


def station_with(tmp_path, defaults) -> Path:
    tree = yaml.safe_load((ROOT / "stations" / "emulated.yaml").read_text())
    tree["chip"] = str((ROOT / "stations" / tree["chip"]).resolve())
    tree["procedure_defaults"] = defaults
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def test_a_plain_name_reaches_every_procedure_that_has_it_and_a_procedures_own_wins(tmp_path):
    station = read_station(station_with(tmp_path, {"sample_rate_hz": 16e9, "energy_per_spike.sample_rate_hz": 10e9,
                                                   "cooldown.setpoint_k": 2.0}))
    merged = with_station_defaults(station, {"refractory": {"sample_rate_hz": 8e9}})
    assert merged["strength_duration"]["sample_rate_hz"] == 16e9
    assert merged["energy_per_spike"]["sample_rate_hz"] == 10e9      # its own over the plain one
    assert merged["refractory"]["sample_rate_hz"] == 8e9             # the operator's over both
    assert merged["cooldown"] == {"setpoint_k": 2.0}
    assert "iv_sweep" not in merged                                  # it has no sample rate


@pytest.mark.parametrize("defaults, problem", [
    ({"no_such_parameter": 1}, "procedure_defaults.no_such_parameter: no procedure has a parameter"),
    ({"cooldown.sample_rate_hz": 1e9}, "'cooldown' has no parameter 'sample_rate_hz'"),
    ({"nowhere.setpoint_k": 2.0}, "no procedure 'nowhere'"),
])
def test_a_default_no_procedure_takes_is_refused(tmp_path, defaults, problem):
    with pytest.raises(CampaignError, match=problem):
        with_station_defaults(read_station(station_with(tmp_path, defaults)))


@pytest.mark.parametrize("defaults, problem", [
    ({"a.b.c": 1}, "expected a parameter name or procedure.parameter"),
    ({"sample_rate_hz": [1, 2]}, "expected a number, a string or true/false"),
])
def test_a_malformed_default_is_refused_by_the_file_reader(tmp_path, defaults, problem):
    with pytest.raises(StationError, match=problem):
        read_station(station_with(tmp_path, defaults))
