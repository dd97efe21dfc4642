"""Keithley 2450 headers as its reference manual writes them: `:SOURce[1]:…`, `:SENSe[1]:…`,
`:OUTPut[1]…` take the suffix 1 or none, any other suffix is -114; user delays are USER1..USER5."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from scpi_helpers import ask, codes

from sim_backend.clock import LabClock
from sim_backend.scpi.models.keithley_2450 import Keithley2450


class _World:
    """Panels, clock and a 25 Ω bias line with a superconducting chip behind it."""

    def __init__(self) -> None:
        self.clock = LabClock(0)
        self.panels: dict = {}
        self.station = SimpleNamespace(bias=[SimpleNamespace(instrument="bias", line_resistance_ohm=25.0)])

    def now_s(self) -> float:
        return self.clock.now_s()

    def bias_port_voltage_v(self, role_name: str) -> float:
        return self.panels[role_name].current_level_a * 25.0


@pytest.fixture
def smu() -> Keithley2450:
    world = _World()
    world.panels["bias"] = Keithley2450.create_panel("keithley_2450", {})
    device = Keithley2450(world, "bias", "keithley_2450", {})
    codes(device)
    return device


@pytest.mark.parametrize("header", [":SOUR:CURR", ":SOUR1:CURR", ":SOURCE1:CURRENT:LEVEL", "sour1:curr:lev:imm:ampl"])
def test_source_with_and_without_suffix_one(smu, header):
    ask(smu, ":SOUR:FUNC CURR")
    ask(smu, f"{header} 1.5e-6")
    assert smu.panel.current_level_a == 1.5e-6
    assert ask(smu, f"{header}?") == b"1.500000E-06\n"
    assert codes(smu) == []


@pytest.mark.parametrize("header", [":SOUR2:CURR 1e-6", ":SOUR0:CURR 1e-6", ":SOURCE17:CURR 1e-6",
                                    ":OUTP2 ON", ":SENS3:FUNC \"VOLT\"", ":SOUR2:CURR?"])
def test_any_other_source_sense_or_output_suffix_is_114_and_changes_nothing(smu, header):
    assert ask(smu, header) is None
    assert codes(smu) == [-114]
    assert (smu.panel.current_level_a, smu.panel.output_enabled, smu.panel.sense_function) == (0.0, False, "current")


def test_output_and_sense_accept_suffix_one(smu):
    ask(smu, ':OUTP1 ON;:SENS1:FUNC "VOLT"')
    assert smu.panel.output_enabled and smu.panel.sense_function == "voltage"
    assert ask(smu, ":OUTP1:STAT?;:SENSE1:FUNC?") == b'1;"VOLT:DC"\n'
    assert codes(smu) == []


@pytest.mark.parametrize("user", [1, 5])
def test_user_delays_one_to_five(smu, user):
    ask(smu, f":SENS:VOLT:DEL:USER{user} 0.25;:SOUR1:CURR:DEL:USER{user} 0.5")
    assert smu.sense_delays[("VOLT", user)] == 0.25 and smu.source_delays[("CURR", user)] == 0.5
    assert codes(smu) == []


@pytest.mark.parametrize("message", [":SENS:VOLT:DEL:USER17?", ":SENS:VOLT:DEL:USER0?", ":SENS:CURR:DEL:USER6 1",
                                     ":SOUR:VOLT:DEL:USER6?", ":SOUR1:CURR:DEL:USER0 1", ":SENS:RES:DEL:USER99?"])
def test_user_delay_suffix_out_of_range_is_114(smu, message):
    """F-SCPI-1: these raised KeyError out of write_bytes instead of queuing -114."""
    before = dict(smu.sense_delays), dict(smu.source_delays)
    assert ask(smu, message) is None
    assert codes(smu) == [-114]
    assert (smu.sense_delays, smu.source_delays) == before
