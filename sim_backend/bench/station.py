"""The emulator's view of a station file: which instruments to emulate (model, settings,
faults, address), the wiring and the chip, taken from the one reading of the file
(`contracts.files.station`), so the lab and the emulator cannot read it differently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.files.addresses import normalise_address
from contracts.files.chip import ChipDocument
from contracts.files.station import BiasLine, InstrumentConfig, PulseInput, Readout, Station, read_station
from contracts.files.station import StationError as StationFileError

__all__ = ["EmulatedInstrument", "EmulatedStation", "StationFileError", "load_emulated_station"]


@dataclass(frozen=True)
class EmulatedInstrument:
    """One `instruments:` entry as the emulator plays it."""
    config: InstrumentConfig

    @property
    def role_name(self) -> str:         # key under `instruments:` (e.g. "scope")
        return self.config.name

    @property
    def role(self) -> str:              # e.g. "oscilloscope"
        return self.config.role

    @property
    def address(self) -> str:           # the VISA resource name the drivers open, normalised
        return normalise_address(self.config.address)

    @property
    def model(self) -> str:             # emulator personality, e.g. "keysight_infiniium"
        return self.config.emulated.model or ""

    @property
    def settings(self) -> Mapping[str, Any]:    # the rest of `emulator:`
        return self.config.emulated.settings

    @property
    def faults(self) -> Mapping[str, Any]:
        return self.config.emulated.faults


@dataclass(frozen=True)
class EmulatedStation:
    """A read station file, with the names the bench uses."""
    station: Station
    instruments: tuple[EmulatedInstrument, ...]

    path = property(lambda self: self.station.path)
    name = property(lambda self: self.station.name)
    chip_path = property(lambda self: self.station.chip_path)
    clock_acceleration = property(lambda self: self.station.clock_acceleration)

    @property
    def chip(self) -> ChipDocument:
        return self.station.chip

    @property
    def emulator_seed(self) -> int:
        return self.station.emulator_seed or 0

    @property
    def pulse_inputs(self) -> tuple[PulseInput, ...]:
        return self.station.pulse_inputs

    @property
    def bias_lines(self) -> tuple[BiasLine, ...]:
        return self.station.bias_lines

    @property
    def readouts(self) -> tuple[Readout, ...]:
        return self.station.readouts

    def instrument(self, role_name: str) -> EmulatedInstrument:
        for instrument in self.instruments:
            if instrument.role_name == role_name:
                return instrument
        raise KeyError(role_name)


def load_emulated_station(path: str | Path) -> EmulatedStation:
    """Read a station file for the emulator: every instrument needs `emulator.model`."""
    station = read_station(path)
    for config in station.instruments.values():
        if config.emulated.model is None:
            raise StationFileError(f"{station.path}: instruments.{config.name}.emulator.model: missing")
    return EmulatedStation(station, tuple(EmulatedInstrument(c) for c in station.instruments.values()))
