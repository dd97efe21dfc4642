"""The emulated bench, assembled: the world, one personality per instrument, fault plans.

This is the emulator's composition root, above the personalities and the world. Transports
find benches here: `open_bench("<station.yaml>[#<bench-id>]")` builds each distinct library path
once, so every test can have a fresh bench by choosing a new bench id.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from contracts.files.addresses import normalise_address
from sim_backend.bench.station import EmulatedStation, StationFileError, load_emulated_station
from sim_backend.bench.world import World
from sim_backend.clock import LabClock
from sim_backend.faults.settings import InstrumentFaults
from sim_backend.received_log import attach_received_log
from sim_backend.scpi.models import personality_classes

DEFAULT_STATION = Path(__file__).resolve().parents[1] / "stations" / "emulated.yaml"


@dataclass(frozen=True)
class InstrumentEntry:
    role: str        # role name in the station file (e.g. "scope")
    model: str
    address: str


@dataclass
class Bench:
    world: World
    devices: dict[str, object]                              # address -> personality
    instruments: list[InstrumentEntry]
    faults: dict[str, InstrumentFaults] = field(default_factory=dict)

    @property
    def lock(self) -> threading.RLock:
        return self.world.lock

    @property
    def station(self) -> EmulatedStation:
        return self.world.station

    def faults_for(self, address: str) -> InstrumentFaults:
        return self.faults[normalise_address(address)]

    def device(self, role_name: str):
        """The personality serving a role (tests and fault injection use this)."""
        for entry in self.instruments:
            if entry.role == role_name:
                return self.devices[entry.address]
        raise KeyError(f"no instrument with role name {role_name!r} on this bench")


def build_bench(station_path: str | Path, *, seed: int | None = None, clock: LabClock | None = None) -> Bench:
    station = load_emulated_station(station_path)
    world = World(station, seed=station.emulator_seed if seed is None else seed, clock=clock)
    classes = personality_classes()
    devices, entries, faults = {}, [], {}
    for instrument in station.instruments:
        cls = classes.get(instrument.model)
        if cls is None:
            raise StationFileError(
                f"{station.path}: instruments.{instrument.role_name}.emulator.model: unknown model "
                f"{instrument.model!r}; the emulator has {', '.join(sorted(classes))}")
        try:
            world.panels[instrument.role_name] = cls.create_panel(instrument.model, instrument.settings)
        except ValueError as exc:   # a bad emulator setting: say in which file and instrument
            raise StationFileError(f"{station.path}: instruments.{instrument.role_name}: {exc}") from None
        device = cls(world, instrument.role_name, instrument.model, instrument.settings)
        attach_received_log(instrument.role_name, instrument.model, device)
        devices[instrument.address] = device
        entries.append(InstrumentEntry(instrument.role_name, instrument.model, instrument.address))
        where = f"{station.path}: instruments.{instrument.role_name}.emulator.faults"
        faults[instrument.address] = InstrumentFaults.from_settings(
            instrument.faults, where=where, queue_error=getattr(device, "queue_error", None))
        _schedule_world_faults(world, instrument.faults, where)
    for start_s, duration_s, heat_w in world.pending_excursions:
        world.inject_excursion(heat_w=heat_w, duration_s=duration_s, start_s=start_s)
    return Bench(world, devices, entries, faults)


def _schedule_world_faults(world: World, settings: dict, where: str) -> None:
    """Faults that act on the chip or the fridge rather than on the transport."""
    def number(node: dict, key: str, key_path: str) -> float:
        value = node.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise StationFileError(f"{where}.{key_path}.{key}: must be a number >= 0, got {value!r}")
        return float(value)

    latch = settings.get("latch_nanowire")
    if latch is not None:
        if not isinstance(latch, dict) or not isinstance(latch.get("element"), str):
            raise StationFileError(f"{where}.latch_nanowire: expected {{element: <nanowire>, after_s: <s>}} "
                                   "(optionally repeat: true)")
        unknown = sorted(set(latch) - {"element", "after_s", "repeat"})
        if unknown or not isinstance(latch.get("repeat", False), bool):
            raise StationFileError(f"{where}.latch_nanowire: unknown key {unknown[0]!r}" if unknown else
                                   f"{where}.latch_nanowire.repeat: expected true or false, got {latch['repeat']!r}")
        world.inject_latch(latch["element"], after_s=number(latch, "after_s", "latch_nanowire"),
                           repeat=latch.get("repeat", False))
    excursion = settings.get("fridge_excursion")
    if excursion is not None:
        if not isinstance(excursion, dict):
            raise StationFileError(f"{where}.fridge_excursion: expected {{after_s, duration_s, heat_w}}")
        world.pending_excursions.append(tuple(number(excursion, key, "fridge_excursion")
                                              for key in ("after_s", "duration_s", "heat_w")))


_benches: dict[str, Bench] = {}
_benches_lock = threading.Lock()


def open_bench(library_path: str) -> Bench:
    """The bench for `"<station.yaml>[#<bench-id>]"`, built on first use ("" = embedded default)."""
    with _benches_lock:
        bench = _benches.get(library_path)
        if bench is None:
            path = library_path.split("#", 1)[0] or str(DEFAULT_STATION)
            bench = _benches[library_path] = build_bench(path)
        return bench


def close_bench(library_path: str) -> None:
    """Forget a bench (the next open builds a fresh one)."""
    with _benches_lock:
        _benches.pop(library_path, None)
