"""`nwlab sim serve` as a real subprocess: address lines, service, clean stop on signals."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import pyvisa

pytestmark = pytest.mark.timeout(30)

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def start(argv: list[str]) -> tuple[subprocess.Popen, list[list[str]]]:
    """Start the server; return it and its `ROLE MODEL ADDRESS` lines."""
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},  # must flush
    )
    lines = []
    assert proc.stdout is not None
    for _ in range(2):
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError(f"server ended early: {proc.communicate()[1]}")
        lines.append(line.split())
    return proc, lines


def port_of(address: str) -> int:
    return int(address.split("::")[2])


def assert_port_released(port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_addresses_serves_and_stops_cleanly(stop_signal):
    proc, lines = start([sys.executable, str(HERE / "serve_stand_in.py")])
    try:
        roles = {role: (model, address) for role, model, address in lines}
        assert set(roles) == {"pulse_generator", "oscilloscope"}
        assert roles["pulse_generator"][0] == "33622A"
        rm = pyvisa.ResourceManager("@py")
        try:
            for role, idn in (("pulse_generator", "PULSER"), ("oscilloscope", "SCOPE")):
                address = roles[role][1]
                assert address.startswith("TCPIP0::127.0.0.1::") and address.endswith("::SOCKET")
                res = rm.open_resource(address, read_termination="\n", write_termination="\n",
                                       timeout=2000)
                assert res.query("*IDN?") == f"NWLAB,{idn},0,1"
                # leave `res` open: the server must close live connections itself
        finally:
            proc.send_signal(stop_signal)
            assert proc.wait(timeout=10) == 0, proc.stderr.read()
            rm.close()
        for _, address in roles.values():
            assert_port_released(port_of(address))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def free_pair_below_ephemeral_range(rng: random.Random) -> int:
    """A base port whose next port is free too, both below Linux's ephemeral range (32768 up):
    there the kernel hands ports to other tests' client connections, which took base + 1 once."""
    while True:
        base = rng.randrange(20000, 32000)
        with socket.socket() as first, socket.socket() as second:
            try:
                first.bind(("127.0.0.1", base))
                second.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
        return base


def test_base_port_gives_consecutive_ports():
    rng = random.Random()
    for _ in range(5):  # another process may still take a port between the check and the bind
        base = free_pair_below_ephemeral_range(rng)
        try:
            proc, lines = start([sys.executable, str(HERE / "serve_stand_in.py"),
                                 "--base-port", str(base)])
        except AssertionError as ended:
            if "in use" in str(ended):
                continue
            raise
        break
    else:
        pytest.fail("no free pair of ports was served in 5 tries")
    try:
        assert sorted(port_of(address) for _, _, address in lines) == [base, base + 1]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_port_in_use_fails_with_a_message():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, str(HERE / "serve_stand_in.py"), "--base-port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=20,
        )
    assert result.returncode == 1
    assert "cannot serve" in result.stderr and "in use" in result.stderr
    assert result.stdout == ""  # no address lines for a bench that is not served
