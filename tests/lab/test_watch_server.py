"""`nwlab watch` without a browser: who may read, who may stop, what it does with damaged files
and many clients. Real processes, real sockets, plain HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lab.app.live_journal import EVENTS_NAME, FORMAT
from tests.lab.watch_helpers import ROOT, private_station, run_helpers, start, until

pytestmark = pytest.mark.slow


def test_refuses_an_address_other_machines_reach_without_the_flag(tmp_path):
    result = subprocess.run([sys.executable, "-m", "lab.app.cli", "watch", str(tmp_path), "--host", "0.0.0.0",
                             "--port", "0"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--allow-remote" in lines[0] and "0.0.0.0" in lines[0], result.stderr


def test_refuses_a_missing_directory_and_a_taken_port(tmp_path):
    missing = subprocess.run([sys.executable, "-m", "lab.app.cli", "watch", str(tmp_path / "nope"), "--port", "0"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no such directory" in missing.stderr and missing.stderr.count("\n") == 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run([sys.executable, "-m", "lab.app.cli", "watch", str(tmp_path), "--port", str(port)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert busy.returncode == 2 and f":{port}" in busy.stderr and busy.stderr.count("\n") == 1, busy.stderr


def test_beyond_loopback_every_request_needs_the_token(tmp_path):
    served = start(["watch", str(tmp_path), "--host", "0.0.0.0", "--allow-remote", "--port", "0"])
    try:
        for path in ("/", "/api/state", "/events", "/static/watch.js"):
            status, _, body = served.request("GET", path)
            assert status == 403, (path, status)
            assert b"token" in body
        assert served.request("GET", "/api/state?token=not-the-token")[0] == 403
        status, headers, body = served.request("GET", f"/?token={served.token}")
        assert status == 200 and b"<html" in body.lower()
        cookie = headers.get("set-cookie", "").split(";")[0]
        assert served.token in cookie and "httponly" in headers["set-cookie"].lower()
        # The page's own files load with the cookie the page got.
        assert served.request("GET", "/static/watch.js", headers={"Cookie": cookie})[0] == 200
        state = json.loads(served.request("GET", f"/api/state?token={served.token}")[2])
        assert state["format"] == "nwlab-watch/1" and state["campaign"]["state"] == "no campaign"
    finally:
        served.stop()


def test_on_loopback_anyone_reads_but_only_the_token_stops(tmp_path):
    served = start(["watch", str(tmp_path), "--port", "0"])
    try:
        assert served.state()["directory"] == str(tmp_path.resolve())
        assert served.request("POST", "/api/stop")[0] == 403
        assert served.request("POST", "/api/stop?token=guess")[0] == 403
        assert served.request("GET", f"/api/stop?token={served.token}")[0] == 405
        status, _, body = served.request("POST", f"/api/stop?token={served.token}")
        answer = json.loads(body)
        assert status == 409 and not answer["ok"] and "no campaign is running" in answer["message"]
        assert served.state()["stop"] == {"available": False, "why_not": "no campaign is running in this directory"}
        # A page elsewhere renaming itself to reach this one (DNS rebinding) is refused.
        assert served.request("GET", "/api/state", headers={"Host": "attacker.example"})[0] == 400
    finally:
        served.stop()


def test_damaged_files_show_on_the_page_and_the_server_keeps_serving(tmp_path):
    served = start(["watch", str(tmp_path), "--port", "0"])
    try:
        (tmp_path / "20261204T100000-iv_sweep-0badf1.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(4000))
        (tmp_path / "campaign.json").write_text("{ this is not json")
        (tmp_path / "live-status.json").write_text('{"format": "something else"}')

        def shown():
            state = served.state()
            runs = [r for r in state["runs"] if r.get("archive") == "20261204T100000-iv_sweep-0badf1.h5"]
            return state if runs and runs[0]["problem"] and len(state["problems"]) >= 2 else None

        state = until(shown, 10, "the damaged run file and the two unreadable files named on the page")
        problems = " ".join(state["problems"])
        assert "campaign.json" in problems and "live-status.json" in problems
        (tmp_path / "campaign.json").unlink()
        (tmp_path / "live-status.json").unlink()
        until(lambda: not served.state()["problems"], 10, "the problems gone with the files")
    finally:
        served.stop()


def _event_line(text: str) -> str:
    return json.dumps({"format": FORMAT, "unix_s": time.time(), "kind": "incident", "procedure": "iv_sweep",
                       "text": text}) + "\n"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc")
def test_twenty_clients_get_every_change_and_memory_stays_bounded(tmp_path):
    """Twenty event streams while 300 incidents arrive (each a new state): every client sees the
    last one, and the server's resident memory grows by less than 30 MiB between the first and
    the last 100 changes (it holds one serialised state, not one per client or per change)."""
    served = start(["watch", str(tmp_path), "--port", "0"])
    clients, received, stop = 20, [0] * 20, threading.Event()
    last_text = [""] * 20

    def listen(k: int) -> None:
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
            sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n\r\n".encode())
            stream = sock.makefile("rb")
            while not stop.is_set():
                line = stream.readline()
                if not line:
                    return
                if line.startswith(b"data: "):
                    received[k] += 1
                    incidents = json.loads(line[6:])["incidents"]
                    last_text[k] = incidents[-1]["text"] if incidents else ""

    threads = [threading.Thread(target=listen, args=(k,), daemon=True) for k in range(clients)]
    try:
        for thread in threads:
            thread.start()
        until(lambda: all(received), 20, "a first state on every stream")
        with open(tmp_path / EVENTS_NAME, "a") as events:
            for batch in range(3):
                for k in range(100):
                    events.write(_event_line(f"incident {batch * 100 + k}"))
                    events.flush()
                    time.sleep(0.01)
                if batch == 0:
                    until(lambda: all(t == "incident 99" for t in last_text), 20, "every client at incident 99")
                    rss_after_first_kib = _rss_kib(served.process.pid)
        until(lambda: all(t == "incident 299" for t in last_text), 20, "every client at the last incident")
        growth_kib = _rss_kib(served.process.pid) - rss_after_first_kib
        assert growth_kib < 30 * 1024, f"resident memory grew by {growth_kib} KiB"
        assert min(received) >= 3          # states pushed as they changed, not only the first
        state = served.state()
        assert len(state["incidents"]) == 200 and state["incidents"][-1]["text"] == "incident 299"
    finally:
        stop.set()
        served.stop()


@pytest.mark.timeout(240)
def test_a_stop_request_ends_the_campaign_as_ctrl_c_does(tmp_path):
    """`campaign --watch 0`: the page's stop request, with the token, reaches the campaign as
    SIGINT: the running run is archived as aborted, nothing after it starts, the report is
    written and the live status says interrupted."""
    station = private_station(tmp_path)
    out = tmp_path / "run"
    served = start(["campaign", "--station", str(station), "--out", str(out), "--only", "cooldown",
                    "--only", "iv_sweep", "--only", "strength_duration", "--quiet", "--watch", "0"])
    try:
        def running_iv() -> bool:           # its archive open: the figures drawn from it
            state = served.state()
            return any(r["procedure"] == "iv_sweep" and r["status"] == "running" and r["archive"]
                       for r in state["runs"])

        until(running_iv, 120, "iv_sweep running on the page, its archive open")
        assert served.state()["stop"]["available"]
        assert served.request("POST", "/api/stop")[0] == 403       # not without the token
        status, _, body = served.request("POST", f"/api/stop?token={served.token}")
        assert status == 200 and json.loads(body)["ok"], body
        served.process.wait(timeout=120)
    finally:
        served.stop()
    manifest = json.loads((out / "campaign.json").read_text())
    statuses = {run["procedure"]: run["status"] for run in manifest["runs"]}
    assert statuses == {"cooldown": "completed", "iv_sweep": "aborted"}, (statuses, served.lines[-10:])
    assert "interrupted" in manifest["not_run"]["strength_duration"]
    assert (out / "report.html").exists()
    live = json.loads((out / "live-status.json").read_text())
    assert live["state"] == "interrupted"


@pytest.mark.timeout(240)
def test_a_crashed_partial_shows_and_its_recovery_is_followed(tmp_path):
    """A run killed mid-way leaves a `.partial`: the page says it is not being written and how to
    recover it; `nwlab archive recover` turns it into a run file while the page is served, and
    the page follows (the server never stops serving)."""
    station = private_station(tmp_path)
    out = tmp_path / "run"
    flushes = tmp_path / "flushes.jsonl"      # the writer's flush journal (lab/archive/writer.py)
    run = run_helpers.start_nwlab("run", "iv_sweep", "--station", str(station), "--out", str(out), "--quiet",
                                  env={"NWLAB_FLUSH_LOG": str(flushes)})
    try:
        partial = until(lambda: next(iter(out.glob("*.h5.partial")), None) if out.exists() else None, 120,
                        "the run's .partial")

        def rows_flushed() -> int:
            lines = flushes.read_text().splitlines() if flushes.exists() else []
            return sum(json.loads(lines[-1])["rows"].values()) if lines else 0

        until(lambda: rows_flushed() >= 20, 120, "rows flushed to the .partial")
        run.kill()
        run.wait(timeout=30)
    finally:
        run_helpers.stop(run)
    served = start(["watch", str(out), "--port", "0"])
    try:
        def crashed():
            runs = served.state()["runs"]
            return runs if runs and runs[0]["status"] == "crashed" else None

        runs = until(crashed, 30, "the killed run shown as crashed")
        assert runs[0]["archive"] == partial.name and "--resume" in runs[0]["problem"]
        recovered = run_helpers.run_nwlab("archive", "recover", str(partial), timeout_s=120)
        assert recovered.returncode == 0, recovered.stderr

        def followed():
            runs = served.state()["runs"]
            return runs if runs and runs[0]["archive"] == partial.name.removesuffix(".partial") else None

        runs = until(followed, 30, "the recovered run file on the page")
        # Now a finished file: marked crashed by the recovery, no problem, its data drawn.
        assert runs[0]["problem"] is None and runs[0]["status"] == "crashed"
        assert sum(f["points"] for f in runs[0]["figures"]) > 0, runs[0]["figures"]
        assert served.request("GET", "/")[0] == 200
    finally:
        served.stop()


@pytest.mark.timeout(240)
def test_the_page_beside_a_killed_campaign_ends_with_it(tmp_path):
    """`campaign --watch`: a campaign killed outright (no chance to end its page) leaves no
    server behind: the page's process sees the campaign gone and exits."""
    station = private_station(tmp_path)
    served = start(["campaign", "--station", str(station), "--out", str(tmp_path / "run"), "--only", "iv_sweep",
                    "--quiet", "--watch", "0"])
    try:
        until(lambda: any(r["status"] == "running" for r in served.state()["runs"]), 120, "iv_sweep running")
        served.process.kill()
        served.process.wait(timeout=30)

        def refused() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", served.port), timeout=2):
                    return False
            except OSError:
                return True

        until(refused, 20, "the page's server gone with the campaign")
    finally:
        served.stop()
