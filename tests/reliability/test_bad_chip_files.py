"""Bad chip files and `nwlab chip` flags: one line naming the file, the element or key and the
problem, exit 2 from the CLI, refused before anything heavy runs.

Each case starts from a shipped chip file changed in one place, written to a real file, and
goes through `load_chip` or the real `nwlab chip` CLI (a subprocess where time, memory or the
absence of a traceback is the point).
"""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from reliability_helpers import CHIPS, ROOT

from lab.app.cli import main
from sim_backend.chip.build import ChipFileError, load_chip
from sim_backend.physics.circuit import Circuit, CurrentSource, Resistor, VoltageSource

pytestmark = pytest.mark.timeout(60)

OSCILLATOR = CHIPS / "relaxation-oscillator.yaml"
TEXT = OSCILLATOR.read_text()


def write(tmp_path: Path, text: str, name: str = "chip.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ChipFileError) as error:
        load_chip(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


def nwlab_chip(*args: str, timeout_s: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.app.cli", "chip", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout_s)


def assert_one_line_exit_2(result: subprocess.CompletedProcess, *parts: str) -> str:
    assert result.returncode == 2, result
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, result.stderr
    for part in parts:
        assert part in line, line
    return line


# -- YAML that means something else than it shows ---------------------------------------------------

def billion_laughs(levels: int = 9) -> str:
    """The chip's text with `name:` an alias standing for 9**levels strings (~10**9 for 9 levels)."""
    anchors = ['  - &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    anchors += [f"  - &l{k} [{', '.join([f'*l{k - 1}'] * 9)}]" for k in range(1, levels)]
    return TEXT.replace("name: relaxation-oscillator\n", f"description:\n{chr(10).join(anchors)}\n"
                        f"name: *l{levels - 1}\n", 1).replace("description: >\n", "notes: >\n", 1)


def test_a_billion_laughs_name_is_refused_at_once_with_bounded_memory(tmp_path):
    path = write(tmp_path, billion_laughs())
    assert len(path.read_bytes()) < 4096
    tracemalloc.start()
    start = time.monotonic()
    try:
        message = refusal(path)
        elapsed_s = time.monotonic() - start
        peak_b = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "YAML anchor or alias &l0 is not allowed in a chip file" in message and ": line " in message, message
    assert elapsed_s < 1.0 and peak_b < 5_000_000, (elapsed_s, peak_b)   # was MemoryError after 54 s


def test_nwlab_chip_check_refuses_a_billion_laughs_file(tmp_path):
    path = write(tmp_path, billion_laughs())
    assert_one_line_exit_2(nwlab_chip("check", str(path)), str(path), "YAML anchor or alias")


def test_a_duplicate_key_is_refused_naming_its_line(tmp_path):
    text = TEXT.replace("resistance: {value: 50, unit: ohm,", "resistance: {value: 5, unit: ohm, source: x}\n"
                        "    resistance: {value: 50, unit: ohm,", 1)
    message = refusal(write(tmp_path, text))
    assert "duplicate key 'resistance'" in message and "YAML would keep only the last" in message, message


# -- keys nobody reads ------------------------------------------------------------------------------

@pytest.mark.parametrize(("edit", "expected"), [
    (("wire_defaults:", "wire_default:"), "chip, field 'wire_default': unknown key (did you mean 'wire_defaults'?)"),
    (("format:", "Temperature: 4\nformat:"), "chip, field 'Temperature': unknown key (did you mean 'temperature'?)"),
    (("out: {node: d}", "out: {node: d, gain: 10}"), "output 'out', field 'gain': unknown field"),
    (("bias: {source: vb}", "bias: {source: vb, amplitude: 1}"), "port 'bias', field 'amplitude': unknown field"),
    (("  retrap: voltage", "  retrap: voltage\n  widht: {value: 1, unit: nm, source: x}"),
     "wire_defaults, field 'widht': unknown field"),
])
def test_unknown_keys_are_refused_everywhere(tmp_path, edit, expected):
    assert edit[0] in TEXT
    assert expected in refusal(write(tmp_path, TEXT.replace(*edit, 1)))


def test_a_name_that_is_not_text_is_refused(tmp_path):
    message = refusal(write(tmp_path, TEXT.replace("name: relaxation-oscillator", "name: [a, b]", 1)))
    assert "chip, field 'name': must be text, got a list" in message


# -- physics the chip cannot have -------------------------------------------------------------------

def test_a_chip_above_tc_is_refused_naming_the_wire(tmp_path):
    path = write(tmp_path, TEXT.replace("temperature: {value: 2, unit: K", "temperature: {value: 20, unit: K", 1))
    expected = "chip, field 'temperature': 20 K is at or above the Tc of nanowire 'w' (10.5 K)"
    assert expected in refusal(path)
    assert_one_line_exit_2(nwlab_chip("check", str(path)), str(path), expected)   # was ZeroDivisionError


CURRENT_ONLY = TEXT.replace("nodes: [src, d]\n", "nodes: [src, d, x]\n", 1).replace("elements:\n", """elements:
  - name: i1
    type: current_source
    nodes: [x, "0"]
    current: {value: 1, unit: uA, source: "test"}
  - name: i2
    type: current_source
    nodes: [d, x]
    current: {value: 2, unit: uA, source: "test"}
""", 1)

PARALLEL_V = TEXT.replace("elements:\n", """elements:
  - name: vb2
    type: voltage_source
    nodes: [src, "0"]
    voltage: {value: 1, unit: V, source: "test"}
""", 1)


def test_nwlab_chip_simulate_refuses_a_node_fed_only_by_current_sources(tmp_path):
    path = write(tmp_path, CURRENT_ONLY)
    line = assert_one_line_exit_2(nwlab_chip("simulate", str(path), "--stop-s", "1e-9", "--out",
                                             str(tmp_path / "r.h5")), str(path), "element 'i1'",
                                  "node(s) 'x' connect to the rest only through current sources 'i1', 'i2'")
    assert "Singular matrix" not in line   # was the whole message
    assert not (tmp_path / "r.h5").exists()


def test_nwlab_chip_simulate_refuses_parallel_voltage_sources_naming_both(tmp_path):
    path = write(tmp_path, PARALLEL_V)
    assert_one_line_exit_2(nwlab_chip("simulate", str(path), "--stop-s", "1e-9", "--out", str(tmp_path / "r.h5")),
                           str(path), "element 'vb'", "voltage sources 'vb2', 'vb' form a loop")


def test_the_circuit_itself_names_the_sources_of_a_loop_or_a_cut():
    with pytest.raises(ValueError, match=r"VoltageSource 'v3': voltage sources 'v2', 'v1', 'v3' form a loop"):
        Circuit((VoltageSource("v1", "a", "0", 1.0), VoltageSource("v2", "a", "b", 1.0), Resistor("r", "b", "0", 1.0),
                 VoltageSource("v3", "b", "0", 1.0)))
    with pytest.raises(ValueError, match=r"node\(s\) 'a', 'b' connect to the rest only through current sources 'i'"):
        Circuit((CurrentSource("i", "a", "0", 1e-6), Resistor("r", "a", "b", 1.0), Resistor("r2", "b", "a", 2.0),
                 Resistor("rg", "c", "0", 1.0), Resistor("rg2", "c", "0", 2.0)))


# -- flags that would exhaust memory ----------------------------------------------------------------

def test_nwlab_chip_simulate_refuses_a_record_beyond_the_memory_limit_before_allocating(tmp_path):
    start = time.monotonic()
    result = nwlab_chip("simulate", "relaxation-oscillator", "--stop-s", "1e-3", "--out", str(tmp_path / "r.h5"))
    assert_one_line_exit_2(result, "1000000001 samples", "89.4 GiB of traces", "above the 1.0 GiB limit",
                           "--sample-interval-s 8.94e-11 or more")   # was a MemoryError traceback after 100 s
    assert time.monotonic() - start < 20


def test_the_memory_refusal_allocates_nothing_big(tmp_path, capsys):
    main(["chip", "check", "relaxation-oscillator"])   # imports and compiles outside the measurement
    tracemalloc.start()
    try:
        code = main(["chip", "simulate", "relaxation-oscillator", "--stop-s", "1e-3", "--out", str(tmp_path / "r.h5")])
        peak_b = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and "89.4 GiB" in capsys.readouterr().err
    assert peak_b < 50_000_000, peak_b


@pytest.mark.parametrize(("flags", "expected"), [
    (["--stop-s", "0"], "--stop-s 0.0: must be a positive number of seconds"),
    (["--stop-s", "nan"], "--stop-s nan: must be a positive number of seconds"),
    (["--stop-s", "1e-9", "--sample-interval-s", "0"], "--sample-interval-s 0.0: must be a positive number"),
    (["--stop-s", "1e-9", "--sample-interval-s=-1e-12"], "--sample-interval-s -1e-12: must be a positive"),
    (["--stop-s", "1e-9", "--sample-interval-s", "1e-6"], "longer than --stop-s"),
    (["--stop-s", "1e-9", "--temperature-k", "-1"], "--temperature-k -1.0: must be a positive number of kelvin"),
    (["--stop-s", "1e-9", "--temperature-k", "inf"], "--temperature-k inf: must be a positive number of kelvin"),
])
def test_bad_time_and_temperature_flags_are_one_line(tmp_path, capsys, flags, expected):
    assert main(["chip", "simulate", "relaxation-oscillator", *flags, "--out", str(tmp_path / "r.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err, err


def test_simulate_into_an_unwritable_place_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["chip", "simulate", "relaxation-oscillator", "--stop-s", "1e-10",
                 "--out", str(blocker / "r.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"nwlab chip simulate: --out {blocker / 'r.h5'}: cannot write") and "\n" not in err, err


def test_a_huge_or_endless_file_is_refused_without_parsing_it(tmp_path):
    padding = "# " + "x" * 78 + "\n"
    path = write(tmp_path, TEXT + padding * 40_000)   # 3.2 MB: ~30 s of YAML parsing
    start = time.monotonic()
    assert "too large for a chip file" in refusal(path)
    with pytest.raises(ChipFileError, match=r"^/dev/zero: more than \d+ bytes: too large for a chip file$"):
        load_chip("/dev/zero")
    assert time.monotonic() - start < 1.0


def test_voltage_source_loops_are_found_in_a_large_netlist_quickly():
    count = 3000
    elements = [VoltageSource(f"v{k}", f"n{k}", f"n{k + 1}" if k + 1 < count else "0", 1e-3) for k in range(count)]
    elements += [Resistor("r", "n0", "0", 1.0), VoltageSource("vshort", "n0", "0", 1.0)]
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"VoltageSource 'vshort': voltage sources 'v0', 'v1', .* 'vshort' form a loop"):
        Circuit(tuple(elements))
    assert time.monotonic() - start < 1.0


def test_simulate_refuses_sample_times_beyond_its_trace_limit_before_integrating():
    import numpy as np

    from sim_backend.physics.transient import simulate, trace_bytes

    chip = load_chip(OSCILLATOR)
    times_s = np.linspace(0.0, 1e-9, 1001)
    needed = trace_bytes(chip.circuit, times_s.size, chip.temperature_k)
    assert needed == 1001 * 12 * 8     # time + 11 traces of the oscillator
    with pytest.raises(ValueError, match=r"^1001 sample times x 12 traces x 8 bytes = 93\.8 KiB, above the "
                                         r"50\.0 KiB limit of one simulation$"):
        simulate(chip.circuit, 1e-9, sample_times_s=times_s, temperature_k=chip.temperature_k,
                 max_trace_bytes=50 * 1024)
