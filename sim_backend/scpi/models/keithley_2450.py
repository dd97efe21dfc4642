"""Keithley 2450 SourceMeter, SCPI command set (the TSP language is not modelled).

Sources current or voltage into the chip's bias line and measures across it. What it reads
comes from the world (`bias_port_voltage_v`): the line resistance's drop plus the chip's voltage
at its port. Compliance, modelled simply: sourcing current I, if the load voltage V would
exceed the voltage limit, the output holds ±limit, the current falls to I·limit/|V| (as for an
ohmic load at that operating point) and VLIM:TRIPped? answers 1. Sourcing voltage, the load is
taken as the line resistance (a superconducting chip), and the current is clipped at ILIMit.

With the output off the instrument still measures (Model 2450 Reference Manual 2-82, "Output-off
state": in the normal and zero states it sources 0 V, in the guard state 0 A, in the
high-impedance state its relay is open), so :READ? and :MEASure? answer a reading: 0 V and 0 A at
the chip's terminals, and resistance overflows (9.9E+37, Keithley's overflow reading).
:READ?, :MEASure? and :MEASure:<function>? make :SENSe:COUNt readings into a buffer (defbuffer1
unless named) and answer the last one, with the buffer elements listed (6-4, 6-6).

Errors go to the SCPI queue with the standard codes; a refused command changes nothing.
Headers follow the reference manual's `:SOURce[1]:…`, `:SENSe[1]:…`, `:OUTPut[1]…`: the suffix 1
may be given or left out; any other suffix is -114. A last parameter left empty (`:TRACe:MAKE
'b', 100, `, as QCoDeS's Keithley2450Buffer sends it when no buffer style is given) counts as
omitted: QCoDeS's Keithley 2450 example notebook makes its buffer so on the instrument. Commands
of the Series 2400 that the 2450 does not have (:TRACe:FEED, :STATus:MEASurement, :TRIGger:COUNt)
and *OPT?, which the 2450's common commands (Appendix B) do not include, are -113 Undefined header.
Buffers, reading formats and the trigger model: `_keithley_2450_trace`; status registers:
`_keithley_2450_status`.
"""

from __future__ import annotations

import math
import re

from sim_backend.bench.source_meter import SourceMeter
from sim_backend.scpi.commands import command, query, setting
from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.ieee488 import Identity, ScpiPersonality
from sim_backend.scpi.models._keithley_2450_status import StatusCommands
from sim_backend.scpi.models._keithley_2450_trace import (
    ELEMENT_ARGS,
    SENSE_RANGES,
    SOURCE_RANGES,
    Buffer,
    FunctionCommands,
    Reading,
    TraceCommands,
    buffer_name,
    range_for,
)
from sim_backend.scpi.params import Boolean, Choice, Integer, Raw, Real, String

_NR3 = "{:.6E}"
_UNITS = {"CURR": "Amp DC", "VOLT": "Volt DC", "RES": "Ohm"}
_SENSE_NAMES = {"CURR": '"CURR:DC"', "VOLT": '"VOLT:DC"', "RES": '"RES"'}
_SENSE_KEYS = {"current": "CURR", "voltage": "VOLT", "resistance": "RES"}
_OVERFLOW = 9.9e37
_OFF_STATE = Choice("NORMal", "HIMPedance", "ZERO", "GUARd")
#: A parameter separator followed by nothing up to the end of a unit: ", " before ';' or the end,
#: outside quoted strings (the unit's text between quotes is matched whole).
_EMPTY_LAST_PARAMETER = re.compile(rb"""("[^"]*"|'[^']*')|,\s*(?=;|$)""")


class Keithley2450(StatusCommands, ScpiPersonality, TraceCommands, FunctionCommands):
    """KEITHLEY INSTRUMENTS,MODEL 2450 in its SCPI language (module docstring)."""

    models = ("keithley_2450",)
    role = "bias_source"
    identity = Identity("KEITHLEY INSTRUMENTS", "MODEL 2450", "04412345", "1.7.3c")
    error_messages = {-222: "Parameter data out of range", -221: "Settings conflict"}
    #: User delays 1-5 (`:SOURce[1]:<f>:DELay:USER#`, `:SENSe[1]:<f>:DELay:USER#`): USER0, USER6 -> -114.
    #: SOURce/SENSe/OUTPut take only the fixed suffix 1, declared in the patterns as `[1]`.
    suffix_limits = {"USER": 5}

    @classmethod
    def create_panel(cls, model: str, settings: dict) -> SourceMeter:
        return SourceMeter()

    def __init__(self, world, role_name: str, model: str, settings: dict) -> None:
        super().__init__()
        self.world, self.role_name = world, role_name
        self.reset_status_sets()   # power-on state; *RST keeps the status model
        self.reset()

    @property
    def panel(self) -> SourceMeter:
        return self.world.panels[self.role_name]

    def reset(self) -> None:
        """*RST: source 0 V, output off, sense current, autoranges on, default buffers empty."""
        panel = self.panel
        panel.source_function, panel.sense_function, panel.output_enabled = "voltage", "current", False
        panel.current_level_a, panel.voltage_level_v = 0.0, 0.0
        panel.voltage_limit_v, panel.current_limit_a = 21.0, 105e-6
        self.source_range = {"CURR": 1e-6, "VOLT": 20e-3}
        self.source_auto = {"CURR": True, "VOLT": True}
        self.sense_range = {"CURR": 100e-6, "VOLT": 20e-3, "RES": 200e3}
        self.sense_auto = {"CURR": True, "VOLT": True, "RES": True}
        self.nplc = {"CURR": 1.0, "VOLT": 1.0, "RES": 1.0}
        self.remote_sense = {"CURR": False, "VOLT": False, "RES": False}
        self.auto_zero = {"CURR": True, "VOLT": True, "RES": True}
        self.sense_delays = {(f, n): 0.0 for f in SENSE_RANGES for n in range(1, 6)}
        self.source_delay = {"CURR": 0.0, "VOLT": 0.0}
        self.source_delay_auto = {"CURR": True, "VOLT": True}
        self.source_delays = {(f, n): 0.0 for f in SOURCE_RANGES for n in range(1, 6)}
        self.read_back = {"CURR": True, "VOLT": True}
        self.off_state = {"CURR": "NORM", "VOLT": "NORM"}
        self.filter_on = {f: False for f in SENSE_RANGES}
        self.filter_count = {f: 10 for f in SENSE_RANGES}
        self.filter_type = {f: "REP" for f in SENSE_RANGES}
        self.data_format, self.byte_order = "ASC", "SWAP"
        self.count, self.terminals, self.tripped = 1, "FRON", False
        self.buffers = {"defbuffer1": Buffer(100_000), "defbuffer2": Buffer(100_000)}
        self.sweep: tuple | None = None
        self.source_list: list[float] = []

    # -- the measurement -----------------------------------------------------------------------

    def _load(self) -> tuple[float, float]:
        """(voltage V, current A) at the terminals now, compliance applied."""
        panel = self.panel
        self.tripped = False
        if not panel.output_enabled:
            return 0.0, 0.0
        if panel.source_function == "current":
            volts = self.world.bias_port_voltage_v(self.role_name)
            limit_v = panel.voltage_limit_v
            if abs(volts) > limit_v:
                self.tripped = True
                return math.copysign(limit_v, volts), panel.current_level_a * limit_v / abs(volts)
            return volts, panel.current_level_a
        volts = panel.voltage_level_v
        wires = [w for w in self.world.station.bias_lines if w.instrument == self.role_name]
        line_ohm = wires[0].line_resistance_ohm if wires else math.inf
        amps = volts / line_ohm
        if abs(amps) > panel.current_limit_a:
            self.tripped = True
            amps = math.copysign(panel.current_limit_a, amps)
        return volts, amps

    def _measure(self, function: str | None, buffer: str, count: int = 1) -> Reading:
        """`count` readings of `function` (default: the sense function) stored in `buffer`; the last."""
        if buffer not in self.buffers:
            raise ScpiError(-224, "Illegal parameter value;buffer does not exist")
        function = function or _SENSE_KEYS[self.panel.sense_function]
        sourcing = "CURR" if self.panel.source_function == "current" else "VOLT"
        for _ in range(count):
            volts, amps = self._load()
            value = {"VOLT": volts, "CURR": amps, "RES": volts / amps if amps else _OVERFLOW}[function]
            self.panel.peak_current_a = max(self.panel.peak_current_a, abs(amps))
            reading = Reading(value, amps if sourcing == "CURR" else volts, self.world.now_s(), _UNITS[function],
                              _UNITS[sourcing], int(self.tripped))
            self._store(self.buffers[buffer], reading)
        return reading

    def _answer(self, function: str | None, buffer: object, elements: tuple[object, ...]) -> str | bytes:
        attributes = self._elements(elements)      # checked before anything is measured
        return self._encode([self._measure(function, buffer_name(buffer), self.count)], attributes)

    @query(":MEASure", Raw(optional=True), *ELEMENT_ARGS)
    def measure(self, buffer: object, *elements: object) -> str | bytes:
        """Measure the sense function (V, A or Ω) into a buffer (default defbuffer1)."""
        return self._answer(None, buffer, elements)

    @query(":READ", Raw(optional=True), *ELEMENT_ARGS)
    def read(self, buffer: object, *elements: object) -> str | bytes:
        """Same as :MEASure? for the present sense function."""
        return self._answer(None, buffer, elements)

    @query(":MEASure:CURRent[:DC]", Raw(optional=True), *ELEMENT_ARGS)
    def measure_current(self, buffer: object, *elements: object) -> str | bytes:
        """Measure current, A."""
        return self._answer("CURR", buffer, elements)

    @query(":MEASure:VOLTage[:DC]", Raw(optional=True), *ELEMENT_ARGS)
    def measure_voltage(self, buffer: object, *elements: object) -> str | bytes:
        """Measure voltage, V."""
        return self._answer("VOLT", buffer, elements)

    @query(":MEASure:RESistance", Raw(optional=True), *ELEMENT_ARGS)
    def measure_resistance(self, buffer: object, *elements: object) -> str | bytes:
        """Measure resistance, Ω (V/I)."""
        return self._answer("RES", buffer, elements)

    # -- source --------------------------------------------------------------------------------

    @setting(":SOURce[1]:FUNCtion[:MODE]", Choice("CURRent", "VOLTage"))
    def source_function(self) -> str:
        """Source function: current or voltage."""
        return "CURR" if self.panel.source_function == "current" else "VOLT"

    @source_function.setter
    def source_function(self, function: str) -> None:
        self.panel.source_function = "current" if function == "CURR" else "voltage"

    @setting(":SOURce[1]:CURRent[:LEVel][:IMMediate][:AMPLitude]", Real("A", -1.05, 1.05, 0.0, _NR3))
    def current_level(self) -> float:
        """Source current, A (checked against the fixed range when autorange is off)."""
        return self.panel.current_level_a

    @current_level.setter
    def current_level(self, amps: float) -> None:
        self._fit_source("CURR", amps)
        self.panel.current_level_a = amps

    @setting(":SOURce[1]:VOLTage[:LEVel][:IMMediate][:AMPLitude]", Real("V", -210.0, 210.0, 0.0, _NR3))
    def voltage_level(self) -> float:
        """Source voltage, V."""
        return self.panel.voltage_level_v

    @voltage_level.setter
    def voltage_level(self, volts: float) -> None:
        self._fit_source("VOLT", volts)
        self.panel.voltage_level_v = volts

    def _fit_source(self, function: str, value: float) -> None:
        if self.source_auto[function]:
            self.source_range[function] = range_for(value, SOURCE_RANGES[function])
        elif abs(value) > 1.05 * self.source_range[function]:
            raise ScpiError(-222)

    @setting(":SOURce[1]:CURRent:VLIMit[:LEVel]", Real("V", 0.02, 210.0, 21.0, _NR3))
    def voltage_limit(self) -> float:
        """Voltage limit (compliance) while sourcing current, V."""
        return self.panel.voltage_limit_v

    @voltage_limit.setter
    def voltage_limit(self, volts: float) -> None:
        self.panel.voltage_limit_v = volts

    @setting(":SOURce[1]:VOLTage:ILIMit[:LEVel]", Real("A", 1e-9, 1.05, 105e-6, _NR3))
    def current_limit(self) -> float:
        """Current limit (compliance) while sourcing voltage, A."""
        return self.panel.current_limit_a

    @current_limit.setter
    def current_limit(self, amps: float) -> None:
        self.panel.current_limit_a = amps

    @query(":SOURce[1]:CURRent:VLIMit[:LEVel]:TRIPped")
    def voltage_limit_tripped(self) -> int:
        """1 when the last reading was held at the voltage limit."""
        return int(self.tripped and self.panel.source_function == "current")

    @query(":SOURce[1]:VOLTage:ILIMit[:LEVel]:TRIPped")
    def current_limit_tripped(self) -> int:
        """1 when the last reading was held at the current limit."""
        return int(self.tripped and self.panel.source_function == "voltage")

    @setting(":OUTPut[1][:STATe]", Boolean())
    def output(self) -> bool:
        """Output relay on or off."""
        return self.panel.output_enabled

    @output.setter
    def output(self, state: bool) -> None:
        self.panel.output_enabled = state

    @setting(":OUTPut[1]:SMODe", _OFF_STATE)
    def output_off_state(self) -> str:
        """Output-off state of the present source function; setting it sets both functions'."""
        return self.off_state["CURR" if self.panel.source_function == "current" else "VOLT"]

    @output_off_state.setter
    def output_off_state(self, state: str) -> None:
        self.off_state = dict.fromkeys(self.off_state, state)

    @setting(":ROUTe:TERMinals", Choice("FRONt", "REAR"))
    def route_terminals(self) -> str:
        """Front or rear terminals."""
        return self.terminals

    @route_terminals.setter
    def route_terminals(self, where: str) -> None:
        self.terminals = where

    # -- sense ---------------------------------------------------------------------------------

    @setting(":SENSe[1]:FUNCtion[:ON]", String())
    def sense_function(self) -> str:
        """Measure function: "CURR[:DC]", "VOLT[:DC]" or "RES"."""
        return _SENSE_NAMES[{"current": "CURR", "voltage": "VOLT", "resistance": "RES"}[self.panel.sense_function]]

    @sense_function.setter
    def sense_function(self, name: str) -> None:
        key = name.upper().replace("URRENT", "URR").replace("OLTAGE", "OLT").replace("ESISTANCE", "ES")
        found = {"CURR": "current", "CURR:DC": "current", "VOLT": "voltage", "VOLT:DC": "voltage", "RES": "resistance"}
        if key not in found:
            raise ScpiError(-224)
        self.panel.sense_function = found[key]  # type: ignore[assignment]

    @setting(":SENSe[1]:COUNt", Integer(1, 300_000, 1))
    def sense_count(self) -> int:
        """Readings per measure request."""
        return self.count

    @sense_count.setter
    def sense_count(self, count: int) -> None:
        self.count = count

    @command(":SENSe[1]:AZERo:ONCE")
    def auto_zero_once(self) -> None:
        """Refresh the zero reference once."""

    @query(":SYSTem:LFRequency")
    def line_frequency(self) -> int:
        """Power line frequency, Hz."""
        return 60

    @setting("*LANG", Choice("SCPI", "TSP", "SCPI2400"))
    def language(self) -> str:
        """Command language (takes effect at the next power cycle)."""
        return "SCPI"

    @language.setter
    def language(self, name: str) -> None:
        self.next_language = name

    @command(":SYSTem:CLEar")
    def clear_event_log(self) -> None:
        """Clear the event log (errors stay in the queue)."""

    @command(":SYSTem:BEEPer[:IMMediate]", Real("HZ", 20.0, 8000.0), Real("S", 0.001, 100.0))
    def beep(self, frequency_hz: float, duration_s: float) -> None:
        """Sound the beeper (nothing to hear here)."""

    # -- engine hooks --------------------------------------------------------------------------

    def device_status_bits(self) -> int:
        return self.status_summary_bits()

    def _execute(self, message: bytes) -> None:
        """A last parameter left empty counts as omitted (module docstring)."""
        super()._execute(_EMPTY_LAST_PARAMETER.sub(lambda m: m.group(1) or b"", message))


PERSONALITIES = (Keithley2450,)
