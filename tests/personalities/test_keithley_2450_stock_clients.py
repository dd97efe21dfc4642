"""Stock clients of the Keithley 2450 against the emulated SMU, in-process and over TCP.

PyMeasure 0.16's `Keithley2450`: every property is read and every settable one set back; a
failure must match a reviewed cause (a driver defect checked against the Model 2450 Reference
Manual) or the test fails naming it. Its buffer flow (`config_buffer`, `start_buffer`,
`wait_for_buffer`, the statistics) runs with the two 2450 commands that stand in for what the
driver sends in Series 2400 syntax. QCoDeS 0.58's `Keithley2450` uses a user buffer as its
example notebook does.
"""

from __future__ import annotations

import inspect
import re
import socket
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.timeout(120)

BIAS = ("keithley_2450", "drivers.keithley_2450.Keithley2450")
#: PyMeasure properties the walk leaves out, as the Agilent33500 walk does (identity, status
#: byte, error queue, options: the SCPI mixin's, not the instrument's settings).
SKIPPED = ("id", "complete", "status", "next_error", "options", "check_errors")


@dataclass(frozen=True)
class Cause:
    """A reviewed reason a PyMeasure property fails on a 2450."""

    name: str
    reason: str
    error: str                       # regex on "<exception type>: <message>"
    prop: str                        # regex on the property name


CAUSES = (
    Cause("Series 2400 buffer read",
          "KeithleyBuffer.buffer_data sends the Series 2400's bare ':TRAC:DATA?'; the 2450 needs "
          "<startIndex>, <endIndex> (Reference Manual 6-109), queues -109 and answers nothing",
          r"^VisaIOError: .*VI_ERROR_TMO", r"buffer_data"),
    Cause("statistics as one value",
          "the driver takes means/maximums/minimums/standard_devs as the Series 2400's (V, I, R) "
          "triple and indexes it; the 2450's :TRACe:STATistics:<statistic>? answers one value over "
          "the buffer's readings",
          r"^TypeError: 'float' object is not subscriptable", r"(mean|max|min|std)_(voltage|current|resistance)"),
    Cause("filter state as ON/OFF",
          "the setter's validator wants 'ON'/'OFF'; the 2450 answers its Boolean :AVERage[:STATe]? as "
          "1/0 (the driver casts it to 0.0)",
          r"^ValueError: Value of [01]\.0 is not in the discrete set \['ON', 'OFF'\]", r"current_filter_state"),
)


def cause_of(name: str, failure: str) -> Cause | None:
    return next((c for c in CAUSES if re.search(c.error, failure) and re.fullmatch(c.prop, name)), None)


@contextmanager
def served(bench, transport: str, visalib: str) -> Iterator[tuple[str, str]]:
    """(VISA address, library) of the bench's SMU, in-process or on a localhost server."""
    from sim_backend.transport.bench_server import BenchServer

    if transport == "inproc":
        yield next(e.address for e in bench.instruments if e.role == "bias"), visalib
        return
    with BenchServer(bench) as server:
        yield next(s.server.visa_address for s in server.instruments if s.role == "bias"), "@py"


def no_delay(resource) -> None:
    """TCP_NODELAY on a pyvisa-py socket session (NI-VISA's default; pyvisa-py waits 40 ms per write pair)."""
    session = resource.visalib.sessions.get(resource.session)
    if hasattr(getattr(session, "interface", None), "setsockopt"):
        session.interface.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@contextmanager
def pymeasure_smu(bench, transport: str, visalib: str):
    from pymeasure.instruments.keithley import Keithley2450

    with served(bench, transport, visalib) as (address, library):
        # A raw socket has no end-of-message line: a socket client names the instrument's LF.
        smu = Keithley2450(address, visa_library=library, timeout=2000, read_termination="\n")
        no_delay(smu.adapter.connection)
        try:
            yield smu
        finally:
            smu.adapter.close()


def settable(attribute: property) -> bool:
    """A PyMeasure property is settable unless it has no setter or is a measurement (its setter
    has no set command and raises)."""
    if attribute.fset is None:
        return False
    set_command = inspect.signature(attribute.fset).parameters.get("set_command")
    return set_command is None or set_command.default is not None


def walk(smu) -> tuple[int, list[tuple[str, str]]]:
    """(properties that pass, [(name, failure)]) over every public property but `SKIPPED`."""
    passed, failures = 0, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)      # `error` is deprecated for `next_error`
        for name, attribute in inspect.getmembers(type(smu), lambda a: isinstance(a, property)):
            if name.startswith("_") or name in SKIPPED:
                continue
            try:
                value = getattr(smu, name)
                if settable(attribute):
                    setattr(smu, name, value)
                    again = getattr(smu, name)
                    assert again == (pytest.approx(value) if isinstance(value, float) else value), (value, again)
            except Exception as error:  # noqa: BLE001 - each failure is classified
                failures.append((name, f"{type(error).__name__}: {error}"))
                continue
            passed += 1
    return passed, failures


@pytest.fixture
def bench(variant_bench):
    found, visalib = variant_bench(bias=BIAS)
    return found, visalib


@pytest.mark.parametrize("transport", ["inproc", "tcp"])
def test_pymeasure_every_property_round_trips_or_has_a_reviewed_cause(bench, transport):
    pytest.importorskip("pymeasure", reason="pymeasure is a dev dependency; install .[dev]")
    found, visalib = bench
    with pymeasure_smu(found, transport, visalib) as smu:
        smu.apply_current(compliance_voltage=1.0)
        smu.source_current = 10e-6
        smu.enable_source()
        passed, failures = walk(smu)
    unexplained = [f"{name}: {failure[:160]}" for name, failure in failures if cause_of(name, failure) is None]
    assert not unexplained, "\n".join(unexplained)
    assert passed + len(failures) == 48 and passed >= 34


@pytest.mark.parametrize("transport", ["inproc", "tcp"])
def test_pymeasure_buffer_flow_fills_the_buffer_with_the_chip_readings(bench, transport):
    pytest.importorskip("pymeasure", reason="pymeasure is a dev dependency; install .[dev]")
    from pyvisa.errors import VisaIOError

    found, visalib = bench
    line_ohm = next(w.line_resistance_ohm for w in found.world.station.bias_lines if w.instrument == "bias")
    points, amps = 40, 20e-6
    with pymeasure_smu(found, transport, visalib) as smu:
        smu.apply_current(compliance_voltage=1.0)
        smu.measure_voltage()
        smu.source_current = amps
        smu.enable_source()
        smu.config_buffer(points=points)
        # What the driver sends in Series 2400 syntax (:STAT:MEAS:ENAB, :TRAC:FEED, :TRIG:COUN
        # kept in Python) the 2450 does with its own commands: the buffer-full event mapped to
        # the questionable register, which sets MSB, and a SimpleLoop for :INIT to run.
        smu.write(f':STAT:QUES:MAP 0, 4918, 4917;:STAT:QUES:ENAB 1;:TRIG:LOAD "SimpleLoop", {points}')
        smu.start_buffer()
        smu.wait_for_buffer(timeout=5, interval=0.01)
        readings = smu.values(f':TRAC:DATA? 1, {points}, "defbuffer1", READ, SOUR')
        assert int(smu.ask(":TRAC:ACT?")) == points
        assert readings[0::2] == pytest.approx([amps * line_ohm] * points, rel=1e-3)
        assert readings[1::2] == pytest.approx([amps] * points)
        assert smu.means == pytest.approx(amps * line_ohm, rel=1e-3)
        assert smu.maximums >= smu.minimums
        assert smu.check_errors() == []
        with pytest.raises(VisaIOError):
            smu.buffer_data                       # noqa: B018 - the Series 2400 read (CAUSES)
        assert int(float(smu.next_error[0])) == -109


@pytest.mark.parametrize("transport", ["inproc", "tcp"])
def test_pymeasure_filters_round_trip(bench, transport):
    pytest.importorskip("pymeasure", reason="pymeasure is a dev dependency; install .[dev]")
    found, visalib = bench
    with pymeasure_smu(found, transport, visalib) as smu:
        smu.current_filter_type, smu.current_filter_count = "MOV", 25
        smu.voltage_filter_type, smu.voltage_filter_count = "REP", 100
        smu.current_filter_state = "ON"
        smu.current_output_off_state, smu.voltage_output_off_state = "HIMP", "ZERO"
        assert (smu.current_filter_type, smu.current_filter_count, smu.current_filter_state) == ("MOV", 25, 1)
        assert (smu.voltage_filter_type, smu.voltage_filter_count) == ("REP", 100)
        assert (smu.current_output_off_state, smu.voltage_output_off_state) == ("HIMP", "ZERO")
        assert smu.check_errors() == []


@pytest.mark.parametrize("transport", ["inproc", "tcp"])
def test_qcodes_sweep_into_a_user_buffer_as_in_its_example(bench, transport):
    from qcodes.instrument_drivers.Keithley import Keithley2450

    found, visalib = bench
    device = found.devices[next(e.address for e in found.instruments if e.role == "bias")]
    line_ohm = next(w.line_resistance_ohm for w in found.world.station.bias_lines if w.instrument == "bias")
    with served(found, transport, visalib) as (address, library):
        smu = Keithley2450(f"k2450_{uuid.uuid4().hex[:8]}", address, visalib=library, timeout=2)
        no_delay(smu.visa_handle)
        try:
            smu.source.function("current")
            smu.sense.function("voltage")
            smu.source.limit(1.0)
            with smu.buffer("userbuff1", 100) as buffer:
                assert buffer.size() == 100 and "userbuff1" in device.buffers   # the query follows the write
                buffer.elements(["time", "date", "measurement", "source_value_formatted"])
                smu.source.sweep_setup(0, 10e-6, 5, buffer_name=buffer.buffer_name)
                data = smu.sense.sweep()
                selected = smu.sense.sweep.get_selected()
            levels = [k * 2.5e-6 for k in range(5)]
            assert list(data) == pytest.approx([a * line_ohm for a in levels], abs=1e-9)
            assert [float(v) for v in selected[3::4]] == pytest.approx(levels)
            assert smu.ask("*OPC?") == "1"      # over TCP a write returns before the instrument runs it
            assert "userbuff1" not in device.buffers and smu.buffer_name() == "defbuffer1"
            smu.sense.count(3)
            assert smu.sense.voltage() == pytest.approx(levels[-1] * line_ohm, abs=1e-9)
            assert int(smu.ask(":TRAC:ACT?")) == 3
            assert smu.ask(":SYST:ERR?") == '+0,"No error"'
        finally:
            smu.close()
