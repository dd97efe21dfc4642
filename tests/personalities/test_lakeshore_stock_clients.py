"""Stock clients on the emulated Lake Shore 336, in-process (pyvisa over the nwlab backend) and
over TCP (pyvisa-py against a BenchServer), on a bench built from the emulated station file.

(PyMeasure's `LakeShore3xx` property walk is in tests/conformance/test_pymeasure_conformance.py.)

* PyMeasure's documented flow — setpoint, heater range, `wait_for_temperature` — on the clock
  of a station running 3600x: with the power-up output mode (Off, `OUTMODE? 1` = ``0,1,0``)
  the heater stays at 0 %; once the client selects closed-loop PID (`OUTMODE 1,1,1,0`) the
  stage reaches 3.8 K within an hour of lab time.
* QCoDeS' `LakeshoreModel336` on what the Model 336 manual (chapter 6) specifies: HTRSET?
  answers four fields (the driver parses the Model 335's five), RDGST? a ``nnn`` weighting,
  INNAME up to 15 characters, TLIMIT switching the outputs off, and output 2's settings.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from sim_backend.transport._bench_lookup import set_bench_opener
from tests.conformance.stock_bench import Reached, no_nagle, reach

pytestmark = pytest.mark.timeout(120)

TRANSPORTS = ("inproc", "tcp")


@contextmanager
def cryostat_session(transport: str, tmp_path: Path, acceleration: float) -> Iterator[Reached]:
    """The emulated station's bench with a Lake Shore 336 as cryostat, reached over `transport`."""
    previous = set_bench_opener(None)
    reached = reach("lakeshore_336", transport, tmp_path, acceleration=acceleration)
    try:
        yield reached
    finally:
        reached.stop()
        set_bench_opener(previous)


def pymeasure_controller(session: Reached):
    lakeshore = pytest.importorskip("pymeasure.instruments.lakeshore", reason="pymeasure is a dev dependency")
    controller = lakeshore.LakeShore3xx(session.address, visa_library=session.visa_library, timeout=2000)
    no_nagle(controller.adapter.connection)
    controller.ask("*ESR?")                      # clears power-on, so later reads show errors only
    return controller


def pymeasure_heats_to(controller, target_k: float, wall_timeout_s: float) -> bool:
    """PyMeasure's flow: setpoint and heater range on output 1, then wait on input A."""
    controller.output_1.setpoint = target_k
    controller.output_1.range = "low"
    try:
        controller.input_A.wait_for_temperature(target_k, interval=0.05, timeout=wall_timeout_s)
    except Exception as error:  # noqa: BLE001 - PyMeasure raises a bare Exception on its timeout
        assert "Timeout occurred" in str(error)
        return False
    return True


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pymeasure_wait_for_temperature_needs_closed_loop_mode_as_on_the_controller(transport, tmp_path):
    with cryostat_session(transport, tmp_path, acceleration=3600.0) as session:
        clock, panel = session.bench.world.clock, session.bench.world.panels["cryostat"]
        controller = pymeasure_controller(session)
        base_k = controller.input_A.kelvin
        assert controller.ask("OUTMODE? 1").strip() == "0,1,0"     # power-up: Off, control input A
        start_s = clock.now_s()
        assert not pymeasure_heats_to(controller, 3.8, wall_timeout_s=1.0)
        assert clock.now_s() - start_s > 1800.0                     # half an hour of lab time and more
        assert controller.output_1.output == 0.0
        assert controller.input_A.kelvin == pytest.approx(base_k, abs=0.01)

        controller.write("OUTMODE 1,1,1,0")                         # closed-loop PID on input A
        start_s, started_wall_s = clock.now_s(), time.monotonic()
        assert pymeasure_heats_to(controller, 3.8, wall_timeout_s=20.0)
        assert clock.now_s() - start_s < 3600.0
        assert time.monotonic() - started_wall_s < 10.0
        assert controller.output_1.output > 0.0 and panel.state.temperature_k == pytest.approx(3.8, abs=0.02)
        assert int(controller.ask("*ESR?")) == 0
        controller.adapter.close()


@contextmanager
def qcodes_controller(session: Reached):
    from qcodes.instrument_drivers.Lakeshore import LakeshoreModel336

    with closing(LakeshoreModel336(f"ls336_{uuid.uuid4().hex[:8]}", session.address,
                                   visalib=session.visa_library, timeout=2)) as controller:
        no_nagle(controller.visa_handle)
        yield controller


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_qcodes_heater_setup_is_the_model_336_form_the_driver_does_not_parse(transport, tmp_path):
    with cryostat_session(transport, tmp_path, acceleration=0.0) as session, qcodes_controller(session) as ls:
        # Manual: HTRSET? <output> returns <htr resistance>,<max current>,<max user current>,<current/power>
        assert ls.ask("HTRSET? 1") == "1,4,+0.000,1"                 # 25 Ω, 2 A, user 0 A, current
        assert ls.ask("HTRSET? 2") == "1,2,+0.000,1"                 # 25 Ω, 1 A
        with pytest.raises(KeyError, match="'4' not in val_mapping"):
            ls.output_1.output_heater_resistance()                   # read as the 335's output type
        ls.ask("*ESR?")
        ls.write("HTRSET 1,1,2,2,0,2")                               # the 335's six fields: refused
        assert int(ls.ask("*ESR?")) == 0x20 and ls.ask("HTRSET? 1") == "1,4,+0.000,1"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_qcodes_sensor_status_name_limit_and_output_2_behave_as_the_manual_says(transport, tmp_path):
    with cryostat_session(transport, tmp_path, acceleration=0.0) as session, qcodes_controller(session) as ls:
        clock = session.bench.world.clock
        assert (ls.A.sensor_status(), ls.ask("RDGST? A")) == ("OK", "000")
        ls.B.sensor_type("disabled")
        assert ls.B.sensor_status() == "Invalid Reading"

        assert ls.A.sensor_name() == "Input A"
        ls.A.sensor_name("Cold finger 4 K")                          # 15 characters: the limit
        assert ls.A.sensor_name() == "Cold finger 4 K"
        ls.ask("*ESR?")
        ls.write('INNAME A,"Cold finger at 4 K"')                    # 17: refused, name kept
        assert int(ls.ask("*ESR?")) == 0x10 and ls.A.sensor_name() == "Cold finger 4 K"

        for text in ("OUTMODE 2,1,2,0", "RANGE 2,2", "PID 2,30,15,5", "MOUT 2,12.5", "SETP 2,6.25"):
            ls.write(text)
        output_2 = ls.output_2
        assert (output_2.mode(), output_2.input_channel(), output_2.powerup_enable()) == ("closed_loop", "B", False)
        assert (output_2.output_range(), output_2.setpoint()) == ("medium", 6.25)
        assert (output_2.P(), output_2.I(), output_2.D()) == (30.0, 15.0, 5.0)
        assert ls.ask("MOUT? 2") == "+12.50"
        output_2.mode("open_loop")
        output_2.output_range("high")
        output_2.setpoint(7.5)
        assert ls.ask("OUTMODE? 2") == "3,2,0" and ls.ask("RANGE? 2") == "3" and ls.ask("SETP? 2") == "+7.5000"

        ls.output_1.mode("open_loop")
        ls.output_1.output_range("high")
        ls.write("MOUT 1,100")
        ls.A.t_limit(3.5)                                            # all control outputs off above 3.5 K
        assert ls.A.t_limit() == 3.5
        clock.advance(60.0)
        assert (ls.output_1.output_range(), output_2.output_range(), ls.output_3.output_range()) == ("off",) * 3
        assert int(ls.ask("*ESR?")) == 0
