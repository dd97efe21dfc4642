"""An arbitrary waveform from a stock client reaches the chip like any other waveform.

A stock QCoDeS 33522B loads a one-point spike into the generator's volatile memory and plays
it; the stock Infiniium triggers on the scope's pick-off of the generator output (channel 2,
-20 dB) and captures both it and the neuron's output (channel 1). The pick-off shows the
waveform's points at their levels; the neuron fires on the spike above its threshold and stays
quiet at a third of it — the physics the same as for a pulse.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.personalities.personality_helpers import infiniium_trace

pytestmark = pytest.mark.timeout(120)

SAMPLE_RATE_HZ = 250e6                   # the 33500B's: one point every 4 ns
POINTS = np.full(250, -1.0)              # a 1 µs waveform ...
POINTS[20] = 1.0                         # ... with one point at full scale: an 8 ns-wide triangle
BIAS_A = 24e-6                           # the chip's design bias (default-neuron.yaml)
PICK_OFF = 0.1                           # scope channel 2: the generator output at -20 dB
#: Peak current into the chip = high level x 50 µA/V (20 dB attenuator into 2 kΩ): 30 µA fires
#: this chip (its threshold is 26 µA at 2 ns, 21 µA at 5 ns); 10 µA does not.
FIRING_V, QUIET_V = 0.6, 0.2


@pytest.fixture
def bench_models() -> dict[str, str]:
    return {"pulser": "keysight_33522b"}


def _play(connect, high_v: float):
    from qcodes.instrument_drivers.Keysight import Keysight33522B

    generator = connect("pulser", Keysight33522B)
    generator.write("DATA:ARB spike," + ",".join(f"{p:g}" for p in POINTS))
    generator.write(f"FUNC:ARB spike;:FUNC ARB;:FUNC:ARB:SRAT {SAMPLE_RATE_HZ:g};:VOLT:HIGH {high_v};:VOLT:LOW 0")
    generator.write("OUTP ON")
    assert generator.ask("SYST:ERR?").startswith("+0")
    return generator


def _capture(connect, bench, high_v: float):
    from qcodes.instrument_drivers.Keysight import KeysightInfiniium

    bias = bench.device("bias")
    bias.write_bytes(f":SOUR:FUNC CURR;:SOUR:CURR {BIAS_A};:OUTP ON\n".encode())
    _play(connect, high_v)
    scope = connect("scope", KeysightInfiniium, timeout=10, silence_pyvisapy_warning=True)
    scope.write(":CHAN2:DISP ON;:CHAN1:RANG 0.8;:CHAN2:RANG 0.08;:CHAN2:OFFS 0.03")
    scope.acquire_points(1000)
    scope.sample_rate(10e9)                        # 100 ns around the spike
    scope.write(f":TRIG:MODE EDGE;:TRIG:EDGE:SOUR CHAN2;:TRIG:EDGE:SLOP POS;:TRIG:LEV CHAN2,{PICK_OFF * high_v / 2}")
    scope.write(":TRIG:SWE TRIG")                  # a real trigger, never the auto timer
    scope.digitize()
    output_v, pick_off_v = infiniium_trace(scope, scope.ch1), infiniium_trace(scope, scope.ch2)
    return scope.ch2.time_axis(), output_v, pick_off_v


def _pick_off_expected_v(time_s: np.ndarray, high_v: float) -> np.ndarray:
    """The waveform at the pick-off, its rising edge's midpoint at the trigger (time 0)."""
    point_s = 1 / SAMPLE_RATE_HZ
    peak_s = point_s / 2                           # the trigger sits halfway up the 4 ns ramp
    return PICK_OFF * high_v * np.clip(1 - np.abs(time_s - peak_s) / point_s, 0, 1)


@pytest.mark.parametrize("high_v", [FIRING_V, QUIET_V])
def test_an_arbitrary_waveform_reaches_the_chip(connect, bench, transport, high_v):
    time_s, output_v, pick_off_v = _capture(connect, bench, high_v)
    scope = bench.world.panels["scope"]
    # The pick-off is the waveform at its levels, within the scope's noise and its band limit
    # (the points' 4 ns ramps pass a 2.5 GHz front end almost whole).
    expected_v = _pick_off_expected_v(time_s, high_v)
    assert np.max(np.abs(pick_off_v - expected_v)) < 0.12 * PICK_OFF * high_v + 6 * scope.input_noise_v_rms
    assert pick_off_v.max() == pytest.approx(PICK_OFF * high_v, rel=0.1)
    # The neuron's output after 50 dB: a spike (~0.1 V) above threshold; below it the input's
    # sub-threshold ripple only (~0.01 V).
    fired = output_v.max() > 0.05
    assert fired == (high_v == FIRING_V), f"output peak {output_v.max():.3g} V at a {high_v} V spike"
