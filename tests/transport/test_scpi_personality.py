"""A real SCPI personality (the SCPI core's example pulser) through both transports."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvisa
from pyvisa.constants import StatusCode
from stand_in import block_payload

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scpi"))  # the example personality lives with the SCPI tests
from example_pulser import ExamplePulser  # noqa: E402
from sim_backend.transport.tcp_server import ScpiSocketServer  # noqa: E402

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=["in-process", "tcp"])
def pulser(request, make_bench) -> Iterator[tuple[pyvisa.resources.MessageBasedResource, ExamplePulser]]:
    device = ExamplePulser()
    options = dict(read_termination="\n", write_termination="\n", timeout=500)
    if request.param == "in-process":
        path, _ = make_bench({"GPIB::10::INSTR": device})
        res = pyvisa.ResourceManager(f"{path}@nwlab").open_resource("GPIB0::10::INSTR", **options)
        yield res, device
        res.close()
    else:
        with ScpiSocketServer(device) as server:
            rm = pyvisa.ResourceManager("@py")
            res = rm.open_resource(server.visa_address, **options)
            yield res, device
            res.close()


def test_identity_settings_and_error_queue(pulser):
    res, device = pulser
    assert res.query("*IDN?") == "NWLAB,EXAMPLE-PG2,0001,1.0"
    res.write("SOUR2:VOLT 0.25;:OUTP2 ON")
    assert float(res.query("SOUR2:VOLT?")) == 0.25
    assert device.channels[2].output is True
    res.write("SOUR1:NOSUCH 1")
    assert res.query("SYST:ERR?").startswith("-113,")
    assert res.query("SYST:ERR?") == '+0,"No error"'



def test_binary_block_round_trip(pulser):
    res, device = pulser
    payload = block_payload(40000)
    res.write_binary_values('SOUR1:DATA:ARB "PULSE1",', list(payload), datatype="B")
    back = res.query_binary_values('SOUR1:DATA:ARB? "PULSE1"', datatype="B", container=bytes)
    assert back == payload
    assert device.channels[1].arbitrary["PULSE1"] == payload  # the query ordered this check


def test_indefinite_block(pulser):
    res, device = pulser
    res.write("SOUR1:VOLT 0.5;:SOUR2:VOLT 0.125;:WAV:STR ON;:DIG")
    res.write(":WAV:DATA?")
    assert res.read_bytes(2) == b"#0"
    assert res.read() == "0.5,0.125"


def test_trigger(pulser):
    res, device = pulser
    if res.visalib.__class__.__name__ == "PyVisaLibrary":
        res.write("*TRG")  # pyvisa-py SOCKET sessions have no viAssertTrigger
    else:
        res.assert_trigger()
    assert res.query("*OPC?") == "1"
    assert device.triggers == 1


def test_in_process_serial_poll_sees_mav(make_bench):
    device = ExamplePulser()
    path, _ = make_bench({"GPIB::10::INSTR": device})
    res = pyvisa.ResourceManager(f"{path}@nwlab").open_resource(
        "GPIB0::10::INSTR", read_termination="\n", write_termination="\n", timeout=300)
    assert res.read_stb() & 0x10 == 0
    res.write("*IDN?")
    assert res.read_stb() & 0x10
    assert res.read() == "NWLAB,EXAMPLE-PG2,0001,1.0"
    with pytest.raises(pyvisa.VisaIOError) as info:
        res.read()
    assert info.value.error_code == StatusCode.error_timeout
