"""`nwlab dry-run | run | campaign` as real subprocesses: output, exit codes, error lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from procedures.catalog import CAMPAIGN, SYNAPTIC

ROOT = Path(__file__).resolve().parents[2]
STATION = "stations/emulated.yaml"
#: The synaptic procedures need a chip with a synapse, and the bench that sets its weight.
SYNAPSE_STATION = "stations/emulated-synapse.yaml"


def nwlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.app.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("name", [p.name for p in CAMPAIGN])
def test_dry_run_of_each_procedure(name):
    done = nwlab("dry-run", name, "--station", SYNAPSE_STATION if name in SYNAPTIC else STATION, "--steps", "3")
    assert done.returncode == 0, done.stderr
    assert f"{name}: first 3 of" in done.stdout or name == "efficiency"
    assert f"  {name}: " in done.stdout and "s of lab time" in done.stdout
    assert "within the station's safe envelope" in done.stdout


def test_dry_run_of_the_campaign_lists_every_procedure_and_the_total():
    done = nwlab("dry-run", "campaign", "--station", STATION, "--steps", "0",
                 "--set", "iv_sweep.switching_events=10")
    assert done.returncode == 0, done.stderr
    for procedure in CAMPAIGN:
        assert (f"  {procedure.name}: " in done.stdout) == (procedure.name not in SYNAPTIC)
    assert "total: 7 procedures" in done.stdout


def test_the_campaign_on_a_synapse_chip_adds_the_synaptic_procedures():
    done = nwlab("dry-run", "campaign", "--station", SYNAPSE_STATION, "--steps", "0")
    assert done.returncode == 0, done.stderr
    assert all(f"  {procedure.name}: " in done.stdout for procedure in CAMPAIGN)
    assert f"total: {len(CAMPAIGN)} procedures" in done.stdout


@pytest.mark.parametrize("name", sorted(SYNAPTIC))
def test_a_synaptic_procedure_on_a_chip_without_synapse_is_refused_in_one_line(name):
    done = nwlab("dry-run", name, "--station", STATION)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "the station's chip has no synapse" in done.stderr


def test_bad_station_file(tmp_path):
    bad = tmp_path / "station.yaml"
    bad.write_text("station: x\ninstruments: {}\nchip: nowhere.yaml\n")
    done = nwlab("dry-run", "cooldown", "--station", str(bad))
    assert done.returncode == 2
    assert "chip file" in done.stderr and "does not exist" in done.stderr and "Traceback" not in done.stderr
    missing = nwlab("campaign", "--station", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr


def test_bad_parameter_unknown_procedure_and_refused_step(tmp_path):
    wrong_type = nwlab("dry-run", "iv_sweep", "--station", STATION, "--set", "switching_events=2.5")
    assert wrong_type.returncode == 2 and "expected a whole number" in wrong_type.stderr
    unknown = nwlab("run", "cooldown", "--station", STATION, "--out", str(tmp_path), "--set", "colour=3")
    assert unknown.returncode == 2 and "unknown parameter 'colour'" in unknown.stderr
    assert not any(tmp_path.iterdir())          # refused before any archive was opened
    procedure = nwlab("run", "spike_threshold", "--station", STATION, "--out", str(tmp_path))
    assert procedure.returncode == 2 and "unknown procedure 'spike_threshold'" in procedure.stderr
    refused = nwlab("dry-run", "strength_duration", "--station", STATION, "--set", "bracket_high_a=1e-3")
    assert refused.returncode == 2 and "refused" in refused.stderr and "pulse_current_max_a" in refused.stderr
    for done in (wrong_type, unknown, procedure, refused):
        assert "Traceback" not in done.stderr
