"""Stock clients of the Keithley 2450 against the emulated SMU, in-process and over TCP.

PyMeasure 0.16's `Keithley2450`: its buffer flow (`config_buffer`, `start_buffer`,
`wait_for_buffer`, the statistics) runs with the two 2450 commands that stand in for what the
driver sends in Series 2400 syntax; its filters and output-off states round-trip. QCoDeS
0.58's `Keithley2450` uses a user buffer as its example notebook does. (PyMeasure's property
walk is in tests/conformance/test_pymeasure_conformance.py.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from sim_backend.transport._bench_lookup import set_bench_opener
from tests.conformance.stock_bench import Reached, no_nagle, reach

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["inproc", "tcp"])
def reached(request, tmp_path) -> Iterator[Reached]:
    """A bench whose bias source is a 2450, reached over each transport."""
    previous = set_bench_opener(None)
    found = reach("keithley_2450", request.param, tmp_path)
    try:
        yield found
    finally:
        found.stop()
        set_bench_opener(previous)


@contextmanager
def pymeasure_smu(reached: Reached):
    from pymeasure.instruments.keithley import Keithley2450

    # A raw socket has no end-of-message line: a socket client names the instrument's LF.
    smu = Keithley2450(reached.address, visa_library=reached.visa_library, timeout=2000, read_termination="\n")
    if reached.server is not None:
        no_nagle(smu.adapter.connection)
    try:
        yield smu
    finally:
        smu.adapter.close()


def line_resistance_ohm(reached: Reached) -> float:
    return next(w.line_resistance_ohm for w in reached.bench.world.station.bias_lines if w.instrument == "bias")


def test_pymeasure_buffer_flow_fills_the_buffer_with_the_chip_readings(reached):
    pytest.importorskip("pymeasure", reason="pymeasure is a dev dependency; install .[dev]")
    from pyvisa.errors import VisaIOError

    line_ohm = line_resistance_ohm(reached)
    points, amps = 40, 20e-6
    with pymeasure_smu(reached) as smu:
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


def test_pymeasure_filters_round_trip(reached):
    pytest.importorskip("pymeasure", reason="pymeasure is a dev dependency; install .[dev]")
    with pymeasure_smu(reached) as smu:
        smu.current_filter_type, smu.current_filter_count = "MOV", 25
        smu.voltage_filter_type, smu.voltage_filter_count = "REP", 100
        smu.current_filter_state = "ON"
        smu.current_output_off_state, smu.voltage_output_off_state = "HIMP", "ZERO"
        assert (smu.current_filter_type, smu.current_filter_count, smu.current_filter_state) == ("MOV", 25, 1)
        assert (smu.voltage_filter_type, smu.voltage_filter_count) == ("REP", 100)
        assert (smu.current_output_off_state, smu.voltage_output_off_state) == ("HIMP", "ZERO")
        assert smu.check_errors() == []


def test_qcodes_sweep_into_a_user_buffer_as_in_its_example(reached):
    from qcodes.instrument_drivers.Keithley import Keithley2450

    bench = reached.bench
    device = bench.devices[next(e.address for e in bench.instruments if e.role == "bias")]
    line_ohm = line_resistance_ohm(reached)
    smu = Keithley2450(f"k2450_{uuid.uuid4().hex[:8]}", reached.address, visalib=reached.visa_library, timeout=2)
    if reached.server is not None:
        no_nagle(smu.visa_handle)
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
