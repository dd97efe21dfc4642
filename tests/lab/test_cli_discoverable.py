"""The command line as a new user meets it: procedures and their parameters listed, numbers with
SI prefixes and one µ, readable refusals, a closed pipe ends quietly, aligned listings, the chip
simulation's summary beside its traces, and a SIGTERM named as such."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from contracts.records import Result, RunStart, RunStop, TraceBlock, TraceSpec
from contracts.units import format_si, unit_of_name
from lab.app.cli import CLOSED_PIPE_EXIT, main
from lab.archive.writer import ArchiveWriter
from lab.execution.interrupts import stop_cause
from procedures.catalog import CAMPAIGN, HAND_OFFS

ROOT = Path(__file__).resolve().parents[2]
STATION = ROOT / "stations" / "emulated.yaml"
sys.path.insert(0, str(ROOT / "tests" / "reliability"))
from run_helpers import nwlab_argv, private_station, signal_and_wait, start_nwlab, stop  # noqa: E402


@pytest.fixture(autouse=True)
def _terminal_width(monkeypatch):
    """Help is laid out to the terminal's width; these tests read it at 120 columns wherever run."""
    monkeypatch.setenv("COLUMNS", "120")


def help_text(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        main(list(argv))
    assert stopped.value.code == 0
    return capsys.readouterr().out


# -- what there is to run ----------------------------------------------------------------------

def test_run_help_lists_every_procedure_with_what_it_measures(capsys):
    text = help_text(capsys, "run", "--help")
    for procedure in CAMPAIGN:
        assert re.search(rf"^  {procedure.name}\s+\S", text, re.M), (procedure.name, text)
    assert "nwlab run PROCEDURE --help" in text


def test_run_procedure_help_lists_every_parameter_with_unit_default_bounds_and_doc(capsys):
    for procedure in CAMPAIGN:
        text = help_text(capsys, "run", procedure.name, "--help")
        assert text.startswith(f"{procedure.name}: "), text
        rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ") and line.split()}
        for info in procedure.parameter_info():
            assert info.name in rows, (info.name, text)
            assert info.doc.split()[0] in rows[info.name], (info.name, rows[info.name])
    text = help_text(capsys, "run", "energy_per_spike", "--help")
    row = next(line for line in text.splitlines() if line.split()[:1] == ["width_s"])
    assert row.split()[1:7] == ["2", "ns", "100", "ps", "..", "1"] and "µs" in row, row
    assert re.search(r"^  spikes\s+40\s+1 \.\. 100000\s+-\s+captures at the spiking amplitude", text, re.M), text


def test_dry_run_procedure_help_and_unknown_procedure(capsys):
    assert "sample_rate_hz" in help_text(capsys, "dry-run", "firing_rate", "--help")
    with pytest.raises(SystemExit) as stopped:
        main(["run", "no_such", "--help"])
    assert stopped.value.code == 2
    assert "unknown procedure 'no_such'; `nwlab procedures` lists them" in capsys.readouterr().err


def test_procedures_lists_each_with_what_it_measures_and_its_hand_offs(capsys):
    assert main(["procedures"]) == 0
    text = capsys.readouterr().out
    blocks = re.split(r"\n(?=\S)", text.split("\n\n", 1)[1])
    assert [block.split()[0] for block in blocks] == [p.name for p in CAMPAIGN]
    for block, procedure in zip(blocks, CAMPAIGN):
        first = " ".join((sys.modules[procedure.__module__].__doc__ or "").split()[:4])
        assert first in " ".join(block.split()), (first, block)
        assert "runs after:" in block
        for parameter, source in HAND_OFFS.get(procedure.name, {}).items():
            assert f"{parameter} ← {source}" in " ".join(block.split()), block
    assert "gives: refractory.threshold_a" in text


def test_hand_offs_table_names_real_parameters_and_dependencies():
    """`nwlab procedures` shows HAND_OFFS: every parameter it names is one the procedure has."""
    by_name = {p.name: p for p in CAMPAIGN}
    for target, pairs in HAND_OFFS.items():
        names = {info.name for info in by_name[target].parameter_info()}
        for parameter, source in pairs.items():
            assert parameter in names and source in by_name, (target, parameter, source)


# -- numbers as people read them ---------------------------------------------------------------

@pytest.mark.parametrize("value, unit, shown", [
    (4.800000000000008e-06, "A", "4.8 µA"), (2e-9, "s", "2 ns"), (1e-3, "A/s", "1 mA/s"), (40, "1", "40"),
    (0.0, "A", "0 A"), (20e9, "Hz", "20 GHz"), (1.2e17, "J-1", "1.2 × 10¹⁷ 1/J"), (float("nan"), "J", "n/a"),
    (0.95, "1", "0.95"), (532.61e3, "ohm", "532.6 kΩ"), (12.28e-18, "J", "12.28 aJ"), (4.192, "K", "4.192 K"),
    (True, "", "true"),
])
def test_format_si(value, unit, shown):
    assert format_si(value, unit) == shown


def test_one_spelling_of_micro():
    assert format_si(1e-6, "A") == "1 \u00b5A"        # MICRO SIGN, as contracts.units reads it back
    assert unit_of_name("ramp_a_per_s") == "A/s" and unit_of_name("width_s") == "s" and unit_of_name("spikes") == ""


def test_a_parameter_below_its_minimum_says_so_in_one_plain_line(capsys):
    assert main(["dry-run", "refractory", "--station", str(STATION), "--set", "trials=0"]) == 2
    assert capsys.readouterr().err.strip() == "nwlab dry-run: refractory: parameter trials = 0 is below its minimum 1"


def test_dry_run_prints_steps_readably(capsys):
    assert main(["dry-run", "energy_per_spike", "--station", str(STATION), "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "SetBias current_a=" in out and " µA, ramp_a_per_s=1 mA/s" in out, out
    assert "e-0" not in out.split("Campaign plan")[0] and "uA" not in out, out


# -- archive -----------------------------------------------------------------------------------

def write_run(directory: Path, run_id: str, procedure: str, traces: int) -> Path:
    spec = TraceSpec(("m",), np.arange(10) * 1e-9)
    w = ArchiveWriter(directory)
    w(RunStart(run_id, procedure, "2026-03-01T10:00:00+00:00", {"bias_a": (0.0, "A"), "width_s": (2e-9, "s"),
                                                                 "detect_v": (0.0, "V"), "spikes": (40, "1"),
                                                                 "pretrigger_s": (0.0, "s")},
               "station: x\n", "name: chip\n", {}, "nwlab 0.1.0 (abc)", traces=spec))
    if traces:
        w(TraceBlock(np.zeros((traces, 1, 10)), spec.time_s, ("m",)))
    w(Result("bias_a", 24e-6, "A"))
    w(RunStop("completed", "2026-03-01T10:01:00+00:00"))
    return directory / f"{run_id}.h5"


def test_archive_show_reads_like_a_lab_book(tmp_path, capsys):
    path = write_run(tmp_path, "run-1", "energy_per_spike", 3)
    assert main(["archive", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "nwlab nwlab" not in out and "software nwlab 0.1.0 (abc)" in out, out
    assert re.search(r"^  bias_a\s+= automatic \(24 µA used\)$", out, re.M), out
    assert re.search(r"^  detect_v\s+= automatic \(the value used is not archived\)$", out, re.M), out
    assert re.search(r"^  pretrigger_s\s+= 0 s$", out, re.M), out      # 0 is no "automatic" for it
    assert re.search(r"^  width_s\s+= 2 ns$", out, re.M) and re.search(r"^  spikes\s+= 40$", out, re.M), out
    # A procedure nwlab does not know: a 0 with a result of its name is taken as automatic.
    assert main(["archive", "show", str(write_run(tmp_path, "run-2", "someone_elses", 0))]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  bias_a\s+= automatic \(24 µA used\)$", out, re.M), out
    assert re.search(r"^  detect_v\s+= 0 V$", out, re.M), out


def test_archive_show_prints_the_values_a_real_run_chose(tmp_path, capsys):
    station = private_station(tmp_path)
    out_dir = tmp_path / "out"
    # A subprocess: `nwlab run` keeps its stop-signal handler for the rest of its process.
    done = subprocess.run(nwlab_argv("run", "strength_duration", "--station", str(station), "--out", str(out_dir),
                                     "--quiet", "--set", "widths_s=2e-9,5e-9", "--set", "trials_max=12",
                                     "--set", "threshold_precision=0.05", "--set", "reference_captures=2"),
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    [path] = sorted(out_dir.glob("*.h5"))
    capsys.readouterr()
    assert main(["archive", "show", str(path)]) == 0
    out = capsys.readouterr().out
    for name in ("bias_a", "detect_v", "bracket_low_a", "bracket_high_a"):
        assert re.search(rf"^  {name}\s+= automatic \(\S+ \S*(A|V) used\)$", out, re.M), out
    assert "not archived" not in out, out


def test_run_help_marks_automatic_parameters(capsys):
    text = help_text(capsys, "run", "refractory", "--help")
    assert re.search(r"^  bias_a\s+auto \(0 A\)\s+>= 0 A\s+A\s+DC bias; 0 takes", text, re.M), text


def test_archive_ls_columns_line_up(tmp_path, capsys):
    write_run(tmp_path, "20260301T100000-cooldown-aaaaaa", "cooldown", 0)
    write_run(tmp_path, "20260301T100001-strength_duration-bbbbbb", "strength_duration", 22)
    write_run(tmp_path, "20260301T100002-iv_sweep-cccccc", "iv_sweep", 5)
    assert main(["archive", "ls", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for column in (r" \S+\s+20\d\d-", r"\d+ traces", r" MB  "):
        ends = {re.search(column, line).end() for line in lines}
        assert len(ends) == 1, (column, lines)


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`nwlab archive show X | head`: the reader is gone before nwlab writes; no traceback."""
    path = write_run(tmp_path, "run-1", "energy_per_spike", 3)
    for argv in (["archive", "show", str(path)], ["procedures"], ["run", "iv_sweep", "--help"]):
        read_end, write_end = os.pipe()
        os.close(read_end)                  # closed before the command starts: every write fails
        try:
            done = subprocess.run(nwlab_argv(*argv), cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE,
                                  text=True, timeout=60)
        finally:
            os.close(write_end)
        assert done.returncode == CLOSED_PIPE_EXIT, (argv, done.returncode, done.stderr)
        assert done.stderr == "", (argv, done.stderr)


# -- chip simulate -----------------------------------------------------------------------------

def test_chip_simulate_writes_its_summary_beside_out_not_in_the_working_directory(tmp_path, monkeypatch, capsys):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "results" / "pulse.h5"
    assert main(["chip", "simulate", "default-neuron", "--stop-s", "2e-9", "--sample-interval-s", "1e-11",
                 "--out", str(out)]) == 0
    assert out.exists() and json.loads(out.with_suffix(".json").read_text())["chip"] == "default-neuron"
    assert list(elsewhere.iterdir()) == []
    assert f"summary: {out.with_suffix('.json')}" in capsys.readouterr().out


def test_chip_check_uses_si_prefixes_and_micro(capsys):
    assert main(["chip", "check", "default-neuron"]) == 0
    out = capsys.readouterr().out
    assert "µA" in out and "uA" not in out and " um" not in out, out


# -- SIGTERM is not Ctrl-C ---------------------------------------------------------------------

#: A fresh interpreter: signal handling is process-wide, and commands run in this test process
#: (nwlab run through `main`) install it until the process exits.
STOP_CAUSE = """
import os, signal, sys, time
from lab.execution.interrupts import StopSignal, handling_stop_signals, interruptible, stop_cause
try:
    with handling_stop_signals(), interruptible():
        os.kill(os.getpid(), int(sys.argv[1]))
        time.sleep(5)
except StopSignal as stopped:
    print(stop_cause(stopped))
"""


@pytest.mark.parametrize("signum, named", [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C (SIGINT)")])
def test_a_stop_signal_is_named(signum, named):
    done = subprocess.run([sys.executable, "-c", STOP_CAUSE, str(int(signum))], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == named, done.stdout + done.stderr
    assert stop_cause(KeyboardInterrupt()) == "Ctrl-C"         # Python's own, no handler of ours


@pytest.mark.timeout(120)
def test_sigterm_to_a_run_reports_sigterm(tmp_path):
    station = private_station(tmp_path)
    out_dir = tmp_path / "out"
    proc = start_nwlab("run", "energy_per_spike", "--set", "spikes=5000", "--set", "threshold_a=24e-6",
                       "--station", str(station), "--out", str(out_dir), "--quiet")
    try:
        deadline = time.monotonic() + 60
        while not list(out_dir.glob("*.partial")):      # the run's archive is open: steps under way
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never opened its archive"
            time.sleep(0.05)
        time.sleep(1.0)
        code, out, err = signal_and_wait(proc, signal.SIGTERM, timeout_s=60)
    finally:
        stop(proc)
    assert code == 1, (code, out, err)
    assert ": aborted (interrupted by the operator (SIGTERM))" in out, out
    assert "Ctrl-C" not in out + err and "Traceback" not in err, (out, err)


# A Ctrl-C as `nwlab` imports its commands, before any has installed nwlab's handler: the
# process sends itself SIGINT from inside `build_parser`, as a Ctrl-C half a second after Enter
# lands (the commands' modules take ~0.1 s to import, numpy and h5py with them).
_CTRL_C_WHILE_IMPORTING = """
import os, signal, sys
from lab.app import cli
build_parser = cli.build_parser
def interrupted():
    os.kill(os.getpid(), signal.SIGINT)
    return build_parser()
cli.build_parser = interrupted
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command, says", [
    (("campaign", "--out", "{out}", "--quiet"), ", before the campaign had started; nothing was opened"),
    (("run", "cooldown", "--out", "{out}", "--quiet"), ", before the run had started; nothing was opened"),
    (("archive", "ls", "{out}"), ""),
], ids=["campaign", "run", "archive ls"])
def test_a_ctrl_c_before_the_command_took_the_signal_is_one_line(tmp_path, command, says):
    """Python's own KeyboardInterrupt (no handler of nwlab's yet) ends the command with one line
    naming it and the shell's 130, not a traceback; a run or campaign has created nothing."""
    out_dir = tmp_path / "out"
    argv = [a.format(out=out_dir) for a in command]
    if command[0] != "archive":
        argv += ["--station", str(private_station(tmp_path))]
    done = subprocess.run([sys.executable, "-c", _CTRL_C_WHILE_IMPORTING, *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=100)
    assert done.returncode == 128 + signal.SIGINT, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.strip() == f"nwlab: stopped by Ctrl-C (SIGINT){says}", done.stderr
    assert done.stdout == "" and not out_dir.exists()
