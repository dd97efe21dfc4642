"""`nwlab watch` and `nwlab campaign --watch` as real processes, and plain HTTP against them."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "reliability"))
import run_helpers  # noqa: E402

#: A copy of the emulated station with its own bench and run lock (faults and options merged in).
private_station = run_helpers.private_station
ADDRESS_LINE = re.compile(r"live view of .*: (http://\S+)/\?token=(\S+)")


@dataclass
class Served:
    """A process that printed the live view's address; its output kept as it comes."""

    process: subprocess.Popen
    base: str = ""
    token: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(urlsplit(self.base).port or 80)

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                timeout_s: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)
        try:
            connection.request(method, path, headers={"Host": f"127.0.0.1:{self.port}", **(headers or {})})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def state(self, token: bool = False) -> dict:
        status, _, body = self.request("GET", "/api/state" + (f"?token={self.token}" if token else ""))
        assert status == 200, (status, body[:200])
        return json.loads(body)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(arguments: list[str], *, wait_s: float = 60.0, env: dict[str, str] | None = None) -> Served:
    """Start `nwlab ARGUMENTS` and wait for the live view's address line (AssertionError with
    what it printed when it ends or takes longer)."""
    process = subprocess.Popen([sys.executable, "-m", "lab.app.cli", *arguments], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                               env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    served = Served(process)
    found = threading.Event()

    def pump() -> None:
        for line in process.stdout:
            served.lines.append(line.rstrip("\n"))
            match = ADDRESS_LINE.search(line)
            if match and not found.is_set():
                served.base, served.token = match.group(1), match.group(2)
                found.set()
        found.set()

    threading.Thread(target=pump, daemon=True).start()
    if not found.wait(wait_s) or not served.base:
        served.stop()
        raise AssertionError("no live view address; the process printed:\n" + "\n".join(served.lines))
    return served


def until(condition, timeout_s: float, what: str, poll_s: float = 0.2):
    """The first truthy value of `condition()` within `timeout_s`, else AssertionError naming `what`."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what} (last: {last!r})")
