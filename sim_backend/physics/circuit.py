"""Netlist data model: elements between named nodes; ground is node "0".

Sign conventions (used by the solver and reported results):
* Nanowire, Inductor, Resistor: branch current is positive flowing node_pos -> node_neg through
  the element.
* CurrentSource: pushes ``current_a`` into node_pos (and draws it out of node_neg).
* VoltageSource: v(node_pos) − v(node_neg) = ``voltage_v``; its reported current is the current it
  delivers out of node_pos into the circuit, so its delivered power is voltage × current.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sim_backend.physics.nanowire import NanowireParams

GROUND = "0"


def _check_nodes(kind: str, name: str, node_pos: str, node_neg: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{kind}: name must be a non-empty string, got {name!r}")
    for label, node in (("node_pos", node_pos), ("node_neg", node_neg)):
        if not isinstance(node, str) or not node:
            raise ValueError(f"{kind} {name!r}: {label} must be a non-empty string, got {node!r}")
    if node_pos == node_neg:
        raise ValueError(f"{kind} {name!r}: both terminals on node {node_pos!r} (shorted element)")


def _check_positive(kind: str, name: str, field_name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{kind} {name!r}: {field_name} must be positive and finite, got {value!r}")


def _check_finite(kind: str, name: str, field_name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise ValueError(f"{kind} {name!r}: {field_name} must be finite, got {value!r}")


@dataclass(frozen=True)
class Nanowire:
    name: str
    node_pos: str
    node_neg: str
    params: NanowireParams = field(default_factory=NanowireParams)

    def __post_init__(self) -> None:
        _check_nodes("Nanowire", self.name, self.node_pos, self.node_neg)
        if not isinstance(self.params, NanowireParams):
            raise ValueError(f"Nanowire {self.name!r}: params must be NanowireParams")


@dataclass(frozen=True)
class Inductor:
    name: str
    node_pos: str
    node_neg: str
    inductance_h: float

    def __post_init__(self) -> None:
        _check_nodes("Inductor", self.name, self.node_pos, self.node_neg)
        _check_positive("Inductor", self.name, "inductance_h", self.inductance_h)


@dataclass(frozen=True)
class Resistor:
    name: str
    node_pos: str
    node_neg: str
    resistance_ohm: float

    def __post_init__(self) -> None:
        _check_nodes("Resistor", self.name, self.node_pos, self.node_neg)
        _check_positive("Resistor", self.name, "resistance_ohm", self.resistance_ohm)


@dataclass(frozen=True)
class CurrentSource:
    name: str
    node_pos: str
    node_neg: str
    current_a: float = 0.0

    def __post_init__(self) -> None:
        _check_nodes("CurrentSource", self.name, self.node_pos, self.node_neg)
        _check_finite("CurrentSource", self.name, "current_a", self.current_a)


@dataclass(frozen=True)
class VoltageSource:
    name: str
    node_pos: str
    node_neg: str
    voltage_v: float = 0.0

    def __post_init__(self) -> None:
        _check_nodes("VoltageSource", self.name, self.node_pos, self.node_neg)
        _check_finite("VoltageSource", self.name, "voltage_v", self.voltage_v)


Element = Nanowire | Inductor | Resistor | CurrentSource | VoltageSource
Source = CurrentSource | VoltageSource


@dataclass(frozen=True)
class Circuit:
    """A validated netlist. ``nodes``, if given, declares every non-ground node that may be used."""

    elements: tuple[Element, ...]
    nodes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        elements = tuple(self.elements)
        object.__setattr__(self, "elements", elements)
        if not elements:
            raise ValueError("Circuit: no elements")
        for e in elements:
            if not isinstance(e, (Nanowire, Inductor, Resistor, CurrentSource, VoltageSource)):
                raise ValueError(f"Circuit: unsupported element {e!r}")
        duplicates = [n for n, c in Counter(e.name for e in elements).items() if c > 1]
        if duplicates:
            raise ValueError(f"Circuit: duplicate element name {duplicates[0]!r}")
        if self.nodes is not None:
            declared = set(self.nodes) | {GROUND}
            object.__setattr__(self, "nodes", tuple(self.nodes))
            for e in elements:
                for node in (e.node_pos, e.node_neg):
                    if node not in declared:
                        raise ValueError(f"{type(e).__name__} {e.name!r}: unknown node {node!r}")
        terminals = Counter(n for e in elements for n in (e.node_pos, e.node_neg))
        if GROUND not in terminals:
            raise ValueError('Circuit: nothing is connected to ground (node "0")')
        for e in elements:
            for node in (e.node_pos, e.node_neg):
                if node != GROUND and terminals[node] < 2:
                    raise ValueError(f"{type(e).__name__} {e.name!r}: dangling node {node!r} (no other element on it)")
        self._check_connected(elements)
        _check_voltage_source_loops(elements)
        _check_current_source_cuts(elements)

    @staticmethod
    def _check_connected(elements: tuple[Element, ...]) -> None:
        find = _NodeGroups(elements).find
        for e in elements:
            if find(e.node_pos) != find(GROUND):
                raise ValueError(f"{type(e).__name__} {e.name!r}: not connected to ground")

    @property
    def node_names(self) -> tuple[str, ...]:
        """Non-ground nodes in order of first use."""
        seen: dict[str, None] = {}
        for e in self.elements:
            for n in (e.node_pos, e.node_neg):
                if n != GROUND:
                    seen.setdefault(n, None)
        return tuple(seen)

    def element(self, name: str) -> Element:
        for e in self.elements:
            if e.name == name:
                return e
        raise KeyError(f"Circuit has no element {name!r}")

    @property
    def sources(self) -> tuple[Source, ...]:
        return tuple(e for e in self.elements if isinstance(e, (CurrentSource, VoltageSource)))


def _check_voltage_source_loops(elements: tuple[Element, ...]) -> None:
    """Voltage sources in a loop (two in parallel, three in a triangle) fix one voltage twice:
    the network equations have no solution. Names the sources of the first loop found."""
    groups = _NodeGroups()
    find = groups.find
    adjacency: dict[str, list[tuple[str, str]]] = {}  # node -> (neighbour, source) over earlier sources
    for e in elements:
        if not isinstance(e, VoltageSource):
            continue
        if find(e.node_pos) == find(e.node_neg):
            way = _source_path(adjacency, e.node_pos, e.node_neg) or []
            loop = ", ".join(repr(name) for name in way + [e.name])
            raise ValueError(f"VoltageSource {e.name!r}: voltage sources {loop} form a loop "
                             f"(nodes {e.node_pos!r} and {e.node_neg!r}): they fix one voltage twice")
        groups.join(e)
        adjacency.setdefault(e.node_pos, []).append((e.node_neg, e.name))
        adjacency.setdefault(e.node_neg, []).append((e.node_pos, e.name))


def _source_path(adjacency: dict[str, list[tuple[str, str]]], start: str, goal: str) -> list[str] | None:
    """The sources on a path from `start` to `goal` through `adjacency`, or None."""
    found: dict[str, list[str]] = {start: []}
    stack = [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return found[node]
        for neighbour, name in adjacency.get(node, ()):
            if neighbour not in found:
                found[neighbour] = found[node] + [name]
                stack.append(neighbour)
    return None


class _NodeGroups:
    """Nodes joined into groups by elements (union-find): `find(node)` names a node's group."""

    def __init__(self, elements: Iterable[Element] = ()) -> None:
        self._parent: dict[str, str] = {}
        for e in elements:
            self.join(e)

    def find(self, node: str) -> str:
        parent = self._parent
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def join(self, e: Element) -> None:
        self._parent[self.find(e.node_pos)] = self.find(e.node_neg)


def _check_current_source_cuts(elements: tuple[Element, ...]) -> None:
    """A group of nodes that only current sources join to ground has no defined voltage, and the
    sources' currents must sum to zero exactly: refused, naming the sources and the nodes."""
    find = _NodeGroups(e for e in elements if not isinstance(e, CurrentSource)).find
    for e in elements:
        if not isinstance(e, CurrentSource):
            continue
        for node in (e.node_pos, e.node_neg):
            root = find(node)
            if root == find(GROUND):
                continue
            group = sorted({n for c in elements for n in (c.node_pos, c.node_neg) if find(n) == root})
            feeding = [c.name for c in elements if isinstance(c, CurrentSource)
                       and root in (find(c.node_pos), find(c.node_neg))]
            raise ValueError(f"CurrentSource {e.name!r}: node(s) {', '.join(map(repr, group))} connect to the rest "
                             f"only through current sources {', '.join(map(repr, feeding))}: their voltage is "
                             "undefined (add a resistor or inductor from them to ground or another node)")
