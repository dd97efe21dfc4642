"""Keithley 2450 driver (BiasSource) against the emulated SMU, in-process and over TCP."""

from __future__ import annotations

import copy
import time

import pytest
from driver_helpers import ENVELOPES, physics_available

from drivers.keithley_2450 import Keithley2450
from lab.envelope import EnvelopeError

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def bench_models() -> dict[str, str]:
    return {"bias": "keithley_2450"}


@pytest.fixture
def smu(connect):
    return connect("bias", Keithley2450, envelope=ENVELOPES["bias"])


def source_levels(messages: list[str]) -> list[float]:
    return [float(m.split()[1]) for m in messages if m.startswith(":SOUR:CURR ")]


def test_bias_ramps_to_the_current_and_the_panel_shows_it(smu, bench, received):
    panel = bench.world.panels["bias"]
    smu.set_compliance_v(0.5)
    smu.set_output_enabled(True)
    log = received("bias")
    start = time.monotonic()
    smu.set_current_a(20e-6, ramp_a_per_s=100e-6)
    elapsed_s = time.monotonic() - start

    assert panel.source_function == "current" and panel.output_enabled
    assert panel.current_level_a == pytest.approx(20e-6)
    assert panel.voltage_limit_v == pytest.approx(0.5)
    assert smu.current_a() == pytest.approx(20e-6)
    levels = source_levels(log.messages)
    steps = [b - a for a, b in zip([0.0, *levels], levels)]
    assert 2 <= len(levels) <= 50
    assert all(0 < step <= 1e-6 * (1 + 1e-9) for step in steps)
    assert levels[-1] == pytest.approx(20e-6)
    # 20 uA at 100 uA/s takes at least 0.2 s: the waiting is real.
    assert elapsed_s >= 0.2 * 0.95


def test_ramp_down_and_output_off_happen_at_zero_current(smu, bench, received):
    smu.set_compliance_v(0.5)
    smu.set_output_enabled(True)
    smu.set_current_a(5e-6, ramp_a_per_s=100e-6)
    log = received("bias")
    smu.safe_state()
    panel = bench.world.panels["bias"]
    assert not panel.output_enabled and panel.current_level_a == 0.0
    levels = source_levels(log.messages)
    assert levels == sorted(levels, reverse=True) and levels[-1] == 0.0
    assert log.messages.index(":OUTP OFF") > max(i for i, m in enumerate(log.messages) if m.startswith(":SOUR:CURR "))
    assert smu.current_a() == 0.0


REFUSED = [  # (current_a, ramp_a_per_s, the limit named in the refusal)
    (31e-6, 10e-6, "bias_current_max_a"),
    (-31e-6, 10e-6, "bias_current_max_a"),     # the limit is on |I|
    (10e-6, 150e-6, "bias_ramp_max_a_per_s"),
    (10e-6, 0.0, "ramp rate must be > 0"),
]


def test_refused_bias_writes_nothing(smu, bench, received):
    smu.set_compliance_v(0.5)
    smu.set_output_enabled(True)
    smu.set_current_a(2e-6, ramp_a_per_s=100e-6)
    before = copy.deepcopy(bench.world.panels["bias"])
    log = received("bias")
    for current_a, ramp_a_per_s, limit in REFUSED:
        with pytest.raises(EnvelopeError, match=limit):
            smu.set_current_a(current_a, ramp_a_per_s=ramp_a_per_s)
    assert log.byte_count == 0
    assert bench.world.panels["bias"] == before


def test_refused_compliance_writes_nothing(smu, bench, received):
    before = copy.deepcopy(bench.world.panels["bias"])
    log = received("bias")
    with pytest.raises(EnvelopeError, match="compliance_max_v"):
        smu.set_compliance_v(2.0)
    assert log.byte_count == 0
    assert bench.world.panels["bias"] == before


def test_output_on_is_refused_while_the_instrument_compliance_is_outside_the_envelope(smu, bench):
    # After *RST the 2450 limits at 21 V, far above compliance_max_v = 1 V.
    with pytest.raises(EnvelopeError, match="compliance"):
        smu.set_output_enabled(True)
    assert not bench.world.panels["bias"].output_enabled


@pytest.mark.skipif(not physics_available(), reason="an SMU voltage reading needs the chip simulation "
                    "(sim_backend.chip_file / physics.transient), which has not landed")
def test_measure_voltage_reads_the_bias_port(smu, bench):
    smu.set_compliance_v(0.5)
    smu.set_output_enabled(True)
    smu.set_current_a(5e-6, ramp_a_per_s=100e-6)
    volts = smu.measure_voltage_v()
    assert isinstance(volts, float) and abs(volts) <= 0.5
