"""The TCP server under abuse, on the emulated bench: bind address, oversized messages with the
server's memory watched, half-open and stalled connections, more clients than the port takes,
abrupt disconnects mid-reply, a fuzzing client. After each, a normal client gets *IDN? promptly.
Only 127.0.0.1 traffic; every loop is bounded.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_helpers import ROOT, emulated_tree, write_station

from sim_backend.clock import LabClock
from sim_backend.emulator import build_bench
from sim_backend.transport.bench_server import BenchServer
from sim_backend.transport.tcp_server import DEFAULT_MAX_CLIENTS, DEFAULT_MAX_MESSAGE_BYTES, ScpiSocketServer

PROMPT_S = 2.0       # a normal *IDN? must come back within this


@pytest.fixture
def served(tmp_path):
    bench = build_bench(write_station(tmp_path, emulated_tree()), clock=LabClock(1.0))
    with BenchServer(bench) as server:
        yield {s.role: s.server for s in server.instruments}


def connect(port: int, host: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection((host, port), timeout=PROMPT_S)


def ask_idn(port: int, terminator: bytes = b"\n") -> bytes:
    started = time.monotonic()
    with connect(port) as sock:
        sock.sendall(b"*IDN?" + terminator)
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            assert chunk, "server closed a normal client's connection"
            data += chunk
    assert time.monotonic() - started < PROMPT_S
    return data


def closed_by_server(sock: socket.socket, within_s: float = 5.0) -> bool:
    sock.settimeout(within_s)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


@pytest.mark.timeout(30)
def test_default_bind_is_loopback_and_other_addresses_only_when_asked(tmp_path, served):
    assert all(server.host == "127.0.0.1" for server in served.values())
    with ScpiSocketServer(object()) as bare:                   # the server's own default
        assert bare.host == "127.0.0.1"
    help_text = subprocess.run([sys.executable, "-m", "lab.cli", "sim", "serve", "--help"], cwd=ROOT,
                               capture_output=True, text=True, timeout=20).stdout
    assert "default 127.0.0.1" in help_text
    bench = build_bench(write_station(tmp_path / "any", emulated_tree()), clock=LabClock(1.0))
    with BenchServer(bench, host="0.0.0.0") as explicit:        # explicit: the only way off loopback
        port = explicit.instruments[0].server.port
        assert explicit.instruments[0].server.host == "0.0.0.0"
        assert ask_idn(port, b"\r\n").startswith(b"LSCI,MODEL336")


@pytest.mark.timeout(40)
def test_half_open_and_stalled_connections_do_not_block_others(served):
    port = served["scope"].port
    silent = [connect(port) for _ in range(3)]
    stalled = connect(port)
    stalled.sendall(b":TIMebase:RANGe 2")                   # half a line, then nothing
    try:
        for _ in range(3):
            assert ask_idn(port).startswith(b"KEYSIGHT TECHNOLOGIES,")
        stalled.sendall(b"0E-9\n:TIM:RANG?\n")                # the stalled client finishes its line
        stalled.settimeout(PROMPT_S)
        answer = stalled.recv(100).split()[-1]               # with or without its header
        assert float(answer) == pytest.approx(20e-9)
    finally:
        for sock in silent + [stalled]:
            sock.close()
    assert ask_idn(port).startswith(b"KEYSIGHT TECHNOLOGIES,")


@pytest.mark.timeout(40)
def test_more_clients_than_the_port_takes_are_refused_not_crashed(served):
    server = served["bias"]
    port = server.port
    held = [connect(port) for _ in range(DEFAULT_MAX_CLIENTS)]
    deadline = time.monotonic() + 5
    while server.client_count < DEFAULT_MAX_CLIENTS and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.client_count == DEFAULT_MAX_CLIENTS
    extra = [connect(port) for _ in range(5)]
    try:
        assert all(closed_by_server(sock) for sock in extra), "a client beyond the limit was kept"
        assert server.client_count == DEFAULT_MAX_CLIENTS
        held[0].sendall(b"*IDN?\n")                          # the admitted clients still work
        held[0].settimeout(PROMPT_S)
        assert held[0].recv(200).startswith(b"KEITHLEY")
    finally:
        for sock in held + extra:
            sock.close()
    deadline = time.monotonic() + 5
    while server.client_count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.client_count == 0
    assert ask_idn(port).startswith(b"KEITHLEY")


@pytest.mark.timeout(40)
def test_abrupt_disconnects_mid_reply(served):
    port = served["pulser"].port
    reference = ask_idn(port)
    for round_ in range(5):
        sock = connect(port)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.sendall(b";".join([b"*IDN?"] * 2000) + b"\n")      # ~130 kB of reply on its way
        if round_ % 2:
            sock.recv(1000)                                   # read a little of it first
        sock.close()                                          # RST: reset mid-reply
    assert ask_idn(port) == reference


@pytest.mark.timeout(60)
def test_a_fuzzing_client_never_crashes_the_server_and_others_keep_working(served):
    rng = random.Random(20261124)
    alphabet = b"*?:;,#'\" \n\r\t0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh.-+()@\x00\xff"
    for role, server in served.items():
        terminator = b"\r\n" if role == "cryostat" else b"\n"
        reference = ask_idn(server.port, terminator)
        fuzzer = connect(server.port)
        fuzzer.settimeout(0.05)
        try:
            for round_ in range(60):
                size = rng.choice([1, 8, 64, 512])
                chunk = bytes(rng.choice(alphabet) for _ in range(size))
                if rng.random() < 0.3:
                    chunk += b"\n"
                fuzzer.sendall(chunk)
                try:
                    fuzzer.recv(65536)                        # whatever it answered
                except TimeoutError:
                    pass
                if round_ % 15 == 0:
                    assert ask_idn(server.port, terminator) == reference, role
        except (ConnectionResetError, BrokenPipeError):
            pass                                              # the server may drop a fuzzing client
        finally:
            fuzzer.close()
        assert ask_idn(server.port, terminator) == reference, role


# -- oversized messages against a real `nwlab sim serve` process, its memory watched -------------

def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.timeout(60)
def test_oversized_messages_close_the_connection_and_memory_stays_bounded(tmp_path):
    station = write_station(tmp_path, emulated_tree())
    nwlab = Path(sys.executable).with_name("nwlab")
    proc = subprocess.Popen([str(nwlab), "sim", "serve", str(station)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline().split() for _ in range(4)]
        ports = {role: int(address.split("::")[2]) for role, _model, address in lines}
        port = ports["scope"]
        assert ask_idn(port).startswith(b"KEYSIGHT TECHNOLOGIES,")
        baseline_kib = _rss_kib(proc.pid)
        peak_kib = baseline_kib
        block = b"A" * (1 << 20)
        for attempt in range(3):                              # three clients, 40 MB each, no LF
            sock = connect(port)
            sock.settimeout(5)
            sent = 0
            try:
                while sent < 40 * (1 << 20):
                    sock.sendall(block)
                    sent += len(block)
                    if sent % (4 << 20) == 0:
                        peak_kib = max(peak_kib, _rss_kib(proc.pid))
            except (ConnectionResetError, BrokenPipeError, TimeoutError):
                pass                                          # the server closed it: expected
            assert sent <= 40 * (1 << 20)
            assert closed_by_server(sock), "an oversized message did not close its connection"
            sock.close()
            peak_kib = max(peak_kib, _rss_kib(proc.pid))
            assert ask_idn(port).startswith(b"KEYSIGHT TECHNOLOGIES,")
        growth_mib = (peak_kib - baseline_kib) / 1024
        # One connection's buffer may reach the limit (8 MiB) plus a receive chunk; allow the
        # allocator twice that plus slack — never the 120 MB that were sent.
        bound_mib = 2 * DEFAULT_MAX_MESSAGE_BYTES / (1 << 20) + 16
        assert growth_mib < bound_mib, f"server RSS grew {growth_mib:.1f} MiB (bound {bound_mib:.0f} MiB)"
        assert proc.poll() is None, "the server process died"
    finally:
        proc.terminate()
        try:
            assert proc.wait(timeout=10) == 0, proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
