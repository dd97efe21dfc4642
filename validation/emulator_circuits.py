"""The reference circuits in the emulator's data model, for cross-checks and benchmarks."""

from __future__ import annotations

from sim_backend.physics import circuit as cm
from sim_backend.physics.nanowire import NanowireParams
from sim_backend.physics.waveform import PiecewiseLinear


def oscillator(*, nonlinear: bool, retrap: str = "voltage") -> cm.Circuit:
    """C2 (linear) / C3 (nonlinear): 70 nH wire `w` on node `d`, 2.08 V via 100 kohm, 50 ohm shunt."""
    wire = NanowireParams(inductance_h=70e-9, nonlinear_inductance=nonlinear, retrap=retrap)
    return cm.Circuit((
        cm.VoltageSource("vbias", "vin", "0", 2.08),
        cm.Resistor("rbias", "vin", "d", 100e3),
        cm.Resistor("rsh", "d", "0", 50.0),
        cm.Nanowire("w", "d", "0", wire),
    ))


def neuron(*, bias_a: float = 20e-6) -> cm.Circuit:
    """C8 reconstruction: wires `main` (m) and `control` (c), 20 nH nonlinear each, R_M = R_C =
    20 ohm, L_S = 100 nH from m to c, DC bias into c, source `input` into m (drive it)."""
    def wire() -> NanowireParams:
        return NanowireParams(inductance_h=20e-9, nonlinear_inductance=True)

    return cm.Circuit((
        cm.CurrentSource("bias", "c", "0", bias_a),
        cm.CurrentSource("input", "m", "0", 0.0),
        cm.Resistor("rm", "m", "0", 20.0),
        cm.Resistor("rc", "c", "0", 20.0),
        cm.Inductor("ls", "m", "c", 100e-9),
        cm.Nanowire("main", "m", "0", wire()),
        cm.Nanowire("control", "c", "0", wire()),
    ))


def pulse_train(amplitude_a: float, width_s: float, starts_s: tuple[float, ...],
                edge_s: float = 20e-12) -> PiecewiseLinear:
    """Input current pulses (50 % width `width_s`, linear edges) starting at `starts_s`."""
    total = None
    for start in starts_s:
        p = PiecewiseLinear.pulse(amplitude_a, delay_s=start, width_s=width_s, rise_s=edge_s)
        total = p if total is None else total + p
    if total is None:
        raise ValueError("pulse_train needs at least one start time")
    return total
