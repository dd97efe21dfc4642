"""Circuits and figure extraction shared by the physics tests (physics.md §5)."""

from __future__ import annotations

import numpy as np

from sim_backend.physics import transient

from sim_backend.physics.circuit import Circuit, CurrentSource, Inductor, Nanowire, Resistor, VoltageSource
from sim_backend.physics.nanowire import NanowireParams


def oscillator(*, nonlinear: bool = False, retrap: str = "voltage", sigma_isw_a: float = 0.0,
               inductance_h: float = 70e-9, delta: float = NanowireParams.delta) -> Circuit:
    """C2/C3: 70 nH wire, 2.08 V through 100 kOhm, 50 Ohm shunt (another inductance or growth-law
    δ on request)."""
    wire = NanowireParams(inductance_h=inductance_h, nonlinear_inductance=nonlinear, retrap=retrap,
                          sigma_isw_a=sigma_isw_a, delta=delta)
    return Circuit((
        VoltageSource("vb", "src", "0", 2.08),
        Resistor("rb", "src", "d", 100e3),
        Resistor("rsh", "d", "0", 50.0),
        Nanowire("w", "d", "0", wire),
    ))


def neuron_like(nonlinear: bool) -> Circuit:
    """Two 20 nH wires, main and control, joined by a 100 nH inductor (a superconducting loop),
    each shunted by 20 Ohm; 20 uA DC into control, an input source at main (0 A unless driven)."""
    wire = NanowireParams(inductance_h=20e-9, nonlinear_inductance=nonlinear)
    return Circuit((
        CurrentSource("bias", "0", "c", 20e-6),
        CurrentSource("input", "0", "m", 0.0),
        Nanowire("main", "m", "0", wire),
        Nanowire("control", "c", "0", wire),
        Inductor("ls", "m", "c", 100e-9),
        Resistor("rm", "m", "0", 20.0),
        Resistor("rc", "c", "0", 20.0),
    ))


def reference_settings(scale: float) -> dict[str, float]:
    """simulate()'s tolerances times `scale` and its maximum step times min(100·scale, 1): at
    scale 1e-3, the tight runs the tests measure switching times against."""
    return {"rtol": transient.RTOL * scale, "atol_current_a": transient.ATOL_CURRENT_A * scale,
            "atol_resistance_ohm": transient.ATOL_RESISTANCE_OHM * scale,
            "max_step_s": transient.DEFAULT_MAX_STEP_S * min(scale * 100, 1.0)}


def cycle_window(result, element="w", cycle=-2):
    """(start, end) of a steady-state cycle, switch to switch."""
    sw = result.switch_times_s(element)
    return sw[cycle - 1], sw[cycle]


def window_energy_j(result, trace: np.ndarray, start_s: float, end_s: float) -> float:
    return float(np.interp(end_s, result.time_s, trace) - np.interp(start_s, result.time_s, trace))


def fwhm_s(t: np.ndarray, v: np.ndarray) -> float:
    """Full width at half maximum of the single peak in v (absolute half level)."""
    k = int(np.argmax(v))
    half = 0.5 * v[k]
    left = k
    while left > 0 and v[left] > half:
        left -= 1
    right = k
    while right < v.size - 1 and v[right] > half:
        right += 1
    tl = np.interp(half, [v[left], v[left + 1]], [t[left], t[left + 1]])
    tr = np.interp(half, [v[right], v[right - 1]], [t[right], t[right - 1]])
    return float(tr - tl)
