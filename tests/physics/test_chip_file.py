"""Chip files: the shipped chips load; every malformed case names file, element and field."""

import copy
from pathlib import Path

import pytest
import yaml

from sim_backend.chip.build import ChipFileError, load_chip, parse_chip
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


def _list_type(d):
    _element(d, "rm")["type"] = ["resistor"]


def _mapping_type(d):
    _element(d, "wm")["type"] = {"nanowire": 1}


def _list_port_source(d):
    d["ports"]["bias"] = {"source": ["ib"]}


def _mapping_output_node(d):
    d["outputs"]["vout"] = {"node": {"m": 1}}


def _negative_temperature(d):
    d["temperature"] = {"value": -3, "unit": "K", "source": "test"}


def _zero_temperature(d):
    d["temperature"] = {"value": 0, "unit": "mK", "source": "test"}


def _overflowing_temperature(d):
    d["temperature"] = {"value": 1e300, "unit": "TK", "source": "test"}


def _mixed_unknown_fields(d):
    _element(d, "rm")[1] = 2
    _element(d, "rm")["zz"] = 3


def _mixed_unknown_quantity_keys(d):
    _element(d, "ls")["inductance"].update({1: 2, "zz": 3})


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
    (_list_type, "element 'rm'", "type"),
    (_mapping_type, "element 'wm'", "type"),
    (_list_port_source, "port 'bias'", "source"),
    (_mapping_output_node, "output 'vout'", "node"),
    (_negative_temperature, "chip", "temperature"),
    (_zero_temperature, "chip", "temperature"),
    (_overflowing_temperature, "chip", "temperature"),
    (_mixed_unknown_fields, "element 'rm'", "1"),
    (_mixed_unknown_quantity_keys, "element 'ls'", "inductance"),
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


def test_temperature_must_be_positive_kelvin(tmp_path):
    data = _base()
    data["temperature"] = {"value": -3, "unit": "K", "source": "test"}
    with pytest.raises(ChipFileError, match=r"chip, field 'temperature': must be > 0 K"):
        parse_chip(data, tmp_path / "cold.yaml")
    data["temperature"] = {"value": 20, "unit": "mK", "source": "dilution stage"}
    assert parse_chip(data, tmp_path / "cold.yaml").temperature_k == pytest.approx(0.02)


def _unreadable(tmp_path, kind):
    if kind == "missing":
        return tmp_path / "missing.yaml"
    if kind == "directory":
        (tmp_path / "chip.yaml").mkdir()
        return tmp_path / "chip.yaml"
    if kind == "nul":
        return tmp_path / "ch\0ip.yaml"
    path = tmp_path / "latin1.yaml"
    path.write_bytes((CHIPS / "neuron-c8.yaml").read_bytes().replace(b"name: neuron-c8", b"name: neur\xf3n"))
    return path


@pytest.mark.parametrize("kind", ["missing", "directory", "nul", "not-utf8"])
def test_unreadable_chip_file_is_a_chip_file_error_naming_the_file(tmp_path, kind):
    path = _unreadable(tmp_path, kind)
    with pytest.raises(ChipFileError) as info:
        load_chip(path)
    assert str(info.value).startswith(f"{path}: cannot read"), str(info.value)


def test_deeply_nested_chip_yaml_is_a_chip_file_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("format: nwlab-chip/1\nnotes: " + "[" * 20000 + "]" * 20000 + "\n")
    with pytest.raises(ChipFileError) as info:
        load_chip(path)
    assert str(info.value).startswith(f"{path}: "), str(info.value)
