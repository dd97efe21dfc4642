"""The ngspice port of the nanowire model against the published checks, then against the emulator.

The port is validated on its own first (C2 of physics.md §5, computed there with three independent
implementations); only then is it used as the reference the emulator must agree with.
"""

import shutil

import numpy as np
import pytest

from sim_backend.reference import circuits, events, ngspice
from sim_backend.reference.netlist import Netlist

needs_ngspice = pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")
pytestmark = pytest.mark.ngspice


def _oscillator_figures(netlist):
    result = ngspice.run(netlist)
    wire = netlist.wires["w"]
    figs = events.figures(result.time_s, result.wire_current_a("w"), wire.switching_current_a,
                          result.voltage_v("d"))
    return result, figs


def _cycle_energies_j(result, figs):
    """Hotspot, shunt and delivered energy over the last complete steady-state cycle."""
    t, i_w, v = result.time_s, result.wire_current_a("w"), result.voltage_v("d")
    a, b = figs.switching_s[-3], figs.switching_s[-2]
    sel = (t >= a) & (t <= b)
    hotspot = np.trapezoid((result.hotspot_ohm("w") * i_w**2)[sel], t[sel])
    shunt = np.trapezoid((v**2 / 50.0)[sel], t[sel])
    delivered = np.trapezoid((v * (2.08 - v) / 100e3)[sel], t[sel])
    return hotspot, shunt, delivered


@needs_ngspice
def test_port_reproduces_c2():
    result, figs = _oscillator_figures(circuits.c2(stop_s=60e-9))
    assert figs.switching_s[0] == pytest.approx(4.564e-9, rel=0.01)
    assert figs.period_s == pytest.approx(4.513e-9, rel=0.01)
    assert figs.peak_v[-1] == pytest.approx(0.878e-3, rel=0.01)
    assert figs.peak_delay_s[-1] == pytest.approx(185e-12, rel=0.05)
    assert result.hotspot_ohm("w").max() == pytest.approx(1.086e3, rel=0.01)
    # Retrap (variant a) where the hotspot voltage falls below I_hs * 1 ohm: I ~ I_sw/sqrt(psi).
    st = result.normal_state("w")
    retrap_i = result.wire_current_a("w")[np.flatnonzero(st[:-1] & ~st[1:])]
    assert retrap_i[-1] == pytest.approx(3.24e-6, rel=0.01)
    hotspot, shunt, delivered = _cycle_energies_j(result, figs)
    assert hotspot == pytest.approx(14.3e-18, rel=0.01)
    assert shunt == pytest.approx(12.0e-18, rel=0.01)
    assert delivered == pytest.approx(26.3e-18, rel=0.01)
    assert delivered == pytest.approx(hotspot + shunt, rel=0.005)  # L stores nothing net per cycle


@needs_ngspice
def test_retrap_variant_b_shortens_the_c2_period():
    _, figs = _oscillator_figures(circuits.c2(stop_s=60e-9, retrap="b"))
    assert figs.period_s == pytest.approx(4.37e-9, rel=0.01)


@needs_ngspice
def test_nonlinear_inductance_lengthens_the_period_c3():
    r2, f2 = _oscillator_figures(circuits.c2(stop_s=60e-9))
    r3, f3 = _oscillator_figures(circuits.c3(stop_s=60e-9))
    assert f3.period_s > 1.2 * f2.period_s
    assert sum(_cycle_energies_j(r3, f3)[:2]) > sum(_cycle_energies_j(r2, f2)[:2])


@needs_ngspice
def test_neuron_fires_only_above_threshold():
    def spikes(amplitude_a):
        pulse = circuits.InputPulse(amplitude_a, width_s=2e-9, delay_s=10e-9)
        result = ngspice.run(circuits.neuron((pulse,), stop_s=20e-9))
        main = events.switching_times_s(result.time_s, result.wire_current_a("m"), 20e-6)
        control = events.switching_times_s(result.time_s, result.wire_current_a("c"), 20e-6)
        return main, control

    main, control = spikes(10e-6)
    assert main.size == 0 and control.size == 0
    main, control = spikes(30e-6)
    assert main.size == 1 and control.size == 1
    assert 0.3e-9 < control[0] - main[0] < 2e-9  # the control wire resets the loop after M fires


def test_missing_ngspice_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(ngspice.shutil, "which", lambda name: None)
    with pytest.raises(ngspice.NgspiceNotFound, match="ngspice not installed"):
        ngspice.run(circuits.c2(stop_s=1e-9))


@needs_ngspice
def test_ngspice_failure_carries_its_messages():
    bad = Netlist("broken deck", ("r1 a 0 1k", "bx a 0 V=nosuchfunc(v(a))"), 1e-9, 1e-12)
    with pytest.raises(ngspice.NgspiceError, match="nosuchfunc"):
        ngspice.run(bad)
