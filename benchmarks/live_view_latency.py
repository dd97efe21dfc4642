"""How soon a flushed block shows on the live page: `nwlab watch` (a real server process) on a
directory where this process writes a run through the real archive writer, a block of rows at a
time at random moments, while an event-stream client (what the browser's EventSource does)
notes when each block's rows first arrive. The reference, measured in the same run: the same
delay for a line appended to the campaign's events file (no HDF5 read at all), which is what
the server's polling costs by itself.

    .ci/env python benchmarks/live_view_latency.py [--blocks 40]

Prints per-kind delays and one JSON line {"benchmark": "live_view_latency", ...} with the
median and 95th percentile of each, their ratio, and the share of blocks shown within 1 s
(docs/live-view.md promises an update within a second of a flushed block).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from contracts.files.station import read_station
from contracts.records import RunStart, RunStop, TableRows
from lab.app.live_journal import EVENTS_NAME, FORMAT
from lab.archive.writer import ArchiveWriter
from procedures.cooldown import Cooldown

ROOT = Path(__file__).resolve().parents[1]
STATION = ROOT / "stations" / "emulated.yaml"
ROWS_PER_BLOCK = 5


class Stream(threading.Thread):
    """An event-stream client noting when each (points, last incident) pair first arrives."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.points_seen: dict[int, float] = {}
        self.incidents_seen: dict[str, float] = {}

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.sendall(f"GET /events HTTP/1.0\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode())
            for line in sock.makefile("rb"):
                if not line.startswith(b"data: "):
                    continue
                now = time.monotonic()
                state = json.loads(line[6:])
                for run in state["runs"]:
                    for figure in run.get("figures", []):
                        self.points_seen.setdefault(figure["points"], now)
                for incident in state["incidents"]:
                    self.incidents_seen.setdefault(incident["text"], now)


def start_server(directory: Path) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-m", "lab.app.cli", "watch", str(directory), "--port", "0"],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", process.stdout.readline())
    if match is None:
        process.kill()
        raise SystemExit("nwlab watch printed no address")
    return process, int(match.group(1))


def open_run(directory: Path) -> ArchiveWriter:
    station = read_station(STATION)
    procedure = Cooldown()
    traces, tables = procedure.declare()
    writer = ArchiveWriter(directory)
    writer(RunStart(run_id="20260101T000000-cooldown-bench0", procedure=procedure.name,
                    started_at="2026-01-01T00:00:00+00:00", parameters=procedure.parameter_records(),
                    station_text=station.text, chip_text=station.chip_path.read_text(), snapshot={},
                    software_version="benchmark", emulator_seed=station.emulator_seed, metadata={},
                    traces=traces, tables=tables, automatic=procedure.automatic_parameters()))
    return writer


def summary(delays_s: list[float]) -> dict[str, float]:
    values = np.array(delays_s)
    return {"p50_s": float(np.median(values)), "p95_s": float(np.percentile(values, 95)), "max_s": float(values.max()),
            "within_1s": float(np.mean(values <= 1.0)), "n": int(values.size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=40)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        writer = open_run(directory)
        server, port = start_server(directory)
        stream = Stream(port)
        stream.start()
        try:
            time.sleep(1.0)
            flushed_at: dict[int, float] = {}
            appended_at: dict[str, float] = {}
            rows = 0
            for block in range(args.blocks):
                time.sleep(rng.uniform(0.3, 0.9))                   # a random phase against the poll
                times_s = 30.0 * np.arange(rows, rows + ROWS_PER_BLOCK)
                writer(TableRows("temperature_log", {"time_s": (times_s, "s"),
                                                     "temperature_k": (4.2 + 0.0 * times_s, "K")}))
                writer.flush()
                rows += ROWS_PER_BLOCK
                flushed_at[rows] = time.monotonic()
                time.sleep(rng.uniform(0.3, 0.9))
                text = f"reference {block}"
                with open(directory / EVENTS_NAME, "a") as events:
                    events.write(json.dumps({"format": FORMAT, "unix_s": time.time(), "kind": "incident",
                                             "procedure": "", "text": text}) + "\n")
                appended_at[text] = time.monotonic()
            time.sleep(2.0)
            writer(RunStop("completed", "2026-01-01T00:01:00+00:00"))
        finally:
            server.terminate()
            server.wait(timeout=10)
    missing = [n for n in flushed_at if n not in stream.points_seen] + [t for t in appended_at
                                                                       if t not in stream.incidents_seen]
    if missing:
        raise SystemExit(f"never shown: {missing[:5]}")
    block = summary([stream.points_seen[n] - t for n, t in flushed_at.items()])
    reference = summary([stream.incidents_seen[k] - t for k, t in appended_at.items()])
    for name, figures in (("flushed HDF5 block", block), ("events-file line (reference)", reference)):
        print(f"{name:30s} median {figures['p50_s'] * 1e3:6.0f} ms   p95 {figures['p95_s'] * 1e3:6.0f} ms   "
              f"max {figures['max_s'] * 1e3:6.0f} ms   within 1 s: {figures['within_1s']:.0%} of {figures['n']}")
    print(json.dumps({"benchmark": "live_view_latency", "block": block, "reference": reference,
                      "p50_ratio_to_reference": block["p50_s"] / reference["p50_s"],
                      "p95_ratio_to_reference": block["p95_s"] / reference["p95_s"],
                      "block_within_1s": block["within_1s"]}))


if __name__ == "__main__":
    main()
