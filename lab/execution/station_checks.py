"""A station file as the lab runs it: read (`contracts.files.station`), then checked against the
driver classes it names, which this module imports (no instrument is opened).

So `nwlab dry-run`, `nwlab run` and `nwlab campaign` refuse alike, before anything is opened, a
misspelt driver module or class, a wired channel the instrument does not have (or that its
driver is told not to drive), an option value a driver's `check_options` refuses (a Lake Shore
heater range the model does not have), and a clock that does not move (`clock.acceleration: 0`, which
the emulator's own tests use to move lab time by hand). The messages have the station file's shape (file, key path, problem).
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from contracts.files.station import InstrumentConfig, Station, shown, station_error
from contracts.files.station import read_station
from contracts.files.yaml12 import clip


def load_station(path: str | Path) -> Station:
    """Read a station file and check its drivers; a problem raises StationError naming the key path."""
    station = read_station(path)
    check_drivers(station)
    return station


def check_drivers(station: Station) -> None:
    """Lab time that moves, every driver class imports and takes its options (a driver's
    `check_options`), and every wired channel is one its instrument has."""
    if station.clock_acceleration <= 0:     # frozen lab time: the emulator's tests move it themselves
        raise station_error(station.path, "clock.acceleration", f"must be > 0, got {station.clock_acceleration:g}")
    for config in station.instruments.values():
        cls = driver_class(station, config.driver, f"instruments.{config.name}.driver")
        check_options = getattr(cls, "check_options", None)     # a driver's own static checks of its options
        if check_options is not None:
            try:
                check_options(config.options)
            except (ValueError, TypeError) as exc:
                raise station_error(station.path, f"instruments.{config.name}.options", clip(exc)) from None
    for wire in (*station.pulse_inputs, *station.bias_lines):
        _check_channel(station, station.instruments[wire.instrument], wire.channel,
                       f"wiring.{clip(wire.name)}.source.channel", source=True)
    scope = next(i for i in station.instruments.values() if i.role == "oscilloscope")
    for index, readout in enumerate(station.readouts):
        _check_channel(station, scope, readout.scope_channel, f"wiring.readout[{index}].scope_channel", source=False)


def driver_class(station: Station, driver: str, key_path: str) -> type:
    """The class `driver` names, imported now (no instrument is opened), so that a misspelt
    module or class is refused by the dry run rather than when the run opens instruments."""
    module_name, _, class_name = driver.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except Exception as exc:  # noqa: BLE001 - any failure to import is the file's problem
        raise station_error(station.path, key_path,
                            f"cannot import {shown(driver)}: {type(exc).__name__}: {clip(exc)}") from None
    if not isinstance(cls, type):
        raise station_error(station.path, key_path, f"{shown(driver)} is a {type(cls).__name__}, not a driver class")
    return cls


def channel_counts(station: Station, config: InstrumentConfig) -> list[tuple[int, str]]:
    """Every statement of how many channels the instrument has, with where it is made: its
    `options.channels` and `emulator.channels`, the driver's `channels` default or
    `number_of_channels`; a driver taking neither `channel` nor `channels` drives one output."""
    where = f"instruments.{config.name}"
    counts = [(config.options[key], f"{where}.options.channels") for key in ("channels",) if key in config.options]
    counts += [(config.emulator[key], f"{where}.emulator.channels") for key in ("channels",) if key in config.emulator]
    cls = driver_class(station, config.driver, f"{where}.driver")
    parameters = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass):
            try:
                parameters.update(inspect.signature(vars(klass)["__init__"]).parameters)
            except (TypeError, ValueError):    # a builtin's __init__
                pass
    default = getattr(parameters.get("channels"), "default", None)
    if "channels" not in config.options and isinstance(default, int):
        counts.append((default, f"the default of {config.driver}"))
    if isinstance(getattr(cls, "number_of_channels", None), int):
        counts.append((cls.number_of_channels, f"{config.driver}.number_of_channels"))
    if not counts and "channel" not in parameters:
        counts.append((1, f"{config.driver} drives one output"))
    return [(n, source) for n, source in counts if isinstance(n, int) and not isinstance(n, bool)]


def _check_channel(station: Station, config: InstrumentConfig, channel: int, key_path: str, *, source: bool) -> None:
    """A wired channel the instrument has, and (for a source) the one its driver is told to drive."""
    chosen = config.options.get("channel") if source else None
    if chosen is not None and chosen != channel:
        raise station_error(station.path, key_path,
                            f"channel {channel} disagrees with instruments.{config.name}.options.channel "
                            f"= {shown(chosen)}: the instrument would drive another channel than the wiring says")
    for count, stated in channel_counts(station, config):
        if channel > count:
            raise station_error(station.path, key_path, f"instruments.{config.name} has no channel {channel}: "
                                                        f"{count} channel{'s' if count != 1 else ''} ({stated})")
