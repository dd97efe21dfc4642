"""Chip files (YAML, format ``nwlab-chip/1``) -> a validated ``Circuit`` plus ports and provenance.

The format is documented in docs/chip-files.md. Every error names the file, the element (or
section) and the field, on one line. YAML anchors and aliases are refused as they are read (a
1 KB file of nested aliases stands for gigabytes, and showing such a value never ends), and so
are duplicate keys (YAML would keep the last silently) and unknown keys at every level.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from contracts.units import UnitError, quantity_si
from sim_backend.physics.circuit import (
    GROUND, Circuit, CurrentSource, Inductor, Nanowire, Resistor, VoltageSource,
)
from sim_backend.physics.nanowire import NanowireParams

FORMAT = "nwlab-chip/1"
#: Every top-level key a chip file may have (docs/chip-files.md).
TOP_LEVEL = ("format", "name", "description", "temperature", "nodes", "wire_defaults", "elements",
             "ports", "outputs", "notes")
#: Largest chip file read: the shipped ones are 2-6 KB, and YAML parses at ~100 KB/s here, so a
#: huge file would hold the loader for minutes before any check could refuse it.
FILE_BYTES_MAX = 256 * 1024
#: Longest key or value text quoted in a message (a file may hold a megabyte-long name).
SHOWN_CHARS_MAX = 60

# chip-file field -> (NanowireParams field, unit kind)
WIRE_FIELDS: dict[str, tuple[str, str]] = {
    "inductance": ("inductance_h", "inductance"),
    "width": ("width_m", "length"),
    "thickness": ("thickness_m", "length"),
    "sheet_resistance": ("sheet_resistance_ohm", "sheet_resistance"),
    "tc": ("tc_k", "temperature"),
    "jc": ("jc_a_per_m2", "current_density"),
    "jc_reference_temperature": ("jc_reference_temperature_k", "temperature"),
    "constriction": ("constriction", "dimensionless"),
    "thermal_conductivity": ("thermal_conductivity_w_per_m_k", "thermal_conductivity"),
    "heat_capacity": ("heat_capacity_j_per_m3_k", "heat_capacity"),
    "boundary_conductance": ("boundary_conductance_w_per_m2_k", "boundary_conductance"),
    "delta": ("delta", "dimensionless"),
    "sigma_isw": ("sigma_isw_a", "current"),
}
WIRE_FLAGS = {"nonlinear_inductance": bool, "retrap": str}
# element type -> (class, value field in the file, unit kind, constructor keyword, must be > 0)
SIMPLE = {
    "inductor": (Inductor, "inductance", "inductance", "inductance_h", True),
    "resistor": (Resistor, "resistance", "resistance", "resistance_ohm", True),
    "current_source": (CurrentSource, "current", "current", "current_a", False),
    "voltage_source": (VoltageSource, "voltage", "voltage", "voltage_v", False),
}


class ChipFileError(ValueError):
    """Malformed or unphysical chip file; the message names file, element and field."""


class _Refused(yaml.YAMLError):
    """Valid YAML that a chip file may not use; the text says where and why."""


class _ChipLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors, aliases and duplicate keys where they appear."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
            raise _Refused(f"line {event.start_mark.line + 1}: YAML anchor or alias {sign}{clip(event.anchor)} "
                           "is not allowed in a chip file: write each value out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key, line = self.construct_object(key_node), key_node.start_mark.line + 1
                if key in lines:
                    raise _Refused(f"line {line}: duplicate key {clip(key)!r} (first on line {lines[key]}): "
                                   "YAML would keep only the last; write it once")
                lines[key] = line
        return super().construct_mapping(node, deep)


def clip(value: object) -> str:
    """`value` as text cut to SHOWN_CHARS_MAX characters (marked with "...")."""
    text = str(value)
    return text if len(text) <= SHOWN_CHARS_MAX else text[:SHOWN_CHARS_MAX - 3] + "..."


@dataclass(frozen=True, eq=False)
class ChipFile:
    path: Path
    name: str
    description: str
    circuit: Circuit
    temperature_k: float
    ports: Mapping[str, str]            # port name -> source element it drives
    outputs: Mapping[str, str]          # output name -> node
    provenance: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (element, field) -> note
    notes: str = ""


def load_chip(path: str | Path) -> ChipFile:
    """Read and validate a chip file; every failure is a ChipFileError naming the file."""
    path = Path(path)
    try:
        with path.open("rb") as file:           # bounded: /dev/zero or a huge file is refused at once
            raw = file.read(FILE_BYTES_MAX + 1)
    except (OSError, ValueError) as exc:   # missing, a directory, unreadable; ValueError: NUL in the path
        raise ChipFileError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if len(raw) > FILE_BYTES_MAX:
        raise ChipFileError(f"{path}: more than {FILE_BYTES_MAX} bytes: too large for a chip file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ChipFileError(f"{path}: cannot read: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    loader = _ChipLoader(text)
    try:
        data = loader.get_single_data()
    except _Refused as exc:
        raise ChipFileError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ChipFileError(f"{path}: not valid YAML{where}: {' '.join(str(problem).split())}") from None
    except RecursionError:
        raise ChipFileError(f"{path}: not valid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    return parse_chip(data, path)


def parse_chip(data: Any, path: Path | str = "<chip>") -> ChipFile:
    path = Path(path)

    def fail(where: str, fld: str, problem: str) -> ChipFileError:
        return ChipFileError(f"{path}: {where}, field '{fld}': {problem}")

    if not isinstance(data, dict):
        raise ChipFileError(f"{path}: top level must be a mapping")
    for key in data:
        if key not in TOP_LEVEL:
            close = difflib.get_close_matches(str(key), TOP_LEVEL, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(TOP_LEVEL)}"
            raise fail("chip", clip(key), f"unknown key ({hint})")
    if data.get("format") != FORMAT:
        raise fail("chip", "format", f"must be {FORMAT!r}, got {clip(repr(data.get('format')))}")
    for key in ("name", "nodes", "elements", "temperature"):
        if key not in data:
            raise fail("chip", key, "missing")
    for key in ("name", "description", "notes"):
        if key in data and not isinstance(data[key], str):
            raise fail("chip", key, f"must be text, got a {type(data[key]).__name__}")
    provenance: dict[tuple[str, str], str] = {}
    try:
        temperature_k, provenance[("chip", "temperature")] = quantity_si(data["temperature"], "temperature")
    except UnitError as exc:
        raise fail("chip", "temperature", str(exc)) from None
    if not temperature_k > 0:
        raise fail("chip", "temperature", f"must be > 0 K, got {temperature_k:g} K")
    nodes = data["nodes"]
    if not isinstance(nodes, list) or not all(isinstance(n, str) and n for n in nodes):
        raise fail("chip", "nodes", "must be a list of node names (ground is \"0\")")
    declared = set(nodes) | {GROUND}
    defaults = data.get("wire_defaults", {}) or {}
    if not isinstance(defaults, dict):
        raise fail("wire_defaults", "wire_defaults", "must be a mapping")
    _only(defaults, set(WIRE_FIELDS) | set(WIRE_FLAGS), "wire_defaults", fail)
    raw = data["elements"]
    if not isinstance(raw, list) or not raw:
        raise fail("chip", "elements", "must be a non-empty list")
    elements = []
    seen: set[str] = set()
    for k, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise fail(f"element #{k + 1}", "elements", "must be a mapping")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise fail(f"element #{k + 1}", "name", "missing or empty")
        where = f"element '{clip(name)}'"
        if name in seen:
            raise fail(where, "name", "duplicate element name")
        seen.add(name)
        ends = entry.get("nodes")
        if not (isinstance(ends, list) and len(ends) == 2):
            raise fail(where, "nodes", "must be [node_pos, node_neg]")
        ends = [str(n) for n in ends]
        for n in ends:
            if n not in declared:
                raise fail(where, "nodes", f"unknown node {n!r} (declare it under 'nodes')")
        kind = entry.get("type")
        if not isinstance(kind, str):
            raise fail(where, "type", f"must be one of nanowire, {', '.join(SIMPLE)}; got {clip(repr(kind))}")
        try:
            if kind == "nanowire":
                elements.append(_nanowire(name, ends, entry, defaults, provenance))
            elif kind in SIMPLE:
                cls, fld, unit_kind, kw, positive = SIMPLE[kind]
                _only(entry, {"name", "type", "nodes", fld}, where, fail)
                if fld not in entry:
                    raise fail(where, fld, "missing")
                value, provenance[(name, fld)] = _q(entry[fld], unit_kind, where, fld, fail)
                if positive and value <= 0:
                    raise fail(where, fld, f"must be positive, got {value:g}")
                elements.append(cls(name, ends[0], ends[1], value))
            else:
                raise fail(where, "type", f"unknown type {clip(repr(kind))} (nanowire, {', '.join(SIMPLE)})")
        except _WireError as exc:
            raise ChipFileError(f"{path}: {exc}") from None
        except ChipFileError:
            raise
        except ValueError as exc:
            raise fail(where, "nodes" if "node" in str(exc) else "value", str(exc)) from None
    _check_dangling(elements, fail)
    for wire in elements:
        if isinstance(wire, Nanowire) and temperature_k >= wire.params.tc_k:
            raise fail("chip", "temperature", f"{temperature_k:g} K is at or above the Tc of nanowire "
                       f"'{clip(wire.name)}' ({wire.params.tc_k:g} K): the chip would not be superconducting")
    try:
        circuit = Circuit(tuple(elements), nodes=tuple(nodes))
    except ValueError as exc:
        named = re.match(r"\w+ '([^']*)'", str(exc))   # "VoltageSource 'vb2': ..." names the culprit
        culprit = named.group(1) if named else next((e.name for e in elements if f"'{e.name}'" in str(exc)), None)
        raise fail(f"element '{clip(culprit)}'" if culprit else "chip", "nodes", str(exc)) from None
    ports = _names(data.get("ports", {}), "ports", "source", {e.name for e in circuit.sources}, fail)
    outputs = _names(data.get("outputs", {}), "outputs", "node", set(nodes), fail)
    return ChipFile(path, str(data["name"]), str(data.get("description", "")), circuit, temperature_k,
                    ports, outputs, provenance, str(data.get("notes", "")))


def _q(entry, kind, where, fld, fail):
    try:
        return quantity_si(entry, kind)
    except UnitError as exc:
        raise fail(where, fld, str(exc)) from None


def _only(entry, allowed, where, fail):
    extra = set(entry) - allowed
    if extra:
        raise fail(where, clip(sorted(extra, key=str)[0]), "unknown field")


def _nanowire(name, ends, entry, defaults, provenance):
    where = f"element '{clip(name)}'"
    kwargs: dict[str, Any] = {}
    merged = {**defaults, **entry}
    for key in merged:
        if key in ("name", "type", "nodes"):
            continue
        if key in WIRE_FLAGS:
            if not isinstance(merged[key], WIRE_FLAGS[key]):
                raise _wire_error(where, key, f"must be a {WIRE_FLAGS[key].__name__}")
            kwargs[key] = merged[key]
        elif key in WIRE_FIELDS:
            attr, kind = WIRE_FIELDS[key]
            try:
                kwargs[attr], provenance[(name, key)] = quantity_si(merged[key], kind)
            except UnitError as exc:
                raise _wire_error(where, key, str(exc)) from None
        else:
            raise _wire_error(where, clip(key), "unknown field")
    if "inductance_h" not in kwargs:
        raise _wire_error(where, "inductance", "missing")
    try:
        params = NanowireParams(**kwargs)
    except ValueError as exc:
        fld = next((k for k, (attr, _) in WIRE_FIELDS.items() if attr in str(exc)),
                   next((k for k in WIRE_FLAGS if k in str(exc)), "value"))
        raise _wire_error(where, fld, str(exc)) from None
    return Nanowire(name, ends[0], ends[1], params)


class _WireError(ChipFileError):
    pass


def _wire_error(where, fld, problem):
    return _WireError(f"{where}, field '{fld}': {problem}")


def _check_dangling(elements, fail):
    count: dict[str, int] = {}
    for e in elements:
        for n in (e.node_pos, e.node_neg):
            count[n] = count.get(n, 0) + 1
    for e in elements:
        for n in (e.node_pos, e.node_neg):
            if n != GROUND and count[n] < 2:
                raise fail(f"element '{e.name}'", "nodes", f"dangling node {n!r}: nothing else connects to it")


def _names(section, title, key, allowed, fail):
    if not isinstance(section, dict):
        raise fail(title, title, "must be a mapping")
    out = {}
    for port, entry in section.items():
        where = f"{title[:-1]} '{clip(port)}'"
        if not isinstance(entry, dict) or key not in entry:
            raise fail(where, key, "missing")
        _only(entry, {key}, where, fail)
        if not isinstance(entry[key], str) or entry[key] not in allowed:
            raise fail(where, key, f"{clip(repr(entry[key]))} is not one of {sorted(allowed)}")
        out[str(port)] = str(entry[key])
    return out
