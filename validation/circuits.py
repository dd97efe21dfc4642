"""The reference circuits written directly as ngspice decks (physics.md §5, C2, C3, C8)."""

from __future__ import annotations

from dataclasses import dataclass

from validation.netlist import Netlist, _g, pulse_source, wire_lines
from validation.wire import Retrap, WireParams

DEFAULT_MAX_STEP_S = 1e-12


def oscillator(*, nonlinear: bool, stop_s: float = 100e-9, max_step_s: float = DEFAULT_MAX_STEP_S,
               retrap: Retrap = "a", source_v: float = 2.08, source_ohm: float = 100e3,
               shunt_ohm: float = 50.0, wire: WireParams | None = None) -> Netlist:
    """C2 (linear L) / C3 (nonlinear L): 70 nH wire, 2.08 V through 100 kohm, 50 ohm shunt.

    Node `d` is the wire's top; the wire is named `w`. Zero initial conditions.
    """
    w = wire or WireParams(inductance_h=70e-9, nonlinear=nonlinear)
    elements = [
        f"vbias vin 0 {_g(source_v)}",
        f"rbias vin d {_g(source_ohm)}",
        f"rsh d 0 {_g(shunt_ohm)}",
        *wire_lines("w", "d", "0", w, retrap),
    ]
    title = f"C{3 if w.nonlinear else 2} relaxation oscillator"
    return Netlist(title, tuple(elements), stop_s, max_step_s, {"w": w}, ("vin", "d"))


def c2(**kw) -> Netlist:
    return oscillator(nonlinear=False, **kw)


def c3(**kw) -> Netlist:
    return oscillator(nonlinear=True, **kw)


@dataclass(frozen=True)
class InputPulse:
    """Current pulse into node m: amplitude, flat-top width, edges, start."""

    amplitude_a: float
    width_s: float
    delay_s: float
    rise_s: float = 20e-12
    fall_s: float = 20e-12


def neuron(pulses: tuple[InputPulse, ...] = (), *, stop_s: float = 40e-9, bias_a: float = 20e-6,
           max_step_s: float = DEFAULT_MAX_STEP_S, retrap: Retrap = "a", bias_ramp_s: float = 0.0,
           l_main_h: float = 20e-9, l_control_h: float = 20e-9, l_loop_h: float = 100e-9,
           r_main_ohm: float = 20.0, r_control_ohm: float = 20.0) -> Netlist:
    """C8 reconstruction: wires M (m->0) and C (c->0) with nonlinear L, shunts, L_S m->c,
    DC bias into c (optionally ramped over bias_ramp_s), input current pulses into m."""
    m = WireParams(inductance_h=l_main_h, nonlinear=True)
    c = WireParams(inductance_h=l_control_h, nonlinear=True)
    if bias_ramp_s > 0:
        bias = f"ibias 0 c PWL(0 0 {_g(bias_ramp_s)} {_g(bias_a)})"
    else:
        bias = f"ibias 0 c {_g(bias_a)}"
    elements = [
        bias,
        f"rm m 0 {_g(r_main_ohm)}",
        f"rc c 0 {_g(r_control_ohm)}",
        f"ls m c {_g(l_loop_h)}",
        *wire_lines("m", "m", "0", m, retrap),
        *wire_lines("c", "c", "0", c, retrap),
    ]
    for k, p in enumerate(pulses):
        elements.append(pulse_source(f"in{k}", "0", "m", p.amplitude_a, p.delay_s, p.width_s, p.rise_s, p.fall_s))
    return Netlist("C8 neuron reconstruction", tuple(elements), stop_s, max_step_s, {"m": m, "c": c}, ("m", "c"))
