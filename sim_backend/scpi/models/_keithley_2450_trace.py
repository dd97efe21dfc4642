"""Keithley 2450 parts: reading buffers (:TRACe, :FETCh?), the data format of readings, the trigger
model (linear and list sweeps, the SimpleLoop template), per-function settings.

Mixed into `keithley_2450.Keithley2450`, which supplies `_measure`, `buffers`, `count`,
`sweep`, `source_list`, `panel`, `world` (its clock: a sweep's delays pass in lab time), `_fit_source`,
`raise_event` (the status model) and the range tables. Kept apart so each module stays small.
Sections cited are of the Model 2450 Reference Manual (2450-901-01 Rev. B):

* Reading buffers (3-10, :TRACe 6-107..6-118): defbuffer1 and defbuffer2 always exist; :TRACe:MAKE
  makes a user buffer, :TRACe:DELete removes one, an unknown name is -224; :TRACe:MAKE and
  :TRACe:POINts take 10 to 5,500,000 readings (the model's bounds; a smaller capacity drops the
  oldest readings). A default buffer fills continuously (the oldest reading is overwritten), a
  user buffer once (readings beyond its capacity are dropped) until :TRACe:FILL:MODE says otherwise.
  :TRACe:CLEar raises the buffer-empty event, the reading that fills a buffer the buffer-full
  event (status model). :TRACe:STATistics:<AVERage|MAXimum|MINimum|PK2Pk|STDDev>? answer one
  value over the readings stored since the last :TRACe:CLEar or :TRACe:STATistics:CLEar
  (-230 here when there are none). :TRACe:DATA? needs its start and end index: the Series 2400's
  bare `:TRACe:DATA?` is -109 Missing parameter.
* :FORMat[:DATA] ASCii|REAL|SREal (6-30) sets how :READ?, :MEASure?, :FETCh? and :TRACe:DATA?
  send readings: ASCII text, or IEEE 754 doubles / singles after "#0", ended by the newline; the
  binary forms carry READing, RELative and SOURce only (another element is -224). :FORMat:BORDer
  NORMal|SWAPped orders their bytes (SWAPped, least significant first, after *RST, as the DMM7510
  Reference Manual 6-49 gives it for the same command set).
* :TRIGger:LOAD "SimpleLoop", <count>[, <delay>[, "<buffer>"]] loads the template that makes
  <count> readings, <delay> s apart, into a buffer when :INITiate runs it; "Empty" unloads the
  trigger model. Other templates are not modelled (-224). The sweep commands load a sweep model.
  The Series 2400's :TRIGger:COUNt, :TRACe:FEED and :TRACe:FEED:CONTrol are not 2450 commands: -113.
* Filters ([:SENSe[1]]:<function>:AVERage[:STATe], :COUNt 1-100, :TCONtrol REPeat|MOVing) and
  the output-off state (:OUTPut[1]:<function>:SMODe NORMal|HIMPedance|ZERO|GUARd, 6-32) are kept
  per function; filter defaults OFF, 10, REPeat as the 2461 Reference Manual (6-53..6-56) gives
  them for the same commands. Readings here have no noise to average.
"""

from __future__ import annotations

import bisect
import statistics
import struct
from dataclasses import dataclass, field

from sim_backend.scpi.commands import Command, command, query, setting
from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.models._keithley_2450_status import BUFFER_EMPTY_EVENT, BUFFER_FULL_EVENT
from sim_backend.scpi.params import Boolean, Choice, Integer, Raw, Real, String, mnemonic_forms
from sim_backend.scpi.responses import indefinite_block

_NR3 = "{:.6E}"
#: Ranges (A, V, Ω): a setting picks the smallest range that holds the value.
SOURCE_RANGES = {"CURR": (10e-9, 100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0),
                 "VOLT": (20e-3, 0.2, 2.0, 20.0, 200.0)}
SENSE_RANGES = dict(SOURCE_RANGES, RES=(20.0, 200.0, 2e3, 20e3, 200e3, 2e6, 20e6, 200e6))
#: Buffer elements (FETCh?, TRACe:DATA?) -> reading attribute; short or long form.
_ELEMENTS = {"READing": "reading", "SOURce": "source", "RELative": "relative_s", "SEConds": "relative_s",
             "UNIT": "unit", "SOURUNIT": "source_unit", "STATus": "status", "SOURSTATus": "status",
             "FRACtional": "fraction_s", "TSTamp": "relative_s", "TIME": "relative_s", "DATE": "date",
             "FORMatted": "reading", "SOURFORMatted": "source"}
_ELEMENT_LOOKUP = {form: attr for name, attr in _ELEMENTS.items() for form in mnemonic_forms(name)}
#: Up to 14 elements in one list (:READ?, 6-6).
ELEMENT_ARGS = tuple(Raw(optional=True) for _ in range(14))
#: Elements a binary format can carry (:FORMat[:DATA], 6-30).
_BINARY_ELEMENTS = frozenset({"reading", "relative_s", "source"})
#: Reading buffer capacity (:TRACe:MAKE, :TRACe:POINts).
_BUFFER_SIZE = Integer(10, 5_500_000)
#: Source list length (reference manual, :SOURce[1]:LIST:<function>).
MAX_LIST_POINTS = 2500
_LIST_VALUES = (Real("A", -1.05, 1.05),
                *(Real("A", -1.05, 1.05, optional=True) for _ in range(MAX_LIST_POINTS - 1)))
#: Sweep source delay: -1 is autodelay, else 0..10 ks.
_DELAY = Real("S", -1.0, 1e4, optional=True)
#: SimpleLoop template: measurement count and the delay between measurements (:TRIGger:LOAD).
_LOOP_COUNT = Integer(1, 268_435_455)
_LOOP_DELAY = Real("S", 0.0, 1e4)


@dataclass
class Reading:
    reading: float
    source: float
    relative_s: float
    unit: str
    source_unit: str
    status: int = 0
    fraction_s: float = 0.0
    date: str = "01/01/2026"


@dataclass
class Buffer:
    size: int
    continuous: bool = True             # :TRACe:FILL:MODE CONTinuous (else ONCE)
    readings: list[Reading] = field(default_factory=list)
    statistics_values: list[float] = field(default_factory=list)   # since the last statistics clear

    def add(self, reading: Reading) -> bool:
        """Store a reading; True when it is the one that fills the buffer."""
        if len(self.readings) >= self.size and not self.continuous:
            return False                # a buffer filled once keeps its readings
        self.readings.append(reading)
        self.statistics_values.append(reading.reading)
        del self.readings[: max(0, len(self.readings) - self.size)]  # a full buffer fills circularly
        return len(self.readings) == self.size

    def clear(self) -> None:
        self.readings.clear()
        self.statistics_values.clear()


def range_for(value: float, ranges: tuple[float, ...]) -> float:
    """Smallest range holding |value|; -222 beyond the largest (5 % over-range allowed)."""
    index = bisect.bisect_left(ranges, abs(value) / 1.05)
    if index == len(ranges):
        raise ScpiError(-222)
    return ranges[index]


def buffer_name(token: object) -> str:
    return String().convert(token) if token is not None else "defbuffer1"  # type: ignore[arg-type]


def _keyed(pattern: str, param, store: str, key: str, doc: str, by_user: bool = False,
           check=None) -> Command:
    """A setting kept per function in the dict attribute `store` (``USER#`` adds the suffix)."""
    def get(self, *user: int):
        return getattr(self, store)[(key, *user) if by_user else key]

    def put(self, *args):
        *user, value = args
        if check is not None:
            check(self, key, value)
        getattr(self, store)[(key, *user) if by_user else key] = value
    return Command(pattern, (param,), (), put, get, doc)


def _check_source_range(self, key: str, value: float) -> None:
    level = self.panel.current_level_a if key == "CURR" else self.panel.voltage_level_v
    if abs(level) > 1.05 * range_for(value, SOURCE_RANGES[key]):
        raise ScpiError(-221)  # the present level would not fit the range
    self.source_auto[key] = False


def _source_commands(key: str, node: str, unit: str) -> dict[str, Command]:
    path = f":SOURce[1]:{node}"
    return {
        f"src_range_{key}": _keyed(f"{path}:RANGe", Real(unit, -SOURCE_RANGES[key][-1], SOURCE_RANGES[key][-1], fmt=_NR3),
                                   "source_range", key, f"Source range ({unit}); turns autorange off.",
                                   check=_check_source_range),
        f"src_auto_{key}": _keyed(f"{path}:RANGe:AUTO", Boolean(), "source_auto", key, "Source autorange."),
        f"src_delay_{key}": _keyed(f"{path}:DELay", Real("S", 0.0, 1e4), "source_delay", key, "Source delay, s."),
        f"src_delay_auto_{key}": _keyed(f"{path}:DELay:AUTO", Boolean(), "source_delay_auto", key, "Auto delay."),
        f"src_delay_user_{key}": _keyed(f"{path}:DELay:USER#", Real("S", 0.0, 1e4), "source_delays", key,
                                        "User delay N (1-5), s.", by_user=True),
        f"src_read_back_{key}": _keyed(f"{path}:READ:BACK", Boolean(), "read_back", key, "Record measured source value."),
        f"off_state_{key}": _keyed(f":OUTPut[1]:{node}:SMODe", Choice("NORMal", "HIMPedance", "ZERO", "GUARd"),
                                   "off_state", key, "Output-off state of this source function."),
    }


def _sense_commands(key: str, node: str, unit: str) -> dict[str, Command]:
    path = f":SENSe[1]:{node}"
    ranges = SENSE_RANGES[key]
    return {
        f"filter_state_{key}": _keyed(f"{path}:AVERage[:STATe]", Boolean(), "filter_on", key, "Averaging filter on."),
        f"filter_count_{key}": _keyed(f"{path}:AVERage:COUNt", Integer(1, 100, 10), "filter_count", key,
                                      "Readings averaged by the filter."),
        f"filter_type_{key}": _keyed(f"{path}:AVERage:TCONtrol", Choice("REPeat", "MOVing"), "filter_type", key,
                                     "Filter type: repeating or moving average."),
        f"sense_range_{key}": _keyed(f"{path}:RANGe[:UPPer]", Real(unit, 0.0, ranges[-1], fmt=_NR3), "sense_range", key,
                                     f"Measure range ({unit}).",
                                     check=lambda self, k, v: self.sense_auto.__setitem__(k, False)),
        f"sense_auto_{key}": _keyed(f"{path}:RANGe:AUTO", Boolean(), "sense_auto", key, "Measure autorange."),
        f"sense_nplc_{key}": _keyed(f"{path}:NPLCycles", Real(None, 0.01, 10.0), "nplc", key,
                                    "Integration time, power-line cycles."),
        f"sense_rsense_{key}": _keyed(f"{path}:RSENse", Boolean(), "remote_sense", key, "4-wire sensing."),
        f"sense_azero_{key}": _keyed(f"{path}:AZERo[:STATe]", Boolean(), "auto_zero", key, "Auto zero."),
        f"sense_delay_user_{key}": _keyed(f"{path}:DELay:USER#", Real("S", 0.0, 1e4), "sense_delays", key,
                                          "User delay N (1-5), s.", by_user=True),
    }


FunctionCommands = type("FunctionCommands", (), {
    **_source_commands("CURR", "CURRent", "A"), **_source_commands("VOLT", "VOLTage", "V"),
    **_sense_commands("CURR", "CURRent[:DC]", "A"), **_sense_commands("VOLT", "VOLTage[:DC]", "V"),
    **_sense_commands("RES", "RESistance", "OHM"),
})


class TraceCommands:
    """Reading buffers, reading formats and the trigger model (see the module docstring)."""

    def _buffer(self, token: object) -> Buffer:
        if (name := buffer_name(token)) not in self.buffers:
            raise ScpiError(-224, "Illegal parameter value;buffer does not exist")
        return self.buffers[name]

    def _store(self, buffer: Buffer, reading: Reading) -> None:
        if buffer.add(reading):
            self.raise_event(BUFFER_FULL_EVENT)

    # -- reading formats -----------------------------------------------------------------------

    def _elements(self, elements: tuple[object, ...]) -> list[str]:
        """Reading attributes of the listed buffer elements (READing when none), checked against
        the data format before anything is measured."""
        attributes = []
        for token in [e for e in elements if e is not None] or ["READ"]:
            attribute = _ELEMENT_LOOKUP.get(token.upper()) if isinstance(token, str) else None
            if attribute is None or (self.data_format != "ASC" and attribute not in _BINARY_ELEMENTS):
                raise ScpiError(-224)
            attributes.append(attribute)
        return attributes

    def _encode(self, readings: list[Reading], attributes: list[str]) -> str | bytes:
        """Readings in the present data format: text, or "#0" and IEEE 754 numbers."""
        values = [getattr(r, a) for r in readings for a in attributes]
        if self.data_format == "ASC":
            return ",".join(_NR3.format(v) if isinstance(v, float) else str(v) for v in values)
        order = "<" if self.byte_order == "SWAP" else ">"
        kind = "d" if self.data_format == "REAL" else "f"
        return indefinite_block(struct.pack(f"{order}{len(values)}{kind}", *values))

    @setting(":FORMat[:DATA]", Choice("ASCii", "REAL", "SREal"))
    def format_data(self) -> str:
        """Data format of readings: ASCII, IEEE 754 double or single."""
        return self.data_format

    @format_data.setter
    def format_data(self, name: str) -> None:
        self.data_format = name

    @setting(":FORMat:BORDer", Choice("NORMal", "SWAPped"))
    def format_byte_order(self) -> str:
        """Byte order of the binary formats."""
        return self.byte_order

    @format_byte_order.setter
    def format_byte_order(self, name: str) -> None:
        self.byte_order = name

    # -- reading buffers -----------------------------------------------------------------------

    @command(":TRACe:MAKE", String(max_length=31), _BUFFER_SIZE, Choice("STANdard", "COMPact", "FULL", optional=True))
    def trace_make(self, name: str, size: int, style: str | None) -> None:
        """Create a reading buffer of `size` readings (style STANdard, COMPact or FULL)."""
        if name in self.buffers:
            raise ScpiError(-221, "Settings conflict;buffer name already exists")
        self.buffers[name] = Buffer(size, continuous=False)

    @command(":TRACe:DELete", String())
    def trace_delete(self, name: str) -> None:
        """Delete a user buffer (the default ones cannot be deleted)."""
        if name not in self.buffers or name.startswith("defbuffer"):
            raise ScpiError(-224)
        del self.buffers[name]

    @command(":TRACe:CLEar", Raw(optional=True))
    def trace_clear(self, buffer: object) -> None:
        """Empty a buffer and its statistics."""
        self._buffer(buffer).clear()
        self.raise_event(BUFFER_EMPTY_EVENT)

    @setting(":TRACe:POINts", _BUFFER_SIZE, Raw(optional=True), query_params=(Raw(optional=True),))
    def trace_points(self, buffer: object) -> int:
        """Buffer capacity, readings."""
        return self._buffer(buffer).size

    @trace_points.setter
    def trace_points(self, size: int, buffer: object) -> None:
        found = self._buffer(buffer)
        found.size = size
        del found.readings[: max(0, len(found.readings) - size)]

    @setting(":TRACe:FILL:MODE", Choice("CONTinuous", "ONCE"), Raw(optional=True), query_params=(Raw(optional=True),))
    def trace_fill_mode(self, buffer: object) -> str:
        """CONT: a full buffer overwrites its oldest reading; ONCE: it stops filling."""
        return "CONT" if self._buffer(buffer).continuous else "ONCE"

    @trace_fill_mode.setter
    def trace_fill_mode(self, mode: str, buffer: object) -> None:
        self._buffer(buffer).continuous = mode == "CONT"

    @query(":TRACe:ACTual", Raw(optional=True))
    def trace_actual(self, buffer: object) -> int:
        """Readings stored in a buffer."""
        return len(self._buffer(buffer).readings)

    @command(":TRACe:TRIGger", Raw(optional=True))
    def trace_trigger(self, buffer: object) -> None:
        """Make `count` readings into a buffer."""
        self._measure(None, buffer_name(buffer), self.count)

    @query(":TRACe:DATA", Integer(1, 5_500_000), Integer(1, 5_500_000), Raw(optional=True), *ELEMENT_ARGS)
    def trace_data(self, start: int, end: int, buffer: object, *elements: object) -> str | bytes:
        """Readings start..end (1-based) of a buffer, with the listed elements (default READing)."""
        readings = self._buffer(buffer).readings
        attributes = self._elements(elements)
        if start > end or end > len(readings):
            raise ScpiError(-222)
        return self._encode(readings[start - 1:end], attributes)

    @query(":FETCh", Raw(optional=True), *ELEMENT_ARGS)
    def fetch(self, buffer: object, *elements: object) -> str | bytes:
        """The latest reading of a buffer, with the listed elements."""
        readings = self._buffer(buffer).readings
        attributes = self._elements(elements)
        if not readings:
            raise ScpiError(-230)
        return self._encode(readings[-1:], attributes)

    @command(":TRACe:STATistics:CLEar", Raw(optional=True))
    def trace_statistics_clear(self, buffer: object) -> None:
        """Restart a buffer's statistics (its readings stay)."""
        self._buffer(buffer).statistics_values.clear()

    def _statistic(self, buffer: object, function) -> str:
        values = self._buffer(buffer).statistics_values
        if not values:
            raise ScpiError(-230)
        return _NR3.format(function(values))

    @query(":TRACe:STATistics:AVERage", Raw(optional=True))
    def trace_average(self, buffer: object) -> str:
        """Mean of the buffer's readings."""
        return self._statistic(buffer, statistics.fmean)

    @query(":TRACe:STATistics:MAXimum", Raw(optional=True))
    def trace_maximum(self, buffer: object) -> str:
        """Largest reading of the buffer."""
        return self._statistic(buffer, max)

    @query(":TRACe:STATistics:MINimum", Raw(optional=True))
    def trace_minimum(self, buffer: object) -> str:
        """Smallest reading of the buffer."""
        return self._statistic(buffer, min)

    @query(":TRACe:STATistics:PK2Pk", Raw(optional=True))
    def trace_peak_to_peak(self, buffer: object) -> str:
        """Largest minus smallest reading of the buffer."""
        return self._statistic(buffer, lambda values: max(values) - min(values))

    @query(":TRACe:STATistics:STDDev", Raw(optional=True))
    def trace_standard_deviation(self, buffer: object) -> str:
        """Sample standard deviation of the buffer's readings (0 for one reading)."""
        return self._statistic(buffer, lambda values: statistics.stdev(values) if len(values) > 1 else 0.0)

    # -- trigger model -------------------------------------------------------------------------

    @command(":TRIGger:LOAD", String(), Raw(optional=True), Raw(optional=True), Raw(optional=True))
    def trigger_load(self, template: str, count: object, delay_s: object, buffer: object) -> None:
        """Load a trigger model template: "SimpleLoop", <count>[, <delay>[, "<buffer>"]] or "Empty"."""
        if template.upper() == "EMPTY":
            self.sweep = None
        elif template.upper() == "SIMPLELOOP":
            if count is None:
                raise ScpiError(-109)
            loops = _LOOP_COUNT.convert(count)
            wait_s = _LOOP_DELAY.convert(delay_s) if delay_s is not None else 0.0
            self.sweep = (None, (None,), wait_s, loops, buffer_name(buffer))
        else:
            raise ScpiError(-224, "Illegal parameter value;trigger model template not modelled")


    @command(":SOURce[1]:SWEep:CURRent:LINear", Real("A", -1.05, 1.05), Real("A", -1.05, 1.05), Integer(2, 1_000_000),
             _DELAY, Integer(0, 268_435_455, optional=True),
             Choice("AUTO", "BEST", "FIXed", optional=True), Boolean(optional=True), Boolean(optional=True),
             String(optional=True))
    def sweep_current(self, start: float, stop: float, points: int, delay_s, count, rng, abort, dual, buffer) -> None:
        """Set up a linear current sweep (run by :INITiate)."""
        self.sweep = _linear("CURR", start, stop, points, delay_s, count, dual, buffer)

    @command(":SOURce[1]:SWEep:VOLTage:LINear", Real("V", -210.0, 210.0), Real("V", -210.0, 210.0),
             Integer(2, 1_000_000), _DELAY, Integer(0, 268_435_455, optional=True),
             Choice("AUTO", "BEST", "FIXed", optional=True), Boolean(optional=True), Boolean(optional=True),
             String(optional=True))
    def sweep_voltage(self, start: float, stop: float, points: int, delay_s, count, rng, abort, dual, buffer) -> None:
        """Set up a linear voltage sweep (run by :INITiate)."""
        self.sweep = _linear("VOLT", start, stop, points, delay_s, count, dual, buffer)

    # A source list (`:SOURce[1]:LIST:CURRent`, up to MAX_LIST_POINTS values) run as a sweep.
    @setting(":SOURce[1]:LIST:CURRent", *_LIST_VALUES,
             query_params=(Integer(1, MAX_LIST_POINTS, optional=True), Integer(1, MAX_LIST_POINTS, optional=True)))
    def list_current(self, start: int | None, count: int | None) -> str:
        """The current list, A (optionally `count` values from index `start`, 1-based)."""
        values = self.source_list[(start or 1) - 1:]
        values = values[:count] if count is not None else values
        return ",".join(_NR3.format(v) for v in values)

    @list_current.setter
    def list_current(self, *values) -> None:
        self.source_list = _checked_list([], values)

    @command(":SOURce[1]:LIST:CURRent:APPend", *_LIST_VALUES)
    def list_current_append(self, *values) -> None:
        """Add values to the end of the current list."""
        self.source_list = _checked_list(self.source_list, values)

    @query(":SOURce[1]:LIST:CURRent:POINts")
    def list_current_points(self) -> int:
        """Values in the current list."""
        return len(self.source_list)

    @command(":SOURce[1]:SWEep:CURRent:LIST", Integer(1, MAX_LIST_POINTS), _DELAY,
             Integer(1, 268_435_455, optional=True), Boolean(optional=True), String(optional=True))
    def sweep_current_list(self, start: int, delay_s, count, abort, buffer) -> None:
        """Set up a sweep through the current list from index `start` (run by :INITiate)."""
        if start > len(self.source_list):
            raise ScpiError(-221, "Settings conflict;source list is shorter than the start index")
        self.sweep = ("CURR", tuple(self.source_list[start - 1:]), _delay(delay_s), count or 1, buffer or "defbuffer1")

    @command(":INITiate[:IMMediate]")
    def initiate(self) -> None:
        """Run the loaded trigger model. A sweep turns the output on, then per level sets it, waits
        the delay (lab time passes) and measures into the buffer; the output stays on at the last
        level. A SimpleLoop measures <count> times, the delay apart, at the present source."""
        if self.sweep is None:
            return
        key, levels, delay_s, count, buffer = self.sweep
        panel = self.panel
        if buffer not in self.buffers:
            raise ScpiError(-224)
        if key is not None:
            for level in levels:
                self._fit_source(key, level)   # a level outside a fixed range refuses the whole sweep
            panel.source_function = "current" if key == "CURR" else "voltage"
            panel.output_enabled = True
        for _ in range(count):
            for level in levels:
                if key is not None:
                    self._fit_source(key, level)
                    setattr(panel, "current_level_a" if key == "CURR" else "voltage_level_v", level)
                if delay_s:
                    self.world.clock.advance(delay_s)
                self._measure(None, buffer)

    @command(":ABORt")
    def abort(self) -> None:
        """Stop the trigger model (sweeps here run to completion at :INITiate)."""


def _delay(delay_s: float | None) -> float:
    """Source delay per point, s; -1 (the default) selects autodelay, modelled as none."""
    return 0.0 if delay_s is None or delay_s < 0 else delay_s


def _linear(key, start, stop, points, delay_s, count, dual, buffer) -> tuple:
    levels = [start + (stop - start) * k / (points - 1) for k in range(points)]
    if dual:
        levels += levels[::-1]   # dual sweep: start -> stop -> start
    return key, tuple(levels), _delay(delay_s), count or 1, buffer or "defbuffer1"


def _checked_list(present: list[float], values: tuple) -> list[float]:
    new = present + [v for v in values if v is not None]
    if len(new) > MAX_LIST_POINTS:
        raise ScpiError(-222)
    return new
