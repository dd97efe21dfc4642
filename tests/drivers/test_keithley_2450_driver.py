"""Keithley 2450 driver (BiasSource) against the emulated SMU, in-process and over TCP."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest
from driver_helpers import ENVELOPES

from drivers.keithley_2450 import Keithley2450
from contracts.envelope import Envelope, EnvelopeError

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


def test_sweep_writes_the_list_runs_it_on_the_instrument_and_reads_the_buffer(smu, bench, received):
    smu.set_compliance_v(0.5)
    smu.set_output_enabled(True)
    log = received("bias")
    levels = [k * 0.1e-6 for k in range(1, 151)]    # 0.1 uA per 1 ms = 100 uA/s, the limit
    lab_start_s = bench.world.now_s()
    volts = smu.sweep_current_a(levels, dwell_s=1e-3)
    assert volts.shape == (150,)
    sent = [m for m in log.messages if not m.endswith("?") and "?" not in m]
    lists = [m for m in sent if m.startswith(":SOUR:LIST:CURR")]
    assert [m.split()[0] for m in lists] == [":SOUR:LIST:CURR", ":SOUR:LIST:CURR:APP"]
    written = [float(v) for m in lists for v in m.split(" ", 1)[1].split(",")]
    assert written == pytest.approx(levels)
    order = [':TRAC:CLE "defbuffer1"', ':SOUR:SWE:CURR:LIST 1, 0.001, 1, OFF, "defbuffer1"', ":INIT"]
    assert [m for m in sent if m in order] == order
    assert "*OPC?" in log.messages and ':TRAC:DATA? 1, 150, "defbuffer1", READ' in log.messages
    assert not any(m.startswith(":SOUR:CURR ") for m in log.messages)      # no point-by-point writes
    assert bench.world.now_s() - lab_start_s >= 150 * 1e-3                  # the dwell passed in lab time
    assert bench.world.panels["bias"].current_level_a == pytest.approx(levels[-1])


SWEEPS_REFUSED = [  # (levels_a, dwell_s, the limit named in the refusal)
    ([1e-6, 31e-6], 1.0, "bias_current_max_a"),
    ([-31e-6], 1.0, "bias_current_max_a"),
    ([2e-6, 4e-6], 10e-3, "bias_ramp_max_a_per_s"),    # 2 uA in 10 ms: 200 uA/s
    ([0.5e-6], 1e-3, "bias_ramp_max_a_per_s"),          # from the present 2 uA: 1.5 mA/s
]


@pytest.mark.parametrize(("levels_a", "dwell_s", "limit"), SWEEPS_REFUSED)
def test_refused_sweep_writes_nothing(smu, bench, received, levels_a, dwell_s, limit):
    smu.set_compliance_v(0.5)
    smu.set_output_enabled(True)
    smu.set_current_a(2e-6, ramp_a_per_s=100e-6)
    before = copy.deepcopy(bench.world.panels["bias"])
    log = received("bias")
    with pytest.raises(EnvelopeError, match=limit):
        smu.sweep_current_a(levels_a, dwell_s=dwell_s)
    assert not [m for m in log.messages if "?" not in m]      # queries only, nothing written
    assert bench.world.panels["bias"] == before


def test_sweep_through_the_chip_shows_the_switching_jump_and_hysteresis(connect, bench):
    # The shipped station's envelope: the port switches above the 30 uA of ENVELOPES["bias"].
    smu = connect("bias", Keithley2450, envelope=Envelope("bias_source", {
        "bias_current_max_a": 45e-6, "bias_ramp_max_a_per_s": 1e-3, "compliance_max_v": 1.0}))
    smu.set_compliance_v(0.5)
    smu.set_output_enabled(True)
    up = [k * 0.1e-6 for k in range(1, 401)]            # to 40 uA, above the port's switching current
    levels = up + up[::-1][1:]
    line_ohm = bench.world.station.bias_lines[0].line_resistance_ohm
    chip_v = smu.sweep_current_a(levels, dwell_s=1e-3) - np.asarray(levels) * line_ohm
    resistive = np.abs(chip_v) > 10e-6
    switch = int(np.argmax(resistive[:400]))
    retrap = 400 + int(np.argmax(~resistive[400:]))
    assert resistive[:400].any() and not resistive[:switch].any() and not resistive[-1]
    assert 30e-6 < levels[switch] < 40e-6                   # near I_sw,m + I_sw,c
    # Hysteresis: on the way down it stays resistive to the switching level or below (the
    # shunted port may retrap within one 0.1 uA step of it), then superconducting to 0 A.
    assert levels[retrap] <= levels[switch]
    assert resistive[400:retrap].all() and not resistive[retrap:].any()


def test_measure_voltage_reads_the_bias_port(smu, bench):
    smu.set_compliance_v(0.5)
    smu.set_output_enabled(True)
    smu.set_current_a(5e-6, ramp_a_per_s=100e-6)
    volts = smu.measure_voltage_v()
    assert isinstance(volts, float) and abs(volts) <= 0.5
