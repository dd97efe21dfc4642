"""The emulator's reading of a station file: which instruments to emulate, the wiring, the chip.

The full validation of station files belongs to `contracts.files.station` (the side that drives
instruments); the emulator reads only what it needs to build the bench and names the file and
key path when that part is malformed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class Yaml12FloatLoader(yaml.SafeLoader):
    """SafeLoader that reads `2e9` and `2.0e9` as floats, as YAML 1.2 does (1.1 reads strings)."""

    def compose_node(self, parent, index):
        # Refused as contracts.files.yaml12 refuses them: nested aliases let 1 KB stand for gigabytes.
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.YAMLError(f"line {event.start_mark.line + 1}: YAML anchors and aliases are not allowed")
        return super().compose_node(parent, index)


Yaml12FloatLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


class StationFileError(ValueError):
    """A station file the emulator cannot build a bench from."""


@dataclass(frozen=True)
class EmulatedInstrument:
    role_name: str          # key under `instruments:` (e.g. "scope")
    role: str               # e.g. "oscilloscope"
    address: str            # VISA resource name the drivers open
    model: str              # emulator personality, e.g. "keysight_infiniium"
    settings: dict[str, Any] = field(default_factory=dict)   # the rest of `emulator:`
    faults: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PulseInputWiring:
    instrument: str
    channel: int
    chip_port: str
    attenuation_db: float
    series_resistance_ohm: float


@dataclass(frozen=True)
class BiasWiring:
    instrument: str
    channel: int
    chip_port: str
    line_resistance_ohm: float


@dataclass(frozen=True)
class ReadoutWiring:
    scope_channel: int
    chip_node: str | None        # a chip node, or None for a monitor of a wiring path
    monitor: str | None
    gain_db: float
    bandwidth_hz: float
    input_impedance_ohm: float | None


@dataclass(frozen=True)
class EmulatedStation:
    path: Path
    name: str
    chip_path: Path
    clock_acceleration: float
    emulator_seed: int
    instruments: tuple[EmulatedInstrument, ...]
    pulse_inputs: tuple[PulseInputWiring, ...]
    bias: tuple[BiasWiring, ...]
    readout: tuple[ReadoutWiring, ...]

    def instrument(self, role_name: str) -> EmulatedInstrument:
        for instrument in self.instruments:
            if instrument.role_name == role_name:
                return instrument
        raise KeyError(role_name)


def normalise_address(address: str) -> str:
    """Compare VISA resource names case-insensitively and without spaces."""
    return address.replace(" ", "").upper()


class _Reader:
    """Walks the YAML tree and reports errors with the file and the key path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key_path: str, problem: str) -> StationFileError:
        return StationFileError(f"{self.path}: {key_path}: {problem}")

    def mapping(self, node: Any, key_path: str) -> dict[str, Any]:
        if not isinstance(node, dict):
            raise self.fail(key_path, f"expected a mapping, got {type(node).__name__}")
        return node

    def get(self, node: dict, key: str, key_path: str, kind: type, default: Any = ...) -> Any:
        if key not in node:
            if default is ...:
                raise self.fail(f"{key_path}.{key}" if key_path else key, "missing")
            return default
        value = node[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:       # an int too large for a float: reported below
                pass
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise self.fail(f"{key_path}.{key}" if key_path else key,
                            f"expected {kind.__name__}, got {value!r}")
        return value

    def only(self, node: dict, allowed: set[str], key_path: str) -> None:
        unknown = sorted(set(node) - allowed, key=str)
        if unknown:
            raise self.fail(f"{key_path}.{unknown[0]}", f"unknown key; expected one of {', '.join(sorted(allowed))}")

    def file_path(self, base: Path, text: str, key_path: str) -> Path:
        if "\0" in text:
            raise self.fail(key_path, f"a path cannot contain a NUL byte: {text!r}")
        try:
            return (base / text).resolve()
        except (OSError, ValueError, RuntimeError) as error:
            raise self.fail(key_path, f"not a usable path {text!r}: {error}") from None


def load_emulated_station(path: str | Path) -> EmulatedStation:
    try:
        path = Path(path).resolve()
    except (OSError, ValueError, RuntimeError) as exc:     # ValueError: a NUL byte in the path
        raise StationFileError(f"{path}: cannot read station file: {exc}") from None
    reader = _Reader(path)
    try:
        tree = yaml.load(path.read_text(encoding="utf-8"), Loader=Yaml12FloatLoader)
    except UnicodeDecodeError as error:
        raise StationFileError(f"{path}: cannot read station file: not UTF-8 text "
                               f"(byte {error.start}: {error.reason})") from None
    except (OSError, ValueError) as error:     # ValueError: a NUL byte in the path
        raise StationFileError(f"{path}: cannot read station file: {error}") from error
    except yaml.YAMLError as error:
        raise StationFileError(f"{path}: not valid YAML: {error}") from error
    except RecursionError:
        raise StationFileError(f"{path}: not valid YAML: nested too deeply") from None
    root = reader.mapping(tree, "(top level)")

    chip_path = reader.file_path(path.parent, reader.get(root, "chip", "", str), "chip")
    clock = reader.mapping(root.get("clock") or {}, "clock")
    acceleration = reader.get(clock, "acceleration", "clock", float, 1.0)

    instruments = []
    for role_name, node in reader.mapping(root.get("instruments"), "instruments").items():
        key_path = f"instruments.{role_name}"
        node = reader.mapping(node, key_path)
        emulator = reader.mapping(node.get("emulator") or {}, f"{key_path}.emulator")
        settings = {k: v for k, v in emulator.items() if k not in ("model", "faults")}
        instruments.append(EmulatedInstrument(
            role_name=role_name,
            role=reader.get(node, "role", key_path, str),
            address=normalise_address(reader.get(node, "address", key_path, str)),
            model=reader.get(emulator, "model", f"{key_path}.emulator", str),
            settings=settings,
            faults=reader.mapping(emulator.get("faults") or {}, f"{key_path}.emulator.faults"),
        ))

    wiring = reader.mapping(root.get("wiring") or {}, "wiring")
    pulse_inputs, biases, readouts = [], [], []
    for name, node in wiring.items():
        key_path = f"wiring.{name}"
        if name == "readout":
            if not isinstance(node, list):
                raise reader.fail(key_path, f"expected a list of scope channels, got {type(node).__name__}")
            for index, channel in enumerate(node):
                readouts.append(_readout(reader, channel, f"{key_path}[{index}]"))
            continue
        node = reader.mapping(node, key_path)
        source = reader.mapping(reader.get(node, "source", key_path, dict), f"{key_path}.source")
        reader.only(source, {"instrument", "channel"}, f"{key_path}.source")
        instrument = reader.get(source, "instrument", f"{key_path}.source", str)
        channel = reader.get(source, "channel", f"{key_path}.source", int, 1)
        chip_port = reader.get(node, "chip_port", key_path, str)
        if "series_resistance_ohm" in node:
            pulse_inputs.append(PulseInputWiring(
                instrument, channel, chip_port,
                reader.get(node, "attenuation_db", key_path, float, 0.0),
                reader.get(node, "series_resistance_ohm", key_path, float)))
        else:
            biases.append(BiasWiring(
                instrument, channel, chip_port,
                reader.get(node, "line_resistance_ohm", key_path, float, 0.0)))

    emulator_block = reader.mapping(root.get("emulator") or {}, "emulator")
    reader.only(emulator_block, {"seed"}, "emulator")
    station = EmulatedStation(
        path=path,
        name=reader.get(root, "station", "", str, path.stem),
        chip_path=chip_path,
        clock_acceleration=acceleration,
        emulator_seed=reader.get(emulator_block, "seed", "emulator", int, 0),
        instruments=tuple(instruments),
        pulse_inputs=tuple(pulse_inputs),
        bias=tuple(biases),
        readout=tuple(readouts),
    )
    _check_references(reader, station)
    return station


def _readout(reader: _Reader, node: Any, key_path: str) -> ReadoutWiring:
    node = reader.mapping(node, key_path)
    chip_node = reader.get(node, "chip_node", key_path, str, None)
    monitor = reader.get(node, "monitor", key_path, str, None)
    if (chip_node is None) == (monitor is None):
        raise reader.fail(key_path, "give exactly one of chip_node or monitor")
    return ReadoutWiring(
        scope_channel=reader.get(node, "scope_channel", key_path, int),
        chip_node=chip_node,
        monitor=monitor,
        gain_db=reader.get(node, "gain_db", key_path, float, 0.0),
        bandwidth_hz=reader.get(node, "bandwidth_hz", key_path, float, 1e12),
        input_impedance_ohm=reader.get(node, "input_impedance_ohm", key_path, float, None),
    )


def _check_references(reader: _Reader, station: EmulatedStation) -> None:
    names = {instrument.role_name for instrument in station.instruments}
    for wire in (*station.pulse_inputs, *station.bias):
        if wire.instrument not in names:
            raise reader.fail("wiring", f"source instrument {wire.instrument!r} is not under instruments")
    paths = {"pulse_input"} | {f"pulse_input_{i}" for i in range(len(station.pulse_inputs))}
    for index, channel in enumerate(station.readout):
        if channel.monitor is not None and channel.monitor not in paths:
            raise reader.fail(f"wiring.readout[{index}].monitor", f"unknown wiring path {channel.monitor!r}")
