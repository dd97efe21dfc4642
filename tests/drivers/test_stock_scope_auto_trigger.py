"""Stock scope drivers on a bench where nothing fires: as powered on (and after *RST) both scope
families are on auto
trigger (Infiniium AUTO sweep, Tektronix AUTO mode) and acquire anyway once their timer runs out,
as the instruments do, so a first try with a stock driver returns the noise at the input instead
of hanging. With the trigger set to wait (TRIGgered, NORMal) nothing is acquired.

The pulser and the bias source stay off: the chip sits at zero current and its readout carries
only the scope's own input noise, which the traces must show at its level.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from pyvisa.errors import VisaIOError

from tests.personalities.personality_helpers import infiniium_trace

pytestmark = pytest.mark.timeout(60)

#: 1 mV/div: the ADC step (31 µV) resolves the input noise (0.5 mV rms on the emulated scope).
RANGE_V = 8e-3
POINTS = 2000


def _noise_check(volts: np.ndarray, panel) -> None:
    noise_v = panel.input_noise_v_rms
    assert volts.shape == (POINTS,)
    # Sample standard deviation of 2000 normal samples: within 6 % at 2σ; the ADC step adds
    # (31 µV)²/12 in quadrature, 0.03 % of the variance.
    assert volts.std() == pytest.approx(noise_v, rel=0.08)
    assert abs(volts.mean()) < 4 * noise_v / np.sqrt(POINTS)


@pytest.fixture
def bench_models(request) -> dict[str, str]:
    return {"scope": request.param}


def _stock_infiniium(connect, transport):
    from qcodes.instrument_drivers.Keysight import KeysightInfiniium

    extra = {"silence_pyvisapy_warning": True} if transport == "tcp" else {}
    scope = connect("scope", KeysightInfiniium, timeout=5, **extra)    # on a scope just powered on
    scope.ch1.range(RANGE_V)
    scope.acquire_points(POINTS)
    scope.sample_rate(10e9)
    return scope


@pytest.mark.parametrize("bench_models", ["keysight_infiniium"], indirect=True)
def test_stock_infiniium_digitizes_with_nothing_firing(connect, bench, transport):
    scope = _stock_infiniium(connect, transport)
    assert scope.ask(":TRIG:SWE?") == "AUTO"
    started = time.monotonic()
    scope.digitize()                         # :DIGitize;*OPC?, read until "1": the stock driver's own
    assert time.monotonic() - started < 5.0
    panel = bench.world.panels["scope"]
    _noise_check(infiniium_trace(scope, scope.ch1), panel)
    assert scope.ch1.time_axis()[0] == pytest.approx(panel.first_sample_s)
    assert scope.ask(":SYST:ERR?") == '+0,"No error"'


@pytest.mark.parametrize("bench_models", ["keysight_infiniium"], indirect=True)
def test_infiniium_on_triggered_sweep_waits_for_a_trigger(connect, bench, transport):
    scope = _stock_infiniium(connect, transport)
    scope.write(":TRIG:SWE TRIG")
    scope.visa_handle.write(":DIGITIZE;*OPC?")     # what the stock digitize() sends; it would
    scope.visa_handle.timeout = 300                 # then wait for ever: read once, bounded (ms)
    with pytest.raises(VisaIOError, match="VI_ERROR_TMO"):
        scope.visa_handle.read()
    assert bench.world.panels["scope"].acquisitions_completed == 0


def _stock_tektronix(connect, transport):
    from qcodes.instrument_drivers.tektronix.DPO7200xx import TektronixDPO7000xx

    scope = connect("scope", TektronixDPO7000xx, timeout=5)             # on a scope just powered on
    scope.channel1.scale(1e-3)               # its finest: 10.24 mV full scale, 40 µV steps
    scope.horizontal.mode("manual")
    scope.horizontal.record_length(POINTS)
    scope.horizontal.sample_rate(10e9)
    scope.data.encoding("SRIbinary")
    scope.waveform.bytes_per_sample(2)
    return scope


def _acquisitions(scope) -> int:
    return int(scope.ask("ACQuire:NUMACq?"))


@pytest.mark.parametrize("bench_models", ["tektronix_dpo7254"], indirect=True)
def test_stock_tektronix_acquires_with_nothing_firing(connect, bench, transport):
    scope = _stock_tektronix(connect, transport)
    assert scope.ask("TRIGger:A:MODe?").upper().startswith("AUTO")
    before, deadline = _acquisitions(scope), time.monotonic() + 5.0
    while _acquisitions(scope) <= before:   # a user polls NUMACq? (or waits) for a fresh record
        assert time.monotonic() < deadline, "no auto-triggered acquisition in 5 s"
        time.sleep(0.01)
    _noise_check(scope.channel1.waveform.trace(), bench.world.panels["scope"])
    assert int(scope.ask("*ESR?")) & 0b111100 == 0        # no query, device, execution or command error


@pytest.mark.parametrize("bench_models", ["tektronix_dpo7254"], indirect=True)
def test_tektronix_in_normal_mode_waits_for_a_trigger(connect, bench, transport):
    scope = _stock_tektronix(connect, transport)
    scope.write("TRIGger:A:MODe NORMal")
    before = _acquisitions(scope)
    time.sleep(0.2)                          # 20 auto-trigger timers of this record at wall speed
    assert _acquisitions(scope) == before
    assert scope.ask("TRIGger:STATE?") == "READY"


@pytest.mark.parametrize("bench_models", ["keysight_infiniium", "tektronix_dpo7254"], indirect=True)
def test_nwlab_drivers_wait_for_a_real_trigger(bench_models, connect, bench, transport):
    """nwlab's own drivers set the trigger to wait: a capture with nothing firing times out."""
    from driver_helpers import ENVELOPES

    from drivers.keysight_infiniium import KeysightInfiniium
    from drivers.tektronix_dpo import TektronixDPO

    driver_class = KeysightInfiniium if bench_models["scope"] == "keysight_infiniium" else TektronixDPO
    driver = connect("scope", driver_class, envelope=ENVELOPES["scope"])
    driver.configure_acquisition(channel_ranges_v={1: 0.4}, record_length=1000, sample_rate_hz=10e9,
                                 pretrigger_s=10e-9, trigger_channel=1, trigger_level_v=0.01)
    driver.arm_single()
    assert driver.wait_acquired(0.2) is False      # 20 auto-trigger timers of this record at wall speed
    assert bench.world.panels["scope"].acquisitions_completed == 0


@pytest.mark.parametrize("bench_models", ["keysight_infiniium"], indirect=True)
@pytest.mark.parametrize("extension", [".png", ".bmp", ".jpg"])
def test_stock_infiniium_screenshot_shows_the_record(connect, bench, transport, tmp_path, extension):
    """The stock driver's screenshot(): `:DISPlay:DATA? <type>`, a definite block of an image
    file, which it opens with Pillow. The noise record (channel 1, yellow) lies on the centre
    line of a 1 mV/div screen; channel 2 is off and draws nothing."""
    scope = _stock_infiniium(connect, transport)
    scope.digitize()
    pixels = scope.screenshot(tmp_path / f"screen{extension}")
    assert pixels is not None and pixels.shape[:2] == (768, 1024)
    red, green, blue = (pixels[..., i].astype(int) for i in range(3))
    yellow = (red > 180) & (green > 180) & (blue < 90)
    rows = np.flatnonzero(yellow.any(axis=1))
    assert yellow.any(axis=0).mean() > 0.95                  # the trace crosses the whole screen
    # 0.5 mV rms of noise on 1 mV/div (96 px): within about ±2 mV of the centre, 384 px
    assert 384 - 250 < rows.min() and rows.max() < 384 + 250
    pure_green = (green > 180) & (red < 90) & (blue < 90)
    assert not pure_green.any()
