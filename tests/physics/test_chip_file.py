"""Chip files: the shipped chips load; every malformed case names file, element and field."""

import copy
from pathlib import Path

import pytest
import yaml

from sim_backend.chip_file import ChipFileError, load_chip, parse_chip
from sim_backend.physics.circuit import Inductor, Nanowire

CHIPS = Path(__file__).resolve().parents[2] / "stations" / "chips"
SHIPPED = ["relaxation-oscillator", "relaxation-oscillator-nonlinear", "neuron-c8", "default-neuron"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_chips_load_with_provenance(name):
    chip = load_chip(CHIPS / f"{name}.yaml")
    assert chip.name == name
    assert chip.temperature_k == pytest.approx(2.0)
    assert chip.ports and chip.outputs
    for e in chip.circuit.elements:
        assert any(key[0] == e.name for key in chip.provenance), e.name


def test_units_with_prefixes_are_converted():
    chip = load_chip(CHIPS / "relaxation-oscillator.yaml")
    wire = chip.circuit.element("w")
    assert isinstance(wire, Nanowire)
    assert wire.params.inductance_h == pytest.approx(70e-9)
    assert wire.params.jc_a_per_m2 == pytest.approx(5e10)
    assert wire.params.boundary_conductance_w_per_m2_k == pytest.approx(5e4)
    assert chip.circuit.element("rb").resistance_ohm == pytest.approx(100e3)
    neuron = load_chip(CHIPS / "default-neuron.yaml")
    assert isinstance(neuron.circuit.element("ls"), Inductor)
    assert neuron.circuit.element("wm").params.sigma_isw_a == pytest.approx(50e-9)


def _base():
    return yaml.safe_load((CHIPS / "neuron-c8.yaml").read_text())


def _element(data, name):
    return next(e for e in data["elements"] if e["name"] == name)


def _negative_inductance(d):
    _element(d, "ls")["inductance"]["value"] = -5


def _unknown_unit(d):
    _element(d, "rm")["resistance"]["unit"] = "furlong"


def _wrong_unit_kind(d):
    _element(d, "ls")["inductance"]["unit"] = "nF"


def _unknown_node(d):
    _element(d, "rc")["nodes"] = ["x", "0"]


def _dangling(d):
    d["nodes"].append("x")
    d["elements"].append({"name": "rx", "type": "resistor", "nodes": ["c", "x"],
                          "resistance": {"value": 1, "unit": "ohm", "source": "test"}})


def _missing_field(d):
    del _element(d, "rm")["resistance"]


def _missing_source(d):
    del _element(d, "ls")["inductance"]["source"]


def _duplicate(d):
    d["elements"].append(copy.deepcopy(_element(d, "rm")))


def _bad_wire_field(d):
    _element(d, "wm")["width"] = {"value": 0, "unit": "nm", "source": "test"}


def _unknown_wire_field(d):
    _element(d, "wm")["colour"] = "blue"


def _bad_retrap(d):
    _element(d, "wc")["retrap"] = "sometimes"


def _unknown_type(d):
    _element(d, "rm")["type"] = "capacitor"


def _bad_port(d):
    d["ports"]["input"] = {"source": "rm"}


@pytest.mark.parametrize(("mutate", "where", "field"), [
    (_negative_inductance, "element 'ls'", "inductance"),
    (_unknown_unit, "element 'rm'", "resistance"),
    (_wrong_unit_kind, "element 'ls'", "inductance"),
    (_unknown_node, "element 'rc'", "nodes"),
    (_dangling, "element 'rx'", "nodes"),
    (_missing_field, "element 'rm'", "resistance"),
    (_missing_source, "element 'ls'", "inductance"),
    (_duplicate, "element 'rm'", "name"),
    (_bad_wire_field, "element 'wm'", "width"),
    (_unknown_wire_field, "element 'wm'", "colour"),
    (_bad_retrap, "element 'wc'", "retrap"),
    (_unknown_type, "element 'rm'", "type"),
    (_bad_port, "port 'input'", "source"),
])
def test_malformed_chip_names_file_element_and_field(tmp_path, mutate, where, field):
    data = _base()
    mutate(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(ChipFileError) as info:
        load_chip(path)
    message = str(info.value)
    assert str(path) in message
    assert where in message
    assert f"field '{field}'" in message


def test_not_a_chip_file():
    with pytest.raises(ChipFileError, match="format"):
        parse_chip({"name": "x"}, "x.yaml")
