"""Lake Shore 336 and 372 drivers (TemperatureController) against the emulated controllers and stage."""

from __future__ import annotations

import copy
import time

import pytest
from driver_helpers import ENVELOPES

from drivers.lakeshore_336 import Lakeshore336, parse_extremes
from drivers.lakeshore_372 import NO_CAPTURE, Lakeshore372
from contracts.envelope import EnvelopeError
from contracts.roles import NoExtremesCapture
from sim_backend.physics import thermal

pytestmark = pytest.mark.timeout(30)


#: model -> (driver, options, heater output on the panel, its control input, regulating range index)
MODELS = {
    "lakeshore_336": (Lakeshore336, dict(sensor_input="A", heater_output=1, heater_range="medium"), 1, "A", 2),
    "lakeshore_372": (Lakeshore372, dict(sensor_input=6, heater_range="316μA"), 0, "6", 3),
}


@pytest.fixture(params=sorted(MODELS))
def model(request) -> str:
    return request.param


@pytest.fixture
def bench_models(model) -> dict[str, str]:
    return {"cryostat": model}


@pytest.fixture
def heater(bench, model):
    return bench.world.panels["cryostat"].outputs[MODELS[model][2]]


@pytest.fixture
def controller(connect, model):
    driver, options, *_ = MODELS[model]
    return connect("cryostat", driver, envelope=ENVELOPES["cryostat"], **options)


def test_reads_the_stage_temperature(controller, bench):
    reading_k = controller.read_temperature_k()
    panel = bench.world.panels["cryostat"]
    # The reading carries the sensor's noise (1 mK rms) on the modelled stage temperature.
    assert reading_k == pytest.approx(panel.state.temperature_k, abs=0.02)
    # The station's stage starts at its base (either model), so the reading does not depend on
    # how long the test took to get here.
    assert reading_k == pytest.approx(thermal.equilibrium_temperature_k(thermal.STAGE_4K, 0.0), abs=0.01)


def test_setpoint_regulates_with_the_heater_on(controller, heater, model):
    controller.set_setpoint_k(4.2)
    assert heater.setpoint_k == pytest.approx(4.2)
    assert heater.mode == "closed_loop" and heater.control_input == MODELS[model][3]
    assert heater.range_index == MODELS[model][4]
    assert not heater.ramp_enabled
    assert 0.0 <= controller.heater_output_pct() <= 100.0


def test_ramped_setpoint_starts_from_the_stage(controller, heater):
    controller.set_setpoint_k(5.0, ramp_k_per_min=2.0)
    assert heater.ramp_enabled and heater.ramp_rate_k_per_min == pytest.approx(2.0)
    assert heater.setpoint_k == pytest.approx(5.0)
    # The ramp begins at the stage temperature, not at the 0 K setpoint left by *RST.
    assert 2.5 < heater.ramping_setpoint_k < 5.0


def test_safe_state_switches_the_heater_off(controller, heater):
    controller.set_setpoint_k(4.2)
    controller.safe_state()
    assert heater.range_index == 0


REFUSED = [  # (setpoint_k, ramp_k_per_min, the limit named in the refusal)
    (12.5, None, "temperature_max_k"),
    (1.0, None, "temperature_min_k"),
    (4.2, 20.0, "setpoint_ramp_max_k_per_min"),
    (4.2, 0.0, "ramp"),
]


def test_refused_setpoints_write_nothing(controller, bench, received):
    controller.set_setpoint_k(4.0)
    before = copy.deepcopy(bench.world.panels["cryostat"].outputs)
    log = received("cryostat")
    for setpoint_k, ramp_k_per_min, limit in REFUSED:
        with pytest.raises(EnvelopeError, match=limit):
            controller.set_setpoint_k(setpoint_k, ramp_k_per_min=ramp_k_per_min)
    assert log.byte_count == 0
    assert bench.world.panels["cryostat"].outputs == before


# --- the min/max capture (336: MNMXRST, MDAT?; the 372 keeps none) ------------------------------------

@pytest.mark.parametrize("model", ["lakeshore_336"])
def test_336_capture_has_the_extremes_a_reading_no_longer_shows(controller, bench, received):
    panel = bench.world.panels["cryostat"]
    log = received("cryostat")
    controller.reset_temperature_extremes()
    assert log.messages == ["MNMXRST", "*ESR?"]                   # status checked, as after every verb
    base_k = controller.read_temperature_k()
    low_k, high_k = controller.temperature_extremes_k()
    assert low_k == pytest.approx(base_k, abs=0.01) and high_k - low_k < 1e-3
    # Lab time runs at wall speed here: 5 W for half a second, then the stage cools back.
    now_s = bench.world.now_s()
    panel.excursions.append((now_s + 0.2, now_s + 0.7, 5.0))
    time.sleep(3.0)
    reading_k = controller.read_temperature_k()
    low_k, high_k = controller.temperature_extremes_k()
    assert high_k > 6.0 and low_k == pytest.approx(base_k, abs=0.01)
    assert reading_k < high_k - 2.0                                     # the stage has cooled back a long way
    assert log.messages[-1] == "MDAT? A"                              # the control input (sensor_input)
    controller.reset_temperature_extremes()
    low_k, high_k = controller.temperature_extremes_k()
    assert high_k - low_k < 0.05 and high_k < reading_k + 0.05          # from the present reading again


@pytest.mark.parametrize("model", ["lakeshore_372"])
def test_372_says_it_keeps_no_capture_and_sends_nothing(controller, received):
    log = received("cryostat")
    for verb in (controller.reset_temperature_extremes, controller.temperature_extremes_k):
        with pytest.raises(NoExtremesCapture) as missing:
            verb()
        assert str(missing.value) == NO_CAPTURE
    assert log.byte_count == 0


@pytest.mark.parametrize("reply", ["+3.1711", "+3.1,+2.0", "+3.1,nan", "a,b", "+1,+2,+3"])
def test_a_min_max_reply_not_of_the_manuals_form_is_refused(reply):
    with pytest.raises(ValueError):
        parse_extremes(reply)
    assert parse_extremes("+3.1711,+5.9286\r\n") == (3.1711, 5.9286)


# --- heat goes through one output, in closed loop, at most at the station's range ----------------

#: model -> messages the guard refuses: (what, message, a fragment of its refusal)
REFUSED_HEAT = {
    "lakeshore_336": [
        ("a range above the station's (medium)", "RANGE 1,3", "above the range the station chose"),
        ("the other heater output on", "RANGE 2,1", "may only be switched off"),
        ("open loop", "OUTMODE 1,3,1,0", "open_loop"),
        ("zone", "OUTMODE 1,2,1,0", "zone"),
        ("closed loop on another input", "OUTMODE 1,1,2,0", "another sensor|other than the control input"),
        ("closed loop on the other output", "OUTMODE 2,1,1,0", "may only be off"),
        ("a zone table entry", "ZONE 1,1,10,50,20,0,0,3,1,1", "zone table"),
        ("a range that is not a whole number", "RANGE 1,1.5", "not a whole number"),
        ("a negative range", "RANGE 1,-1", "not a range"),
    ],
    "lakeshore_372": [
        ("a range above the station's (316 uA)", "RANGE 0,4", "above the range the station chose"),
        ("the warm-up heater on", "RANGE 1,1", "may only be switched off"),
        ("open loop", "OUTMODE 0,2,6,0,0,0,1", "open_loop"),
        ("warm-up mode", "OUTMODE 0,6,6,0,0,0,1", "warm_up"),
        ("closed loop on another channel", "OUTMODE 0,5,7,0,0,0,1", "other than the control input"),
        ("the still heater", "STILL 50", "still heater"),
        ("a negative range", "RANGE 0,-1", "not a range"),
        ("the control channel's curve", "INSET 6,1,10,3,7,1", "control input's setup"),
        ("the control channel disabled, its number written 06", "INSET 06,0,10,3,0,1", "control input's setup"),
    ],
}


@pytest.mark.parametrize(("model", "what", "message", "refusal"),
                         [(model, *case) for model, cases in REFUSED_HEAT.items() for case in cases],
                         ids=[f"{model}-{case[1]}" for model, cases in REFUSED_HEAT.items() for case in cases])
def test_heat_outside_the_regulating_output_and_range_is_refused(controller, bench, received, what, message,
                                                                 refusal):
    """Every way to heat the stage past what the station chose for regulating is refused before
    a byte leaves, while the heater regulates (the panel's outputs as they were)."""
    controller.set_setpoint_k(4.0)
    before = copy.deepcopy(bench.world.panels["cryostat"].outputs)
    log = received("cryostat")
    with pytest.raises(EnvelopeError, match=refusal):
        controller.write(message)
    assert log.byte_count == 0, f"{what}: reached the instrument"
    assert bench.world.panels["cryostat"].outputs == before


def test_the_regulating_output_takes_ranges_up_to_the_stations_and_closed_loop_on_its_input(
        controller, model, heater):
    _, options, output, control_input, largest = MODELS[model]
    controller.set_setpoint_k(4.0)
    for range_index in range(largest, -1, -1):                  # every range the station allows, and off
        controller.write(f"RANGE {output},{range_index}")
        assert int(controller.ask(f"RANGE? {output}")) == heater.range_index == range_index
    code = 1 if model == "lakeshore_336" else int(control_input)          # the 336 numbers inputs A-D 1-4
    closed_loop = controller.role_output().MODES["closed_loop"]
    tail = ",0" if model == "lakeshore_336" else ",0,0,0,1"          # 372: powerup, polarity, filter, delay
    controller.write(f"OUTMODE {output},{closed_loop},{code}{tail}")
    controller.write(f"PID {output},40,15,0")                  # gains pass: the range bounds the power
    controller.raise_on_status_errors("the allowed writes")
    with pytest.raises(ValueError, match="regulating_range"):      # above the station's: not even kept
        controller.regulating_range("high" if model == "lakeshore_336" else "1mA")


def test_a_station_heater_range_the_model_lacks_is_named(connect, model):
    driver, options, *_ = MODELS[model]
    with pytest.raises(ValueError, match="heater_range 'hot'"):
        connect("cryostat", driver, envelope=ENVELOPES["cryostat"], **{**options, "heater_range": "hot"})


def test_the_control_output_and_input_are_the_stations(controller, model):
    """The guard holds heat to the station's output and closed loop to its input: neither can be
    moved at run time (a moved output once let two heat, and safe state switch off the wrong one)."""
    with pytest.raises(ValueError, match="control_sensor"):
        controller.control_sensor("B" if model == "lakeshore_336" else 7)
    if model == "lakeshore_336":
        with pytest.raises(ValueError, match="control_output"):
            controller.control_output(2)


def test_safe_state_switches_off_a_heater_left_on_at_the_front_panel(controller, model, bench):
    """Safe state switches every output that can heat off, not only the one this session used."""
    other = 2 if model == "lakeshore_336" else 1                   # 336 output 2; 372 warm-up heater
    bench.device("cryostat").write_bytes(f"RANGE {other},1\n".encode())   # set at the instrument itself
    assert int(controller.ask(f"RANGE? {other}")) == 1
    controller.set_setpoint_k(4.0)
    controller.safe_state()
    outputs = (1, 2, 3, 4) if model == "lakeshore_336" else (0, 1, 2)
    assert {output: int(controller.ask(f"RANGE? {output}")) for output in outputs} == dict.fromkeys(outputs, 0)


def test_a_line_feed_inside_a_quoted_string_is_refused(controller, model, bench, received):
    """Over a socket an instrument may end a message at any line feed: lines hidden in a quoted
    string longer than one 64 KiB read once ran as commands (open loop at 100 % on the top range)."""
    output = MODELS[model][2]
    mode = "3,1,0" if model == "lakeshore_336" else "2,6,0,0,0,10"
    lines = f"OUTMODE {output},{mode}\nMOUT {output},100\nRANGE {output},3\n"
    before = copy.deepcopy(bench.world.panels["cryostat"].outputs)
    log = received("cryostat")
    with pytest.raises(EnvelopeError, match="line feed inside a quoted string"):
        controller.write('INNAME A,"' + lines * (70_000 // len(lines) + 1) + '"')
    assert log.byte_count == 0
    assert bench.world.panels["cryostat"].outputs == before


@pytest.mark.parametrize(("model", "spelling"), [("lakeshore_372", "316uA"), ("lakeshore_372", "316\u00b5A"),
                                                 ("lakeshore_336", "Medium")])
def test_a_station_heater_range_spelt_as_people_type_it_is_the_models_range(connect, model, heater, spelling):
    """`u` or the micro sign for the stock names' Greek mu (they look alike in a file), any case."""
    driver, options, _, _, largest = MODELS[model]
    controller = connect("cryostat", driver, envelope=ENVELOPES["cryostat"], **{**options, "heater_range": spelling})
    controller.set_setpoint_k(4.0)
    assert heater.range_index == largest
