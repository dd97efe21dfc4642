"""Chip files (YAML, format ``nwlab-chip/1``) read into a typed document: SI values with their
provenance, nodes, elements, ports and outputs.

The format is documented in docs/chip-files.md. Every error names the file, the element (or
section) and the field, on one line. Unknown keys are refused at every level; YAML anchors,
aliases and duplicate keys are refused as the file is read (`contracts.files.yaml12`). The lab
records the document (a station's wiring names its ports and nodes); the emulator turns it into
the physics circuit (`sim_backend/chip/build.py`), which checks what only the physics knows
(nanowire parameter ranges, Tc defaults, the circuit's topology) with the same wording.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.files.yaml12 import Wording, clip, load_yaml
from contracts.units import UnitError, quantity_si

FORMAT = "nwlab-chip/1"
GROUND = "0"
#: Every top-level key a chip file may have (docs/chip-files.md).
TOP_LEVEL = ("format", "name", "description", "temperature", "nodes", "wire_defaults", "elements",
             "ports", "outputs", "notes")
#: Largest chip file read: the shipped ones are 2-6 KB, and YAML parses at ~100 KB/s here, so a
#: huge file would hold the loader for minutes before any check could refuse it.
FILE_BYTES_MAX = 256 * 1024
#: Longest key or value text quoted in a message (a file may hold a megabyte-long name).
SHOWN_CHARS_MAX = 60
WORDING = Wording(file="a chip file", shown_chars=SHOWN_CHARS_MAX, duplicate_by_line=True)

#: nanowire field in the file -> (its SI keyword, as the nanowire model takes it; unit kind)
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
#: two-terminal element type -> (value field in the file, unit kind, must be > 0)
SIMPLE: dict[str, tuple[str, str, bool]] = {
    "inductor": ("inductance", "inductance", True),
    "resistor": ("resistance", "resistance", True),
    "current_source": ("current", "current", False),
    "voltage_source": ("voltage", "voltage", False),
}
SOURCES = ("current_source", "voltage_source")
#: Synapse elements (docs/chip-files.md, "Synapses"): an element belongs to synapse ``<id>`` when
#: its name is ``<id>_<part>``, ``<id>`` being ``syn`` followed by nothing or by digits (``syn_w``;
#: ``syn1_w``, ``syn2_w`` on a chip with several). Group 1 is the id, group 2 the part.
SYNAPSE_NAME = re.compile(r"^(syn[0-9]*)_(.+)$")


def synapse_of(element: str) -> str | None:
    """The synapse an element name belongs to (``'syn_w'`` -> ``'syn'``), or None."""
    match = SYNAPSE_NAME.match(element)
    return match.group(1) if match else None


class ChipFileError(ValueError):
    """Malformed or unphysical chip file; the message names file, element and field."""


def chip_error(path: Path, where: str, fld: str, problem: str) -> ChipFileError:
    """The one shape of a chip-file message: `<file>: <element or section>, field '<f>': <problem>`."""
    return ChipFileError(f"{path}: {where}, field '{fld}': {problem}")


@dataclass(frozen=True)
class ChipElement:
    name: str
    kind: str                          # "nanowire" or one of SIMPLE
    nodes: tuple[str, str]             # (node_pos, node_neg)
    value_si: float | None = None      # SIMPLE: H, ohm, A or V
    wire: Mapping[str, Any] = field(default_factory=dict)   # nanowire: SI keywords and flags


@dataclass(frozen=True, eq=False)
class ChipDocument:
    path: Path
    name: str
    description: str
    temperature_k: float
    nodes: tuple[str, ...]
    elements: tuple[ChipElement, ...]
    ports: Mapping[str, str]            # port name -> source element it drives
    outputs: Mapping[str, str]          # output name -> node
    provenance: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (element, field) -> note
    notes: str = ""


def read_chip_yaml(path: Path) -> Any:
    """The chip file's YAML tree (bounded in size; refusals worded for chip files)."""
    return load_yaml(path, ChipFileError, WORDING, max_bytes=FILE_BYTES_MAX)


def read_chip(path: str | Path) -> ChipDocument:
    """Read and check a chip file; every failure is a ChipFileError naming the file."""
    path = Path(path)
    return chip_document(read_chip_yaml(path), path)


def chip_document(data: Any, path: Path | str = "<chip>") -> ChipDocument:
    """Check a chip file's YAML tree and type it."""
    path = Path(path)

    def fail(where: str, fld: str, problem: str) -> ChipFileError:
        return chip_error(path, where, fld, problem)

    if not isinstance(data, dict):
        raise ChipFileError(f"{path}: top level must be a mapping")
    for key in data:
        if key not in TOP_LEVEL:
            close = difflib.get_close_matches(str(key), TOP_LEVEL, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(TOP_LEVEL)}"
            raise fail("chip", _clip(key), f"unknown key ({hint})")
    if data.get("format") != FORMAT:
        raise fail("chip", "format", f"must be {FORMAT!r}, got {_clip(repr(data.get('format')))}")
    for key in ("name", "nodes", "elements", "temperature"):
        if key not in data:
            raise fail("chip", key, "missing")
    for key in ("name", "description", "notes"):
        if key in data and not isinstance(data[key], str):
            raise fail("chip", key, f"must be text, got a {type(data[key]).__name__}")
    provenance: dict[tuple[str, str], str] = {}
    temperature_k, provenance[("chip", "temperature")] = _quantity(data["temperature"], "temperature",
                                                                   "chip", "temperature", fail)
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
    elements: list[ChipElement] = []
    seen: set[str] = set()
    for k, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise fail(f"element #{k + 1}", "elements", "must be a mapping")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise fail(f"element #{k + 1}", "name", "missing or empty")
        where = f"element '{_clip(name)}'"
        if name in seen:
            raise fail(where, "name", "duplicate element name")
        seen.add(name)
        ends = entry.get("nodes")
        if not (isinstance(ends, list) and len(ends) == 2):
            raise fail(where, "nodes", "must be [node_pos, node_neg]")
        ends = (str(ends[0]), str(ends[1]))
        for n in ends:
            if n not in declared:
                raise fail(where, "nodes", f"unknown node {n!r} (declare it under 'nodes')")
        kind = entry.get("type")
        if not isinstance(kind, str):
            raise fail(where, "type", f"must be one of nanowire, {', '.join(SIMPLE)}; got {_clip(repr(kind))}")
        if kind == "nanowire":
            elements.append(ChipElement(name, kind, ends, wire=_wire(name, entry, defaults, provenance, fail)))
        elif kind in SIMPLE:
            fld, unit_kind, positive = SIMPLE[kind]
            _only(entry, {"name", "type", "nodes", fld}, where, fail)
            if fld not in entry:
                raise fail(where, fld, "missing")
            value, provenance[(name, fld)] = _quantity(entry[fld], unit_kind, where, fld, fail)
            if positive and value <= 0:
                raise fail(where, fld, f"must be positive, got {value:g}")
            elements.append(ChipElement(name, kind, ends, value_si=value))
        else:
            raise fail(where, "type", f"unknown type {_clip(repr(kind))} (nanowire, {', '.join(SIMPLE)})")
    _check_dangling(elements, fail)
    sources = {e.name for e in elements if e.kind in SOURCES}
    ports = _names(data.get("ports", {}), "ports", "source", sources, fail)
    outputs = _names(data.get("outputs", {}), "outputs", "node", set(nodes), fail)
    return ChipDocument(path, str(data["name"]), str(data.get("description", "")), temperature_k, tuple(nodes),
                        tuple(elements), ports, outputs, provenance, str(data.get("notes", "")))


def _clip(value: object) -> str:
    return clip(value, SHOWN_CHARS_MAX)


def _quantity(entry, kind, where, fld, fail) -> tuple[float, str]:
    try:
        return quantity_si(entry, kind)
    except UnitError as exc:
        raise fail(where, fld, str(exc)) from None


def _only(entry, allowed, where, fail) -> None:
    extra = set(entry) - allowed
    if extra:
        raise fail(where, _clip(sorted(extra, key=str)[0]), "unknown field")


def _wire(name, entry, defaults, provenance, fail) -> dict[str, Any]:
    """A nanowire's keywords for the model (SI values, flags): `wire_defaults` under its own."""
    where = f"element '{_clip(name)}'"
    wire: dict[str, Any] = {}
    for key, value in {**defaults, **entry}.items():
        if key in ("name", "type", "nodes"):
            continue
        if key in WIRE_FLAGS:
            if not isinstance(value, WIRE_FLAGS[key]):
                raise fail(where, key, f"must be a {WIRE_FLAGS[key].__name__}")
            wire[key] = value
        elif key in WIRE_FIELDS:
            attr, kind = WIRE_FIELDS[key]
            wire[attr], provenance[(name, key)] = _quantity(value, kind, where, key, fail)
        else:
            raise fail(where, _clip(key), "unknown field")
    if "inductance_h" not in wire:
        raise fail(where, "inductance", "missing")
    return wire


def _check_dangling(elements, fail) -> None:
    count: dict[str, int] = {}
    for e in elements:
        for n in e.nodes:
            count[n] = count.get(n, 0) + 1
    for e in elements:
        for n in e.nodes:
            if n != GROUND and count[n] < 2:
                raise fail(f"element '{e.name}'", "nodes", f"dangling node {n!r}: nothing else connects to it")


def _names(section, title, key, allowed, fail) -> dict[str, str]:
    if not isinstance(section, dict):
        raise fail(title, title, "must be a mapping")
    out = {}
    for port, entry in section.items():
        where = f"{title[:-1]} '{_clip(port)}'"
        if not isinstance(entry, dict) or key not in entry:
            raise fail(where, key, "missing")
        _only(entry, {key}, where, fail)
        if not isinstance(entry[key], str) or entry[key] not in allowed:
            raise fail(where, key, f"{_clip(repr(entry[key]))} is not one of {sorted(allowed)}")
        out[str(port)] = str(entry[key])
    return out


# -- what a wire's numbers mean at a temperature ------------------------------------------------
# The one owner of the switching current's temperature dependence (physics reference §2.5): the
# emulator's nanowire model and the report's design values both take it from here.

def switching_current_ratio(temperature_k: float, tc_k: float, reference_temperature_k: float) -> float:
    """I_sw(T)/I_sw(T_ref) with I_sw(T) = I_sw(0)·(1−(T/Tc)²)^{3/2}; 0 at or above Tc (NaN for a
    reference temperature at or above Tc, where Jc means nothing)."""
    def factor(t_k: float) -> float:
        return (1.0 - (t_k / tc_k) ** 2) ** 1.5 if t_k < tc_k else 0.0

    reference = factor(reference_temperature_k)
    return factor(temperature_k) / reference if reference > 0 else float("nan")


def wire_switching_current_a(wire: Mapping[str, Any], temperature_k: float) -> float | None:
    """A nanowire's switching current at `temperature_k` from its chip-file values (ChipElement.wire,
    SI keywords): C·Jc·w·d is I_sw at the Jc reference temperature, scaled by
    `switching_current_ratio`. None if the wire leaves out jc, width, thickness, tc or
    jc_reference_temperature (the emulator's defaults then apply; the chip file does not say)."""
    needed = ("jc_a_per_m2", "width_m", "thickness_m", "tc_k", "jc_reference_temperature_k")
    if any(name not in wire for name in needed):
        return None
    reference_a = wire.get("constriction", 1.0) * wire["jc_a_per_m2"] * wire["width_m"] * wire["thickness_m"]
    return reference_a * switching_current_ratio(temperature_k, wire["tc_k"], wire["jc_reference_temperature_k"])
