"""Procedure parameters and the safety envelope, as properties over generated inputs.

Bad parameters (wrong type, non-finite, out of bounds, unknown name) for every procedure of the
campaign raise ParameterError naming the parameter. Values each within bounds give a dry run that
completes or refuses with EnvelopeError, or a one-line ParameterError from the rules between
parameters — never another exception. Across generated tightened envelopes, no
step the dry run accepted exceeds the envelope, and every SetBias ramps no faster than allowed.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import DEFAULT_CHIP, emulated_tree, write_station

from contracts import steps
from contracts.files.station import read_station
from lab.execution.dry_run import dry_run
from contracts.envelope import EnvelopeError
from contracts.procedure import ParameterError, PlanContext
from procedures.catalog import CAMPAIGN

PARAMS = settings(max_examples=40, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
DESIGN = yaml.safe_load(DEFAULT_CHIP.read_text())
CONTEXT = PlanContext(chip_design=DESIGN, dry_run=True)
PROCEDURES = {p.name: p for p in CAMPAIGN}
#: Valid values are drawn from [minimum, min(maximum, CAP × default)]: the dry run walks every
#: step, and count parameters without a maximum would make it as long as asked.
CAP = 4.0


def _valid(info, draw):
    default, low, high = info.default, info.minimum, info.maximum
    if isinstance(default, bool):
        return draw(st.booleans())
    if isinstance(default, tuple):
        element = dataclasses.replace(info, default=default[0] if default else 0.0)
        return tuple(draw(st.lists(st.builds(lambda: None).map(lambda _: 0), min_size=1, max_size=4)
                          .map(lambda xs: [_valid(element, draw) for _ in xs])))
    if isinstance(default, int):
        low = int(low if low is not None else 0)
        top = max(low, int(CAP * max(default, 1)))
        return draw(st.integers(low, min(int(high), top) if high is not None else top))
    low = low if low is not None else -abs(default) * CAP
    top = max(abs(default) * CAP, low * CAP, low + 1e-12)
    high = min(high, top) if high is not None else top
    return draw(st.one_of(st.sampled_from([low, high, default if low <= default <= high else low]),
                          st.floats(low, high, allow_nan=False, allow_infinity=False)))


@st.composite
def valid_parameters(draw, procedure):
    infos = procedure.parameter_info()
    chosen = draw(st.lists(st.sampled_from(infos), max_size=len(infos), unique_by=lambda i: i.name))
    return {info.name: _valid(info, draw) for info in chosen}


WRONG_TYPES = ["3", "", None, [], {}, {"value": 1}, math.nan, math.inf, -math.inf, b"1", object()]


@st.composite
def bad_parameter(draw, procedure):
    info = draw(st.sampled_from(procedure.parameter_info()))
    default = info.default
    choices = list(WRONG_TYPES)
    if isinstance(default, bool):
        choices += [0, 1, 1.0, "true"]
    elif isinstance(default, int):
        choices += [True, 1.5, float(max(default, 1))]
    elif isinstance(default, float):
        choices += [True, False]
    elif isinstance(default, tuple):
        choices = [None, 1e-9, "16e-9", {"a": 1}, ("x",), (math.nan,), (True,)]
    if info.minimum is not None and not isinstance(default, bool):
        below = info.minimum - max(abs(info.minimum), 1) if isinstance(default, int) else \
            info.minimum - max(abs(info.minimum) * 0.5, 1e-12)
        choices.append((below,) if isinstance(default, tuple) else below)
    if info.maximum is not None and not isinstance(default, bool):
        above = info.maximum * 2 + 1
        above = int(above) if isinstance(default, int) else float(above)
        choices.append((above,) if isinstance(default, tuple) else above)
    return info.name, draw(st.sampled_from(choices))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(PROCEDURES))
@PARAMS
@given(data=st.data())
def test_bad_parameters_are_refused_naming_the_parameter(name, data):
    procedure = PROCEDURES[name]
    parameter, value = data.draw(bad_parameter(procedure))
    with pytest.raises(ParameterError) as error:
        procedure(**{parameter: value})
    assert f"{name}: parameter {parameter}" in str(error.value), str(error.value)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", sorted(PROCEDURES))
def test_an_unknown_parameter_is_refused_by_name(name):
    with pytest.raises(ParameterError, match=rf"{name}: unknown parameter 'bias_max_ma'"):
        PROCEDURES[name](bias_max_ma=1.0)


@pytest.fixture(scope="module")
def shipped_station(tmp_path_factory):
    return read_station(write_station(tmp_path_factory.mktemp("shipped"), emulated_tree()))


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", sorted(PROCEDURES))
@settings(PARAMS, max_examples=15)
@given(data=st.data())
def test_valid_parameters_dry_run_or_refuse_with_envelope_error(shipped_station, name, data):
    values = data.draw(valid_parameters(PROCEDURES[name]))
    try:       # each value within its bounds; the rules between them may still refuse the set
        procedure = PROCEDURES[name](**values)
        report = dry_run(procedure, shipped_station, CONTEXT)
    except ParameterError as error:      # when bound, or at a step the instrument would refuse
        assert str(error).startswith((f"{name}: ", f"{name}, step ")) and "\n" not in str(error), str(error)
        return
    except EnvelopeError as error:
        assert str(error).startswith(f"{name}, step "), str(error)
        return
    assert report.steps and math.isfinite(report.duration_s) and report.duration_s >= 0


# -- the envelope as a property of every accepted step --------------------------------------------

LIMITS = {  # instrument -> limit -> (shipped value, floor of the tightened copy)
    "bias": {"bias_current_max_a": 1e-6, "bias_ramp_max_a_per_s": 1e-6},
    "pulser": {"pulse_current_max_a": 1e-6, "pulse_width_max_s": 1e-9},
    "cryostat": {"temperature_max_k": 4.0, "setpoint_ramp_max_k_per_min": 0.1},
}


@st.composite
def tightened_envelopes(draw):
    tree = emulated_tree()
    for instrument, limits in LIMITS.items():
        envelope = tree["instruments"][instrument]["envelope"]
        for limit, floor in limits.items():
            shipped = envelope.get(limit)
            if shipped is None or draw(st.booleans()):
                continue
            envelope[limit] = draw(st.floats(floor, shipped))
    return tree


def _accepted(report):
    return [step for step, _ in report.steps]


def assert_within(accepted, station):
    bias = station.by_role("bias_source").envelope
    pulser = station.by_role("pulse_generator").envelope
    cryostat = station.by_role("temperature_controller").envelope
    wire = station.pulse_inputs[0]
    tol = 1 + 1e-12
    level_a = 0.0                                    # the bias before each step (it starts at 0 A)
    for step in accepted:
        match step:
            case steps.SetBias(current_a=current_a, ramp_a_per_s=ramp):
                assert abs(current_a) <= bias.limit("bias_current_max_a") * tol, step
                assert 0 < ramp <= bias.limit("bias_ramp_max_a_per_s") * tol, step
                level_a = current_a
            case steps.SweepBias(levels_a=levels_a, dwell_s=dwell_s):
                levels = np.asarray((level_a, *levels_a))
                assert np.all(np.abs(levels) <= bias.limit("bias_current_max_a") * tol), "level above the envelope"
                steepest_a_per_s = np.max(np.abs(np.diff(levels))) / dwell_s
                assert steepest_a_per_s <= bias.limit("bias_ramp_max_a_per_s") * tol, "sweep steeper than the ramp"
                level_a = levels_a[-1]
            case steps.ConfigurePulses(current_a=current_a, width_s=width_s):
                assert abs(current_a) <= pulser.limit("pulse_current_max_a") * tol, step
                assert width_s <= pulser.limit("pulse_width_max_s") * tol, step
                if pulser.limit("amplitude_max_v") is not None:
                    assert abs(current_a / wire.amperes_per_volt) <= pulser.limit("amplitude_max_v") * tol
            case steps.ConfigureDcInput(current_a=current_a):
                assert abs(current_a) <= pulser.limit("pulse_current_max_a") * tol, step
            case steps.SetTemperature(setpoint_k=setpoint_k, ramp_k_per_min=ramp):
                assert cryostat.limit("temperature_min_k") <= setpoint_k <= cryostat.limit("temperature_max_k"), step
                assert ramp is None or ramp <= cryostat.limit("setpoint_ramp_max_k_per_min") * tol, step


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", sorted(set(PROCEDURES) - {"efficiency"}))
@settings(PARAMS, max_examples=12)
@given(data=st.data())
def test_no_accepted_step_exceeds_a_generated_envelope(tmp_path, name, data):
    tree = data.draw(tightened_envelopes())
    station = read_station(write_station(tmp_path, tree))
    try:
        procedure = PROCEDURES[name](**data.draw(valid_parameters(PROCEDURES[name])))
        procedure.check_bound(CONTEXT)
    except ParameterError:     # a set the rules between parameters refuse: no plan to check
        return
    accepted = []
    # Walk the plan step by step: every step the dry run accepted is in its report, and the step
    # it refused (if any) is the one after them. Re-run to collect what was accepted before it.
    try:
        report = dry_run(procedure, station, CONTEXT)
        accepted = _accepted(report)
        refused = None
    except ParameterError:     # a pulse the generator cannot make: not an envelope question
        return
    except EnvelopeError as error:
        refused = error
        number = int(str(error).split(", step ")[1].split(" ")[0])
        accepted = _walk_until(procedure, station, number - 1)
    assert_within(accepted, station)
    if refused is not None:
        # The refused step is really outside the envelope: it fails the same check on its own.
        step = _walk_until(PROCEDURES[name](**dataclasses.asdict(procedure.parameters)), station, number,
                           check=False)[-1]
        with pytest.raises(AssertionError):
            assert_within([step], station)


def _walk_until(procedure, station, count, check=True):
    """The first `count` steps of the plan with the dry run's own stand-in replies."""
    from lab.execution.dry_run import stand_in_reply
    from lab.execution.executor import WiringState, check_step, remember

    state, capture, taken, reply = WiringState(), None, [], None
    plan = procedure.plan(CONTEXT)
    while len(taken) < count:
        step = plan.send(reply)
        if check and len(taken) < count:
            check_step(step, station, state)
        taken.append(step)
        if isinstance(step, steps.ConfigureCapture):
            capture = step
        reply = stand_in_reply(step, state, capture)
        remember(step, state, station)
    return taken
