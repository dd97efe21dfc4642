"""The dry run is the run's contract, for procedure parameters; a run that measured nothing fails.

Each bad parameter set of issue 10 is refused by `nwlab dry-run` (a real subprocess) with one
line naming the procedure, the parameters and the bound, exit 2; the run refuses with the same
line before it opens an instrument: `nwlab run` and `nwlab campaign` (in-process, the real CLI
code) against a station whose instruments cannot be reached, so opening any would end in a
different message. A fuzz test holds the dry run and the run to the same verdict. A procedure
below its minimum of valid data ends "failed" saying what was missing, and so does the campaign's
exit status.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import ROOT, emulated_tree, write_station
from run_helpers import exit_status, nwlab_argv, private_station

from contracts import steps
from lab.execution.instruments import open_instruments
from lab.app.cli import main as nwlab_main
from contracts.files.station import read_station
from lab.execution.dry_run import dry_run
from contracts.envelope import EnvelopeError
from contracts.procedure import MeasurementError, ParameterError, PlanContext
from lab.execution.runner import Runner
from procedures.catalog import CAMPAIGN
from procedures.iv_sweep import IvSweep

PROCEDURES = {p.name: p for p in CAMPAIGN}
STATION = ROOT / "stations" / "emulated.yaml"
DESIGN = yaml.safe_load((ROOT / "stations" / "chips" / "default-neuron.yaml").read_text())
DRY = PlanContext(chip_design=DESIGN, dry_run=True)

#: (procedure, --set values, the one line) for every bad parameter set the issue lists.
REFUSED = [
    ("iv_sweep", ["window_above_sigmas=1e6"],
     "iv_sweep: parameter window_above_sigmas = 1 × 10⁶ is above its maximum 20"),
    ("energy_per_spike", ["width_s=1e-6"],
     "energy_per_spike: width_s, edge_s: width 1e-06 s + 1.6 x edge_s 1e-09 s does not fit in the pulse period "
     "1e-06 s"),
    ("firing_rate", ["current_min_a=30e-6", "current_max_a=20e-6"],
     "firing_rate: current_min_a, current_max_a: current_min_a 3e-05 A must be below current_max_a 2e-05 A"),
    ("refractory", ["spacing_min_s=50e-9", "spacing_max_s=20e-9"],
     "refractory: spacing_min_s, spacing_max_s: spacing_min_s 5e-08 s must be below spacing_max_s 2e-08 s"),
    ("firing_rate", ["record_s=1e-3", "sample_rate_hz=1e12"],
     "firing_rate: parameter sample_rate_hz = 1 THz is above its maximum 40 GHz"),
    ("firing_rate", ["record_s=1e-3", "sample_rate_hz=20e9"],
     "firing_rate: record_s, sample_rate_hz: 1 capture(s) of 20,000,000 samples x 3 arrays need 458 MiB, above "
     "the 256 MiB capture memory limit"),
]
#: Refused by the dry run only: against the chip's design values (the default current_max_a is
#: 1.5x its threshold, the default shortest spacing the width plus 1.6 edges) or the station's
#: pulse generator (the 81160A's edges are 1 ns at least).
REFUSED_BY_DESIGN = [
    ("energy_per_spike", ["edge_s=0.3e-9"],
     "energy_per_spike, step 2 (ConfigurePulses): pulse edge 3e-10 s is below the pulse generator's minimum "
     "1e-09 s (drivers.keysight_81160a.EDGE_MIN_S)"),
    ("firing_rate", ["current_min_a=30e-6"],
     "firing_rate: current_min_a, current_max_a: the range 3e-05 A to 1.8e-05 A (0 takes the design value) is "
     "empty or reversed"),
    ("refractory", ["spacing_max_s=3e-9"],
     "refractory: spacing_min_s, spacing_max_s: the spacings 3.6e-09 s to 3e-09 s (0 takes the design value) are "
     "empty or reversed"),
]


@pytest.fixture(scope="module")
def unreachable_station(tmp_path_factory) -> Path:
    """The emulated station with every instrument at a closed port of 127.0.0.1 (no emulator):
    a command that opened one would fail with 'cannot open', not with the refusal."""
    tree = emulated_tree()
    probes = [socket.socket() for _ in tree["instruments"]]
    for probe, instrument in zip(probes, tree["instruments"].values()):
        probe.bind(("127.0.0.1", 0))
        instrument.pop("visalib", None)
        instrument["address"] = f"TCPIP0::127.0.0.1::{probe.getsockname()[1]}::SOCKET"
    for probe in probes:
        probe.close()
    return write_station(tmp_path_factory.mktemp("unreachable"), tree)


def _sets(values: list[str], prefix: str = "") -> list[str]:
    return [part for value in values for part in ("--set", prefix + value)]


@pytest.mark.timeout(60)
def test_dry_run_refuses_each_bad_parameter_set_in_one_line():
    """`nwlab dry-run` subprocesses, all started at once (they are independent)."""
    cases = REFUSED
    procs = [subprocess.Popen(nwlab_argv("dry-run", name, "--station", str(STATION), *_sets(values)), cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name, values, _ in cases]
    try:
        for proc, (name, values, line) in zip(procs, cases):
            out, err = proc.communicate(timeout=45)
            assert (proc.returncode, err, out) == (2, f"nwlab dry-run: {line}\n", ""), (name, values)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name, values, line", REFUSED_BY_DESIGN, ids=[f"{n}:{','.join(v)}" for n, v, _ in
                                                                      REFUSED_BY_DESIGN])
def test_dry_run_refuses_against_the_design_values_in_one_line(capsys, name, values, line):
    """The same command in-process: the rules that need the chip's design values or the station."""
    assert nwlab_main(["dry-run", name, "--station", str(STATION), *_sets(values)]) == 2
    assert capsys.readouterr() == ("", f"nwlab dry-run: {line}\n")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name, values, line", REFUSED, ids=[f"{n}:{','.join(v)}" for n, v, _ in REFUSED])
def test_run_refuses_identically_before_opening_an_instrument(unreachable_station, tmp_path, capsys, name, values,
                                                              line):
    out = tmp_path / "runs"
    code = nwlab_main(["run", name, "--station", str(unreachable_station), "--out", str(out), "--quiet",
                       *_sets(values)])
    assert (code, capsys.readouterr().err) == (2, f"nwlab run: {line}\n")
    assert not out.exists()                                    # no archive started


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name, values, line", REFUSED + REFUSED_BY_DESIGN,
                         ids=[f"{n}:{','.join(v)}" for n, v, _ in REFUSED + REFUSED_BY_DESIGN])
def test_campaign_refuses_identically_before_opening_an_instrument(unreachable_station, tmp_path, capsys, name,
                                                                   values, line):
    out = tmp_path / "campaign"
    code = nwlab_main(["campaign", "--station", str(unreachable_station), "--out", str(out), "--quiet",
                       "--only", name, *_sets(values, f"{name}.")])
    assert (code, capsys.readouterr().err) == (2, f"nwlab campaign: {line}\n")
    assert not out.exists()


# -- bias_max_a is the user's ceiling ------------------------------------------------------------

@pytest.mark.timeout(30)
@pytest.mark.parametrize("bias_max_a", [5e-6, 10e-6, 30e-6, 44e-6])
def test_no_level_of_an_iv_sweep_goes_above_bias_max_a(bias_max_a):
    """The dry run's flat replies are the run where nothing switches up to the top (what made
    the windows climb to 39.7 uA under a 10 uA limit): every level stays at or below it."""
    station = read_station(STATION)
    report = dry_run(IvSweep(bias_max_a=bias_max_a, switching_events=50), station, DRY)
    levels = np.concatenate([s.levels_a for s, _ in report.steps if isinstance(s, steps.SweepBias)])
    assert levels.size > 0 and levels.max() <= bias_max_a * (1 + 1e-12) and levels.min() >= 0.0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("ramp_a_per_s, dwell_s", [(1e-5, 50e-6), (1e-4, 1e-4), (1e-3, 2e-3)])
def test_no_step_of_an_iv_sweep_is_steeper_than_its_ramp(ramp_a_per_s, dwell_s):
    """Windows included (their steps of a fraction of a coarse step once exceeded a slow ramp:
    1.2 mA/s asked of a 10 uA/s sweep, which the envelope then refused)."""
    report = dry_run(IvSweep(ramp_a_per_s=ramp_a_per_s, dwell_s=dwell_s, switching_events=50),
                     read_station(STATION), DRY)
    levels = np.concatenate([[0.0], *[s.levels_a for s, _ in report.steps if isinstance(s, steps.SweepBias)]])
    assert np.max(np.abs(np.diff(levels))) <= ramp_a_per_s * dwell_s * (1 + 1e-9)


# -- a run below its minimum of valid data fails -----------------------------------------------

def test_every_procedure_states_its_minimum_of_valid_data():
    assert all(p.minimum_valid_data for p in CAMPAIGN), [p.name for p in CAMPAIGN if not p.minimum_valid_data]

def _walk(plan, reply_to):
    """Drive a plan as the runner does, replying to each step with reply_to(step)."""
    reply = None
    while True:
        try:
            step = plan.send(reply)
        except StopIteration:
            return
        reply = reply_to(step)


@pytest.mark.timeout(30)
def test_iv_sweep_with_no_switching_event_fails_naming_what_was_missing():
    """The issue's bench: the pilot switched, then every fast sweep stayed below switching
    (1224 of 1225 'above the window'), and the run reported 'completed'. Replies to the plan:
    the pilot sweeps read resistive from 30 uA on, every later sweep reads 0 V."""
    procedure = IvSweep(switching_events=40)
    pilots = [procedure.parameters.pilot_sweeps]

    def reply(step):
        if isinstance(step, steps.SweepBias):
            levels = np.asarray(step.levels_a)
            if pilots[0] > 0:
                pilots[0] -= 1
                return np.where(levels >= 30e-6, 1e-3, 0.0)
            return np.zeros(levels.size)
        return None

    with pytest.raises(MeasurementError) as error:
        _walk(procedure.plan(PlanContext(chip_design=DESIGN)), reply)
    text = str(error.value)
    assert text.startswith("iv_sweep measured too little to report: needs 20 switching events with a finite mean "
                           "and spread; got 0 in "), text
    assert "above the window" in text and "\n" not in text


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The embedded emulated station, its own bench, drivers open."""
    logging.getLogger("qcodes").setLevel(logging.ERROR)
    tmp = tmp_path_factory.mktemp("bench")
    tree = emulated_tree()
    library = f"{tmp / 'station.yaml'}#contract-{uuid.uuid4().hex[:10]}@nwlab"    # one bench for all
    for instrument in tree["instruments"].values():
        instrument["visalib"] = library
    station = read_station(write_station(tmp, tree))
    instruments = open_instruments(station, name_prefix=f"pc{uuid.uuid4().hex[:6]}_")
    try:
        yield station, instruments
    finally:
        instruments.close()


def _runner(bench, archive_dir: Path) -> Runner:
    station, instruments = bench
    return Runner(station, instruments.roles, archive_dir=archive_dir, snapshot=dict, chip_design=DESIGN,
                  show_progress=False)


@pytest.mark.timeout(60)
def test_iv_sweep_below_the_switching_current_fails_on_the_emulator(bench, tmp_path):
    """`iv_sweep --set bias_max_a=10e-6` on the chip (port switching ~36 uA): no event is possible,
    the run ends 'failed' after the pilot sweeps, saying what was missing."""
    outcome = _runner(bench, tmp_path).run(IvSweep(bias_max_a=10e-6))
    assert outcome.exit_status == "failed"
    assert outcome.message.startswith(
        "MeasurementError: iv_sweep measured too little to report: needs a switch in the pilot sweeps up to 10 µA "
        "(bias_max_a); got none in 2 sweeps"), outcome.message
    assert exit_status(outcome.archive_path)[0] == "failed"


@pytest.mark.timeout(60)
def test_firing_rate_that_never_fires_fails_on_the_emulator(bench, tmp_path):
    """DC inputs far below threshold: an f-I curve of zeros has no onset, so the run fails."""
    outcome = _runner(bench, tmp_path).run(PROCEDURES["firing_rate"](current_min_a=1e-6, current_max_a=2e-6,
                                                                       points=2, captures=1))
    assert outcome.exit_status == "failed"
    assert outcome.message.startswith("MeasurementError: firing_rate measured too little to report: needs repeated "
                                      "firing at 1 input current at least; got 0 Hz at all 2 currents from 1 to 2 "
                                      "µA"), outcome.message


@pytest.mark.timeout(90)
def test_a_campaign_with_a_failed_run_exits_1(tmp_path, capsys):
    """`nwlab campaign` (in-process, on a private copy of the emulated station)."""
    station = private_station(tmp_path)
    code = nwlab_main(["campaign", "--station", str(station), "--out", str(tmp_path / "campaign"), "--quiet",
                       "--only", "iv_sweep", "--set", "iv_sweep.bias_max_a=10e-6"])
    out = capsys.readouterr().out
    assert code == 1
    assert any(line.split()[:2] == ["iv_sweep", "failed"] for line in out.splitlines()), out


# -- the dry run and the run agree ---------------------------------------------------------------

#: Small parameter sets whose choices straddle the rules (reversed ranges, widths against
#: edges and periods, records against the memory limit) and stay cheap to run when accepted.
CHOICES = {
    "firing_rate": {"current_min_a": [0.0, 5e-6, 30e-6], "current_max_a": [0.0, 20e-6, 4e-6],
                    "record_s": [20e-9, 1e-3], "sample_rate_hz": [20e9], "points": [2], "captures": [1],
                    "pretrigger_s": [1e-9, 30e-9]},
    "refractory": {"spacing_min_s": [0.0, 2e-9, 8e-9, 40e-9], "spacing_max_s": [0.0, 6e-9, 30e-9],
                   "width_s": [2e-9, 1e-9], "edge_s": [1e-9, 0.5e-9], "spacings": [2], "trials": [1],
                   "reference_captures": [1]},
    "energy_per_spike": {"width_s": [2e-9, 1e-6, 0.5e-9], "edge_s": [1e-9, 0.3e-9], "spikes": [2],
                         "reference_captures": [1, 100_000], "record_after_s": [20e-9]},
    "strength_duration": {"widths_s": [(3e-9,), (1e-9,), (1e-6,)], "bracket_low_a": [0.0, 12e-6, 30e-6],
                          "bracket_high_a": [0.0, 20e-6, 60e-6], "trials_max": [4], "threshold_precision": [0.5],
                          "reference_captures": [1]},
}


@st.composite
def parameter_sets(draw):
    name = draw(st.sampled_from(sorted(CHOICES)))
    return name, {key: draw(st.sampled_from(values)) for key, values in CHOICES[name].items()}


def _verdict(name: str, values: dict):
    """(procedure or None, the refusal or None): binding the parameters, then the dry run."""
    try:
        procedure = PROCEDURES[name](**values)
        dry_run(procedure, read_station(STATION), DRY)
        return procedure, None
    except (ParameterError, EnvelopeError) as error:
        return None, error


@pytest.mark.timeout(60)
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(case=parameter_sets())
def test_a_set_the_dry_run_refuses_is_refused_by_the_run_before_any_instrument(tmp_path_factory, case):
    """The run is given no instruments at all (no roles): a refusal that came any later than its
    dry run would end as a started run ('failed'), not as the same exception."""
    name, values = case
    _, refusal = _verdict(name, values)
    if refusal is None:
        return
    out = tmp_path_factory.mktemp("refused")
    with pytest.raises(type(refusal)) as raised:
        procedure = PROCEDURES[name](**values)
        Runner(read_station(STATION), {}, archive_dir=out, chip_design=DESIGN, show_progress=False).run(procedure)
    assert str(raised.value) == str(refusal) and "\n" not in str(refusal)
    assert not any(out.iterdir())


#: Emulator runs of accepted sets the fuzz may make (each ~1 s): a handful, not every example.
EMULATOR_RUNS = 4


@pytest.mark.timeout(120)
def test_a_set_the_dry_run_accepts_does_not_fail_the_run_for_static_reasons(bench, tmp_path):
    """Accepted sets run on the emulated station: they complete, or fail only for what a dry run
    cannot know (what the chip did: MeasurementError), never for a parameter, the envelope or an
    instrument refusing a setting."""
    accepted: list[tuple[str, dict]] = []

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(case=parameter_sets())
    def collect(case):
        name, values = case
        procedure, refusal = _verdict(name, values)
        if refusal is None and name not in {n for n, _ in accepted}:
            accepted.append((name, values))

    collect()
    assert len(accepted) >= EMULATOR_RUNS - 1, accepted      # the choices do reach the run
    for name, values in accepted[:EMULATOR_RUNS]:
        outcome = _runner(bench, tmp_path / name).run(PROCEDURES[name](**values))
        assert outcome.exit_status == "completed" or outcome.message.startswith("MeasurementError: "), \
            (name, values, outcome.message)
