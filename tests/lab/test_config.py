"""Station files: the shipped ones load; malformed ones fail naming file, key path and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from contracts.files.station import StationError, read_station
from contracts.envelope import EnvelopeError
from contracts.wiring import wiring_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def station_text(tmp_path) -> str:
    chip = tmp_path / "chip.yaml"
    chip.write_text((ROOT / "stations" / "chips" / "default-neuron.yaml").read_text())
    text = (ROOT / "stations" / "emulated.yaml").read_text()
    return text.replace("chip: chips/default-neuron.yaml", f"chip: {chip}")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.yaml"
    path.write_text(text)
    return path


def edited(text: str, edit) -> str:
    tree = yaml.safe_load(text)
    edit(tree)
    return yaml.safe_dump(tree)


def test_emulated_station_loads_with_units_and_wiring(tmp_path, station_text):
    station = read_station(write(tmp_path, station_text))
    assert set(station.instruments) == {"cryostat", "pulser", "scope", "bias"}
    assert station.instruments["scope"].visalib == f"{tmp_path / 'emulated.yaml'}@nwlab"
    assert station.pulse_inputs[0].amperes_per_volt == pytest.approx(0.1 / 2000.0)
    assert wiring_of(station).readout(chip_node="m").source_volts_per_scope_volt == pytest.approx(10 ** (-50 / 20))
    assert station.readouts[0].bandwidth_hz == 2.0e9          # YAML 1.2 float, not a string
    assert station.clock_acceleration == 600
    assert station.is_emulated


def test_emulated_and_lan_stations_differ_only_in_addresses_and_clock():
    emulated = yaml.safe_load((ROOT / "stations" / "emulated.yaml").read_text())
    lan = yaml.safe_load((ROOT / "stations" / "example-lan.yaml").read_text())
    for tree in (emulated, lan):
        tree.pop("station"), tree.pop("clock")
        for instrument in tree["instruments"].values():
            instrument.pop("address"), instrument.pop("visalib", None)
    assert emulated == lan


@pytest.mark.parametrize("edit, key_path, problem", [
    (lambda t: t["instruments"]["bias"].pop("role"), "instruments.bias.role", "missing"),
    (lambda t: t["instruments"]["bias"].update(role="magnet"), "instruments.bias.role", "unknown role"),
    (lambda t: t["instruments"]["bias"].update(driver="Keithley"), "instruments.bias.driver", "dotted"),
    (lambda t: t["instruments"]["bias"]["envelope"].update(bias_current_max_a="lots"),
     "instruments.bias.envelope.bias_current_max_a", "finite number"),
    (lambda t: t["instruments"]["bias"]["envelope"].update(bias_current_max_a=-1e-6),
     "instruments.bias.envelope.bias_current_max_a", "> 0"),
    (lambda t: t["instruments"]["bias"]["envelope"].update(pulse_width_max_s=1e-6),
     "instruments.bias.envelope.pulse_width_max_s", "unknown key"),
    (lambda t: t["instruments"]["cryostat"]["envelope"].update(temperature_min_k=20.0),
     "instruments.cryostat.envelope.temperature_min_k", "below temperature_max_k"),
    (lambda t: t["wiring"]["pulse_input"]["source"].update(instrument="nobody"),
     "wiring.pulse_input.source.instrument", "not under instruments"),
    (lambda t: t["wiring"]["pulse_input"].update(series_resistance_ohm=0),
     "wiring.pulse_input.series_resistance_ohm", "> 0"),
    (lambda t: t["wiring"]["readout"][0].update(monitor="pulse_input"),
     "wiring.readout[0]", "exactly one of chip_node or monitor"),
    (lambda t: t["wiring"]["readout"][1].update(scope_channel=1), "wiring.readout", "appears twice"),
    (lambda t: t.update(chip="missing/chip.yaml"), "chip", "does not exist"),
    (lambda t: t.update(instruments=[]), "instruments", "expected a mapping"),
    (lambda t: t.update(extra=1), "extra", "unknown key"),
])
def test_malformed_station_names_file_key_and_problem(tmp_path, station_text, edit, key_path, problem):
    path = write(tmp_path, edited(station_text, edit))
    with pytest.raises(StationError) as error:
        read_station(path)
    message = str(error.value)
    assert message.startswith(f"{path}: {key_path}: ")
    assert problem in message


def test_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "station: x\ninstruments: [unclosed\n")
    with pytest.raises(StationError, match=r"not valid YAML \(line 3"):
        read_station(path)


def test_envelope_refuses_with_limit_and_source(tmp_path, station_text):
    station = read_station(write(tmp_path, station_text))
    bias = station.instruments["bias"].envelope
    bias.check_bias(44e-6, 50e-6)
    with pytest.raises(EnvelopeError, match=r"bias current 5e-05 A is above .*bias_current_max_a = 4.5e-05 A"):
        bias.check_bias(50e-6, 50e-6)
    with pytest.raises(EnvelopeError, match="bias ramp rate"):
        bias.check_bias(10e-6, 1.0)
    cryostat = station.instruments["cryostat"].envelope
    with pytest.raises(EnvelopeError, match="below"):
        cryostat.check_temperature_k(1.0)
    pulser = station.instruments["pulser"].envelope
    with pytest.raises(EnvelopeError, match="pulse current at the chip"):
        pulser.check_pulse(amplitude_v=4.0, width_s=2e-9, chip_current_a=4.0 * station.pulse_inputs[0].amperes_per_volt)


# -- keys and files that used to escape or be ignored (docs/reliability.md F-CFG-1..3) ----------

@pytest.mark.parametrize("edit, key_path, problem", [
    (lambda t: t.update(chip=["a"]), "chip", "expected a non-empty string"),
    (lambda t: t.update(station={"name": "x"}), "station", "expected a non-empty string"),
    (lambda t: t["wiring"]["pulse_input"]["source"].update(chanel=2), "wiring.pulse_input.source.chanel",
     "unknown key; expected one of channel, instrument"),
    (lambda t: t["wiring"]["bias"]["source"].update(Channel=1), "wiring.bias.source.Channel", "unknown key"),
    (lambda t: t["emulator"].update(sed=1), "emulator.sed", "unknown key; expected one of seed"),
    (lambda t: t["instruments"]["bias"]["emulator"].update(faults={"drop_evry": 5}),
     "instruments.bias.emulator.faults.drop_evry", "unknown key; expected one of drop_every"),
    (lambda t: t["instruments"]["bias"]["emulator"].update(faults=[1]), "instruments.bias.emulator.faults",
     "expected a mapping"),
    (lambda t: t["instruments"]["bias"]["emulator"].update(model=["keithley_2450"]),
     "instruments.bias.emulator.model", "expected a non-empty string"),
    (lambda t: t.update({1: 2, "zz": 3}), "1", "unknown key"),
    (lambda t: t["wiring"]["pulse_input"].update({2.5: 1, "zz": 3}), "wiring.pulse_input.2.5", "unknown key"),
    (lambda t: t.update(chip="chips/de\0fault.yaml"), "chip", "NUL byte"),
    (lambda t: t["instruments"]["bias"].update(visalib="emu\0lated.yaml@nwlab"), "instruments.bias.visalib",
     "NUL byte"),
    (lambda t: t["wiring"]["bias"].update(line_resistance_ohm=10**400), "wiring.bias.line_resistance_ohm",
     "finite number"),
])
def test_keys_once_ignored_or_crashing_are_refused_by_key_path(tmp_path, station_text, edit, key_path, problem):
    path = write(tmp_path, edited(station_text, edit))
    with pytest.raises(StationError) as error:
        read_station(path)
    message = str(error.value)
    assert message.startswith(f"{path}: {key_path}: "), message
    assert problem in message


def test_emulator_model_settings_and_documented_faults_stay_free_form(tmp_path, station_text):
    def edit(tree):
        tree["instruments"]["scope"]["emulator"]["any_model_setting"] = {"nested": [1, 2]}
        tree["instruments"]["bias"]["emulator"]["faults"] = {"reply_delay_s": 0.01, "drop_every": 50,
                                                             "latch_nanowire": {"element": "wc", "after_s": 600}}
    station = read_station(write(tmp_path, edited(station_text, edit)))
    assert station.instruments["scope"].emulator["any_model_setting"] == {"nested": [1, 2]}
    assert station.instruments["bias"].emulator["faults"]["drop_every"] == 50


def test_fault_names_match_the_emulators_documented_list():
    """lab keeps its own copy (lab must not import sim_backend); the two must agree."""
    from contracts.files.station import EMULATOR_FAULTS
    from sim_backend.faults import settings as fault_injection

    emulator = {"reply_delay_s", *fault_injection._PERIODIC_KEYS, *fault_injection.WORLD_KEYS}
    assert set(EMULATOR_FAULTS) == emulator
    assert all(name in fault_injection.__doc__ for name in EMULATOR_FAULTS)


@pytest.mark.parametrize("content, problem", [
    (b"station: caf\xe9\n", "cannot read: not UTF-8 text"),
    (b"\xff\xfe" + "station: x\n".encode("utf-16-le"), "cannot read: not UTF-8 text"),
    (b"station: a\x00b\n", "not valid YAML"),
    (b"station: " + b"[" * 20000 + b"]" * 20000 + b"\n", "not valid YAML"),
    (b"station: " + b"{a: " * 5000 + b"1" + b"}" * 5000 + b"\n", "not valid YAML"),
])
def test_undecodable_or_pathological_files_name_the_file(tmp_path, content, problem):
    path = tmp_path / "station.yaml"
    path.write_bytes(content)
    with pytest.raises(StationError) as error:
        read_station(path)
    assert str(error.value).startswith(f"{path}: {problem}"), str(error.value)


def test_a_directory_or_a_nul_in_the_path_is_a_station_error(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    for path in (tmp_path / "dir.yaml", tmp_path / "st\0ation.yaml"):
        with pytest.raises(StationError, match="cannot read"):
            read_station(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_envelope_refuses_non_finite_requests(tmp_path, station_text, value):
    station = read_station(write(tmp_path, station_text))
    with pytest.raises(EnvelopeError, match="not a finite number"):
        station.instruments["bias"].envelope.check_bias(value, 50e-6)
    with pytest.raises(EnvelopeError, match="not a finite number"):
        station.instruments["bias"].envelope.check_bias(10e-6, value)
    with pytest.raises(EnvelopeError, match="not a finite number"):
        station.instruments["cryostat"].envelope.check_temperature_k(value)
    with pytest.raises(EnvelopeError, match="not a finite number"):
        station.instruments["pulser"].envelope.check_pulse(amplitude_v=value, width_s=2e-9, chip_current_a=None)


@pytest.mark.parametrize("one, other", [
    ("TCPIP0::10.0.0.23::5025::SOCKET", " tcpip::10.0.0.23::5025::socket "),
    ("TCPIP0::10.0.0.22::inst0::INSTR", "TCPIP::10.0.0.22::INSTR"),
    ("GPIB0::5::INSTR", "gpib::5"),
])
def test_one_instrument_has_one_normalised_address(one, other):
    from contracts.files.addresses import normalise_address
    from contracts.files.station import resource_key

    assert normalise_address(one) == normalise_address(other)
    assert resource_key(one, None) == resource_key(other, "@py")           # a real address, whatever library
    assert resource_key(one, "/s.yaml#a@nwlab") != resource_key(one, "/s.yaml#b@nwlab")   # two emulated benches
    assert normalise_address(one) != normalise_address("TCPIP0::10.0.0.99::5025::SOCKET")
