"""The transports on the real emulated bench (`stations/emulated.yaml`): in-process and as the
`nwlab sim serve` subprocess."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pyvisa
from pyvisa.constants import StatusCode

from sim_backend.faults import plan as faults

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
STATION = ROOT / "stations" / "emulated.yaml"


def idn_fields(reply: str) -> list[str]:
    fields = reply.split(",")
    assert len(fields) == 4, f"*IDN? reply is not manufacturer,model,serial,firmware: {reply!r}"
    return fields


def terminator(device) -> str:
    return device.response_terminator.decode("ascii")


def test_every_instrument_answers_in_process(bench, visalib):
    rm = pyvisa.ResourceManager(visalib)
    assert len(rm.list_resources("?*")) == len(bench.instruments)
    for entry in bench.instruments:
        device = bench.devices[entry.address]
        res = rm.open_resource(entry.address, read_termination=terminator(device),
                               write_termination="\n", timeout=2000)
        idn_fields(res.query("*IDN?"))
        res.close()


def test_bench_fault_plan_reaches_the_in_process_reader(bench, visalib):
    entry = bench.instruments[0]
    device = bench.devices[entry.address]
    rm = pyvisa.ResourceManager(visalib)
    res = rm.open_resource(entry.address, read_termination=terminator(device),
                           write_termination="\n", timeout=300)
    bench.faults_for(entry.address).inject(faults.withhold())
    with pytest.raises(pyvisa.VisaIOError) as info:
        res.query("*IDN?")
    assert info.value.error_code == StatusCode.error_timeout
    idn_fields(res.query("*IDN?"))


def test_nwlab_sim_serve_subprocess():
    from sim_backend.bench.station import load_emulated_station

    station = load_emulated_station(STATION)
    expected = {inst.role_name: inst.model for inst in station.instruments}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.app.cli", "sim", "serve", str(STATION)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = []
        assert proc.stdout is not None
        for _ in expected:
            line = proc.stdout.readline()
            assert line, f"server ended early: {proc.communicate(timeout=10)[1]}"
            lines.append(line.split())
        served = {role: (model, address) for role, model, address in lines}
        assert {role: model for role, (model, _) in served.items()} == expected
        rm = pyvisa.ResourceManager("@py")
        for role, (_, address) in served.items():
            assert address.startswith("TCPIP0::127.0.0.1::") and address.endswith("::SOCKET")
            crlf = station.instrument(role).model.startswith("lakeshore")
            res = rm.open_resource(address, read_termination="\r\n" if crlf else "\n",
                                   write_termination="\n", timeout=5000)
            idn_fields(res.query("*IDN?"))
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
        assert time.monotonic() - start < 5
        rm.close()
        for _, address in served.values():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", int(address.split("::")[2])), 2).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_nwlab_sim_serve_missing_station():
    missing = ROOT / "stations" / "no-such-station.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "lab.app.cli", "sim", "serve", str(missing)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert "no-such-station.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_default_library_path_is_the_embedded_station():
    from sim_backend import emulator

    rm = pyvisa.ResourceManager("@nwlab")
    default = emulator.open_bench("")
    assert rm.visalib.bench is default
    assert len(rm.list_resources("?*")) == len(default.instruments)
