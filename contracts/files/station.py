"""Station files: instruments, their safety envelopes, wiring and chip, validated on load.

Every error names the file, the key path and the problem, and nothing is built from a file that
fails. What a run would refuse or fail on for reasons visible in the file is refused here, before
any instrument is opened, so `nwlab dry-run` and the start of every run say the same: each role
filled by exactly one instrument, two instruments never at one address, driver classes that
import, wiring for the pulse input, the bias and the readout, wired channels the instruments
have, and chip ports and nodes the chip file has. The schema is documented in
docs/station-file.md; `stations/emulated.yaml` and `stations/example-lan.yaml` are complete examples.
"""

from __future__ import annotations

import importlib
import inspect
import math
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.envelope import ENVELOPE_FIELDS, Envelope
from contracts.files.yaml12 import clip, parse_yaml, read_text
from contracts.units import db_to_voltage_ratio

ROLES = ("temperature_controller", "pulse_generator", "oscilloscope", "bias_source")

#: Fault names the emulator accepts under `instruments.<name>.emulator.faults`. A copy of the
#: list documented in sim_backend/faults/settings.py (`_PERIODIC_KEYS`, `WORLD_KEYS` and
#: reply_delay_s), which lab does not import; the emulator checks the values when it builds
#: the bench, and tests/lab/test_config.py checks that the two lists agree.
EMULATOR_FAULTS = ("reply_delay_s", "withhold_every", "drop_every", "garble_every", "truncate_every",
                   "scpi_error_every", "latch_nanowire", "fridge_excursion")
#: pyvisa backends that serve instruments inside the process (`<file>[#bench]@nwlab`): the same
#: address on two such benches is two instruments.
IN_PROCESS_BACKENDS = ("nwlab", "sim")
#: The chip file format the station's `chip:` must name (sim_backend/chip/reader.py reads it in full).
CHIP_FORMAT = "nwlab-chip/1"


@dataclass(frozen=True)
class GuardSettings:
    """The station file's `guards:` section."""
    temperature_window_k: tuple[float, float] = (0.0, math.inf)
    temperature_tolerance_k: float = 0.1     # around a setpoint the run waited for
    check_interval_s: float = 1.0            # lab time between readings while measuring
    excursion_wait_s: float = 1800.0         # lab time the run waits for the stage to come back
    excursion_hold_s: float = 10.0           # back inside this long before measuring again
    retakes: int = 3                         # one measurement taken again at most this often in a row


class StationError(ValueError):
    """A station file that cannot be used; the message names file, key path and problem."""


@dataclass(frozen=True)
class InstrumentConfig:
    name: str                 # key under `instruments:`, e.g. "scope"
    role: str                 # one of ROLES
    driver: str               # dotted path of the driver class
    address: str              # VISA resource name
    visalib: str | None       # pyvisa backend spec, relative paths resolved against the file
    options: dict[str, Any]
    envelope: Envelope
    emulator: dict[str, Any]  # kept for the record; drivers never read it

    @property
    def resource_key(self) -> str:
        """What identifies the instrument itself: its normalised address, on the in-process
        bench its `visalib` names (a real address is one instrument whatever library reaches it)."""
        return resource_key(self.address, self.visalib)


def normalise_address(address: str) -> str:
    """One spelling per VISA resource: pyvisa's canonical name (board 0, `inst0`, `::INSTR`
    filled in), without spaces, upper case (`tcpip::h::5025::socket` is `TCPIP0::H::5025::SOCKET`)."""
    from pyvisa import rname

    text = "".join(address.split()).upper()
    try:
        text = rname.to_canonical_name(text)
    except Exception:  # noqa: BLE001 - not a name pyvisa parses: compare the text itself
        pass
    return text.upper()


def resource_key(address: str, visalib: str | None) -> str:
    if visalib and visalib.rpartition("@")[2] in IN_PROCESS_BACKENDS:
        return f"{visalib} {normalise_address(address)}"
    return normalise_address(address)


@dataclass(frozen=True)
class PulseInput:
    instrument: str
    channel: int
    chip_port: str
    attenuation_db: float
    series_resistance_ohm: float

    @property
    def amperes_per_volt(self) -> float:
        """Chip current per volt at the generator output."""
        return db_to_voltage_ratio(self.attenuation_db) / self.series_resistance_ohm


@dataclass(frozen=True)
class BiasLine:
    instrument: str
    channel: int
    chip_port: str
    line_resistance_ohm: float


@dataclass(frozen=True)
class Readout:
    scope_channel: int
    chip_node: str | None
    monitor: str | None
    gain_db: float
    bandwidth_hz: float
    input_impedance_ohm: float | None

    @property
    def volts_at_source_per_volt(self) -> float:
        """What one volt at the scope input was at the chip node (or the monitored output)."""
        return 1.0 / db_to_voltage_ratio(-self.gain_db)


@dataclass(frozen=True)
class Station:
    path: Path
    name: str
    description: str
    chip_path: Path
    clock_acceleration: float
    emulator_seed: int | None
    instruments: dict[str, InstrumentConfig]
    pulse_inputs: tuple[PulseInput, ...]
    bias_lines: tuple[BiasLine, ...]
    readouts: tuple[Readout, ...]
    guards: GuardSettings = GuardSettings()
    text: str = field(repr=False, default="")

    def by_role(self, role: str) -> InstrumentConfig:
        matches = [i for i in self.instruments.values() if i.role == role]
        if not matches:
            raise StationError(f"{self.path}: no instrument has role {role!r}")
        return matches[0]

    def readout(self, *, chip_node: str | None = None, monitor: str | None = None) -> Readout:
        for readout in self.readouts:
            if (chip_node and readout.chip_node == chip_node) or (monitor and readout.monitor == monitor):
                return readout
        raise StationError(f"{self.path}: wiring.readout has no channel for {chip_node or monitor!r}")

    @property
    def is_emulated(self) -> bool:
        return any(i.visalib and i.visalib.endswith("@nwlab") for i in self.instruments.values())


class _Tree:
    """Typed access to the parsed YAML with errors that carry the key path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key_path: str, problem: str) -> StationError:
        return StationError(f"{self.path}: {key_path}: {problem}")

    def mapping(self, node: Any, key_path: str) -> dict[str, Any]:
        if not isinstance(node, dict):
            raise self.fail(key_path, f"expected a mapping, got {_kind(node)}")
        return node

    def string(self, node: dict, key: str, key_path: str, default: Any = ...) -> Any:
        value = self._get(node, key, key_path, default)
        if value is not default and not (isinstance(value, str) and value.strip()):
            raise self.fail(_join(key_path, key), f"expected a non-empty string, got {_shown(value)}")
        return value

    def number(self, node: dict, key: str, key_path: str, default: Any = ..., *,
               positive: bool = False, minimum: float | None = None) -> Any:
        value = self._get(node, key, key_path, default)
        if value is default:
            return value
        where = _join(key_path, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise self.fail(where, f"expected a finite number, got {_shown(value)}")
        if positive and value <= 0:
            raise self.fail(where, f"must be > 0, got {_shown(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(where, f"must be >= {minimum}, got {_shown(value)}")
        return float(value)

    def integer(self, node: dict, key: str, key_path: str, default: Any = ..., *, minimum: int = 0) -> Any:
        value = self._get(node, key, key_path, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(_join(key_path, key), f"expected a whole number >= {minimum}, got {_shown(value)}")
        return value

    def only(self, node: dict, allowed: set[str], key_path: str) -> None:
        unknown = sorted(set(node) - allowed, key=str)   # keys may be of mixed types (1, "zz")
        if unknown:
            raise self.fail(_join(key_path, unknown[0]), f"unknown key; expected one of {', '.join(sorted(allowed))}")

    def _get(self, node: dict, key: str, key_path: str, default: Any) -> Any:
        if key in node and node[key] is not None:
            return node[key]
        if default is ...:
            raise self.fail(_join(key_path, key), "missing")
        return default

    def file_path(self, base: Path, text: str, key_path: str) -> Path:
        """`text` as a path relative to `base`, made absolute."""
        if "\0" in text:
            raise self.fail(key_path, f"a path cannot contain a NUL byte: {_shown(text)}")
        try:
            return (base / text).resolve()
        except (OSError, ValueError, RuntimeError) as exc:
            raise self.fail(key_path, f"not a usable path {_shown(text)}: {clip(exc)}") from None


def _join(key_path: str, key: Any) -> str:
    """`wiring.bias` + `source` -> `wiring.bias.source`; at the top level the key alone."""
    return f"{key_path}.{clip(key)}" if key_path else clip(key)


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:         # an int too large for a float
        return False


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxtuple = 2, 4, 4, 4


def _shown(value: Any) -> str:
    """repr of a value from the file, bounded (a value may be a megabyte string or deep nesting)."""
    return _REPR.repr(value)


def _kind(node: Any) -> str:
    return "nothing" if node is None else type(node).__name__


def load_station(path: str | Path) -> Station:
    """Read and validate a station file."""
    try:
        path = Path(path).resolve()
    except (OSError, ValueError, RuntimeError) as exc:     # ValueError: a NUL byte in the path
        raise StationError(f"{path}: cannot read: {exc}") from None
    tree = _Tree(path)
    text = read_text(path, StationError)
    root = tree.mapping(parse_yaml(text, path, StationError), "(top level)")
    tree.only(root, {"station", "description", "chip", "clock", "emulator", "instruments", "wiring", "guards"}, "")

    chip_path = tree.file_path(path.parent, tree.string(root, "chip", ""), "chip")
    if not chip_path.is_file():
        raise tree.fail("chip", f"chip file {chip_path} does not exist")
    chip = _chip_outline(tree, chip_path)
    clock = tree.mapping(root.get("clock") or {}, "clock")
    tree.only(clock, {"acceleration"}, "clock")
    emulator = tree.mapping(root.get("emulator") or {}, "emulator")
    tree.only(emulator, {"seed"}, "emulator")

    instruments = {}
    for name, node in tree.mapping(root.get("instruments"), "instruments").items():
        instruments[name] = _instrument(tree, path, name, node)
    if not instruments:
        raise tree.fail("instruments", "no instruments")
    _one_instrument_per_address(tree, instruments)
    _one_instrument_per_role(tree, instruments)

    if root.get("wiring") is None:
        raise tree.fail("wiring", "missing: the station must say how the pulse input, the bias and the "
                                  "scope channels reach the chip (see stations/emulated.yaml)")
    wiring = tree.mapping(root.get("wiring"), "wiring")
    pulse_inputs, bias_lines, readouts = _wiring(tree, wiring, instruments, chip)
    guards = _guards(tree, root.get("guards") or {}, instruments)
    return Station(
        path=path,
        name=tree.string(root, "station", "", path.stem),
        description=str(root.get("description") or "").strip(),
        chip_path=chip_path,
        clock_acceleration=tree.number(clock, "acceleration", "clock", 1.0, positive=True),
        emulator_seed=tree.integer(emulator, "seed", "emulator", None),
        instruments=instruments,
        pulse_inputs=pulse_inputs,
        bias_lines=bias_lines,
        readouts=readouts,
        guards=guards,
        text=text,
    )


def _guards(tree: _Tree, node: Any, instruments: dict[str, InstrumentConfig]) -> GuardSettings:
    """The `guards:` section; the temperature window defaults to the controller's envelope."""
    node = tree.mapping(node, "guards")
    tree.only(node, {"temperature_window_k", "temperature_tolerance_k", "check_interval_s", "excursion_wait_s",
                     "excursion_hold_s", "retakes"}, "guards")
    limits = next((i.envelope.limits for i in instruments.values() if i.role == "temperature_controller"), {})
    window = node.get("temperature_window_k")
    if window is None:
        window_k = (limits.get("temperature_min_k", 0.0), limits.get("temperature_max_k", math.inf))
    else:
        where = "guards.temperature_window_k"
        if not (isinstance(window, list) and len(window) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v) for v in window)):
            raise tree.fail(where, f"expected [low, high] in K (two finite numbers), got {_shown(window)}")
        if not 0 <= window[0] < window[1]:
            raise tree.fail(where, f"expected 0 <= low < high, got {_shown(window)}")
        window_k = (float(window[0]), float(window[1]))
    defaults = GuardSettings()
    return GuardSettings(
        temperature_window_k=window_k,
        temperature_tolerance_k=tree.number(node, "temperature_tolerance_k", "guards",
                                            defaults.temperature_tolerance_k, positive=True),
        check_interval_s=tree.number(node, "check_interval_s", "guards", defaults.check_interval_s, positive=True),
        excursion_wait_s=tree.number(node, "excursion_wait_s", "guards", defaults.excursion_wait_s, minimum=0.0),
        excursion_hold_s=tree.number(node, "excursion_hold_s", "guards", defaults.excursion_hold_s, minimum=0.0),
        retakes=tree.integer(node, "retakes", "guards", defaults.retakes, minimum=1),
    )


def _instrument(tree: _Tree, path: Path, name: str, node: Any) -> InstrumentConfig:
    key_path = f"instruments.{name}"
    node = tree.mapping(node, key_path)
    tree.only(node, {"role", "driver", "address", "visalib", "options", "envelope", "emulator"}, key_path)
    role = tree.string(node, "role", key_path)
    if role not in ROLES:
        raise tree.fail(f"{key_path}.role", f"unknown role {_shown(role)}; expected one of {', '.join(ROLES)}")
    driver = tree.string(node, "driver", key_path)
    if "." not in driver:
        raise tree.fail(f"{key_path}.driver", f"expected a dotted class path like drivers.module.Class, got {_shown(driver)}")
    _driver_class(tree, driver, f"{key_path}.driver")
    visalib = tree.string(node, "visalib", key_path, None)
    if visalib is not None and "@" in visalib:
        # A backend argument that names a file is relative to the station file (as @sim YAMLs).
        library_path, backend = visalib.rsplit("@", 1)
        file_part, _, bench_id = library_path.partition("#")
        if file_part and not Path(file_part).is_absolute():
            file_part = str(tree.file_path(path.parent, file_part, f"{key_path}.visalib"))
        visalib = f"{file_part}{'#' + bench_id if bench_id else ''}@{backend}"
    envelope_node = tree.mapping(node.get("envelope") or {}, f"{key_path}.envelope")
    allowed = set(ENVELOPE_FIELDS[role])
    tree.only(envelope_node, allowed, f"{key_path}.envelope")
    limits = {key: tree.number(envelope_node, key, f"{key_path}.envelope", positive=not key.startswith("temperature_min"),
                               minimum=0.0)
              for key in envelope_node}
    envelope = Envelope(role=role, limits=limits, where=f"{path}: {key_path}.envelope")
    envelope.check_consistent(lambda k, problem: tree.fail(f"{key_path}.envelope.{k}", problem))
    return InstrumentConfig(
        name=name, role=role, driver=driver, address=tree.string(node, "address", key_path),
        visalib=visalib, options=tree.mapping(node.get("options") or {}, f"{key_path}.options"),
        envelope=envelope, emulator=_emulator(tree, node.get("emulator"), f"{key_path}.emulator"),
    )


def _emulator(tree: _Tree, node: Any, key_path: str) -> dict[str, Any]:
    """`instruments.<name>.emulator`: `model` and `faults` are checked here; the other keys are
    the model's own settings, free-form, checked by the emulator when it builds the bench."""
    emulator = tree.mapping(node or {}, key_path)
    tree.string(emulator, "model", key_path, None)
    faults = tree.mapping(emulator.get("faults") or {}, f"{key_path}.faults")
    tree.only(faults, set(EMULATOR_FAULTS), f"{key_path}.faults")
    return emulator


def _wiring(tree: _Tree, wiring: dict, instruments: dict[str, InstrumentConfig], chip: _ChipOutline):
    pulse_inputs, bias_lines, readouts = [], [], []
    for name, node in wiring.items():
        key_path = _join("wiring", name)
        if name == "readout":
            if not isinstance(node, list):
                raise tree.fail(key_path, f"expected a list of scope channels, got {_kind(node)}")
            for index, channel in enumerate(node):
                readouts.append(_readout(tree, channel, f"{key_path}[{index}]"))
            continue
        node = tree.mapping(node, key_path)
        source = tree.mapping(node.get("source"), f"{key_path}.source")
        tree.only(source, {"instrument", "channel"}, f"{key_path}.source")
        instrument = tree.string(source, "instrument", f"{key_path}.source")
        if instrument not in instruments:
            raise tree.fail(f"{key_path}.source.instrument", f"{_shown(instrument)} is not under instruments")
        channel = tree.integer(source, "channel", f"{key_path}.source", 1, minimum=1)
        chip_port = tree.string(node, "chip_port", key_path)
        if chip_port not in chip.ports:
            raise tree.fail(f"{key_path}.chip_port", f"the chip ({chip.path}) has no port {_shown(chip_port)}; "
                                                     f"its ports: {', '.join(map(str, chip.ports)) or 'none'}")
        _check_channel(tree, instruments[instrument], channel, f"{key_path}.source.channel", source=True)
        role = instruments[instrument].role
        if role == "pulse_generator":
            tree.only(node, {"source", "chip_port", "attenuation_db", "series_resistance_ohm"}, key_path)
            pulse_inputs.append(PulseInput(
                instrument, channel, chip_port,
                tree.number(node, "attenuation_db", key_path, 0.0),
                tree.number(node, "series_resistance_ohm", key_path, positive=True)))
        elif role == "bias_source":
            tree.only(node, {"source", "chip_port", "line_resistance_ohm"}, key_path)
            bias_lines.append(BiasLine(instrument, channel, chip_port,
                                       tree.number(node, "line_resistance_ohm", key_path, 0.0, minimum=0.0)))
        else:
            raise tree.fail(f"{key_path}.source.instrument",
                            f"{_shown(instrument)} is a {role}; only pulse generators and bias sources drive the chip")
    paths = {"pulse_input"} if pulse_inputs else set()
    scope = next(i for i in instruments.values() if i.role == "oscilloscope")
    for index, readout in enumerate(readouts):
        if readout.monitor is not None and readout.monitor not in paths:
            raise tree.fail(f"wiring.readout[{index}].monitor", f"unknown wiring path {_shown(readout.monitor)}")
        if readout.chip_node is not None and readout.chip_node not in chip.nodes:
            raise tree.fail(f"wiring.readout[{index}].chip_node",
                            f"the chip ({chip.path}) has no node {_shown(readout.chip_node)}; "
                            f"its nodes: {', '.join(chip.nodes) or 'none'}")
        _check_channel(tree, scope, readout.scope_channel, f"wiring.readout[{index}].scope_channel", source=False)
    channels = [r.scope_channel for r in readouts]
    if len(set(channels)) != len(channels):
        raise tree.fail("wiring.readout", f"a scope channel appears twice: {_shown(channels)}")
    for role, wires, what in (("pulse_generator", pulse_inputs, "the pulse input"),
                              ("bias_source", bias_lines, "the bias line")):
        if not wires:
            name = next(i.name for i in instruments.values() if i.role == role)
            raise tree.fail("wiring", f"{what} is not wired: no entry has source.instrument {name}")
    if not readouts:
        raise tree.fail("wiring.readout", "missing: no scope channel is wired to the chip")
    if not any(r.monitor == "pulse_input" for r in readouts):
        raise tree.fail("wiring.readout", "no scope channel monitors the pulse input (monitor: pulse_input); "
                                          "captures trigger on it and the energy per spike integrates it")
    if not any(r.chip_node is not None for r in readouts):
        raise tree.fail("wiring.readout", "no scope channel reads a chip node (chip_node: ...)")
    return tuple(pulse_inputs), tuple(bias_lines), tuple(readouts)


@dataclass(frozen=True)
class _ChipOutline:
    """What the station's wiring refers to in the chip file: its ports and nodes."""
    path: Path
    ports: tuple[str, ...]
    nodes: tuple[str, ...]


def _chip_outline(tree: _Tree, chip_path: Path) -> _ChipOutline:
    """The chip file's ports and nodes; a file that is not a chip file (a station file, say) is
    refused here. The emulator validates the rest (`nwlab chip check`)."""
    try:
        data = parse_yaml(read_text(chip_path, StationError), chip_path, StationError)
    except StationError as error:
        raise tree.fail("chip", str(error)) from None
    if not isinstance(data, dict) or data.get("format") != CHIP_FORMAT:
        got = (f"format: {_shown(data['format'])}" if isinstance(data, dict) and "format" in data
               else "no format key" if isinstance(data, dict) else f"a {_kind(data)}")
        raise tree.fail("chip", f"{chip_path} is not a chip file: expected format: {CHIP_FORMAT}, found {got}")
    nodes, ports = data.get("nodes"), data.get("ports") or {}
    if not (isinstance(nodes, list) and all(isinstance(n, str) for n in nodes)):
        raise tree.fail("chip", f"{chip_path}: nodes: expected a list of node names, got {_shown(nodes)}")
    if not isinstance(ports, dict):
        raise tree.fail("chip", f"{chip_path}: ports: expected a mapping, got {_kind(ports)}")
    return _ChipOutline(chip_path, tuple(str(p) for p in ports), tuple(nodes))


def _driver_class(tree: _Tree, driver: str, key_path: str) -> type:
    """The class `driver` names, imported now (no instrument is opened), so that a misspelt
    module or class is refused by the dry run rather than when the run opens instruments."""
    module_name, _, class_name = driver.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except Exception as exc:  # noqa: BLE001 - any failure to import is the file's problem
        raise tree.fail(key_path, f"cannot import {_shown(driver)}: {type(exc).__name__}: {clip(exc)}") from None
    if not isinstance(cls, type):
        raise tree.fail(key_path, f"{_shown(driver)} is a {type(cls).__name__}, not a driver class")
    return cls


def _channel_counts(config: InstrumentConfig) -> list[tuple[int, str]]:
    """Every statement of how many channels the instrument has, with where it is made: its
    `options.channels` and `emulator.channels`, the driver's `channels` default or
    `number_of_channels`; a driver taking neither `channel` nor `channels` drives one output."""
    where = f"instruments.{config.name}"
    counts = [(config.options[key], f"{where}.options.channels") for key in ("channels",) if key in config.options]
    counts += [(config.emulator[key], f"{where}.emulator.channels") for key in ("channels",) if key in config.emulator]
    cls = _driver_class(_Tree(Path()), config.driver, "")
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


def _check_channel(tree: _Tree, config: InstrumentConfig, channel: int, key_path: str, *, source: bool) -> None:
    """A wired channel the instrument has, and (for a source) the one its driver is told to drive."""
    chosen = config.options.get("channel") if source else None
    if chosen is not None and chosen != channel:
        raise tree.fail(key_path, f"channel {channel} disagrees with instruments.{config.name}.options.channel "
                                  f"= {_shown(chosen)}: the instrument would drive another channel than the wiring says")
    for count, stated in _channel_counts(config):
        if channel > count:
            raise tree.fail(key_path, f"instruments.{config.name} has no channel {channel}: "
                                      f"{count} channel{'s' if count != 1 else ''} ({stated})")


def _one_instrument_per_address(tree: _Tree, instruments: dict[str, InstrumentConfig]) -> None:
    """Two entries for one instrument would give it two envelopes, and the first one listed wins."""
    seen: dict[str, InstrumentConfig] = {}
    for config in instruments.values():
        first = seen.setdefault(config.resource_key, config)
        if first is not config:
            raise tree.fail(f"instruments.{config.name}.address",
                            f"{_shown(config.address)} is the instrument instruments.{first.name} already names "
                            f"({_shown(first.address)}): one instrument, one entry, one envelope")


def _one_instrument_per_role(tree: _Tree, instruments: dict[str, InstrumentConfig]) -> None:
    """Runs reach each role through one instrument; a second one of a role would not be the one
    the wiring names, or would carry another envelope."""
    by_role: dict[str, InstrumentConfig] = {}
    for config in instruments.values():
        first = by_role.setdefault(config.role, config)
        if first is not config:
            raise tree.fail(f"instruments.{config.name}.role",
                            f"{config.role} is already instruments.{first.name}: one instrument per role")
    missing = [role for role in ROLES if role not in by_role]
    if missing:
        raise tree.fail("instruments", f"no {missing[0]}: a station needs one instrument of each role "
                                       f"({', '.join(ROLES)})")


def _readout(tree: _Tree, node: Any, key_path: str) -> Readout:
    node = tree.mapping(node, key_path)
    tree.only(node, {"scope_channel", "chip_node", "monitor", "gain_db", "bandwidth_hz", "input_impedance_ohm"}, key_path)
    chip_node = tree.string(node, "chip_node", key_path, None)
    monitor = tree.string(node, "monitor", key_path, None)
    if (chip_node is None) == (monitor is None):
        raise tree.fail(key_path, "give exactly one of chip_node or monitor")
    return Readout(
        scope_channel=tree.integer(node, "scope_channel", key_path, minimum=1),
        chip_node=chip_node, monitor=monitor,
        gain_db=tree.number(node, "gain_db", key_path, 0.0),
        bandwidth_hz=tree.number(node, "bandwidth_hz", key_path, math.inf, positive=True),
        input_impedance_ohm=tree.number(node, "input_impedance_ohm", key_path, None, positive=True),
    )
