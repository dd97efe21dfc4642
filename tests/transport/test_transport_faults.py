"""Fault hooks carried out by both transports: delay, withhold, drop, garble, truncate."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import pyvisa
from pyvisa.constants import StatusCode
from stand_in import EchoInstrument

from sim_backend.faults import plan as faults
from sim_backend.faults.plan import ScriptedFaults, line_noise
from sim_backend.transport.tcp_server import ScpiSocketServer

pytestmark = pytest.mark.timeout(30)

ADDRESS = "GPIB::12::INSTR"


def test_line_noise_keeps_length_and_terminator():
    for message in (b"+4.2000E+00\n", b"LSCI,MODEL336,1,1\r\n", b"*\n"):
        noisy = line_noise(message)
        assert len(noisy) == len(message)
        body = message.rstrip(b"\r\n")
        assert all(x != y for x, y in zip(noisy[: len(body)], body))
        assert noisy[len(body):] == message[len(body):]
        assert b"\n" not in noisy[: len(body)] and b"\r" not in noisy[: len(body)]


def test_scripted_faults_run_out():
    plan = ScriptedFaults(faults.withhold(), faults.truncate(2))
    assert plan.before_reply(b"a\n").kind == "withhold"
    assert plan.before_reply(b"a\n").apply(b"abc\n") == b"ab"
    assert plan.before_reply(b"a\n") is faults.DELIVER
    with pytest.raises(ValueError):
        faults.delay(-1.0)


# -- in-process ----------------------------------------------------------------------------


@pytest.fixture
def inproc(make_bench):
    """(resource, bench) on a fresh in-process bench."""
    path, bench = make_bench({ADDRESS: EchoInstrument()})
    rm = pyvisa.ResourceManager(f"{path}@nwlab")
    res = rm.open_resource("GPIB0::12::INSTR", read_termination="\n", write_termination="\n",
                           timeout=400)
    return res, bench


def test_inproc_delay_within_the_timeout(inproc):
    res, bench = inproc
    bench.faults[ADDRESS] = ScriptedFaults(faults.delay(0.15))
    start = time.monotonic()
    assert res.query("ECHO? late") == "late"
    assert 0.15 <= time.monotonic() - start < 0.4


def test_inproc_delay_beyond_the_timeout_then_the_reply_arrives(inproc):
    res, bench = inproc
    bench.faults[ADDRESS] = ScriptedFaults(faults.delay(0.6))
    res.write("ECHO? very late")
    with pytest.raises(pyvisa.VisaIOError) as info:
        res.read()
    assert info.value.error_code == StatusCode.error_timeout
    assert res.read() == "very late"  # the reply was late, not lost


def test_inproc_withheld_reply_times_out(inproc):
    res, bench = inproc
    bench.faults[ADDRESS] = ScriptedFaults(faults.withhold())
    start = time.monotonic()
    with pytest.raises(pyvisa.VisaIOError) as info:
        res.query("ECHO? lost")
    assert info.value.error_code == StatusCode.error_timeout
    assert time.monotonic() - start >= 0.39
    assert res.query("ECHO? next") == "next"


def test_inproc_dropped_connection_until_reopened(inproc):
    res, bench = inproc
    bench.faults[ADDRESS] = ScriptedFaults(faults.drop())
    with pytest.raises(pyvisa.VisaIOError) as info:
        res.query("*IDN?")
    assert info.value.error_code == StatusCode.error_connection_lost
    with pytest.raises(pyvisa.VisaIOError) as info:
        res.write("*IDN?")
    assert info.value.error_code == StatusCode.error_connection_lost
    res.close()
    res.open()
    res.read_termination = "\n"
    res.clear()
    assert res.query("*IDN?") == "NWLAB,ECHO,0,1.0"


def test_inproc_garbled_and_truncated_replies(inproc):
    res, bench = inproc
    bench.faults[ADDRESS] = ScriptedFaults(faults.garble(), faults.truncate(4))
    assert res.query("ECHO? 1.25") == line_noise(b"1.25\n")[:-1].decode("ascii")
    with pytest.warns(UserWarning, match="termination"):  # END after four bytes, no LF
        assert res.query("ECHO? 123456789") == "1234"
    assert res.query("ECHO? 1.25") == "1.25"


# -- TCP -----------------------------------------------------------------------------------


class SwappablePlan:
    """A fault plan the test replaces while the server runs."""

    def __init__(self) -> None:
        self.plan: faults.FaultPlan = faults.NO_FAULTS

    def before_reply(self, message: bytes) -> faults.ReplyAction:
        return self.plan.before_reply(message)


@pytest.fixture
def tcp() -> Iterator[tuple[pyvisa.ResourceManager, ScpiSocketServer, SwappablePlan]]:
    plan = SwappablePlan()
    rm = pyvisa.ResourceManager("@py")
    with ScpiSocketServer(EchoInstrument(), faults=lambda: plan) as srv:
        yield rm, srv, plan
    rm.close()


def open_socket(rm, srv, timeout_ms=400):
    return rm.open_resource(srv.visa_address, read_termination="\n", write_termination="\n",
                            timeout=timeout_ms)


def test_tcp_delay_and_withhold(tcp):
    rm, srv, plan = tcp
    res = open_socket(rm, srv)
    plan.plan = ScriptedFaults(faults.delay(0.15), faults.withhold())
    start = time.monotonic()
    assert res.query("ECHO? late") == "late"
    assert 0.15 <= time.monotonic() - start < 0.4
    with pytest.raises(pyvisa.VisaIOError) as info:
        res.query("ECHO? lost")
    assert info.value.error_code == StatusCode.error_timeout
    assert res.query("ECHO? next") == "next"
    res.close()


def test_tcp_dropped_connection_then_reconnect(tcp):
    rm, srv, plan = tcp
    res = open_socket(rm, srv)
    assert res.query("*IDN?") == "NWLAB,ECHO,0,1.0"
    plan.plan = ScriptedFaults(faults.drop())
    with pytest.raises(pyvisa.VisaIOError):
        res.query("*IDN?")  # the server hung up instead of answering
    deadline = time.monotonic() + 2.0
    while srv.client_count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.client_count == 0  # the server closed its end
    res.close()
    res = open_socket(rm, srv)
    assert res.query("*IDN?") == "NWLAB,ECHO,0,1.0"
    res.close()


def test_tcp_garbled_and_truncated_replies(tcp):
    rm, srv, plan = tcp
    res = open_socket(rm, srv)
    plan.plan = ScriptedFaults(faults.garble(), faults.truncate(4))
    assert res.query("ECHO? 1.25") == line_noise(b"1.25\n")[:-1].decode("ascii")
    # No terminator ever comes: over a socket a truncated reply is a timeout.
    with pytest.raises(pyvisa.VisaIOError) as info:
        res.query("ECHO? 123456789")
    assert info.value.error_code == StatusCode.error_timeout
    assert res.query("ECHO? 1.25") == "1.25"
    res.close()
