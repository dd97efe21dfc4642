"""Pulse generator drivers (Keysight 33500B, 81160A) against their emulated instruments."""

from __future__ import annotations

import copy

import pytest
from driver_helpers import PULSER_ENVELOPE

from drivers._pulse import PulseTiming, timing_order
from drivers.keysight_33500b import Keysight33500B
from drivers.keysight_81160a import Keysight81160A
from contracts.envelope import EnvelopeError

pytestmark = pytest.mark.timeout(30)


MODELS = {"keysight_33522b": Keysight33500B, "keysight_81160a": Keysight81160A}


@pytest.fixture(params=sorted(MODELS))
def model(request) -> str:
    return request.param


@pytest.fixture
def bench_models(model) -> dict[str, str]:
    return {"pulser": model}


@pytest.fixture
def generator(connect, model):
    return connect("pulser", MODELS[model], envelope=PULSER_ENVELOPE, channel=1)


def test_configured_burst_fires_on_trigger(generator, bench):
    generator.configure_pulse(amplitude_v=0.8, width_s=20e-9, edge_s=9e-9, period_s=1e-6, count=3)
    generator.set_output_enabled(True)
    channel = bench.world.panels["pulser"].channels[1]
    assert channel.function == "PULS" and channel.burst_enabled and channel.trigger_source == "BUS"
    assert (channel.low_v, channel.high_v) == pytest.approx((0.0, 0.8))
    assert channel.pulse_width_s == pytest.approx(20e-9)
    assert channel.lead_edge_s == pytest.approx(9e-9) and channel.trail_edge_s == pytest.approx(9e-9)
    assert channel.period_s == pytest.approx(1e-6) and channel.burst_cycles == 3
    assert channel.trigger_times_s == []
    generator.trigger()
    assert len(channel.trigger_times_s) == 1


def test_negative_pulse_idles_at_zero(generator, bench):
    generator.configure_pulse(amplitude_v=-0.3, width_s=200e-9, edge_s=20e-9, period_s=10e-6, count=1)
    channel = bench.world.panels["pulser"].channels[1]
    assert channel.inverted
    # Inverted about the offset: idle at 0 V, pulse to -0.3 V.
    assert 2 * channel.offset_v - channel.low_v == pytest.approx(0.0, abs=1e-12)
    assert 2 * channel.offset_v - channel.high_v == pytest.approx(-0.3)


def test_reconfiguring_between_short_and_long_pulses(generator, bench):
    # Long to short and back: the driver orders its writes so no step conflicts (-221).
    generator.configure_pulse(amplitude_v=0.5, width_s=500e-9, edge_s=100e-9, period_s=100e-6, count=1)
    generator.configure_pulse(amplitude_v=0.5, width_s=20e-9, edge_s=9e-9, period_s=60e-9, count=2)
    generator.configure_pulse(amplitude_v=0.5, width_s=900e-9, edge_s=500e-9, period_s=1e-3, count=1)
    channel = bench.world.panels["pulser"].channels[1]
    assert (channel.pulse_width_s, channel.lead_edge_s, channel.period_s) == pytest.approx((900e-9, 500e-9, 1e-3))


def test_dc_level_and_safe_state(generator, bench):
    generator.configure_dc(level_v=0.4)
    generator.set_output_enabled(True)
    channel = bench.world.panels["pulser"].channels[1]
    assert channel.function == "DC" and channel.offset_v == pytest.approx(0.4) and channel.output_enabled
    generator.safe_state()
    assert not channel.output_enabled and channel.offset_v == 0.0


def test_dc_after_a_pulse_is_the_offset_alone_and_the_pulse_back_is_checked_again(generator, bench, connect):
    """In the DC function the generator puts out its offset alone: the pulse's amplitude it keeps
    does not bound a DC level (a -1.1 V pulse then 0.8 V DC: the kept amplitude around 0.8 V would
    reach 1.35 V, but nothing puts it out). Back in the pulse function, with the output on, the
    kept amplitude around the new offset is checked again, and refused."""
    generator.configure_pulse(amplitude_v=-1.1, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=1)
    generator.set_output_enabled(True)
    generator.configure_dc(level_v=0.8)
    channel = bench.world.panels["pulser"].channels[1]
    assert (channel.function, channel.offset_v, channel.output_enabled) == ("DC", pytest.approx(0.8), True)
    function = ":SOUR1:FUNC PULS" if isinstance(generator, Keysight33500B) else ":FUNC1 PULS"
    with pytest.raises(EnvelopeError, match="pulse_current_max_a"):
        generator.write(function)           # the kept 1.1 Vpp around 0.8 V: 0.25..1.35 V
    assert channel.function == "DC"
    generator.set_output_enabled(False)
    generator.write(function)               # off, the pulse function may be set ...
    with pytest.raises(EnvelopeError, match="pulse_current_max_a"):
        generator.set_output_enabled(True)  # ... but not put out
    assert not channel.output_enabled
    generator.configure_pulse(amplitude_v=0.5, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=1)
    generator.set_output_enabled(True)
    assert (channel.low_v, channel.high_v, channel.output_enabled) == (pytest.approx(0.0), pytest.approx(0.5), True)


@pytest.mark.parametrize("output_on", [False, True], ids=["off", "on"])
def test_a_pulse_after_a_dc_level_near_the_top_is_configured(generator, bench, output_on):
    """A 1.1 V pulse, then DC at 1.2 V (the envelope's top): the generator keeps the pulse's
    amplitude around the offset, a high of 1.75 V that the pulse function brings back, and the
    next pulse was refused at its first level, with the output off as on (a helper's attack)."""
    generator.configure_pulse(amplitude_v=1.1, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=2)
    generator.configure_dc(level_v=1.2)
    generator.set_output_enabled(output_on)
    generator.configure_pulse(amplitude_v=-1.0, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=2)
    channel = bench.world.panels["pulser"].channels[1]
    assert (channel.function, channel.low_v, channel.high_v, channel.output_enabled) == (
        "PULS", pytest.approx(-1.0), pytest.approx(0.0), output_on)


REFUSED = [  # (amplitude_v, width_s, the limit named in the refusal)
    (1.3, 100e-9, "pulse_current_max_a"),     # 1.3 V -> 65 uA at the chip, above 60 uA
    (-1.3, 100e-9, "pulse_current_max_a"),
    (0.5, 2e-6, "pulse_width_max_s"),
]


def test_refused_pulses_write_nothing(generator, bench, received):
    generator.configure_pulse(amplitude_v=0.5, width_s=100e-9, edge_s=10e-9, period_s=10e-6, count=1)
    before = copy.deepcopy(bench.world.panels["pulser"])
    log = received("pulser")
    for amplitude_v, width_s, limit in REFUSED:
        with pytest.raises(EnvelopeError, match=limit):
            generator.configure_pulse(amplitude_v=amplitude_v, width_s=width_s, edge_s=10e-9, period_s=10e-6,
                                      count=1)
    with pytest.raises(EnvelopeError, match="pulse_current_max_a"):
        generator.configure_dc(level_v=1.3)
    assert log.byte_count == 0
    assert bench.world.panels["pulser"] == before


def test_timing_order_keeps_each_step_valid():
    long_pulse, short_pulse = PulseTiming(1e-3, 100e-6, 10e-9), PulseTiming(60e-9, 20e-9, 9e-9)
    assert timing_order(long_pulse, short_pulse, 16e-9) == ("width", "period", "edge")
    assert timing_order(short_pulse, long_pulse, 16e-9)[0] == "period"
