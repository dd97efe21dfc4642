"""A chip file's document (`contracts.files.chip`) -> a validated ``Circuit`` plus ports and provenance.

The document carries the file's values in SI; this module builds the physics elements from them
and refuses what only the physics knows, in the chip file's wording (file, element, field):
nanowire parameters out of range, a chip at or above a wire's Tc, a topology the solver cannot
solve (voltage sources in a loop, a node no element reaches).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.files.chip import (
    WIRE_FIELDS,
    WIRE_FLAGS,
    ChipDocument,
    ChipElement,
    ChipFileError,
    chip_document,
    chip_error,
    clip,
    read_chip,
)
from sim_backend.physics.circuit import Circuit, CurrentSource, Inductor, Nanowire, Resistor, VoltageSource
from sim_backend.physics.nanowire import NanowireParams

__all__ = ["ChipFile", "ChipFileError", "build_chip", "load_chip", "parse_chip"]

#: element type -> its physics class (the value is the class's fourth argument, in SI)
ELEMENT_CLASSES = {"inductor": Inductor, "resistor": Resistor, "current_source": CurrentSource,
                   "voltage_source": VoltageSource}


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
    """Read, check and build a chip file; every failure is a ChipFileError naming the file."""
    return build_chip(read_chip(path))


def parse_chip(data: Any, path: Path | str = "<chip>") -> ChipFile:
    """Check and build a chip file's YAML tree."""
    return build_chip(chip_document(data, path))


def build_chip(document: ChipDocument) -> ChipFile:
    path = document.path

    def fail(where: str, fld: str, problem: str) -> ChipFileError:
        return chip_error(path, where, fld, problem)

    elements = [_element(element, fail) for element in document.elements]
    for wire in elements:
        if isinstance(wire, Nanowire) and document.temperature_k >= wire.params.tc_k:
            raise fail("chip", "temperature", f"{document.temperature_k:g} K is at or above the Tc of nanowire "
                       f"'{clip(wire.name, 60)}' ({wire.params.tc_k:g} K): the chip would not be superconducting")
    try:
        circuit = Circuit(tuple(elements), nodes=document.nodes)
    except ValueError as exc:
        named = re.match(r"\w+ '([^']*)'", str(exc))   # "VoltageSource 'vb2': ..." names the culprit
        culprit = named.group(1) if named else next((e.name for e in elements if f"'{e.name}'" in str(exc)), None)
        raise fail(f"element '{clip(culprit, 60)}'" if culprit else "chip", "nodes", str(exc)) from None
    return ChipFile(path, document.name, document.description, circuit, document.temperature_k,
                    document.ports, document.outputs, document.provenance, document.notes)


def _element(element: ChipElement, fail):
    where = f"element '{clip(element.name, 60)}'"
    if element.kind == "nanowire":
        try:
            params = NanowireParams(**element.wire)
        except ValueError as exc:
            fld = next((k for k, (attr, _) in WIRE_FIELDS.items() if attr in str(exc)),
                       next((k for k in WIRE_FLAGS if k in str(exc)), "value"))
            raise fail(where, fld, str(exc)) from None
        return Nanowire(element.name, *element.nodes, params)
    try:
        return ELEMENT_CLASSES[element.kind](element.name, *element.nodes, element.value_si)
    except ValueError as exc:
        raise fail(where, "nodes" if "node" in str(exc) else "value", str(exc)) from None
