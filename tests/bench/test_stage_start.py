"""The emulated 4 K stage starts at its base temperature, so what a test or a campaign measures
does not depend on when (in wall time) it runs: the station clock runs 600x faster than wall
time, and a stage started off equilibrium would drift under the measurements."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import yaml

from sim_backend.clock import LabClock
from sim_backend.bench.station import StationFileError
from sim_backend.bench.world import CHIP_TEMPERATURE_RESOLUTION_K
from sim_backend.emulator import build_bench
from sim_backend.physics import thermal

ROOT = Path(__file__).resolve().parents[2]
BASE_K = thermal.equilibrium_temperature_k(thermal.STAGE_4K, 0.0)


def station(tmp_path: Path, **cryostat: object) -> Path:
    """stations/emulated.yaml with extra cryostat emulator settings, in tmp_path."""
    tree = yaml.safe_load((ROOT / "stations" / "emulated.yaml").read_text())
    tree["chip"] = str(ROOT / "stations" / "chips" / "default-neuron.yaml")
    tree["instruments"]["cryostat"]["emulator"].update(cryostat)
    path = tmp_path / f"station-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def krdg(bench) -> bytes:
    device = bench.device("cryostat")
    device.write_bytes(b"KRDG? A\n")
    return device.read_message()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("acceleration", [None, 1.0], ids=["station-clock-600x", "wall-speed"])
def test_two_fresh_benches_read_the_same_base_temperature_whenever_they_are_read(acceleration):
    """At 600x a stage started at 3.0 K reached base within ~5 ms of wall time; at wall speed
    (the driver tests' clock) it read ~3.03 K at once and ~3.14 K half a second later."""
    path = ROOT / "stations" / "emulated.yaml"      # the shipped station file

    def fresh():
        return build_bench(path, clock=None if acceleration is None else LabClock(acceleration))

    assert BASE_K == pytest.approx(3.171, abs=1e-3)
    early = fresh()
    early_k, early_reply = early.world.stage_temperature_k(), krdg(early)
    late = fresh()
    time.sleep(0.5)
    assert late.world.now_s() >= 0.5
    late_k, late_reply = late.world.stage_temperature_k(), krdg(late)
    # The chip sees the stage on a 1 µK grid (world.CHIP_TEMPERATURE_RESOLUTION_K): the same point of it.
    assert early_k == late_k == pytest.approx(BASE_K, abs=CHIP_TEMPERATURE_RESOLUTION_K / 2)
    # Same sensor-noise draw on a fresh bench: the instrument's answers are identical too.
    assert early_reply == late_reply
    assert float(late_reply) == pytest.approx(BASE_K, abs=0.01)


@pytest.mark.parametrize("setting, start_k", [({}, BASE_K), ({"initial_temperature_k": "base"}, BASE_K),
                                              ({"initial_temperature_k": 5}, 5.0),
                                              ({"initial_temperature_k": 300.0}, 300.0)])
def test_initial_temperature_is_base_by_default_by_keyword_or_a_number(tmp_path, setting, start_k):
    bench = build_bench(station(tmp_path, **setting))
    assert bench.world.panels["cryostat"].state.temperature_k == pytest.approx(start_k, rel=1e-12)


@pytest.mark.parametrize("value", ["warm", "Base", "3.0 K", None, True, 0, -1.0, float("nan"), float("inf"), [3.0]])
def test_a_bad_initial_temperature_is_refused_naming_file_instrument_and_key(tmp_path, value):
    path = station(tmp_path, initial_temperature_k=value)
    with pytest.raises(StationFileError) as error:
        build_bench(path)
    assert str(error.value).startswith(f"{path}: instruments.cryostat: emulator.initial_temperature_k: expected "
                                       "a temperature in kelvin > 0 or 'base'"), error.value
