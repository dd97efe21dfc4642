"""`nwlab sim serve --station-out FILE` as a real subprocess: the station file it writes points at
the served addresses, loads as any station file, and a campaign and a run work over it (TCP,
through the default VISA library); the labelled table on stderr names each key and its role."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from contracts.files.station import read_station
from lab.execution.station_checks import load_station

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]
STATION = ROOT / "stations" / "emulated.yaml"


def nwlab(*args: str) -> list[str]:
    return [sys.executable, "-m", "lab.app.cli", *args]


@pytest.fixture
def served(tmp_path):
    """The emulated station served by `nwlab sim serve --station-out`: (station file, printed
    lines as key -> (model, address), the process)."""
    out = tmp_path / "served" / "station.yaml"
    proc = subprocess.Popen(nwlab("sim", "serve", str(STATION), "--station-out", str(out)), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"})
    try:
        lines = {}
        for _ in read_station(STATION).instruments:
            line = proc.stdout.readline()
            assert line, f"server ended early: {proc.communicate(timeout=10)[1]}"
            key, model, address = line.split()
            lines[key] = (model, address)
        yield out, lines, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_the_station_file_points_at_the_served_addresses_and_keeps_the_rest(served):
    out, lines, proc = served
    original, written = load_station(STATION), load_station(out)
    assert set(written.instruments) == set(original.instruments) == set(lines)
    for key, instrument in written.instruments.items():
        before = original.instruments[key]
        assert instrument.address == lines[key][1] and instrument.address.startswith("TCPIP0::127.0.0.1::")
        assert instrument.visalib is None
        assert (instrument.role, instrument.driver, instrument.options, instrument.envelope.limits) == \
            (before.role, before.driver, before.options, before.envelope.limits)
    assert written.chip_path == original.chip_path
    assert written.clock_acceleration == original.clock_acceleration
    assert written.name == original.name and written.readouts == original.readouts
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    table = proc.stderr.read().splitlines()
    assert table[0].split() == ["KEY", "ROLE", "MODEL", "ADDRESS"]
    rows = {row.split()[0]: row.split()[1:] for row in table[1:1 + len(lines)]}
    for key, instrument in original.instruments.items():
        assert rows[key] == [instrument.role, lines[key][0], lines[key][1]]
    assert f"station file for these addresses: {out}" in "\n".join(table)


def test_a_campaign_and_a_procedure_alone_run_over_the_served_station(served, tmp_path):
    out, _, _ = served
    campaign = subprocess.run(
        nwlab("campaign", "--station", str(out), "--out", str(tmp_path / "campaign"), "--only", "cooldown",
              "--set", "cooldown.hold_s=10", "--set", "cooldown.log_duration_s=60", "--quiet"),
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert campaign.returncode == 0, campaign.stdout + campaign.stderr
    archives = list((tmp_path / "campaign").glob("*-cooldown-*.h5"))
    assert len(archives) == 1
    with h5py.File(archives[0], "r") as archive:
        assert "TCPIP0::127.0.0.1::" in archive["entry/instrument/station/data"][()].decode()
    run = subprocess.run(
        nwlab("run", "energy_per_spike", "--station", str(out), "--out", str(tmp_path / "runs"),
              "--set", "spikes=4", "--set", "reference_captures=4", "--quiet"),
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "threshold_source = measured in this run (quick search)" in run.stdout


def test_station_out_a_directory_is_refused(tmp_path):
    done = subprocess.run(nwlab("sim", "serve", str(STATION), "--station-out", str(tmp_path)), cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "is a directory" in done.stderr and not done.stdout


def test_strings_yaml_would_read_as_something_else_are_quoted(tmp_path):
    """The writer's own check: every value reads back as written (YAML 1.2), whatever it spells."""
    from sim_backend.cli.served_station import served_station_text

    from contracts.files.yaml12 import load_yaml

    station = tmp_path / "odd.yaml"
    station.write_text(STATION.read_text().replace(
        "options: {channel: 1}",
        "options: {channel: 1, mode: '2e9', flag: 'true', empty: '', none: 'null', note: 'a: b # c', "
        "lines: \"one\\ntwo\\n\", hex: '0x1F', spaced: ' x '}"))
    tree = load_yaml(station, ValueError)
    addresses = {key: f"TCPIP0::127.0.0.1::{5000 + i}::SOCKET" for i, key in enumerate(tree["instruments"])}
    out = tmp_path / "served.yaml"
    out.write_text(served_station_text(station, addresses, "nwlab sim serve odd.yaml"))
    written = load_yaml(out, ValueError)
    assert written["instruments"]["pulser"]["options"] == tree["instruments"]["pulser"]["options"]
    assert written["instruments"]["pulser"]["address"] == addresses["pulser"]
    assert "visalib" not in written["instruments"]["pulser"]
    assert written["wiring"] == tree["wiring"] and written["guards"] == tree["guards"]
