"""Record and replay: `nwlab record` writes a VISA session to a transcript, the `@replay` backend
serves it back strictly, and `nwlab sim conform` checks the emulator against it. Real processes,
real stock QCoDeS drivers, real nwlab runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
STATION = ROOT / "stations" / "emulated.yaml"
SESSION = Path(__file__).with_name("stock_session.py")

pytestmark = pytest.mark.timeout(300)


def nwlab(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.app.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240)


def record(out: Path, *command: str) -> subprocess.CompletedProcess:
    done = nwlab("record", "--out", str(out), "--", *command)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "VISA calls" in done.stderr
    return done


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_lines(path: Path, events: list[dict]) -> None:
    path.write_text("".join(json.dumps(event) + "\n" for event in events))


@pytest.fixture
def stock_transcript(tmp_path) -> Path:
    out = tmp_path / "stock.jsonl"
    done = record(out, sys.executable, str(SESSION), f"{STATION}@nwlab")
    assert done.stdout.splitlines()[-1].split() == ["2e-06", "0.5", "4.5"]
    return out


def replay_session(transcript: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SESSION), f"{transcript}@replay"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_a_recorded_stock_session_replays_without_instruments(stock_transcript):
    events = lines(stock_transcript)
    assert events[0]["format"] == "nwlab-visa-transcript"
    assert {e["op"] for e in events[1:]} >= {"open", "write", "read", "close"}
    replayed = replay_session(stock_transcript)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.splitlines()[-1].split() == ["2e-06", "0.5", "4.5"]


def test_a_changed_command_fails_replay_naming_the_step(stock_transcript, tmp_path):
    events = lines(stock_transcript)
    changed = next(e for e in events[1:] if e.get("op") == "write" and e["data"].startswith("SETP 1"))
    changed["data"] = changed["data"].replace("SETP 1", "SETP 2")
    altered = tmp_path / "altered.jsonl"
    write_lines(altered, events)
    replayed = replay_session(altered)
    assert replayed.returncode != 0
    assert f"step {changed['step']}: recorded a write of 'SETP 2," in replayed.stderr
    assert "the program wrote 'SETP 1," in replayed.stderr


def test_sim_conform_agrees_with_its_own_recording_and_flags_an_altered_reply(stock_transcript, tmp_path):
    agreed = nwlab("sim", "conform", str(stock_transcript))
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    assert " 0 differ" in agreed.stderr and not agreed.stdout
    events = lines(stock_transcript)
    asked = next(i for i, e in enumerate(events) if e.get("op") == "write" and e["data"].startswith("SETP? 1"))
    reply = next(e for e in events[asked + 1:] if e.get("op") == "read")
    value = reply["data"]
    reply["data"] = value.replace("4.5", "4.6")                     # a value the instrument did not give
    altered = tmp_path / "value.jsonl"
    write_lines(altered, events)
    flagged = nwlab("sim", "conform", str(altered))
    assert flagged.returncode == 1
    assert flagged.stdout.count("\n") == 1
    assert f"step {reply['step']}" in flagged.stdout
    assert ": value: instrument '+4.6000', emulator '+4.5000'" in flagged.stdout
    reply["data"] = "4.5E+00\r\n"                                   # the same value, written otherwise
    write_lines(altered, events)
    flagged = nwlab("sim", "conform", str(altered))
    assert flagged.returncode == 1 and ": format: instrument '4.5E+00'" in flagged.stdout


def test_a_bad_transcript_gets_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "nwlab-visa-transcript", "version": 1}\n{"step": 1, "op": "fly"}\n')
    done = nwlab("sim", "conform", str(bad))
    assert done.returncode == 2
    assert done.stderr.strip() == f"{bad}:2: op must be one of open, close, write, read, clear, read_stb, " \
                                  "assert_trigger, set_attribute"


def test_polls_may_repeat_more_or_fewer_times_than_recorded(tmp_path):
    import pyvisa

    head = {"format": "nwlab-visa-transcript", "version": 1}
    resource = "TCPIP0::10.0.0.9::5025::SOCKET"

    def exchange(step, query, reply):
        return [{"step": step, "t_s": 0, "resource": resource, "op": "write", "data": query + "\n"},
                {"step": step + 1, "t_s": 0, "resource": resource, "op": "read", "data": reply + "\n"}]

    polls = exchange(1, "ADER?", "0") + exchange(3, "ADER?", "0") + exchange(5, "ADER?", "1") + \
        exchange(7, "DATA?", "42")
    def replayed(name: str):
        """A resource of its own transcript file (pyvisa keeps one library object per path)."""
        transcript = tmp_path / f"{name}.jsonl"
        write_lines(transcript, [head, *polls])
        rm = pyvisa.ResourceManager(f"{transcript}@replay")
        return rm, rm.open_resource(resource, read_termination="\n", write_termination="\n")

    for polls_made in (2, 5):                        # fewer, then more, than the 3 recorded
        rm, inst = replayed(f"polls-{polls_made}")
        answers = [inst.query("ADER?") for _ in range(polls_made)]
        assert inst.query("DATA?") == "42"
        assert answers[0] == "0"
        rm.close()
    rm, inst = replayed("other")
    with pytest.raises(AssertionError, match=r"step 1: recorded a write of 'ADER\?\\n', the program wrote 'TER"):
        inst.query("TER?")
    rm.close()


def test_a_recorded_procedure_replays_to_the_same_results(tmp_path):
    settings = ["--set", "threshold_a=25e-6", "--set", "spikes=4", "--set", "reference_captures=4", "--quiet"]
    transcript = tmp_path / "run.jsonl"
    record(transcript, sys.executable, "-m", "lab.app.cli", "run", "energy_per_spike", "--station", str(STATION),
           "--out", str(tmp_path / "recorded"), *settings)
    tree = yaml.safe_load(STATION.read_text())
    tree["chip"] = str((STATION.parent / tree["chip"]).resolve())
    for entry in tree["instruments"].values():
        entry["visalib"] = f"{transcript}@replay"
    station = tmp_path / "replayed.yaml"
    station.write_text(yaml.safe_dump(tree, sort_keys=False))
    replayed = nwlab("run", "energy_per_spike", "--station", str(station), "--out", str(tmp_path / "replayed"),
                     *settings)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr

    def results(directory: Path) -> dict[str, float]:
        (path,) = directory.glob("*.h5")
        with h5py.File(path) as f:
            assert f["entry/exit_status"][()].decode() == "completed"
            return {name: float(d[()]) for name, d in f["entry/results"].items() if d.shape == () and
                    d.dtype.kind == "f"}

    recorded, again = results(tmp_path / "recorded"), results(tmp_path / "replayed")
    assert recorded["energy_per_spike_j"] > 0
    assert again == recorded


SHIPPED = Path(__file__).with_name("data") / "stock_session.jsonl"


def test_the_shipped_transcript_replays_and_the_emulator_still_conforms_to_it():
    """A transcript recorded from the emulator and kept in the repository: a change to the
    emulator's replies, or to the transcript format, shows here."""
    replayed = replay_session(SHIPPED)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.splitlines()[-1].split() == ["2e-06", "0.5", "4.5"]
    agreed = nwlab("sim", "conform", str(SHIPPED))
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    assert "replies compared, 0 differ" in agreed.stderr
