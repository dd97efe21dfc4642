"""Composition root on the lab side: a station file's instruments, opened through their drivers.

Each instrument's driver class is imported by the dotted path the station file names and built
with the instrument's name, address, `visalib` (if any), options and safety envelope; a pulse
generator gets its envelope in generator volts, which the wiring derives from the station's
limits at the chip (`pulse_current_max_a`), and the channel its wiring path starts from.
Real or emulated makes no difference here.
Stock parameters that no instrument can answer in a snapshot are excluded (`SNAPSHOT_EXCLUDED`).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import Any

from contracts.files.station import SOURCE_ROLES, Station
from contracts.roles import role_key
from contracts.wiring import wiring_of


#: Stock QCoDeS parameters left out of every snapshot, by the stock (sub)module class that declares
#: them ("module.QualName"; subclasses match too). Each is a defect of the stock driver, not a
#: setting the instrument could report:
#: - Keithley 2450 source `sweep_axis`: computed from `sweep_setup()`'s arguments, it queries
#:   nothing and raises until a sweep has been set up, so a snapshot of a freshly opened (or
#:   reset) instrument fails on it for each source function.
SNAPSHOT_EXCLUDED: dict[str, tuple[str, ...]] = {
    "qcodes.instrument_drivers.Keithley.Keithley_2450.Keithley2450Source": ("sweep_axis",),
}


class StationInstrumentError(RuntimeError):
    """An instrument of the station could not be opened; names the station file key."""


@dataclass
class StationInstruments:
    station: Station
    #: station file key (e.g. "scope") -> driver
    instruments: dict[str, Any]
    #: role (e.g. "oscilloscope") -> driver of its primary instrument, and `<role>:<chip port>`
    #: -> driver of each further source (contracts.roles.role_key)
    roles: dict[str, Any] = field(default_factory=dict)
    _qcodes_station: Any = None

    def qcodes_station(self) -> Any:
        """A `qcodes.station.Station` holding every driver (built once)."""
        if self._qcodes_station is None:
            from qcodes.station import Station as QcodesStation
            self._qcodes_station = QcodesStation(*self.instruments.values())
        return self._qcodes_station

    def snapshot(self) -> dict[str, Any]:
        """Every instrument's settings as a JSON-able dict (queries only, changes nothing)."""
        from qcodes.utils import NumpyJSONEncoder
        raw = {name: driver.snapshot(update=True) for name, driver in self.instruments.items()}
        return json.loads(json.dumps({"station": self.station.name, "instruments": raw}, cls=NumpyJSONEncoder))

    def close(self) -> None:
        """Close every connection (outputs are left as they are: bring them to safe states first)."""
        if self._qcodes_station is not None:
            for name in list(self._qcodes_station.components):
                self._qcodes_station.remove_component(name)
        for driver in self.instruments.values():
            driver.close()
        self.instruments.clear()
        self.roles.clear()

    def __enter__(self) -> StationInstruments:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _modules(node: Any) -> list[Any]:
    """`node` and every submodule below it (channel lists included)."""
    found = [node]
    for sub in getattr(node, "submodules", {}).values():
        if hasattr(sub, "parameters"):
            found += _modules(sub)
        else:  # a channel list/tuple: its channels
            for channel in sub:
                found += _modules(channel)
    return found


def exclude_stock_snapshot_defects(driver: Any) -> None:
    """Mark the `SNAPSHOT_EXCLUDED` parameters of `driver` and its submodules `snapshot_exclude`."""
    for module in _modules(driver):
        for cls in type(module).__mro__:
            for name in SNAPSHOT_EXCLUDED.get(f"{cls.__module__}.{cls.__qualname__}", ()):
                if name in module.parameters:
                    module.parameters[name].snapshot_exclude = True


def driver_class(station: Station, name: str) -> type:
    """The class `instruments.<name>.driver` names."""
    config = station.instruments[name]
    module_name, _, class_name = config.driver.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise StationInstrumentError(
            f"{station.path}: instruments.{name}.driver: cannot import {config.driver!r}: {exc}") from exc


def driver_arguments(station: Station, name: str) -> dict[str, Any]:
    """Keyword arguments for the driver of `instruments.<name>` (besides name and address)."""
    config = station.instruments[name]
    kwargs: dict[str, Any] = dict(config.options)
    if config.visalib:
        kwargs["visalib"] = config.visalib
    kwargs["envelope"] = config.envelope
    if config.role == "pulse_generator":
        wiring = wiring_of(station)
        path = wiring.pulse_path(name)
        if path is not None:
            kwargs.setdefault("channel", path.channel)
        kwargs["envelope"] = wiring.generator_envelope(name)
    return kwargs


def roles_of(station: Station, drivers: dict[str, Any]) -> dict[str, Any]:
    """The run's roles mapping (contracts.roles.role_key) from the drivers by station file key."""
    roles = {role: drivers[station.by_role(role).name] for role in {c.role for c in station.instruments.values()}}
    for role in SOURCE_ROLES:
        for path in station.paths(role)[1:]:
            roles[role_key(role, path.chip_port)] = drivers[path.instrument]
    return roles


def open_instruments(station: Station, *, name_prefix: str = "") -> StationInstruments:
    """Open every instrument of the station; on any failure, close those already open."""
    opened = StationInstruments(station, {})
    try:
        for name, config in station.instruments.items():
            cls = driver_class(station, name)
            try:
                driver = cls(f"{name_prefix}{name}", config.address, **driver_arguments(station, name))
            except Exception as exc:
                raise StationInstrumentError(
                    f"{station.path}: instruments.{name}: cannot open {config.driver} at {config.address}"
                    f"{' via ' + config.visalib if config.visalib else ''}: {type(exc).__name__}: {exc}") from exc
            opened.instruments[name] = driver
            exclude_stock_snapshot_defects(driver)
        opened.roles.update(roles_of(station, opened.instruments))
    except BaseException:
        opened.close()
        raise
    return opened
