"""The wiring the executor converts through (contracts.wiring), and the generator envelope in volts
that the station derives for the pulse generator's driver."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from contracts.envelope import EnvelopeError
from contracts.files.station import read_station
from contracts.wiring import wiring_of
from lab.execution.instruments import driver_arguments

EMULATED = Path(__file__).resolve().parents[2] / "stations" / "emulated.yaml"


@pytest.fixture(scope="module")
def station():
    return read_station(EMULATED)


def test_one_wiring_per_station(station):
    assert wiring_of(station) is wiring_of(station)
    assert wiring_of(read_station(EMULATED)) is not wiring_of(station)


def test_conversions_follow_the_station_file(station):
    wiring = wiring_of(station)
    # 20 dB then 2 kOhm: 50 uA per generator volt; the monitor sees the output 20 dB down.
    assert wiring.generator_v(150e-6) == pytest.approx(3.0)
    assert wiring.monitor_scope_v(150e-6) == pytest.approx(0.3)
    assert wiring.input_current_a(np.array([0.3])) == pytest.approx([150e-6])
    # 50 dB of gain on node m: 1 mV at the node is 316 mV at the scope.
    assert wiring.node_scope_v("m", 1e-3) == pytest.approx(10 ** 2.5 * 1e-3)
    assert wiring.node_v("m", wiring.node_scope_v("m", 2e-3)) == pytest.approx(2e-3)
    # 25 ohm of lines: 20 uA drops 0.5 mV before the port.
    assert wiring.bias_port_v(1.5e-3, 20e-6) == pytest.approx(1.0e-3)


def test_the_generator_driver_gets_its_envelope_in_volts(station):
    arguments = driver_arguments(station, "pulser")
    envelope = arguments["envelope"]
    assert arguments["channel"] == 1
    assert set(envelope.limits) == {"pulse_amplitude_max_v", "pulse_width_max_s"}
    assert envelope.limits["pulse_amplitude_max_v"] == pytest.approx(150e-6 / 5e-5)
    envelope.check_generator_level(2.99)
    with pytest.raises(EnvelopeError) as refused:
        envelope.check_generator_level(-3.1)
    message = str(refused.value)
    assert "\n" not in message
    assert "pulse_amplitude_max_v = 3 V" in message and "pulse_current_max_a = 0.00015 A at the chip" in message
    assert "(-0.000155 A at the chip)" in message and message.endswith("nothing was written")


def test_a_generator_given_the_chip_side_envelope_refuses_every_level(station):
    with pytest.raises(EnvelopeError, match="cannot check in volts"):
        station.by_role("pulse_generator").envelope.check_generator_level(0.0)
