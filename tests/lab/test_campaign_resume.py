"""A campaign directory is a unit of work: `nwlab campaign` as real subprocesses on a private copy
of the emulated station (reduced trial counts) — killed (SIGKILL) mid-run and between runs, resumed,
compared with an uninterrupted campaign of the same seed; `--only` after a full campaign takes
its hand-offs from the archives there and never shrinks the report; refusals (a missing
hand-off, an earlier campaign without --resume, another seed) come before any instrument."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from lab.app.manifest import MANIFEST_NAME
from lab.app.report.runs import RunData, load_runs
from procedures.catalog import campaign_for
from tests.lab.test_campaign_emulated import REDUCED, disagreements, figures

ROOT = Path(__file__).resolve().parents[2]
STATIONS = ROOT / "stations"
PROCEDURES = [p.name for p in campaign_for({})]        # the emulated station's chip has no synapse


def reduced_sets() -> list[str]:
    args = []
    for procedure, values in REDUCED.items():
        for key, value in values.items():
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            args += ["--set", f"{procedure}.{key}={text}"]
    return args


def write_station(path: Path, seed: int | None = None) -> Path:
    """A copy of the emulated station with its own in-process bench (tests/conftest.py private_station)."""
    text = (STATIONS / "emulated.yaml").read_text().replace(
        "chip: chips/default-neuron.yaml", f"chip: {STATIONS / 'chips' / 'default-neuron.yaml'}")
    text = text.replace("visalib: emulated.yaml@nwlab", f"visalib: {path}#private-{uuid.uuid4().hex[:8]}@nwlab")
    if seed is not None:
        text = text.replace("seed: 20261124", f"seed: {seed}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def argv(station: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lab.app.cli", "campaign", "--station", str(station), "--out", str(out),
            "--quiet", *reduced_sets(), *extra]


def nwlab(station: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv(station, out, *extra), cwd=ROOT, capture_output=True, text=True, timeout=150,
                          env={**os.environ, **(env or {})})


def kill_at(station: Path, out: Path, ready, log: Path, *extra: str) -> None:
    """Start a campaign, SIGKILL it as soon as `ready(out)` holds."""
    with open(log, "a") as output:
        proc = subprocess.Popen(argv(station, out, *extra), cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while not ready(out):
                assert proc.poll() is None, f"the campaign ended before the kill point: {log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, "the kill point never came"
                time.sleep(0.02)
            proc.kill()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


def partial_of(procedure: str, after_s: float = 0.0):
    """The kill point: a run of `procedure` has been writing for `after_s`."""
    def ready(out: Path) -> bool:
        found = list(out.glob(f"*-{procedure}-*.h5.partial"))
        return bool(found) and time.time() - found[0].stat().st_ctime >= after_s
    return ready


def completed_in_manifest(procedure: str):
    """The kill point: the manifest lists `procedure` completed (between two runs)."""
    def ready(out: Path) -> bool:
        try:
            runs = json.loads((out / MANIFEST_NAME).read_text())["runs"]
        except (OSError, ValueError, KeyError):
            return False
        return any(r["procedure"] == procedure and r["status"] == "completed" for r in runs)
    return ready


def latest_completed(out: Path) -> dict[str, RunData]:
    latest: dict[str, RunData] = {}
    for run in load_runs(out):
        if run.status == "completed":
            latest[run.procedure] = run
    return latest


@pytest.fixture(scope="module")
def station(tmp_path_factory) -> Path:
    return write_station(tmp_path_factory.mktemp("station") / "emulated.yaml")


@pytest.fixture(scope="module")
def full_campaign(station, tmp_path_factory) -> Path:
    """An uninterrupted campaign of the station's seed."""
    out = tmp_path_factory.mktemp("full") / "runs"
    done = nwlab(station, out)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("report: ") == 1, done.stdout
    return out


def assert_report_covers_every_run(out: Path) -> str:
    report = (out / "report.md").read_text()
    for path in out.glob("*.h5"):
        assert path.name in report, path.name
    for procedure in PROCEDURES:
        assert report.count(f"\n## {procedure} — ") == 1, procedure
    return report


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_killed_campaign_resumed_ends_as_an_uninterrupted_one(station, full_campaign, tmp_path):
    out = tmp_path / "runs"
    log = tmp_path / "killed.log"
    # Killed mid-run (iv_sweep writing), then between runs (just after strength_duration).
    kill_at(station, out, partial_of("iv_sweep", after_s=0.5), log)
    kept_first = {r.procedure: r.run_id for r in latest_completed(out).values()}
    assert set(kept_first) == {"cooldown"}, kept_first
    kill_at(station, out, completed_in_manifest("strength_duration"), log, "--resume")
    # The report the killed campaign left covers every run that ended before the kill (its
    # writer, started as strength_duration ended, before the manifest said so, outlives the
    # campaign). The writers queue (one per run ended) and each reads every run.
    strength_duration = latest_completed(out)["strength_duration"].path.name
    deadline = time.monotonic() + 120
    while not (out / "report.md").exists() or strength_duration not in (out / "report.md").read_text():
        assert time.monotonic() < deadline, "the report never covered the last run before the kill"
        time.sleep(0.2)
    done = nwlab(station, out, "--resume")
    assert done.returncode == 0, done.stdout + done.stderr + log.read_text()[-3000:]
    assert done.stdout.count("report: ") == 1
    assert "cooldown           kept" in done.stdout

    resumed, uninterrupted = latest_completed(out), latest_completed(full_campaign)
    assert set(resumed) == set(uninterrupted) == set(PROCEDURES)
    assert resumed["cooldown"].run_id == kept_first["cooldown"]          # kept, never run again
    # Runs measured again after a kill started from other random draws and another chip state:
    # each figure must agree with the uninterrupted campaign's within their uncertainties.
    differences = []
    for procedure in PROCEDURES:
        differences += disagreements(procedure, figures(uninterrupted[procedure].path),
                                     figures(resumed[procedure].path))
    assert not differences, "\n".join(differences)

    # The killed runs were recovered (crashed) or, if nothing was flushed, named as not recoverable.
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    listed = {r["archive"]: r["status"] for r in manifest["runs"]}
    for path in out.glob("*.h5"):
        assert path.name in listed, path.name
    for path in out.glob("*.partial"):
        assert listed.get(path.name) == "unrecoverable", path.name
    statuses = [r["status"] for r in manifest["runs"] if r["procedure"] == "iv_sweep"]
    assert statuses in (["crashed", "completed"], ["unrecoverable", "completed"]), statuses
    assert all(len([r for r in manifest["runs"] if r["procedure"] == p]) == 1 for p in PROCEDURES if p != "iv_sweep")
    assert not any(r["status"] == "running" for r in manifest["runs"])
    report = assert_report_covers_every_run(out)
    assert "Other runs of iv_sweep" in report and "**crashed**" in report


@pytest.mark.timeout(120)
def test_only_after_a_full_campaign_takes_the_archived_hand_offs_and_keeps_the_whole_report(
        station, full_campaign, tmp_path):
    out = tmp_path / "runs"
    shutil.copytree(full_campaign, out)
    before = {path.name for path in out.glob("*.h5")}
    strength_duration = latest_completed(out)["strength_duration"]
    done = nwlab(station, out, "--only", "energy_per_spike", "--only", "efficiency")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hand-off: energy_per_spike.threshold_a = " in done.stdout
    assert f"from {strength_duration.path.name}" in done.stdout, done.stdout
    assert done.stdout.count("report: ") == 1

    new = {run.procedure: run for run in load_runs(out) if run.path.name not in before}
    assert set(new) == {"energy_per_spike", "efficiency"}
    assert all(run.status == "completed" for run in new.values())
    widths = np.asarray(strength_duration.results["threshold_a"].axis_values)
    measured = np.asarray(strength_duration.results["threshold_a"].value)[np.argmin(np.abs(widths - 2e-9))]
    assert new["energy_per_spike"].parameters["threshold_a"].value == pytest.approx(measured)
    assert new["efficiency"].parameters["energy_per_spike_j"].value == pytest.approx(
        new["energy_per_spike"].scalar("energy_per_spike_j"))
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    entry = next(r for r in manifest["runs"] if r["archive"] == new["energy_per_spike"].path.name)
    assert entry["hand_offs"]["threshold_a"] == strength_duration.path.name

    # The subset's report is the directory's: every run, one section per procedure, the new
    # energy_per_spike first and the earlier one listed.
    report = assert_report_covers_every_run(out)
    assert "9 of 9 completed" in report
    section = report.split("\n## energy_per_spike — completed", 1)[1].split("\n## ", 1)[0]
    assert new["energy_per_spike"].run_id in section.split("Other runs", 1)[0]
    assert "Other runs of energy_per_spike" in section


@pytest.mark.timeout(60)
def test_a_missing_hand_off_is_refused_before_any_instrument_or_lock(station, tmp_path):
    out = tmp_path / "runs"
    received = tmp_path / "received.jsonl"
    began = time.monotonic()
    done = nwlab(station, out, "--only", "efficiency", env={"NWLAB_SIM_RECEIVED_LOG": str(received)})
    assert done.returncode == 2, done.stdout + done.stderr
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "efficiency needs energy_per_spike_j from energy_per_spike" in line, line
    assert "run energy_per_spike first" in line and "--only energy_per_spike" in line, line
    assert "Connected to" not in done.stdout + done.stderr
    assert not received.exists()           # no byte reached an emulated instrument
    assert not out.exists()                # not even the directory (its lock comes after it)
    assert time.monotonic() - began < 30


@pytest.mark.timeout(60)
def test_an_earlier_campaign_needs_resume_and_another_seed_is_refused(station, full_campaign, tmp_path):
    before = sorted(p.name for p in full_campaign.iterdir())
    again = nwlab(station, full_campaign)
    assert again.returncode == 2, again.stdout + again.stderr
    line = again.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "holds an earlier campaign" in line and "--resume" in line and "another --out" in line, line
    other = write_station(tmp_path / "other.yaml", seed=7)
    done = nwlab(other, full_campaign, "--resume")
    assert done.returncode == 2, done.stdout + done.stderr
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "another emulator seed: 20261124 there, 7 here" in line and "choose another --out" in line, line
    assert sorted(p.name for p in full_campaign.iterdir()) == before
