"""Which elements of a chip form each synapse, and the energy they dissipate: the ground truth
behind "energy per synaptic event" (docs/chip-files.md, "Synapses").

Naming convention of the chip files: an element belongs to synapse ``<id>`` when its name is
``<id>_<part>`` with ``<id>`` = ``syn`` followed by nothing or by digits: ``syn_w``, ``syn_rin``
for a chip with one synapse; ``syn1_w``, ``syn2_w``, ... for several. Every other element
(neurons, wiring loads the bench adds) belongs to no synapse. A synapse's sources (its weight, or
control, current) are part of it: they deliver energy but dissipate none.

Works on what the lab and the emulator hold: a ``ChipDocument`` (``contracts.files.chip``), a
``ChipFile`` (``sim_backend.chip.build``) or a bare ``Circuit``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from contracts.files.chip import SYNAPSE_NAME, synapse_of
from sim_backend.physics.circuit import Circuit, CurrentSource, Inductor, Nanowire, Resistor, VoltageSource

__all__ = ["SYNAPSE_NAME", "Synapse", "synapse_of", "synapses", "synaptic_energy_j"]

#: element kinds as the chip file spells them, from the physics classes
_KINDS = {Nanowire: "nanowire", Inductor: "inductor", Resistor: "resistor",
          CurrentSource: "current_source", VoltageSource: "voltage_source"}
_SOURCES = ("current_source", "voltage_source")


@dataclass(frozen=True)
class Synapse:
    """One synapse's elements, in file order, by kind; ``ports`` are the chip's ports that drive
    its sources (the weight port)."""

    name: str
    elements: tuple[str, ...]
    wires: tuple[str, ...]
    resistors: tuple[str, ...]
    inductors: tuple[str, ...]
    sources: tuple[str, ...]
    ports: tuple[str, ...] = ()

    @property
    def dissipative(self) -> tuple[str, ...]:
        """The elements that can dissipate: its nanowires (hotspots) and resistors."""
        return tuple(e for e in self.elements if e in self.wires or e in self.resistors)


def _elements(chip: Any) -> list[tuple[str, str]]:
    """(name, kind) of every element of a ChipDocument, ChipFile or Circuit."""
    circuit = getattr(chip, "circuit", chip)
    if isinstance(circuit, Circuit):
        return [(e.name, _KINDS[type(e)]) for e in circuit.elements]
    elements = getattr(chip, "elements", None)
    if elements is None:
        raise TypeError(f"expected a ChipDocument, ChipFile or Circuit, got {type(chip).__name__}")
    return [(e.name, e.kind) for e in elements]


def synapses(chip: Any) -> dict[str, Synapse]:
    """The chip's synapses by id, in the order they first appear in the file."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for name, kind in _elements(chip):
        sid = synapse_of(name)
        if sid is not None:
            grouped.setdefault(sid, []).append((name, kind))
    ports: Mapping[str, str] = getattr(chip, "ports", {}) or {}
    out = {}
    for sid, members in grouped.items():
        names = tuple(n for n, _ in members)
        sources = tuple(n for n, k in members if k in _SOURCES)
        out[sid] = Synapse(
            name=sid, elements=names,
            wires=tuple(n for n, k in members if k == "nanowire"),
            resistors=tuple(n for n, k in members if k == "resistor"),
            inductors=tuple(n for n, k in members if k == "inductor"),
            sources=sources,
            ports=tuple(p for p, src in ports.items() if src in sources),
        )
    return out


def synaptic_energy_j(chip: Any, dissipated_j: Mapping[str, float],
                      only: Iterable[str] | None = None) -> dict[str, float]:
    """Energy dissipated in each synapse's elements, summed by name from per-element energies
    (``TransientResult.energy.dissipated_j``, or ``energy.dissipated_j`` of the JSON that
    ``nwlab chip simulate`` writes). Elements missing from ``dissipated_j`` (lossless inductors,
    sources) count zero. ``only``: the synapse ids wanted (default: all)."""
    found = synapses(chip)
    wanted = list(found) if only is None else list(only)
    unknown = [sid for sid in wanted if sid not in found]
    if unknown:
        raise KeyError(f"no synapse {unknown[0]!r} in this chip (synapses: {', '.join(found) or 'none'})")
    return {sid: float(sum(dissipated_j.get(name, 0.0) for name in found[sid].elements)) for sid in wanted}
