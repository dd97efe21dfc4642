"""Shared pieces of the run-fault tests: private station copies, `nwlab` subprocesses, a served
emulator on 127.0.0.1 and raw SCPI queries to it, flush journals and archive checks.

Every subprocess started here is bounded (a timeout or a deadline) and is killed by the caller's
`finally` through `stop()`.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
import xarray as xr
from lab.archive import layout
from reliability_helpers import ROOT, emulated_tree, write_station

NWLAB = ROOT / ".venv" / "bin" / "nwlab"


def nwlab_argv(*args: str) -> list[str]:
    """`nwlab ARGS` as a real subprocess command line (the venv's console script if present)."""
    if NWLAB.exists():
        return [str(NWLAB), *args]
    return [sys.executable, "-m", "lab.app.cli", *args]


def private_station(tmp_dir: Path, *, faults: dict[str, dict] | None = None,
                    options: dict[str, dict] | None = None, name: str | None = None,
                    base: Path | None = None) -> Path:
    """A copy of the emulated station (or of `base`, another shipped one) with its own bench id
    (so its own in-process bench and its own run lock), with `faults[role_key]` under
    `instruments.<key>.emulator.faults` and `options[role_key]` merged into the driver options."""
    tree = emulated_tree() if base is None else emulated_tree(base)
    path = tmp_dir / (name or f"station-{uuid.uuid4().hex[:8]}.yaml")
    bench_id = f"rel-{uuid.uuid4().hex[:10]}"
    for key, instrument in tree["instruments"].items():
        instrument["visalib"] = f"{path}#{bench_id}@nwlab"
        if faults and key in faults:
            instrument["emulator"]["faults"] = dict(faults[key])
        if options and key in options:
            instrument["options"] = {**(instrument.get("options") or {}), **options[key]}
    return write_station(tmp_dir, tree, path.name)


def run_nwlab(*args: str, timeout_s: float, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `nwlab ARGS` to completion (killed after `timeout_s`), text output captured."""
    return subprocess.run(nwlab_argv(*args), cwd=ROOT, capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, **(env or {})})


def start_nwlab(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(nwlab_argv(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})})


def stop(proc: subprocess.Popen | None, grace_s: float = 5.0) -> None:
    """Make sure `proc` is gone: SIGKILL if it is still running, then reap it."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.kill()
    try:
        proc.communicate(timeout=grace_s)
    except (subprocess.TimeoutExpired, ValueError):
        pass


def signal_and_wait(proc: subprocess.Popen, signum: int, timeout_s: float) -> tuple[int, str, str]:
    """Send `signum`, wait (bounded) for the process to end; returns (code, stdout, stderr)."""
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=timeout_s)
    return proc.returncode, out, err


# -- flush journal -----------------------------------------------------------------------------

def journal_lines(path: Path) -> list[dict]:
    """Complete lines of a flush journal (a kill may leave a half line at the end)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


# -- archives ----------------------------------------------------------------------------------

def table_lengths(path: Path) -> dict[str, int]:
    """Rows per table (NXdata groups other than traces/results) and traces, with plain h5py."""
    with h5py.File(path, "r") as f:
        entry = f["entry"]
        out = {"traces": entry["traces"]["trace"].shape[0] if "traces" in entry else 0}
        for name, group in entry.items():
            if isinstance(group, h5py.Group) and "row" in group:
                out[name] = group["row"].shape[0]
        return out


def text(group: h5py.Group, name: str) -> str:
    value = group[name][()]
    return value.decode() if isinstance(value, bytes) else str(value)


def exit_status(path: Path) -> tuple[str, str]:
    with h5py.File(path, "r") as f:
        return text(f["entry"], "exit_status"), text(f["entry"], "exit_message")


def open_with_xarray(path: Path, group: str) -> xr.Dataset:
    with xr.open_dataset(path, engine="h5netcdf", group=group) as ds:
        return ds.load()


def check_table_indices(path: Path, table: str) -> np.ndarray:
    """The table's row scale must be 0..n-1: nothing duplicated, nothing skipped."""
    with h5py.File(path, "r") as f:
        rows = f["entry"][table]["row"][()]
    assert np.array_equal(rows, np.arange(rows.size)), f"{path}: {table}/row is not 0..n-1: {rows[:20]}"
    return rows


def check_trace_indices(path: Path) -> int:
    """`entry/traces/trace` must be 0..n-1 and as long as the voltage array; returns n."""
    with h5py.File(path, "r") as f:
        traces = f["entry"]["traces"]
        index, n = traces["trace"][()], layout.signal_dataset(traces, "voltage").shape[0]
    assert index.size == n, f"{path}: {index.size} trace indices for {n} traces"
    assert np.array_equal(index, np.arange(n)), f"{path}: traces/trace is not 0..n-1: {index[:20]}"
    return n


# -- a served emulator -------------------------------------------------------------------------

class ServedBench:
    """`nwlab sim serve STATION` as its own process; `addresses` maps station key -> VISA address."""

    def __init__(self, station: Path, start_timeout_s: float = 30.0, env: dict | None = None) -> None:
        self.station = station
        self.addresses: dict[str, str] = {}
        self.models: dict[str, str] = {}
        self.proc = start_nwlab("sim", "serve", str(station), env=env)
        try:
            self._read_addresses(start_timeout_s)
        except BaseException:
            stop(self.proc)
            raise

    def _read_addresses(self, timeout_s: float) -> None:
        """Read `ROLE MODEL ADDRESS` lines from a thread, so a silent server cannot block us."""
        import yaml

        want = len(yaml.safe_load(self.station.read_text())["instruments"])
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.proc.stdout

        def pump() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while len(self.addresses) < want:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"nwlab sim serve gave {self.addresses} within {timeout_s} s "
                                   f"(exit code {self.proc.poll()})")
            try:
                parts = lines.get(timeout=min(left, 0.5)).split()
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"nwlab sim serve exited with {self.proc.returncode}") from None
                continue
            if len(parts) == 3:
                self.addresses[parts[0]] = parts[2]
                self.models[parts[0]] = parts[1]

    def close(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        stop(self.proc)
        return self.proc.returncode


@contextmanager
def served_bench(station: Path, env: dict | None = None) -> Iterator[ServedBench]:
    served = ServedBench(station, env=env)
    try:
        yield served
    finally:
        served.close()


def tcp_station(tmp_dir: Path, served: ServedBench, name: str = "tcp-station.yaml") -> Path:
    """A station file whose instruments are the served ones, through pyvisa-py (`@py`), with the
    served station's clock acceleration."""
    import yaml

    tree = yaml.safe_load(served.station.read_text())
    for key, instrument in tree["instruments"].items():
        instrument["address"] = served.addresses[key]
        instrument["visalib"] = "@py"
    return write_station(tmp_dir, tree, name)


def port_of(address: str) -> int:
    return int(address.split("::")[2])


def scpi_query(address: str, command: str, timeout_s: float = 3.0) -> str:
    """One query over a fresh TCP connection to 127.0.0.1; the reply line without CR/LF."""
    with socket.create_connection(("127.0.0.1", port_of(address)), timeout=timeout_s) as sock:
        sock.sendall(command.encode() + b"\n")
        data = b""
        deadline = time.monotonic() + timeout_s
        while not data.endswith(b"\n"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{address}: no reply to {command!r} within {timeout_s} s")
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace").strip()


def scpi_write(address: str, command: str, timeout_s: float = 3.0) -> None:
    """Send one command (no reply expected) over a fresh TCP connection, then check with `*OPC?`
    on the same connection that the instrument took it."""
    with socket.create_connection(("127.0.0.1", port_of(address)), timeout=timeout_s) as sock:
        sock.sendall(command.encode() + b"\n*OPC?\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    if data.strip() != b"1":
        raise RuntimeError(f"{address}: {command!r} then *OPC? answered {data!r}")
