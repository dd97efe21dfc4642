"""The dry run is the run's contract, for station files: what a run would fail on (or do wrongly)
for reasons the file shows is refused when the station is loaded, so `nwlab dry-run` and
`nwlab run` refuse it alike, with one line and exit code 2, before any instrument is opened.

Each case used to pass the dry run and then misbehave: a second entry for the bias source at the
same address with a 1 A envelope listed first (the run sent 100 uA past the wired instrument's
45 uA envelope), duplicate YAML keys (last one silently won), a misspelt driver, no oscilloscope,
the chip path naming a station file, a wired channel the generator does not have (the run timed
out after 120 s), no `wiring:` (IndexError in the executor), a readout node the chip does not
have (failed after cooldown and I-V had run), a billion-laughs alias (the loader grew 75 MB/s), a
Lake Shore heater range or output the model does not have (the run failed opening it).

All CLI calls run in one interpreter (`lab.app.cli.main`, as `nwlab` runs it) to keep the set fast;
after each refused `run` the emulator has built no bench: no instrument was opened or written.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from reliability_helpers import DEFAULT_CHIP, EMULATED, ROOT

from contracts.files.station import StationError
from lab.execution.station_checks import load_station


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def _tree(tmp: Path, bench: str) -> dict:
    tree = yaml.safe_load(EMULATED.read_text())
    tree["chip"] = str(DEFAULT_CHIP)
    for config in tree["instruments"].values():
        config["visalib"] = f"{tmp / 'bench.yaml'}#{bench}@nwlab"
    return tree


def _dump(tree: dict) -> str:
    return yaml.dump(tree, Dumper=_NoAliases, sort_keys=False)


def _second_bias(tree, address, limit_a=1.0):
    """A second bias-source entry listed first, with a 1 A envelope."""
    bias = yaml.safe_load(yaml.safe_dump(tree["instruments"]["bias"]))
    bias.update(address=address)
    bias["envelope"]["bias_current_max_a"] = limit_a
    tree["instruments"] = {"bias2": bias, **tree["instruments"]}


def _laughs(text: str) -> str:
    """~1 KB that stands for 9**9 strings once its aliases are expanded."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n" + text.replace("station: emulated-probe-station", "station: *l8")


def _duplicate_limit(text: str) -> str:
    """The bias envelope's limit given twice: YAML keeps the second (1 A)."""
    indent, line = re.search(r"^( *)(bias_current_max_a: 4\.5e-05\n)", text, re.M).groups()
    return text.replace(indent + line, f"{indent}{line}{indent}bias_current_max_a: 1.0\n", 1)


#: name -> (edit of the parsed tree, edit of the text, expected message after "<file>: ").
#: {chip} and {notes} are filled in with the chip file's and a text file's paths.
CASES = {
    "same_address_twice": (lambda t: _second_bias(t, t["instruments"]["bias"]["address"]), None,
                           "instruments.bias.address: 'TCPIP0::10.0.0.23::5025::SOCKET' is the instrument "
                           "instruments.bias2 already names ('TCPIP0::10.0.0.23::5025::SOCKET'): one instrument, "
                           "one entry, one envelope"),
    "same_address_spelt_otherwise": (lambda t: _second_bias(t, " tcpip::10.0.0.23::5025::socket"), None,
                                     "instruments.bias.address: 'TCPIP0::10.0.0.23::5025::SOCKET' is the instrument "
                                     "instruments.bias2 already names (' tcpip::10.0.0.23::5025::socket')"),
    # A second bias source is allowed on a path of its own (a synapse's weight); unwired, it is refused.
    "two_bias_sources": (lambda t: _second_bias(t, "TCPIP0::10.0.0.99::5025::SOCKET"), None,
                         "instruments.bias2: a bias source that no wiring entry drives from (source.instrument: bias2)"),
    "duplicate_key": (None, _duplicate_limit,
                      "instruments.bias.envelope.bias_current_max_a: duplicate key (lines {first} and {second}): "
                      "YAML would keep only the last; write it once"),
    "driver_module_missing": (lambda t: t["instruments"]["scope"].update(driver="drivers.keysight_infinium.KeysightInfiniium"),
                              None, "instruments.scope.driver: cannot import 'drivers.keysight_infinium.KeysightInfiniium': "
                                    "ModuleNotFoundError: No module named 'drivers.keysight_infinium'"),
    "driver_class_missing": (lambda t: t["instruments"]["bias"].update(driver="drivers.keithley_2450.Keithley2460"),
                             None, "instruments.bias.driver: cannot import 'drivers.keithley_2450.Keithley2460': "
                                   "AttributeError: module 'drivers.keithley_2450' has no attribute 'Keithley2460'"),
    "no_oscilloscope": (lambda t: t["instruments"].pop("scope"), None,
                        "instruments: no oscilloscope: a station needs one instrument of each role (temperature_controller, "
                        "pulse_generator, oscilloscope, bias_source)"),
    "chip_is_a_station_file": (lambda t: t.update(chip=str(EMULATED)), None,
                               f"chip: {EMULATED} is not a chip file: expected format: nwlab-chip/1, found no format key"),
    "chip_is_text": (lambda t: t.update(chip="notes.txt"), None,
                     "chip: {notes} is not a chip file: expected format: nwlab-chip/1, found a str"),
    "options_channel_disagrees": (lambda t: t["wiring"]["pulse_input"]["source"].update(channel=2), None,
                                  "wiring.pulse_input.source.channel: channel 2 disagrees with "
                                  "instruments.pulser.options.channel = 1: the instrument would drive another channel "
                                  "than the wiring says"),
    "generator_has_one_channel": (lambda t: (t["instruments"]["pulser"].update(options={}),
                                             t["instruments"]["pulser"]["emulator"].update(channels=1),
                                             t["wiring"]["pulse_input"]["source"].update(channel=2)), None,
                                  "wiring.pulse_input.source.channel: instruments.pulser has no channel 2: 1 channel "
                                  "(instruments.pulser.emulator.channels)"),
    "scope_channel_beyond_model": (lambda t: t["wiring"]["readout"][2].update(scope_channel=5), None,
                                   "wiring.readout[2].scope_channel: instruments.scope has no channel 5: 4 channels "
                                   "(the default of drivers.keysight_infiniium.KeysightInfiniium)"),
    "bias_channel_2": (lambda t: t["wiring"]["bias"]["source"].update(channel=2), None,
                       "wiring.bias.source.channel: instruments.bias has no channel 2: 1 channel "
                       "(drivers.keithley_2450.Keithley2450 drives one output)"),
    "no_wiring": (lambda t: t.pop("wiring"), None,
                  "wiring: missing: the station must say how the pulse input, the bias and the scope channels reach "
                  "the chip (see stations/emulated.yaml)"),
    "no_pulse_monitor": (lambda t: t["wiring"]["readout"].pop(1), None,
                         "wiring.readout: no scope channel monitors the pulse input (monitor: pulse_input)"),
    "readout_node_not_on_chip": (lambda t: t["wiring"]["readout"][0].update(chip_node="out"), None,
                                 "wiring.readout[0].chip_node: the chip ({chip}) has no node 'out'; its nodes: m, c"),
    "chip_port_not_on_chip": (lambda t: t["wiring"]["bias"].update(chip_port="bias_in"), None,
                              "wiring.bias.chip_port: the chip ({chip}) has no port 'bias_in'; its ports: input, bias"),
    "heater_range_not_on_model": (lambda t: t["instruments"]["cryostat"]["options"].update(heater_range="hot"), None,
                                  "instruments.cryostat.options: heater_range 'hot' is not one of ['low', 'medium', "
                                  "'high']"),
    "heater_output_that_does_not_heat": (lambda t: t["instruments"]["cryostat"]["options"].update(heater_output=3),
                                         None, "instruments.cryostat.options: heater_output 3 is not 1 or 2 (the "
                                               "outputs that heat)"),
    "billion_laughs": (None, _laughs, "line 1: YAML anchor or alias &l0 is not allowed in this file: "
                                      "write each value out"),
}


def _write(tmp: Path, name: str) -> tuple[Path, str]:
    edit_tree, edit_text, expected = CASES[name]
    tree = _tree(tmp, f"static-{name}")
    if edit_tree:
        edit_tree(tree)
    text = _dump(tree)
    if edit_text:
        text = edit_text(text)
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    notes = tmp / "notes.txt"
    notes.write_text("Chip notes - see the lab book.\n")
    lines = text.splitlines()
    fill = {"chip": DEFAULT_CHIP, "station": path, "notes": notes}
    limits = [n for n, line in enumerate(lines, 1) if line.strip().startswith("bias_current_max_a: 1.0")]
    if limits:
        fill.update(first=limits[0] - 1, second=limits[0])
    return path, f"{path}: " + expected.format(**fill)


_CLI = r"""
import contextlib, io, json, sys
from pathlib import Path
from lab.app.cli import main
from sim_backend import emulator

results = {}
for name, station, out in json.loads(sys.argv[1]):
    seen = {}
    for command in (["dry-run", "cooldown"], ["run", "cooldown", "--out", out, "--quiet"]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main([*command, "--station", station])
        seen[command[0]] = [code, err.getvalue()]
    seen["benches"] = sorted(emulator._benches)      # any instrument opened builds its bench
    results[name] = seen
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    """name -> {"dry-run": [code, stderr], "run": [code, stderr], "benches": [...], "expected": ...}."""
    tmp = tmp_path_factory.mktemp("static")
    cases, expected = [], {}
    for name in CASES:
        path, expected[name] = _write(tmp, name)
        cases.append([name, str(path), str(tmp / f"runs-{name}")])
    done = subprocess.run([sys.executable, "-c", _CLI, json.dumps(cases)], capture_output=True, text=True,
                          timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name, path, out in cases:
        results[name].update(expected=expected[name], out=out)
    return results


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(CASES))
def test_dry_run_and_run_refuse_alike_before_opening_anything(refused, name):
    seen = refused[name]
    expected = seen["expected"]
    for command in ("dry-run", "run"):
        code, stderr = seen[command]
        assert code == 2, (command, stderr)
        assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr          # one line
        assert stderr.startswith(f"nwlab {command}: {expected}"), (stderr, expected)
    assert seen["dry-run"][1].split(": ", 1)[1] == seen["run"][1].split(": ", 1)[1]   # the same message
    assert seen["benches"] == []                     # no instrument was opened, so none was written to
    assert not Path(seen["out"]).exists()            # no archive, not even its directory


def test_the_shipped_stations_pass_every_check():
    for path in (EMULATED, ROOT / "stations" / "example-lan.yaml"):
        station = load_station(path)
        assert len({c.resource_key for c in station.instruments.values()}) == 4


@pytest.mark.timeout(30)
def test_a_billion_laughs_station_is_refused_at_once(tmp_path):
    path, expected = _write(tmp_path, "billion_laughs")
    began = time.monotonic()
    with pytest.raises(StationError) as error:
        load_station(path)
    assert str(error.value) == expected
    assert time.monotonic() - began < 2.0


def test_a_huge_value_is_shown_cut_short(tmp_path):
    """Messages quote values from the file bounded, never the whole value."""
    tree = _tree(tmp_path, "huge")
    tree["station"] = ["x" * 50_000] * 4
    tree["instruments"]["bias"]["envelope"]["bias_current_max_a"] = "9" * 200_000
    path = tmp_path / "huge.yaml"
    path.write_text(_dump(tree))
    with pytest.raises(StationError) as error:
        load_station(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "expected" in message
    assert len(message) < len(str(path)) + 300, len(message)


def test_an_integer_too_long_to_read_is_a_station_error(tmp_path):
    """YAML makes an int of 5001 digits only by raising ValueError (Python's digit limit), which
    used to escape the loader as a traceback."""
    tree = _tree(tmp_path, "digits")
    path = tmp_path / "digits.yaml"
    path.write_text(_dump(tree).replace("bias_current_max_a: 4.5e-05", "bias_current_max_a: 1" + "0" * 5000))
    with pytest.raises(StationError) as error:
        load_station(path)
    assert str(error.value).startswith(f"{path}: not a usable YAML value: Exceeds the limit (4300 digits)")
    assert len(str(error.value)) < len(str(path)) + 250


def test_a_captured_node_the_readout_does_not_wire_is_refused_by_the_dry_run(tmp_path):
    """energy_per_spike records the bias port node `c`; without its readout the run failed at
    the capture, after cooldown and I-V had run. The dry run now refuses it."""
    from reliability_helpers import emulated_tree, write_station

    from lab.app.campaign import chip_design
    from contracts.files.station import StationError
    from lab.execution.station_checks import load_station
    from lab.execution.dry_run import dry_run
    from contracts.procedure import PlanContext
    from procedures.energy_per_spike import EnergyPerSpike

    tree = emulated_tree()
    tree["wiring"]["readout"] = [r for r in tree["wiring"]["readout"] if r.get("chip_node") != "c"]
    station = load_station(write_station(tmp_path, tree))
    with pytest.raises(StationError, match=r"wiring\.readout has no channel for 'c'"):
        dry_run(EnergyPerSpike(threshold_a=24e-6), station, PlanContext(chip_design(station), dry_run=True))
