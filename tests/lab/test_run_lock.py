"""One run per set of instruments, one run per output directory: a second run is refused before
any instrument is opened, whatever station file, directory or TMPDIR it comes from."""

from __future__ import annotations

import contextlib
import os
import random
import re
import subprocess
import sys
import uuid

import pytest
import yaml

from contracts.files.station import read_station
from lab.execution.run_lock import StationBusyError, StationLock
from tests.conftest import EMULATED_STATION, ROOT


def station_copy(tmp_path):
    """A copy of the emulated station on a bench of its own (unique id: tests may run at once)."""
    text = EMULATED_STATION.read_text().replace(
        "chip: chips/default-neuron.yaml", f"chip: {EMULATED_STATION.parent / 'chips' / 'default-neuron.yaml'}")
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "station.yaml"
    path.write_text(text.replace("visalib: emulated.yaml@nwlab", f"visalib: {path}#lock-{uuid.uuid4().hex[:8]}@nwlab"))
    return path


def test_lock_is_exclusive_across_holders_and_reentrant_in_one(tmp_path):
    path = station_copy(tmp_path)
    with StationLock(path):
        with StationLock(path):                      # the campaign holds it, its Runner takes it again
            pass
        other = subprocess.run(
            [sys.executable, "-c",
             f"from lab.execution.run_lock import StationLock\nfrom pathlib import Path\nStationLock(Path({str(path)!r})).__enter__()"],
            capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert other.returncode != 0 and "is busy" in other.stderr
    with StationLock(path):                          # released: free again
        pass


def edited_station(path, source, edit):
    """A station file at `path` from the station file `source`, its parsed tree changed by `edit`."""
    tree = yaml.safe_load(source.read_text())
    edit(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


@contextlib.contextmanager
def held_elsewhere(path, out_dir=None):
    """Another process holding the lock of station file `path` (and of `out_dir`); yields its pid."""
    code = (f"from lab.execution.run_lock import StationLock\nimport time\n"
            f"l = StationLock({str(path)!r}, out_dir={str(out_dir) if out_dir else None!r}).__enter__()\n"
            f"print('held', flush=True)\ntime.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def nwlab(*args, env=None):
    return subprocess.run([sys.executable, "-m", "lab.app.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=100, cwd=ROOT, env=env)


def assert_refused(result, message, runs):
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]      # one line
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert "Connected to" not in result.stdout       # no instrument was opened
    assert not runs.exists() or not any(runs.glob("*.h5*")) and not (runs / "report.md").exists()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", [["run", "cooldown"], ["campaign"]])
def test_a_copy_of_the_station_under_another_tmpdir_is_refused_before_touching_instruments(tmp_path, command):
    """The lock is the instruments': a copy of the station file elsewhere, run with another
    TMPDIR, is refused naming the station, the instrument's address and the holder's pid."""
    original = station_copy(tmp_path)
    copy = tmp_path / "elsewhere" / "copy.yaml"
    copy.parent.mkdir()
    copy.write_text(original.read_text())                # same instruments (same bench), another file
    other_tmp = tmp_path / "other-tmp"
    other_tmp.mkdir()
    with held_elsewhere(original) as pid:
        result = nwlab(*command, "--station", copy, "--out", tmp_path / "runs", env={**os.environ, "TMPDIR": str(other_tmp)})
    assert_refused(result, f"station {copy} is busy: instruments.", tmp_path / "runs")
    named = re.search(rf"instruments\.(\w+) \((.+?)\) is in use by another run \(pid {pid}, station {original}\)",
                      result.stderr)
    assert named, result.stderr
    assert read_station(copy).instruments[named[1]].address == named[2]


def test_the_same_address_spelt_differently_is_the_same_instrument(tmp_path):
    """Real addresses are compared normalised (case, board 0, spaces): another file naming the
    bias source `tcpip::127.0.0.1::<port>::socket` meets the holder of `TCPIP0::...::SOCKET`."""
    ports = random.Random(uuid.uuid4().int).sample(range(20000, 60000), 4)

    def lan(tree, spell=str):
        for port, config in zip(ports, tree["instruments"].values()):
            config.pop("visalib", None)
            config["address"] = spell(f"TCPIP0::127.0.0.1::{port}::SOCKET")
        tree["chip"] = str(EMULATED_STATION.parent / tree["chip"])
    first = edited_station(tmp_path / "a" / "lan.yaml", EMULATED_STATION, lan)
    second = edited_station(tmp_path / "b" / "lan.yaml", EMULATED_STATION,
                            lambda t: lan(t, lambda a: " " + a.lower().replace("tcpip0", "tcpip")))
    with held_elsewhere(first) as pid:
        with pytest.raises(StationBusyError, match=rf"station {second} is busy: .*\(pid {pid}, station {first}\)"):
            StationLock(second).__enter__()
    with StationLock(second):                        # the holder is gone: free
        pass


def test_locks_are_all_or_nothing(tmp_path):
    """A station refused on one busy instrument leaves none of its other instruments locked:
    another process can take them at once."""
    holder_station = station_copy(tmp_path / "holder")
    bench = f"{holder_station}#lock-{uuid.uuid4().hex[:8]}@nwlab"
    shares_bias = edited_station(tmp_path / "shares-bias.yaml", holder_station, lambda t: [
        c.update(visalib=bench) for name, c in t["instruments"].items() if name != "bias"])
    rest_only = edited_station(tmp_path / "rest-only.yaml", shares_bias, lambda t: t["instruments"]["bias"].update(
        visalib=f"{holder_station}#other-{uuid.uuid4().hex[:8]}@nwlab"))
    with held_elsewhere(holder_station):
        with pytest.raises(StationBusyError, match=r"instruments\.bias \(TCPIP0::10\.0\.0\.23::5025::SOCKET\) is in use"):
            StationLock(shares_bias).__enter__()
        taken = subprocess.run(
            [sys.executable, "-c", f"from lab.execution.run_lock import StationLock\nStationLock({str(rest_only)!r}).__enter__()"],
            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert taken.returncode == 0, taken.stderr


@pytest.mark.timeout(120)
def test_a_second_campaign_into_the_same_out_is_refused(tmp_path):
    """Other instruments, same --out: refused before its instruments are opened."""
    runs = tmp_path / "runs"
    first = station_copy(tmp_path / "first")
    second = station_copy(tmp_path / "second")      # its own bench: other instruments
    with held_elsewhere(first, out_dir=runs) as pid:
        result = nwlab("campaign", "--station", second, "--out", runs)
    assert_refused(result, f"--out {runs.resolve()} is busy: another run is writing there (pid {pid}, station {first})",
                   runs)


def test_busy_error_names_the_holder(tmp_path):
    path = station_copy(tmp_path)
    code = f"from lab.execution.run_lock import StationLock\nfrom pathlib import Path\nimport time\nl=StationLock(Path({str(path)!r})).__enter__()\nprint('held', flush=True)\ntime.sleep(30)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StationBusyError, match=f"pid {holder.pid}"):
            StationLock(path).__enter__()
    finally:
        holder.kill()
        holder.wait()
