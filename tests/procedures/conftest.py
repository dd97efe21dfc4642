"""Stations for procedure tests: tmp copies of stations/emulated.yaml, envelopes adjustable."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from contracts.files.station import read_station

ROOT = Path(__file__).resolve().parents[2]
EMULATED = ROOT / "stations" / "emulated.yaml"


def station_copy(tmp_path: Path, envelope: dict | None = None):
    """A copy of the emulated station whose chip is an existing file (the shipped chip when it
    exists, else a placeholder), with `envelope` = {instrument: {limit: value}} merged in."""
    tree = yaml.safe_load(EMULATED.read_text())
    chip = (EMULATED.parent / tree["chip"]).resolve()
    if not chip.is_file():
        tmp_path.mkdir(parents=True, exist_ok=True)
        chip = tmp_path / "placeholder-chip.yaml"
        chip.write_text("# placeholder: dry runs need an existing chip file only\n")
    tree["chip"] = str(chip)
    for instrument, limits in (envelope or {}).items():
        tree["instruments"][instrument].setdefault("envelope", {}).update(limits)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return read_station(path)


@pytest.fixture
def station(tmp_path):
    return station_copy(tmp_path)
