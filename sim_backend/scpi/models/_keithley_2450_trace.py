"""Keithley 2450 parts: reading buffers (:TRACe, :FETCh?), linear and list sweeps, per-function settings.

Mixed into `keithley_2450.Keithley2450`, which supplies `_measure`, `buffers`, `count`,
`sweep`, `source_list`, `panel`, `world` (its clock: a sweep's delays pass in lab time), `_fit_source`
and the range tables. Kept apart so each module stays small.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from sim_backend.scpi.commands import Command, command, query, setting
from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.params import Boolean, Choice, Integer, Raw, Real, String, mnemonic_forms

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
_ELEMENT_ARGS = tuple(Raw(optional=True) for _ in range(len(_ELEMENTS)))
#: Source list length (reference manual, :SOURce[1]:LIST:<function>).
MAX_LIST_POINTS = 2500
_LIST_VALUES = (Real("A", -1.05, 1.05),
                *(Real("A", -1.05, 1.05, optional=True) for _ in range(MAX_LIST_POINTS - 1)))
#: Sweep source delay: -1 is autodelay, else 0..10 ks.
_DELAY = Real("S", -1.0, 1e4, optional=True)


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
    readings: list[Reading] = field(default_factory=list)

    def add(self, reading: Reading) -> None:
        self.readings.append(reading)
        del self.readings[: max(0, len(self.readings) - self.size)]  # a full buffer fills circularly


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
    }


def _sense_commands(key: str, node: str, unit: str) -> dict[str, Command]:
    path = f":SENSe[1]:{node}"
    ranges = SENSE_RANGES[key]
    return {
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
    """Reading buffers and sweeps (see the module docstring)."""

    def _buffer(self, token: object) -> Buffer:
        if (name := buffer_name(token)) not in self.buffers:
            raise ScpiError(-224, "Illegal parameter value;buffer does not exist")
        return self.buffers[name]

    @command(":TRACe:MAKE", String(max_length=31), Integer(10, 5_500_000), Raw(optional=True))
    def trace_make(self, name: str, size: int, style: object) -> None:
        """Create a reading buffer of `size` readings."""
        if name in self.buffers:
            raise ScpiError(-221, "Settings conflict;buffer name already exists")
        self.buffers[name] = Buffer(size)

    @command(":TRACe:DELete", String())
    def trace_delete(self, name: str) -> None:
        """Delete a user buffer (the default ones cannot be deleted)."""
        if name not in self.buffers or name.startswith("defbuffer"):
            raise ScpiError(-224)
        del self.buffers[name]

    @command(":TRACe:CLEar", Raw(optional=True))
    def trace_clear(self, buffer: object) -> None:
        """Empty a buffer."""
        self._buffer(buffer).readings.clear()

    @setting(":TRACe:POINts", Integer(1, 5_500_000), Raw(optional=True), query_params=(Raw(optional=True),))
    def trace_points(self, buffer: object) -> int:
        """Buffer capacity, readings."""
        return self._buffer(buffer).size

    @trace_points.setter
    def trace_points(self, size: int, buffer: object) -> None:
        self._buffer(buffer).size = size

    @query(":TRACe:ACTual", Raw(optional=True))
    def trace_actual(self, buffer: object) -> int:
        """Readings stored in a buffer."""
        return len(self._buffer(buffer).readings)

    @command(":TRACe:TRIGger", Raw(optional=True))
    def trace_trigger(self, buffer: object) -> None:
        """Make `count` readings into a buffer."""
        name = buffer_name(buffer)
        for _ in range(self.count):
            self._measure(None, name)

    @query(":TRACe:DATA", Integer(1, 5_500_000), Integer(1, 5_500_000), Raw(optional=True), *_ELEMENT_ARGS)
    def trace_data(self, start: int, end: int, buffer: object, *elements: object) -> str:
        """Readings start..end (1-based) of a buffer, with the listed elements (default READing)."""
        readings = self._buffer(buffer).readings
        if start > end or end > len(readings):
            raise ScpiError(-222)
        return ",".join(_format(r, elements) for r in readings[start - 1:end])

    @query(":FETCh", Raw(optional=True), *_ELEMENT_ARGS)
    def fetch(self, buffer: object, *elements: object) -> str:
        """The latest reading of a buffer, with the listed elements."""
        readings = self._buffer(buffer).readings
        if not readings:
            raise ScpiError(-230)
        return _format(readings[-1], elements)

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
        """Run the configured sweep: output on, then per level: set it, wait the delay (lab time
        passes), measure into the buffer. The output stays on at the last level."""
        if self.sweep is None:
            return
        key, levels, delay_s, count, buffer = self.sweep
        panel = self.panel
        if buffer not in self.buffers:
            raise ScpiError(-224)
        for level in levels:
            self._fit_source(key, level)   # a level outside a fixed range refuses the whole sweep
        panel.source_function = "current" if key == "CURR" else "voltage"
        panel.output_enabled = True
        for _ in range(count):
            for level in levels:
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


def _format(reading: Reading, elements: tuple[object, ...]) -> str:
    """Buffer elements of one reading, comma-separated (READing when none are named)."""
    fields = []
    for token in [e for e in elements if e is not None] or ["READ"]:
        attribute = _ELEMENT_LOOKUP.get(token.upper()) if isinstance(token, str) else None
        if attribute is None:
            raise ScpiError(-224)
        value = getattr(reading, attribute)
        fields.append(_NR3.format(value) if isinstance(value, float) else str(value))
    return ",".join(fields)


