"""Design values of the chip under test, from its chip file (PlanContext.chip_design).

Plans pick their ranges from these (bisection brackets, amplitudes, capture ranges). Three
sources, in order of preference:

1. values the chip file documents (any key named like `firing_threshold`, `refractory_period`,
   `energy_per_spike`, `spike_amplitude`, as a number in SI or a `{value, unit}` quantity);
2. estimates from its netlist (format nwlab-chip/1): node names from `outputs`/`ports`, the bias
   from the bias port's source, each wire's I_sw = Jc·w·d, the spike amplitude I_sw,main·R_shunt
   (the main wire's current diverted into its shunt) and thresholds from the inductive current
   division of a DC current injected at a node (physics reference §1.3; the long-pulse limit,
   i.e. near the rheobase — nonlinear inductance moves it by some 10 %);
3. the fallbacks below (the reconstructed neuron C8 of physics reference §5).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from contracts.units import prefix_scale

FALLBACK_THRESHOLD_A = 15e-6
FALLBACK_REFRACTORY_S = 10e-9
FALLBACK_ENERGY_J = 10e-18
FALLBACK_SWITCHING_CURRENT_A = 20e-6
FALLBACK_BIAS_A = 20e-6
FALLBACK_SPIKE_AMPLITUDE_V = 0.2e-3

_BASES = ("ohm/sq", "A/m^2", "ohm", "Ohm", "Ω", "A", "V", "H", "m", "s", "K", "J", "Hz", "1", "")


def quantity(entry: Any) -> float | None:
    """SI value of a number or a {value, unit} mapping ("22 uA" style units); None if neither."""
    if isinstance(entry, Mapping):
        value, unit = entry.get("value"), str(entry.get("unit", "")).strip()
    else:
        value, unit = entry, ""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    scale = prefix_scale(unit, _BASES)
    return None if scale is None else float(value) * scale


def _walk(tree: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    if isinstance(tree, Mapping) and not ("value" in tree and len(path) > 0):
        for key, value in tree.items():
            yield from _walk(value, path + (str(key).lower(),))
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from _walk(value, path + (str(index),))
    else:
        yield path, tree


def find_number(tree: Mapping[str, Any], *names: str) -> float | None:
    """The first quantity whose key is one of `names` (case-blind), anywhere in the tree."""
    for name in (n.lower() for n in names):
        for path, value in _walk(tree):
            if path and path[-1] == name and (number := quantity(value)) is not None:
                return number
    return None


#: Keys under which a chip file documents the firing threshold.
THRESHOLD_KEYS = ("firing_threshold", "threshold_current", "firing_threshold_a", "threshold_a")


def documented_threshold_a(design: Mapping[str, Any] | None) -> float | None:
    """The firing threshold the chip file states (not estimated from its netlist), if any."""
    value = find_number(design or {}, *THRESHOLD_KEYS)
    return value if value is not None and value > 0 else None


@dataclass(frozen=True)
class _Netlist:
    elements: tuple[Mapping[str, Any], ...]
    defaults: Mapping[str, Any]

    def at_node(self, kind: str, node: str) -> Mapping[str, Any] | None:
        """The element of `kind` from `node` to ground."""
        for e in self.elements:
            if e.get("type") == kind and set(map(str, e.get("nodes", ()))) == {node, "0"}:
                return e
        return None

    def through_tap(self, kind: str, node: str) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
        """The element of `kind` from `node` to a node an inductor joins to ground (a tap under a
        neuron's main wire, as on the synapse chips), and that inductor; (None, None) if none."""
        for e in self.elements:
            nodes = [str(n) for n in e.get("nodes", ())]
            if e.get("type") != kind or node not in nodes or len(nodes) != 2 or "0" in nodes:
                continue
            tap = self.at_node("inductor", nodes[1] if nodes[0] == node else nodes[0])
            if tap is not None:
                return e, tap
        return None, None

    def between(self, kind: str, a: str, b: str) -> Mapping[str, Any] | None:
        for e in self.elements:
            if e.get("type") == kind and set(map(str, e.get("nodes", ()))) == {a, b}:
                return e
        return None

    def value(self, element: Mapping[str, Any] | None, field: str) -> float | None:
        if element is None:
            return None
        return quantity(element.get(field, self.defaults.get(field)))

    def switching_current_a(self, wire: Mapping[str, Any] | None) -> float | None:
        jc, w, d = (self.value(wire, f) for f in ("jc", "width", "thickness"))
        constriction = self.value(wire, "constriction") or 1.0
        return None if None in (jc, w, d) else constriction * jc * w * d


@dataclass(frozen=True)
class DesignHints:
    threshold_a: float            # input current that fires the neuron (long pulses: ~rheobase)
    refractory_s: float
    energy_per_spike_j: float
    switching_current_a: float    # DC switching current of the bias port (both wires at I_sw)
    bias_a: float                 # operating DC bias into the bias port
    spike_amplitude_v: float      # at the output node
    output_node: str = "m"
    bias_node: str = "c"

    @classmethod
    def from_chip(cls, design: Mapping[str, Any] | None) -> DesignHints:
        d = design or {}
        estimates = _netlist_estimates(d)

        def pick(key: str, fallback: float, *names: str) -> float:
            for value in (find_number(d, *names), estimates.get(key)):
                if value is not None and value > 0:
                    return value
            return fallback

        return cls(
            threshold_a=pick("threshold_a", FALLBACK_THRESHOLD_A, *THRESHOLD_KEYS),
            refractory_s=pick("refractory_s", FALLBACK_REFRACTORY_S, "refractory_period", "refractory_window",
                              "refractory_s", "refractory_period_s"),
            energy_per_spike_j=pick("energy_j", FALLBACK_ENERGY_J, "energy_per_spike", "energy_per_spike_j"),
            switching_current_a=pick("port_switching_a", FALLBACK_SWITCHING_CURRENT_A,
                                     "bias_port_switching_current", "bias_port_switching_current_a"),
            bias_a=pick("bias_a", FALLBACK_BIAS_A, "operating_bias", "operating_bias_a"),
            spike_amplitude_v=pick("spike_v", FALLBACK_SPIKE_AMPLITUDE_V, "spike_amplitude", "spike_amplitude_v"),
            output_node=str(estimates.get("output_node", "m")),
            bias_node=str(estimates.get("bias_node", "c")),
        )


def wire_flux_vs(design: Mapping[str, Any] | None, *, node: str | None = None, name: str | None = None
                 ) -> float | None:
    """I_sw x L (V·s) of a nanowire of an nwlab-chip/1 netlist: the one from `node` to ground, or
    the one called `name`. About the area ∫V dt its switching puts on its node (its current,
    switched into the shunt or released), which no inductive response alone reaches."""
    d = design or {}
    elements = d.get("elements")
    if not isinstance(elements, list):
        return None
    net = _Netlist(tuple(e for e in elements if isinstance(e, Mapping)), d.get("wire_defaults") or {})
    wire = (net.at_node("nanowire", node) if node is not None else
            next((e for e in net.elements if e.get("type") == "nanowire" and e.get("name") == name), None))
    isw_a, inductance_h = net.switching_current_a(wire), net.value(wire, "inductance")
    return None if isw_a is None or inductance_h is None else isw_a * inductance_h


def _netlist_estimates(d: Mapping[str, Any]) -> dict[str, Any]:
    """Estimates from an nwlab-chip/1 netlist: neuron topology main m→0, loop m–c, control c→0."""
    elements = d.get("elements")
    if not isinstance(elements, list):
        return {}
    net = _Netlist(tuple(e for e in elements if isinstance(e, Mapping)), d.get("wire_defaults") or {})
    by_name = {str(e.get("name")): e for e in net.elements}
    out: dict[str, Any] = {}
    source = lambda port: by_name.get(str(((d.get("ports") or {}).get(port) or {}).get("source")))
    bias_source, input_source = source("bias"), source("input")
    if bias_source is not None:
        out["bias_node"] = next(str(n) for n in bias_source.get("nodes", ("c",)) if str(n) != "0")
        out["bias_a"] = net.value(bias_source, "current")
    if input_source is not None:
        out["output_node"] = next(str(n) for n in input_source.get("nodes", ("m",)) if str(n) != "0")
    vout = ((d.get("outputs") or {}).get("vout") or {}).get("node")
    if vout is not None:
        out["output_node"] = str(vout)
    m, c = out.get("output_node", "m"), out.get("bias_node", "c")
    main, control = net.at_node("nanowire", m), net.at_node("nanowire", c)
    tap = None
    if main is None:                # a main wire over a tap inductor: the branch is both in series
        main, tap = net.through_tap("nanowire", m)
    loop, shunt = net.between("inductor", m, c), net.at_node("resistor", m)
    isw_m, isw_c = net.switching_current_a(main), net.switching_current_a(control)
    if isw_m and net.value(shunt, "resistance"):
        out["spike_v"] = isw_m * net.value(shunt, "resistance")
    l_m, l_s, l_c = (net.value(e, "inductance") for e in (main, loop, control))
    if l_m is not None and tap is not None:
        l_m += net.value(tap, "inductance") or 0.0
    if None in (l_m, l_s, l_c, isw_m, isw_c):
        return out
    total = l_m + l_s + l_c
    bias = out.get("bias_a") or 0.0
    # Current injected at c reaches the control wire with share (L_m+L_s)/ΣL, the main wire L_c/ΣL;
    # injected at m: main (L_s+L_c)/ΣL, control L_m/ΣL.
    # The first wire to switch (normally the control wire) does so at a port current of its I_sw
    # over its share, but only transiently: its current moves into the superconducting loop as
    # trapped flux and the port stays at zero volts. A steady voltage needs both wires at their
    # I_sw at once: the port's DC switching current is I_sw,m + I_sw,c.
    out["port_switching_a"] = isw_m + isw_c
    needed = [(isw_m - bias * l_c / total) * total / (l_s + l_c), (isw_c - bias * (l_m + l_s) / total) * total / l_m]
    positive = [n for n in needed if n > 0]
    if positive:
        out["threshold_a"] = min(positive)
    return out
