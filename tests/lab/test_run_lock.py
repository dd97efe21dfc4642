"""One run at a time per station: a second run is refused before any instrument is opened."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lab.run_lock import StationBusyError, StationLock
from tests.conftest import EMULATED_STATION, ROOT


def station_copy(tmp_path):
    text = EMULATED_STATION.read_text().replace(
        "chip: chips/default-neuron.yaml", f"chip: {EMULATED_STATION.parent / 'chips' / 'default-neuron.yaml'}")
    path = tmp_path / "station.yaml"
    path.write_text(text.replace("visalib: emulated.yaml@nwlab", f"visalib: {path}#lock-test@nwlab"))
    return path


def test_lock_is_exclusive_across_holders_and_reentrant_in_one(tmp_path):
    path = station_copy(tmp_path)
    with StationLock(path):
        with StationLock(path):                      # the campaign holds it, its Runner takes it again
            pass
        other = subprocess.run(
            [sys.executable, "-c",
             f"from lab.run_lock import StationLock\nfrom pathlib import Path\nStationLock(Path({str(path)!r})).__enter__()"],
            capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert other.returncode != 0 and "is busy" in other.stderr
    with StationLock(path):                          # released: free again
        pass


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", [["run", "cooldown"], ["campaign"]])
def test_second_run_is_refused_before_touching_instruments(tmp_path, command):
    path = station_copy(tmp_path)
    with StationLock(path):
        result = subprocess.run(
            [sys.executable, "-m", "lab.cli", *command, "--station", str(path), "--out", str(tmp_path / "runs")],
            capture_output=True, text=True, timeout=100, cwd=ROOT)
    assert result.returncode == 2
    assert f"station {path} is busy" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Connected to" not in result.stdout       # no instrument was opened
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("*.h5*"))


def test_busy_error_names_the_holder(tmp_path):
    path = station_copy(tmp_path)
    code = f"from lab.run_lock import StationLock\nfrom pathlib import Path\nimport time\nl=StationLock(Path({str(path)!r})).__enter__()\nprint('held', flush=True)\ntime.sleep(30)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StationBusyError, match=f"pid {holder.pid}"):
            StationLock(path).__enter__()
    finally:
        holder.kill()
        holder.wait()
