"""Station files: instruments, their safety envelopes, wiring, guards, emulator options and
chip, read once and checked on load, for the lab and for the emulator alike.

Every error names the file, the key path and the problem, and nothing is built from a file that
fails. What a run would refuse or fail on for reasons visible in the file is refused here, before
any instrument is opened, so `nwlab dry-run` and the start of every run say the same: the
temperature controller and the scope one instrument each, every pulse generator and bias source
on a wiring path of its own (the primary ones drive the neuron's input and bias; further ones a
synapse's weight or a second neuron), two instruments never at one address, wiring for the
pulse input, the bias and the readout, and chip ports and nodes the chip file has (read by
`contracts.files.chip`). What needs the driver classes themselves (that they import, and the
channels they have) is checked on the lab side, by `lab.execution.station_checks`, which imports
them. The schema is documented in docs/station-file.md; `stations/emulated.yaml` and
`stations/example-lan.yaml` are complete examples.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.envelope import ENVELOPE_FIELDS, Envelope
from contracts.files.addresses import normalise_address
from contracts.files.chip import FORMAT as CHIP_FORMAT
from contracts.files.chip import ChipDocument, ChipFileError, chip_document, read_chip_yaml
from contracts.files.yaml12 import clip, parse_yaml, read_text
from contracts.units import db_to_voltage_ratio

ROLES = ("temperature_controller", "pulse_generator", "oscilloscope", "bias_source")
#: Roles that drive the chip through a wiring path. More than one instrument may fill each: the
#: first (the path `PRIMARY_PATHS` names, else the first wired) drives the neuron the procedures
#: characterise; each further one drives a chip port of its own (a synapse's weight current, a
#: second neuron's bias or input) through its own path and under its own envelope.
SOURCE_ROLES = ("pulse_generator", "bias_source")
#: The wiring key of each source role's primary path (the input monitor names "pulse_input").
PRIMARY_PATHS = {"pulse_generator": "pulse_input", "bias_source": "bias"}

#: Fault names the emulator accepts under `instruments.<name>.emulator.faults`. A copy of the
#: list documented in sim_backend/faults/settings.py (`_PERIODIC_KEYS`, `WORLD_KEYS` and
#: reply_delay_s), which the contracts cannot import; the emulator checks the values when it builds
#: the bench, and tests/lab/test_config.py checks that the two lists agree.
EMULATOR_FAULTS = ("reply_delay_s", "withhold_every", "drop_every", "garble_every", "truncate_every",
                   "scpi_error_every", "latch_nanowire", "fridge_excursion")
#: pyvisa backends that serve instruments inside the process (`<file>[#bench]@nwlab`): the same
#: address on two such benches is two instruments.
IN_PROCESS_BACKENDS = ("nwlab", "sim")

# The keys each closed mapping of the file may hold (docs/station-file.md). `options` (driver
# keywords), `emulator` (the model's own settings) and the names under `instruments` and
# `wiring` are free-form.
TOP_KEYS = {"station", "description", "chip", "clock", "emulator", "instruments", "wiring", "guards",
            "procedure_defaults"}
CLOCK_KEYS = {"acceleration"}
EMULATOR_KEYS = {"seed"}
INSTRUMENT_KEYS = {"role", "driver", "address", "visalib", "options", "envelope", "emulator"}
SOURCE_KEYS = {"instrument", "channel"}
PULSE_INPUT_KEYS = {"source", "chip_port", "attenuation_db", "series_resistance_ohm", "delay_s"}
BIAS_LINE_KEYS = {"source", "chip_port", "line_resistance_ohm"}
READOUT_KEYS = {"scope_channel", "chip_node", "monitor", "gain_db", "bandwidth_hz", "input_impedance_ohm"}
GUARD_KEYS = {"temperature_window_k", "temperature_tolerance_k", "check_interval_s", "excursion_wait_s",
              "excursion_hold_s", "retakes"}


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
class EmulatorOptions:
    """`instruments.<name>.emulator`: what the emulator plays there; real instruments ignore it."""
    model: str | None = None                                      # personality, e.g. "keithley_2450"
    settings: Mapping[str, Any] = field(default_factory=dict)     # the model's own, checked by the emulator
    faults: Mapping[str, Any] = field(default_factory=dict)       # names from EMULATOR_FAULTS


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
    emulated: EmulatorOptions = EmulatorOptions()     # the same, typed

    @property
    def resource_key(self) -> str:
        """What identifies the instrument itself: its normalised address, on the in-process
        bench its `visalib` names (a real address is one instrument whatever library reaches it)."""
        return resource_key(self.address, self.visalib)


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
    name: str = "pulse_input"     # its key under `wiring:`
    #: Extra propagation delay of this path (a longer cable after a splitter), s.
    delay_s: float = 0.0

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
    name: str = "bias"            # its key under `wiring:`


@dataclass(frozen=True)
class Readout:
    scope_channel: int
    chip_node: str | None
    monitor: str | None
    gain_db: float
    bandwidth_hz: float
    input_impedance_ohm: float | None

    @property
    def scope_volts_per_source_volt(self) -> float:
        """The amplifier chain's gain: volts at the scope input per volt at the chip node."""
        return db_to_voltage_ratio(-self.gain_db)

    @property
    def volts_at_source_per_volt(self) -> float:
        """What one volt at the scope input was at the chip node (or the monitored output)."""
        return 1.0 / self.scope_volts_per_source_volt


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
    #: `procedure_defaults:` parameter values this station gives in place of the procedures' own
    #: defaults: `name: value` for every procedure with that parameter (a scope's top sample rate),
    #: `procedure.name: value` for one (the stage temperature its chip is designed for).
    procedure_defaults: Mapping[str, Any] = field(default_factory=dict)
    text: str = field(repr=False, default="")
    chip: ChipDocument | None = field(repr=False, default=None)    # the chip file, read

    def by_role(self, role: str) -> InstrumentConfig:
        """The instrument filling `role`; for a source role, the one on its primary path."""
        paths = self.paths(role)
        if paths:
            return self.instruments[paths[0].instrument]
        matches = [i for i in self.instruments.values() if i.role == role]
        if not matches:
            raise StationError(f"{self.path}: no instrument has role {role!r}")
        return matches[0]

    def paths(self, role: str) -> tuple[PulseInput, ...] | tuple[BiasLine, ...]:
        """The wiring paths a source role drives, the primary first (empty for other roles)."""
        return {"pulse_generator": self.pulse_inputs, "bias_source": self.bias_lines}.get(role, ())

    def path_to(self, role: str, chip_port: str | None = None) -> PulseInput | BiasLine:
        """The path of `role` into `chip_port` (None: the primary path); StationError if none."""
        paths = self.paths(role)
        found = paths[:1] if chip_port is None else [p for p in paths if p.chip_port == chip_port]
        if not found:
            wired = ", ".join(p.chip_port for p in paths) or "none"
            what = "is wired" if chip_port is None else f"drives chip port {chip_port!r}"
            raise StationError(f"{self.path}: no {role.replace('_', ' ')} {what} (wired ports: {wired})")
        return found[0]

    @property
    def is_emulated(self) -> bool:
        return any(i.visalib and i.visalib.endswith("@nwlab") for i in self.instruments.values())


def station_error(path: Path, key_path: str, problem: str) -> StationError:
    """The one shape of a station-file message: `<file>: <key path>: <problem>`."""
    return StationError(f"{path}: {key_path}: {problem}")


class _Tree:
    """Typed access to the parsed YAML with errors that carry the key path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key_path: str, problem: str) -> StationError:
        return station_error(self.path, key_path, problem)

    def mapping(self, node: Any, key_path: str) -> dict[str, Any]:
        if not isinstance(node, dict):
            raise self.fail(key_path, f"expected a mapping, got {_kind(node)}")
        return node

    def string(self, node: dict, key: str, key_path: str, default: Any = ...) -> Any:
        value = self._get(node, key, key_path, default)
        if value is not default and not (isinstance(value, str) and value.strip()):
            raise self.fail(_join(key_path, key), f"expected a non-empty string, got {shown(value)}")
        return value

    def number(self, node: dict, key: str, key_path: str, default: Any = ..., *,
               positive: bool = False, minimum: float | None = None) -> Any:
        value = self._get(node, key, key_path, default)
        if value is default:
            return value
        where = _join(key_path, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise self.fail(where, f"expected a finite number, got {shown(value)}")
        if positive and value <= 0:
            raise self.fail(where, f"must be > 0, got {shown(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(where, f"must be >= {minimum}, got {shown(value)}")
        return float(value)

    def integer(self, node: dict, key: str, key_path: str, default: Any = ..., *, minimum: int = 0) -> Any:
        value = self._get(node, key, key_path, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(_join(key_path, key), f"expected a whole number >= {minimum}, got {shown(value)}")
        return value

    def only(self, node: dict, allowed: set[str], key_path: str, what: str = "") -> None:
        """Refuse the first key not `allowed`; `what` names such a key (e.g. "fault")."""
        unknown = sorted(set(node) - allowed, key=str)   # keys may be of mixed types (1, "zz")
        if unknown:
            named = f" (unknown {what} {shown(unknown[0])})" if what else ""
            raise self.fail(_join(key_path, unknown[0]),
                            f"unknown key; expected one of {', '.join(sorted(allowed))}{named}")

    def _get(self, node: dict, key: str, key_path: str, default: Any) -> Any:
        if key in node and node[key] is not None:
            return node[key]
        if default is ...:
            raise self.fail(_join(key_path, key), "missing")
        return default

    def file_path(self, base: Path, text: str, key_path: str) -> Path:
        """`text` as a path relative to `base`, made absolute."""
        if "\0" in text:
            raise self.fail(key_path, f"a path cannot contain a NUL byte: {shown(text)}")
        try:
            return (base / text).resolve()
        except (OSError, ValueError, RuntimeError) as exc:
            raise self.fail(key_path, f"not a usable path {shown(text)}: {clip(exc)}") from None


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


def shown(value: Any) -> str:
    """repr of a value from the file, bounded (a value may be a megabyte string or deep nesting)."""
    return _REPR.repr(value)


def _kind(node: Any) -> str:
    return "nothing" if node is None else type(node).__name__


def read_station(path: str | Path) -> Station:
    """Read and validate a station file."""
    try:
        path = Path(path).resolve()
    except (OSError, ValueError, RuntimeError) as exc:     # ValueError: a NUL byte in the path
        raise StationError(f"{path}: cannot read: {exc}") from None
    tree = _Tree(path)
    text = read_text(path, StationError)
    root = tree.mapping(parse_yaml(text, path, StationError), "(top level)")
    tree.only(root, TOP_KEYS, "")

    chip_path = tree.file_path(path.parent, tree.string(root, "chip", ""), "chip")
    if not chip_path.is_file():
        raise tree.fail("chip", f"chip file {chip_path} does not exist")
    chip = _chip(tree, chip_path)
    clock = tree.mapping(root.get("clock") or {}, "clock")
    tree.only(clock, CLOCK_KEYS, "clock")
    emulator = tree.mapping(root.get("emulator") or {}, "emulator")
    tree.only(emulator, EMULATOR_KEYS, "emulator")

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
        # 0 freezes lab time for the emulator's tests; the lab refuses it (lab.execution.station_checks)
        clock_acceleration=tree.number(clock, "acceleration", "clock", 1.0, minimum=0.0),
        emulator_seed=tree.integer(emulator, "seed", "emulator", None),
        instruments=instruments,
        pulse_inputs=pulse_inputs,
        bias_lines=bias_lines,
        readouts=readouts,
        guards=guards,
        procedure_defaults=_procedure_defaults(tree, root.get("procedure_defaults") or {}),
        text=text,
        chip=chip,
    )


def _procedure_defaults(tree: _Tree, node: Any) -> dict[str, Any]:
    """`procedure_defaults:`: parameter names (optionally `procedure.`-prefixed) to numbers,
    strings or booleans; which procedures have them is checked where the procedures are known."""
    node = tree.mapping(node, "procedure_defaults")
    for key, value in node.items():
        where = _join("procedure_defaults", key)
        if not isinstance(key, str) or not all(part.isidentifier() for part in key.split(".")) or key.count(".") > 1:
            raise tree.fail(where, "expected a parameter name or procedure.parameter")
        if not isinstance(value, (int, float, str, bool)) or (isinstance(value, float) and not _finite(value)):
            raise tree.fail(where, f"expected a number, a string or true/false, got {shown(value)}")
    return dict(node)


def _guards(tree: _Tree, node: Any, instruments: dict[str, InstrumentConfig]) -> GuardSettings:
    """The `guards:` section; the temperature window defaults to the controller's envelope."""
    node = tree.mapping(node, "guards")
    tree.only(node, GUARD_KEYS, "guards")
    limits = next((i.envelope.limits for i in instruments.values() if i.role == "temperature_controller"), {})
    window = node.get("temperature_window_k")
    if window is None:
        window_k = (limits.get("temperature_min_k", 0.0), limits.get("temperature_max_k", math.inf))
    else:
        where = "guards.temperature_window_k"
        if not (isinstance(window, list) and len(window) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v) for v in window)):
            raise tree.fail(where, f"expected [low, high] in K (two finite numbers), got {shown(window)}")
        if not 0 <= window[0] < window[1]:
            raise tree.fail(where, f"expected 0 <= low < high, got {shown(window)}")
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
    tree.only(node, INSTRUMENT_KEYS, key_path)
    role = tree.string(node, "role", key_path)
    if role not in ROLES:
        raise tree.fail(f"{key_path}.role", f"unknown role {shown(role)}; expected one of {', '.join(ROLES)}")
    driver = tree.string(node, "driver", key_path)
    if "." not in driver:
        raise tree.fail(f"{key_path}.driver", f"expected a dotted class path like drivers.module.Class, got {shown(driver)}")
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
    emulator = tree.mapping(node.get("emulator") or {}, f"{key_path}.emulator")
    return InstrumentConfig(
        name=name, role=role, driver=driver, address=tree.string(node, "address", key_path),
        visalib=visalib, options=tree.mapping(node.get("options") or {}, f"{key_path}.options"),
        envelope=envelope, emulator=emulator, emulated=_emulator(tree, emulator, f"{key_path}.emulator"),
    )


def _emulator(tree: _Tree, emulator: dict, key_path: str) -> EmulatorOptions:
    """`instruments.<name>.emulator`: `model` and `faults` are checked here; the other keys are
    the model's own settings, free-form, checked by the emulator when it builds the bench."""
    model = tree.string(emulator, "model", key_path, None)
    faults = tree.mapping(emulator.get("faults") or {}, f"{key_path}.faults")
    tree.only(faults, set(EMULATOR_FAULTS), f"{key_path}.faults", "fault")
    settings = {key: value for key, value in emulator.items() if key not in ("model", "faults")}
    return EmulatorOptions(model=model, settings=settings, faults=faults)


def _wiring(tree: _Tree, wiring: dict, instruments: dict[str, InstrumentConfig], chip: ChipDocument):
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
        tree.only(source, SOURCE_KEYS, f"{key_path}.source")
        instrument = tree.string(source, "instrument", f"{key_path}.source")
        if instrument not in instruments:
            raise tree.fail(f"{key_path}.source.instrument", f"{shown(instrument)} is not under instruments")
        channel = tree.integer(source, "channel", f"{key_path}.source", 1, minimum=1)
        chip_port = tree.string(node, "chip_port", key_path)
        if chip_port not in chip.ports:
            raise tree.fail(f"{key_path}.chip_port", f"the chip ({chip.path}) has no port {shown(chip_port)}; "
                                                     f"its ports: {', '.join(map(str, chip.ports)) or 'none'}")
        role = instruments[instrument].role
        if role == "pulse_generator":
            tree.only(node, PULSE_INPUT_KEYS, key_path)
            pulse_inputs.append(PulseInput(
                instrument, channel, chip_port,
                tree.number(node, "attenuation_db", key_path, 0.0),
                tree.number(node, "series_resistance_ohm", key_path, positive=True), str(name),
                tree.number(node, "delay_s", key_path, 0.0, minimum=0.0)))
        elif role == "bias_source":
            tree.only(node, BIAS_LINE_KEYS, key_path)
            bias_lines.append(BiasLine(instrument, channel, chip_port,
                                       tree.number(node, "line_resistance_ohm", key_path, 0.0, minimum=0.0),
                                       str(name)))
        else:
            raise tree.fail(f"{key_path}.source.instrument",
                            f"{shown(instrument)} is a {role}; only pulse generators and bias sources drive the chip")
    paths = {"pulse_input"} if pulse_inputs else set()
    for index, readout in enumerate(readouts):
        if readout.monitor is not None and readout.monitor not in paths:
            raise tree.fail(f"wiring.readout[{index}].monitor", f"unknown wiring path {shown(readout.monitor)}")
        if readout.chip_node is not None and readout.chip_node not in chip.nodes:
            raise tree.fail(f"wiring.readout[{index}].chip_node",
                            f"the chip ({chip.path}) has no node {shown(readout.chip_node)}; "
                            f"its nodes: {', '.join(chip.nodes) or 'none'}")
    channels = [r.scope_channel for r in readouts]
    if len(set(channels)) != len(channels):
        raise tree.fail("wiring.readout", f"a scope channel appears twice: {shown(channels)}")
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
    _one_path_per_source(tree, instruments, [*pulse_inputs, *bias_lines])
    return _primary_first(pulse_inputs, "pulse_generator"), _primary_first(bias_lines, "bias_source"), tuple(readouts)


def _chip(tree: _Tree, chip_path: Path) -> ChipDocument:
    """The chip file, read by the chip reader; a file that is not a chip file (a station file,
    say) is refused as such, and a chip file's own problems under `chip:`."""
    try:
        data = read_chip_yaml(chip_path)
        if not isinstance(data, dict) or data.get("format") != CHIP_FORMAT:
            got = (f"format: {shown(data['format'])}" if isinstance(data, dict) and "format" in data
                   else "no format key" if isinstance(data, dict) else f"a {_kind(data)}")
            raise tree.fail("chip", f"{chip_path} is not a chip file: expected format: {CHIP_FORMAT}, found {got}")
        return chip_document(data, chip_path)
    except ChipFileError as error:
        raise tree.fail("chip", str(error)) from None


def _one_instrument_per_address(tree: _Tree, instruments: dict[str, InstrumentConfig]) -> None:
    """Two entries for one instrument would give it two envelopes, and the first one listed wins."""
    seen: dict[str, InstrumentConfig] = {}
    for config in instruments.values():
        first = seen.setdefault(config.resource_key, config)
        if first is not config:
            raise tree.fail(f"instruments.{config.name}.address",
                            f"{shown(config.address)} is the instrument instruments.{first.name} already names "
                            f"({shown(first.address)}): one instrument, one entry, one envelope")


def _one_instrument_per_role(tree: _Tree, instruments: dict[str, InstrumentConfig]) -> None:
    """Runs reach the temperature controller and the scope through one instrument each (a
    second one would carry another envelope and not be the one used); a source role may have
    several, each on a path of its own (`_one_path_per_source`)."""
    by_role: dict[str, InstrumentConfig] = {}
    for config in instruments.values():
        first = by_role.setdefault(config.role, config)
        if first is not config and config.role not in SOURCE_ROLES:
            raise tree.fail(f"instruments.{config.name}.role",
                            f"{config.role} is already instruments.{first.name}: one instrument per role")
    missing = [role for role in ROLES if role not in by_role]
    if missing:
        raise tree.fail("instruments", f"no {missing[0]}: a station needs one instrument of each role "
                                       f"({', '.join(ROLES)})")


def _one_path_per_source(tree: _Tree, instruments: dict[str, InstrumentConfig], paths) -> None:
    """Every pulse generator and bias source drives a wiring path, each bias source exactly one
    (its driver drives one channel under one envelope); a generator's channel may feed several
    chip ports through a splitter (each path its own attenuation, resistor and delay), never
    two channels. No two paths drive one chip port."""
    driving: dict[str, PulseInput | BiasLine] = {}
    ports: dict[str, str] = {}
    for path in paths:
        where = f"wiring.{clip(path.name)}"
        first = driving.get(path.instrument)
        split = isinstance(path, PulseInput) and isinstance(first, PulseInput) and first.channel == path.channel
        if first is not None and not split:
            raise tree.fail(f"{where}.source.instrument",
                            f"instruments.{path.instrument} already drives wiring.{first.name}: one path per "
                            f"instrument (its driver drives one channel under one envelope; a pulse generator's "
                            f"channel may be split to several ports)")
        if path.chip_port in ports:
            raise tree.fail(f"{where}.chip_port", f"chip port {shown(path.chip_port)} is already driven by "
                                                  f"wiring.{ports[path.chip_port]}")
        if path.name in ROLES:
            raise tree.fail(where, f"a wiring path may not be named after a role ({shown(path.name)})")
        driving.setdefault(path.instrument, path)
        ports[path.chip_port] = path.name
    for config in instruments.values():
        if config.role in SOURCE_ROLES and config.name not in driving:
            raise tree.fail(f"instruments.{config.name}", f"a {config.role.replace('_', ' ')} that no wiring entry "
                                                          f"drives from (source.instrument: {config.name})")


def _primary_first(paths: list, role: str) -> tuple:
    """The role's paths with its primary one (named PRIMARY_PATHS[role], else the first) first."""
    primary = next((p for p in paths if p.name == PRIMARY_PATHS[role]), paths[0] if paths else None)
    return tuple([primary] + [p for p in paths if p is not primary]) if primary is not None else ()


def _readout(tree: _Tree, node: Any, key_path: str) -> Readout:
    node = tree.mapping(node, key_path)
    tree.only(node, READOUT_KEYS, key_path)
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
