"""Design values read from chip files: documented values first, then netlist estimates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from procedures.design import DesignHints, quantity

CHIPS = Path(__file__).resolve().parents[2] / "stations" / "chips"


def neuron(bias_ua=22.0, r_m=8.0, l_s=20.0, extra=None):
    wire = lambda name, node: {"name": name, "type": "nanowire", "nodes": [node, "0"],
                               "inductance": {"value": 20, "unit": "nH", "source": "t"}}
    tree = {
        "format": "nwlab-chip/1",
        "wire_defaults": {"width": {"value": 100, "unit": "nm"}, "thickness": {"value": 4, "unit": "nm"},
                          "jc": {"value": 50, "unit": "GA/m^2"}},
        "elements": [wire("wm", "m"), {"name": "rm", "type": "resistor", "nodes": ["m", "0"],
                                       "resistance": {"value": r_m, "unit": "ohm"}},
                     {"name": "ls", "type": "inductor", "nodes": ["m", "c"], "inductance": {"value": l_s, "unit": "nH"}},
                     wire("wc", "c"),
                     {"name": "ib", "type": "current_source", "nodes": ["c", "0"],
                      "current": {"value": bias_ua, "unit": "uA"}},
                     {"name": "iin", "type": "current_source", "nodes": ["m", "0"], "current": {"value": 0, "unit": "uA"}}],
        "ports": {"input": {"source": "iin"}, "bias": {"source": "ib"}},
        "outputs": {"vout": {"node": "m"}},
    }
    tree.update(extra or {})
    return tree


def test_quantities_with_prefixes():
    assert quantity({"value": 22, "unit": "uA"}) == pytest.approx(22e-6)
    assert quantity({"value": 50, "unit": "GA/m^2"}) == pytest.approx(5e10)
    assert quantity(3.0) == 3.0 and quantity({"value": 1, "unit": "furlong"}) is None


def test_netlist_estimates_follow_the_inductive_division():
    hints = DesignHints.from_chip(neuron())
    isw = 50e9 * 100e-9 * 4e-9                          # 20 µA
    assert hints.bias_a == pytest.approx(22e-6)
    assert (hints.output_node, hints.bias_node) == ("m", "c")
    assert hints.spike_amplitude_v == pytest.approx(isw * 8.0)
    # Bias into c: the port's DC switching needs both wires at I_sw (trapped flux shares it).
    assert hints.switching_current_a == pytest.approx(2 * isw)
    # Input into m: control wire gets 1/3 of it on top of 2/3 of the bias -> (20 - 14.67)·3 µA.
    assert hints.threshold_a == pytest.approx((isw - 22e-6 * 2 / 3) * 3)
    # A stronger bias lowers the estimated threshold; a larger shunt raises the spike.
    assert DesignHints.from_chip(neuron(bias_ua=24.0)).threshold_a < hints.threshold_a
    assert DesignHints.from_chip(neuron(r_m=20.0)).spike_amplitude_v > hints.spike_amplitude_v


def test_documented_values_win_over_estimates():
    documented = {"characteristics": {"firing_threshold": {"value": 36.8, "unit": "uA"},
                                      "refractory_period": {"value": 5.24, "unit": "ns"}}}
    hints = DesignHints.from_chip(neuron(extra=documented))
    assert hints.threshold_a == pytest.approx(36.8e-6)
    assert hints.refractory_s == pytest.approx(5.24e-9)


@pytest.mark.parametrize("path", sorted(CHIPS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_chip_gives_positive_hints(path):
    hints = DesignHints.from_chip(yaml.safe_load(path.read_text()))
    assert min(hints.threshold_a, hints.bias_a, hints.spike_amplitude_v, hints.switching_current_a) > 0
