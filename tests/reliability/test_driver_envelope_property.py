"""The safety envelope as a property of the real drivers against the in-process emulator.

Generated envelopes and requests go to `Keithley2450.set_current_a`, the pulse generators'
`configure_pulse` (81160A, 33522B) and the temperature controllers' `set_setpoint_k` (336, 372).
Every byte the emulated instrument receives is logged by wrapping its personality's
`write_bytes`, with the wall time of arrival (the SMU ramps in wall time; the instrument lives
in real time). Properties:

- a request outside the envelope raises `EnvelopeError` and the instrument received nothing;
- a request inside is applied (the front panel shows it);
- the SMU source levels received never exceed the envelope, never step by more than the
  driver's largest step, and never change faster than the asked ramp rate (itself within the
  envelope) between two writes.
"""

from __future__ import annotations

import math
import os
import time
import uuid

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from reliability_helpers import emulated_tree, write_station

from drivers.keithley_2450 import Keithley2450
from drivers.keysight_33500b import Keysight33500B
from drivers.keysight_81160a import Keysight81160A
from drivers.lakeshore_336 import Lakeshore336
from drivers.lakeshore_372 import Lakeshore372
from contracts.envelope import Envelope, EnvelopeError
from contracts.wiring import PulsePath
from sim_backend import emulator

SETTINGS = settings(max_examples=int(os.environ.get("NWLAB_ENVELOPE_EXAMPLES", "25")), derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CHIP_AMPERES_PER_VOLT = 0.1 / 2000.0          # the emulated wiring: 20 dB, then 2 kOhm
PULSE_PATH = PulsePath("pulser", 1, "input", CHIP_AMPERES_PER_VOLT)
MAX_STEP_A = 1e-6
#: Slack for the time between two writes as seen at the instrument: the previous write may
#: arrive up to this much after it was sent (transport and parser time), shortening the gap.
ARRIVAL_JITTER_S = 0.5e-3


class Received:
    """Wraps a personality's write_bytes: (monotonic time, bytes) per message."""

    def __init__(self, device) -> None:
        self.log: list[tuple[float, bytes]] = []
        original = device.write_bytes

        def write_bytes(data: bytes, *args, **kwargs):
            self.log.append((time.monotonic(), bytes(data)))
            return original(data, *args, **kwargs)

        device.write_bytes = write_bytes

    def clear(self) -> None:
        self.log.clear()

    def levels(self) -> list[tuple[float, float]]:
        """(time, level) of every SMU source-level write received."""
        out = []
        for t, data in self.log:
            for unit in data.decode(errors="replace").replace("\n", ";").split(";"):
                head, _, value = unit.strip().partition(" ")
                if head.upper() in (":SOUR:CURR", ":SOURCE:CURRENT", ":SOUR1:CURR") and value:
                    out.append((t, float(value)))
        return out


def _bench(tmp_path_factory, models: dict[str, tuple[str, str]]):
    tree = emulated_tree()           # the shipped station's 600x clock (F-SIM-1 is fixed)
    path = tmp_path_factory.mktemp("envelope") / f"station-{uuid.uuid4().hex[:8]}.yaml"
    for key, (model, driver) in models.items():
        tree["instruments"][key]["emulator"]["model"] = model
        tree["instruments"][key]["driver"] = driver
        if model == "lakeshore_372":
            tree["instruments"][key]["emulator"].pop("stage", None)
            tree["instruments"][key]["emulator"].pop("initial_temperature_k", None)
    write_station(path.parent, tree, path.name)
    library = f"{path}#env-{uuid.uuid4().hex[:8]}"
    return library, emulator.open_bench(library), tree


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """81160A, Lake Shore 336 and Keithley 2450 drivers on one bench, with logged personalities."""
    library, bench, tree = _bench(tmp_path_factory, {})
    visalib = f"{library}@nwlab"
    tag = uuid.uuid4().hex[:6]
    address = {k: v["address"] for k, v in tree["instruments"].items()}
    drivers = {
        "bias": Keithley2450(f"bias_{tag}", address["bias"], visalib=visalib, max_step_a=MAX_STEP_A),
        "pulser": Keysight81160A(f"pulser_{tag}", address["pulser"], visalib=visalib),
        "cryostat": Lakeshore336(f"cryostat_{tag}", address["cryostat"], visalib=visalib, sensor_input="A",
                                 heater_output=1),
    }
    logs = {key: Received(bench.device(key)) for key in drivers}
    try:
        yield bench, drivers, logs
    finally:
        for driver in drivers.values():
            driver.close()
        emulator.close_bench(library)


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """33522B and Lake Shore 372 drivers on another bench."""
    library, bench, tree = _bench(tmp_path_factory, {
        "pulser": ("keysight_33522b", "drivers.keysight_33500b.Keysight33500B"),
        "cryostat": ("lakeshore_372", "drivers.lakeshore_372.Lakeshore372")})
    visalib = f"{library}@nwlab"
    tag = uuid.uuid4().hex[:6]
    address = {k: v["address"] for k, v in tree["instruments"].items()}
    drivers = {
        "pulser": Keysight33500B(f"pulser_{tag}", address["pulser"], visalib=visalib),
        "cryostat": Lakeshore372(f"cryostat_{tag}", address["cryostat"], visalib=visalib, sensor_input=6),
    }
    logs = {key: Received(bench.device(key)) for key in drivers}
    try:
        yield bench, drivers, logs
    finally:
        for driver in drivers.values():
            driver.close()
        emulator.close_bench(library)


# -- SMU ----------------------------------------------------------------------------------------

bias_envelopes = st.builds(dict, bias_current_max_a=st.floats(3e-6, 10e-6),
                           bias_ramp_max_a_per_s=st.floats(2e-4, 2e-3), compliance_max_v=st.just(1.0))
#: Requests as fractions of the envelope: below 1 is inside, above 1 (or a ramp <= 0) outside.
fractions = st.one_of(st.floats(-1.0, 1.0), st.floats(1.001, 5.0), st.floats(-5.0, -1.001))


@pytest.mark.timeout(100)
@SETTINGS
@example(limits=dict(bias_current_max_a=10e-6, bias_ramp_max_a_per_s=1e-3, compliance_max_v=1.0),
         requests=[(1.0, 1.0), (-1.0, 0.5), (0.3, 2.0)])       # two full ramps and a refusal, always
@given(limits=bias_envelopes, requests=st.lists(st.tuples(fractions, st.floats(0.3, 1.0) | st.floats(1.001, 4.0)
                                                          | st.just(0.0) | st.just(-1.0)),
                                                min_size=1, max_size=4))
def test_smu_levels_stay_in_the_envelope_and_never_ramp_too_fast(shipped, limits, requests):
    bench, drivers, logs = shipped
    smu, log = drivers["bias"], logs["bias"]
    smu.envelope = Envelope("bias_source", limits)
    panel = bench.world.panels["bias"]
    smu.set_current_a(0.0, ramp_a_per_s=limits["bias_ramp_max_a_per_s"])
    max_a, max_rate = limits["bias_current_max_a"], limits["bias_ramp_max_a_per_s"]
    for current_fraction, rate_fraction in requests:
        current_a, rate = current_fraction * max_a, rate_fraction * max_rate
        inside = abs(current_fraction) <= 1.0 and 0.0 < rate_fraction <= 1.0
        start_a = panel.current_level_a
        log.clear()
        if not inside:
            with pytest.raises(EnvelopeError):
                smu.set_current_a(current_a, ramp_a_per_s=rate)
            assert log.log == [], f"refused request reached the instrument: {log.log}"
            assert panel.current_level_a == start_a
            continue
        smu.set_current_a(current_a, ramp_a_per_s=rate)
        assert panel.current_level_a == pytest.approx(current_a, abs=1e-12)          # applied
        levels = log.levels()
        assert all(abs(level) <= max_a * (1 + 1e-9) for _, level in levels), levels
        previous_t, previous_a = None, start_a
        for t, level in levels:
            step = abs(level - previous_a)
            assert step <= MAX_STEP_A * (1 + 1e-6), (previous_a, level)
            if previous_t is not None:
                assert step <= rate * (t - previous_t + ARRIVAL_JITTER_S) * 1.01, (
                    f"{step:.3g} A in {t - previous_t:.3g} s at a ramp of {rate:.3g} A/s")
            previous_t, previous_a = t, level
        if levels:
            total_s = levels[-1][0] - levels[0][0]
            # step x steps against the declared rate: the whole ramp took at least its share
            assert abs(current_a - start_a) - abs(levels[0][1] - start_a) <= rate * (total_s + ARRIVAL_JITTER_S) * 1.01


# -- pulse generators ---------------------------------------------------------------------------

pulse_envelopes = st.builds(dict, pulse_current_max_a=st.floats(20e-6, 150e-6),
                            pulse_width_max_s=st.floats(100e-9, 1e-6))


@pytest.mark.timeout(100)
@pytest.mark.parametrize("which", ["shipped", "variants"], ids=["81160a", "33522b"])
@SETTINGS
@given(limits=pulse_envelopes, amplitude_fraction=fractions.filter(lambda f: abs(f) >= 0.05),
       width_fraction=st.floats(0.1, 1.0) | st.floats(1.001, 3.0))
def test_pulse_requests_outside_are_refused_unsent_inside_applied(request, which, limits, amplitude_fraction,
                                                                  width_fraction):
    bench, drivers, logs = request.getfixturevalue(which)
    generator, log = drivers["pulser"], logs["pulser"]
    generator.envelope = PULSE_PATH.generator_envelope(Envelope("pulse_generator", limits))
    max_v = limits["pulse_current_max_a"] / CHIP_AMPERES_PER_VOLT
    amplitude_v = amplitude_fraction * max_v
    width_s = max(width_fraction * limits["pulse_width_max_s"], 50e-9)
    assume(0.05 <= abs(amplitude_v) <= 2.5)               # the generators' range into a high-Z load
    inside = abs(amplitude_fraction) <= 1.0 and width_fraction <= 1.0
    request_kw = dict(amplitude_v=amplitude_v, width_s=width_s, edge_s=10e-9, period_s=max(4 * width_s, 1e-6),
                      count=1)
    log.clear()
    if not inside:
        with pytest.raises(EnvelopeError):
            generator.configure_pulse(**request_kw)
        assert log.log == [], f"refused request reached the instrument: {log.log}"
        return
    generator.configure_pulse(**request_kw)
    channel = bench.world.panels["pulser"].channels[1]
    assert channel.pulse_width_s == pytest.approx(width_s, rel=1e-6)
    assert abs(channel.high_v - channel.low_v) == pytest.approx(abs(amplitude_v), rel=1e-6)
    assert abs(channel.high_v - channel.low_v) * CHIP_AMPERES_PER_VOLT <= limits["pulse_current_max_a"] * (1 + 1e-9)


# -- temperature controllers --------------------------------------------------------------------

temperature_envelopes = st.builds(lambda low, span, ramp: dict(temperature_min_k=low, temperature_max_k=low + span,
                                                               setpoint_ramp_max_k_per_min=ramp),
                                  st.floats(1.0, 4.0), st.floats(1.0, 10.0), st.floats(1.0, 20.0))


@pytest.mark.timeout(100)
@pytest.mark.parametrize("which", ["shipped", "variants"], ids=["336", "372"])
@SETTINGS
@given(limits=temperature_envelopes, position=st.floats(-1.0, 2.0), ramp_fraction=st.floats(0.05, 1.0)
       | st.floats(1.001, 3.0) | st.just(0.0))
# A setpoint on the window's edge whose read-back (the guard learns it before closing the loop)
# has its last digit beyond the edge: 1.45703 K against 1.45703125 K.
@example(limits=dict(temperature_min_k=1.45703125, temperature_max_k=2.45703125, setpoint_ramp_max_k_per_min=1.0),
         position=0.0, ramp_fraction=1.0)
def test_setpoints_outside_the_window_are_refused_unsent_inside_applied(request, which, limits, position,
                                                                        ramp_fraction):
    bench, drivers, logs = request.getfixturevalue(which)
    controller, log = drivers["cryostat"], logs["cryostat"]
    controller.envelope = Envelope("temperature_controller", limits)
    low, high = limits["temperature_min_k"], limits["temperature_max_k"]
    setpoint_k = low + position * (high - low)
    ramp = ramp_fraction * limits["setpoint_ramp_max_k_per_min"]
    inside = low <= setpoint_k <= high and 0.0 < ramp_fraction <= 1.0
    log.clear()
    if not inside:
        with pytest.raises(EnvelopeError):
            controller.set_setpoint_k(setpoint_k, ramp_k_per_min=ramp)
        assert log.log == [], f"refused request reached the instrument: {log.log}"
        return
    controller.set_setpoint_k(setpoint_k, ramp_k_per_min=ramp)
    outputs = bench.world.panels["cryostat"].outputs
    output = outputs[1] if 1 in outputs else outputs[0]
    assert output.setpoint_k == pytest.approx(setpoint_k, abs=1e-3)
    assert output.ramp_enabled and output.ramp_rate_k_per_min == pytest.approx(ramp, rel=1e-3, abs=0.05)
    assert output.ramp_rate_k_per_min <= limits["setpoint_ramp_max_k_per_min"] * (1 + 1e-3)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_requests_are_refused_unsent(shipped, value):
    """F-ENV-1 (NaN compared false with every limit, so it passed the envelope): NaN and
    infinities must be refused by every driver verb before anything reaches the instrument."""
    bench, drivers, logs = shipped
    drivers["cryostat"].envelope = Envelope("temperature_controller", {"temperature_min_k": 1.5,
                                                                       "temperature_max_k": 12.0})
    drivers["bias"].envelope = Envelope("bias_source", {"bias_current_max_a": 10e-6, "bias_ramp_max_a_per_s": 1e-3})
    drivers["pulser"].envelope = PULSE_PATH.generator_envelope(Envelope("pulse_generator", {
        "pulse_current_max_a": 60e-6, "pulse_width_max_s": 1e-6}))
    calls = {
        "cryostat": lambda: drivers["cryostat"].set_setpoint_k(value, ramp_k_per_min=1.0),
        "bias": lambda: drivers["bias"].set_current_a(value, ramp_a_per_s=1e-4),
        "pulser": lambda: drivers["pulser"].configure_pulse(amplitude_v=value, width_s=50e-9, edge_s=10e-9,
                                                             period_s=1e-6, count=1),
    }
    for key, call in calls.items():
        logs[key].clear()
        with pytest.raises(EnvelopeError):
            call()
        assert logs[key].log == [], f"{key}: refused request reached the instrument: {logs[key].log}"
