"""Netlist text for ngspice: the native port of the nanowire model (physics.md §6).

Each wire is written flat (no .subckt) with its name as a suffix, so its probes have fixed names:
branch current i(vsen_<name>), hotspot resistance v(<name>_r), normal-state latch v(<name>_st).

  VSEN d n0 0                       current sense
  L    n0 n1 L0                     linear part of the kinetic inductance
  BNL  n1 n2 V=ddt((L(I)-L0)*I)     excess flux of the nonlinear L (omitted for a linear wire)
  BHS  n2 s  V=R*I while normal     hotspot voltage
  BST  sd 0, RST sd st 1, CST st 0 1p   latch with a 1 ps delay (breaks the algebraic loop)
  CR   r 0 1, BR 0 r I=dR/dt        hotspot-resistance integrator, reset while superconducting

The hold test of retrap variant (a) uses max(R,0): R overshoots below zero while it collapses,
and without the clamp the wire would stay "normal" with a negative resistance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from validation.wire import Retrap, WireParams


#: Suffixes of the nodes each wire adds (<name>_<suffix>).
INTERNAL_NODES = ("n0", "n1", "n2", "sd", "st", "r")


def _g(x: float) -> str:
    return f"{x:.12g}"


def wire_lines(name: str, node_d: str, node_s: str, wire: WireParams, retrap: Retrap = "a") -> list[str]:
    """Element lines of one nanowire from node_d to node_s (current positive d -> s)."""
    if retrap not in ("a", "b"):
        raise ValueError(f"retrap variant must be 'a' or 'b', got {retrap!r}")
    n = name.lower()
    cur = f"i(vsen_{n})"
    isw, ihs = _g(wire.switching_current_a), _g(wire.hotspot_current_a)
    psi, delta = _g(wire.stekly), _g(wire.delta)
    i2 = f"({cur}/{isw})*({cur}/{isw})"
    u = f"(({psi}*{i2}-2)/(sqrt(max({psi}*{i2}-1,0))+{delta}))"
    st, r = f"v({n}_st)", f"v({n}_r)"
    if retrap == "a":  # S5 <=2020: stay normal while the hotspot voltage exceeds I_hs * 1 ohm
        hold = f"max({r},0)*abs({cur})>{ihs}"
    else:  # S5 2025: stay normal while |I| > I_hs
        hold = f"abs({cur})>{ihs}"
    l0 = _g(wire.inductance_h)
    lines = [f"* nanowire {name}: L0={l0} Isw={isw} Ihs={ihs} psi={psi} retrap={retrap}"]
    lines.append(f"vsen_{n} {node_d} {n}_n0 0")
    if wire.nonlinear:
        x = f"min(max(0.6*{cur}/{isw},-1),1)"
        excess = f"({l0}/(2*cos(0.67*asin({x}))-1)-{l0})*{cur}"
        lines += [f"l_{n} {n}_n0 {n}_n1 {l0}", f"bnl_{n} {n}_n1 {n}_n2 V=ddt({excess})"]
    else:
        lines.append(f"l_{n} {n}_n0 {n}_n2 {l0}")
    lines += [
        f"bhs_{n} {n}_n2 {node_s} V=({st}>0.5 && {r}>0) ? {r}*{cur} : 0",
        f"bst_{n} {n}_sd 0 V=(abs({cur})>{isw} || ({st}>0.5 && {hold})) ? 1 : 0",
        f"rst_{n} {n}_sd {n}_st 1",
        f"cst_{n} {n}_st 0 1p",
        f"cr_{n} {n}_r 0 1",
        f"br_{n} 0 {n}_r I=({st}>0.5) ? ({r}<{_g(wire.normal_resistance_ohm)} ? "
        f"{_g(wire.growth_prefactor_ohm_per_s)}*{u} : 0) : -{r}*1e12",
    ]
    return lines


@dataclass(frozen=True)
class Netlist:
    """A complete transient deck plus what a reader needs to interpret its output."""

    title: str
    elements: tuple[str, ...]
    stop_s: float
    max_step_s: float
    wires: dict[str, WireParams] = field(default_factory=dict)
    #: Node names that carry the circuit's named nodes (ngspice lower-cases everything).
    nodes: tuple[str, ...] = ()
    #: Circuit name -> deck name, for nodes and elements whose names had to be made SPICE-safe.
    node_alias: dict[str, str] = field(default_factory=dict)
    element_alias: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        # uic: start from the stated initial conditions (zero unless an element line sets IC=).
        tran = f".tran {_g(self.max_step_s)} {_g(self.stop_s)} 0 {_g(self.max_step_s)} uic"
        return "\n".join([self.title, *self.elements, tran, ".end", ""])


def pwl_text(times_s, values) -> str:
    """PWL(...) with continuation lines, for long sampled waveforms."""
    pairs = [f"{_g(t)} {_g(v)}" for t, v in zip(times_s, values)]
    chunks = [" ".join(pairs[i : i + 6]) for i in range(0, len(pairs), 6)]
    return "PWL(" + "\n+ ".join(chunks) + ")"


def pulse_source(name: str, node_from: str, node_to: str, amplitude: float, delay_s: float,
                 width_s: float, rise_s: float, fall_s: float, kind: str = "i") -> str:
    """A single trapezoidal pulse; width_s is the flat top, as in SPICE's PULSE."""
    period = _g(10 * (delay_s + rise_s + width_s + fall_s) + 1.0)
    return (f"{kind}{name} {node_from} {node_to} PULSE(0 {_g(amplitude)} {_g(delay_s)} "
            f"{_g(rise_s)} {_g(fall_s)} {_g(width_s)} {period})")
