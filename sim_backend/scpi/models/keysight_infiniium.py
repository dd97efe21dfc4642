"""Keysight Infiniium oscilloscopes (S-Series, MXR/EXR): the SCPI the stock QCoDeS driver speaks.

Horizontal: `:TIMebase:RANGe` is the screen width (10 div), `:TIMebase:POSition` the time from
the trigger to the reference point (LEFT/CENTer/RIGHt of the screen). The record holds
`:ACQuire:POINts` samples at `:ACQuire:SRATe`, centred on the screen; AUTO points fill the
screen. Vertical: `:CHANnel#:RANGe` is the full scale (8 div) around `:CHANnel#:OFFSet`.
Channels: 4, or 8 on the MXR/EXR models numbered x08A; every channel-indexed header and every
CHANnel<n> source (trigger, measurement, waveform) follows the model's count.
Measurements and waveform transfer live in _keysight_infiniium_waveform.py.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from sim_backend.bench.scope_screen import screen_image
from sim_backend.scpi.commands import Command, command, query, setting
from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.headers import HeaderTable
from sim_backend.scpi.ieee488 import Identity
from sim_backend.scpi.models._keysight_infiniium_waveform import (
    NR3, REFERENCE, SOURCES, InfiniiumWaveformCommands, with_channels,
)
from sim_backend.scpi.models._scope_common import RealOr, ScopeModel, channel_field, stored
from sim_backend.scpi.params import Boolean, Choice, Integer, Raw, Real
from sim_backend.scpi.responses import definite_block

LIMIT = "{:.5E}"          # TESTLIMITS answers: the driver's regex wants d.dddddE+dd
# Declared for four channels; `_commands_for` widens them to the model's count.
_EDGE_SOURCES = Choice(*(f"CHANnel{n}" for n in range(1, 5)), "AUX", "LINE")
_LEVEL_SOURCES = Choice(*(f"CHANnel{n}" for n in range(1, 5)), "AUX")


def _model(name: str, channels: int, bandwidth_hz: float, rate_hz: float, points: int) -> ScopeModel:
    return ScopeModel(Identity("KEYSIGHT TECHNOLOGIES", name, "MY00000000", "11.30.00102"),
                      channels, rate_hz, bandwidth_hz, points)


def _widened(params: tuple, channels: int) -> tuple:
    """`params` with each channel-source choice spanning CHANnel1..`channels`."""
    return tuple(with_channels(p, channels) if isinstance(p, Choice) and "CHANnel1" in p.options else p
                 for p in params)


@cache
def _commands_for(cls: type, channels: int) -> tuple[tuple[Command, ...], HeaderTable[Command]]:
    """The class's commands and header table with every CHANnel<n> choice spanning 1..`channels`.

    The sources stay parameter types, converted before any handler runs: a channel the model
    lacks is refused (-224) at the same point of a message as any other unknown choice."""
    commands = tuple(replace(c, params=_widened(c.params, channels), query_params=_widened(c.query_params, channels))
                     for c in cls.commands)
    return commands, HeaderTable((c.pattern, c) for c in commands)


class KeysightInfiniium(InfiniiumWaveformCommands):
    """Infiniium S-Series / MXR: 4 or 8 channels, 8-bit ADC, single/run/stop, :DIGitize."""

    model_table = {   # the digit before the final A is the channel count
        "keysight_infiniium": _model("DSOS254A", 4, 2.5e9, 20e9, 100_000_000),
        "keysight_dsos254a": _model("DSOS254A", 4, 2.5e9, 20e9, 100_000_000),
        "keysight_dsos404a": _model("DSOS404A", 4, 4e9, 20e9, 100_000_000),
        "keysight_mxr208a": _model("MXR208A", 8, 2e9, 16e9, 200_000_000),
        "keysight_mxr404a": _model("MXR404A", 4, 4e9, 16e9, 200_000_000),
    }
    models = tuple(model_table)
    _self_headed = frozenset({":FUNCtion#"})

    def __init__(self, world, role_name: str, model: str, settings: dict) -> None:
        self.header_on = True    # power-on state; *RST leaves it alone
        channels = self.model_table[model].channels
        self.suffix_limits = {"CHAN": channels, "FUNC": 16}
        # The class table's sources are CHANnel1-4: an instance answers from its model's table.
        self.commands, self._table = _commands_for(type(self), channels)
        self.sources = with_channels(SOURCES, channels)
        super().__init__(world, role_name, model, settings)

    def reset(self) -> None:
        self.range_s, self.position_s, self.reference = 500e-9, 0.0, "CENT"
        self.roll = False
        self.srate_hz: float | None = None      # None: AUTO
        self.points: int | None = None          # None: AUTO
        self.bandwidth_hz: float | None = None  # None: AUTO (full bandwidth)
        self.averaging, self.average_count, self.acquire_mode, self.interpolate = False, 16, "RTIM", "1"
        numbers = range(1, self.spec.channels + 1)
        self.levels = {**{f"CHAN{n}": 0.0 for n in numbers}, "AUX": 0.0}
        self.edge_source, self.slope, self.sweep = "CHAN1", "POS", "AUTO"
        self.coupling = {n: "DC" for n in numbers}
        self.functions = {n: False for n in range(1, 17)}
        self.wave_source, self.wave_format, self.byte_order, self.streaming = "CHAN1", "ASC", "MSBF", True
        self.measure_source = "CHAN1"
        for number, channel in self.panel.channels.items():
            channel.displayed, channel.range_v, channel.offset_v = number == 1, 0.8, 0.0
        self.events = {"ADER": self.panel.acquisitions_completed, "TER": self.panel.acquisitions_completed}
        self.arm_events = 0
        self.run_state = "RUN"
        self.arm(continuous=True)

    # -- derived horizontal settings ---------------------------------------------------------

    def sample_rate_hz(self) -> float:
        if self.srate_hz is not None:
            return self.srate_hz
        return min(self.spec.max_sample_rate_hz, self.spec.max_record_length / self.range_s)

    def record_length(self) -> int:
        if self.points is not None:
            return self.points
        return int(min(max(round(self.range_s * self.sample_rate_hz()), 16), self.spec.max_record_length))

    def sync_panel(self) -> None:
        panel = self.panel
        panel.sample_rate_hz, panel.record_length = self.sample_rate_hz(), self.record_length()
        centre_s = self.position_s + (0.5 - REFERENCE[self.reference]) * self.range_s
        panel.first_sample_s = centre_s - panel.record_length / (2 * panel.sample_rate_hz)
        panel.average_count = self.average_count if self.averaging else 1
        panel.trigger.source_channel = int(self.edge_source[4:]) if self.edge_source.startswith("CHAN") else 0
        panel.trigger.level_v = self.levels.get(self.edge_source, 0.0)
        panel.trigger.slope = "falling" if self.slope == "NEG" else "rising"   # EITHer: rising edges
        panel.auto_trigger = self.sweep == "AUTO"
        for channel in panel.channels.values():
            channel.bandwidth_limit_hz = self.bandwidth_hz

    def _execute(self, message: bytes) -> None:
        super()._execute(message)
        self.sync_panel()

    # -- run control -------------------------------------------------------------------------

    @command(":RUN")
    def run(self) -> None:
        """Acquire continuously."""
        self.run_state = "RUN"
        self._arm(continuous=True)

    @command(":STOP")
    def stop(self) -> None:
        """Stop acquiring; the last records stay."""
        self.run_state = "STOP"
        self.panel.stop()

    @command(":SINGle")
    def single(self) -> None:
        """Arm one acquisition."""
        self.run_state = "SING"
        self._arm(continuous=False)

    @command(":DIGitize", Raw(optional=True), Raw(optional=True), Raw(optional=True), Raw(optional=True))
    def digitize(self, *sources: object) -> None:
        """Acquire one record on the displayed channels; *OPC? answers once it is complete."""
        self.run_state = "STOP"
        self._arm(continuous=False)

    def _arm(self, *, continuous: bool) -> None:
        self.arm(continuous=continuous)
        self.arm_events += 1

    @query(":RSTate")
    def run_state_query(self) -> str:
        """Run state: RUN, STOP or SING."""
        return self.run_state

    @query(":ASTate")
    def acquisition_state(self) -> str:
        """Acquisition state: ARM while waiting for a trigger, ADONE when the record is complete."""
        return "ADONE" if self.complete() else "ARM"

    def _event(self, name: str) -> str:
        self.complete()
        done = self.panel.acquisitions_completed
        fired, self.events[name] = done != self.events[name], done
        return "1" if fired else "0"

    @query(":ADER")
    def acquisition_done_event(self) -> str:
        """1 if an acquisition completed since the last read (reading clears it)."""
        return self._event("ADER")

    @query(":TER")
    def trigger_event(self) -> str:
        """1 if the scope triggered since the last read (reading clears it)."""
        return self._event("TER")

    @query(":AER")
    def arm_event(self) -> str:
        """1 if the trigger was armed since the last read (reading clears it)."""
        fired, self.arm_events = self.arm_events > 0, 0
        return "1" if fired else "0"

    header = stored(":SYSTem:HEADer", Boolean(), "header_on", "ON: answers start with their header.")

    # -- timebase ------------------------------------------------------------------------------

    timebase_range = stored(":TIMebase:RANGe", Real("S", 5e-12, 200.0, fmt=NR3), "range_s",
                            "Screen width (10 divisions), s.")
    timebase_position = stored(":TIMebase:POSition", Real("S", -200.0, 200.0, fmt=NR3), "position_s",
                               "Time from the trigger to the reference point, s.")
    timebase_reference = stored(":TIMebase:REFerence", Choice("LEFT", "CENTer", "RIGHt"), "reference",
                                "Where on the screen the reference point sits.")
    roll_mode = stored(":TIMebase:ROLL:ENABle", Boolean(), "roll",
                       "Roll mode; the emulator acquires triggered records only.")

    @setting(":TIMebase:SCALe", Real("S", 5e-13, 20.0, fmt=NR3))
    def timebase_scale(self) -> float:
        """Time per division, s (range / 10)."""
        return self.range_s / 10

    @timebase_scale.setter
    def timebase_scale(self, seconds: float) -> None:
        self.range_s = 10 * seconds

    # -- channels ------------------------------------------------------------------------------

    channel_range = channel_field(":CHANnel#:RANGe", Real("V", 8e-3, 40.0, fmt=NR3), "range_v",
                                  "Full-scale vertical range (8 divisions), V.")
    channel_scale = channel_field(":CHANnel#:SCALe", Real("V", 1e-3, 5.0, fmt=NR3), "range_v",
                                  "Vertical scale (range / 8), V/div.", scale=8.0)
    channel_offset = channel_field(":CHANnel#:OFFSet", Real("V", -12.0, 12.0, fmt=NR3), "offset_v",
                                   "Voltage at the centre of the screen, V.")
    channel_display = channel_field(":CHANnel#:DISPlay", Boolean(), "displayed",
                                    "Channel on (acquired and shown) or off.")
    channel_input = stored(":CHANnel#:INPut", Choice("DC", "DC50", "AC", "LFR1", "LFR2"), "coupling",
                           "Coupling and impedance: DC (1 MOhm), DC50 (50 Ohm), AC, LFR1/LFR2.")

    @query(":CHANnel#:DIFFerential")
    def channel_differential(self, channel: int) -> str:
        """Differential pairing of channels: always off on this bench."""
        return "0"

    @query(":DISPlay:DATA", Choice("BMP", "GIF", "JPG", "PNG", "TIF", optional=True),
           Choice("SCReen", "GRATicule", optional=True), Boolean(optional=True),
           Choice("NORMal", "INVert", optional=True))
    def screen(self, image_format: str | None, mode: str | None, compression: bool | None,
               inversion: str | None) -> bytes:
        """A screenshot as a definite block: BMP (the default), GIF, JPG, PNG or TIF; the
        screen or the graticule area alone (drawn alike here), optionally inverted."""
        return definite_block(screen_image(self.panel, image_format or "BMP", inverted=inversion == "INV"))

    # -- trigger -------------------------------------------------------------------------------

    edge_source_setting = stored(":TRIGger:EDGE:SOURce", _EDGE_SOURCES, "edge_source",
                                 "Edge trigger source: a channel (CHAN1-4, or 1-8), AUX (nothing wired) or LINE.")
    edge_slope = stored(":TRIGger:EDGE:SLOPe", Choice("POSitive", "NEGative", "EITHer"), "slope",
                        "Edge trigger slope (EITHer triggers on rising edges here).")
    trigger_sweep = stored(":TRIGger:SWEep", Choice("AUTO", "TRIGgered", "SINGle"), "sweep",
                           "Sweep mode: AUTO forces a trigger when none came in time (bench.scope); "
                           "TRIGgered waits for one.")

    @setting(":TRIGger:LEVel", _LEVEL_SOURCES, Real("V", -12.0, 12.0, fmt=NR3), query_params=(_LEVEL_SOURCES,))
    def trigger_level(self, source: str) -> float:
        """Trigger level of one source (`:TRIG:LEV CHAN1,0.1`, `:TRIG:LEV? CHAN1`), V."""
        return self.levels[source]

    @trigger_level.setter
    def trigger_level(self, source: str, volts: float) -> None:
        self.levels[source] = volts

    @setting(":TRIGger:MODE", Choice("EDGE", "GLITch", "ADVanced", "COMM", "DELay", "PATTern", "PWIDth",
                                     "RUNT", "SEQuence", "SHOLd", "STATe", "TIMeout", "TRANsition", "TV",
                                     "WINDow", "SBUS1", "SBUS2", "SBUS3", "SBUS4"))
    def trigger_mode(self) -> str:
        """Trigger mode: EDGE (the programmer's guide's other modes are refused, -221: the bench
        triggers on edges only)."""
        return "EDGE"

    @trigger_mode.setter
    def trigger_mode(self, mode: str) -> None:
        if mode != "EDGE":
            raise ScpiError(-221, "Settings conflict;only EDGE triggering is emulated")

    # -- acquisition ---------------------------------------------------------------------------

    acquire_mode = stored(":ACQuire:MODE", Choice("ETIMe", "RTIMe", "PDETect", "HRESolution", "SEGMented",
                                                  "SEGPdetect", "SEGHres"), "acquire_mode", "Acquisition mode.")
    averaging_setting = stored(":ACQuire:AVERage", Boolean(), "averaging", "Averaging on or off.")
    average_count_setting = stored(":ACQuire:AVERage:COUNt", Integer(2, 65534), "average_count",
                                   "Records averaged when averaging is on.")
    interpolate_setting = stored(":ACQuire:INTerpolate", Choice("0", "1", "INT1", "INT2", "INT4", "INT8",
                                                                "INT16", "INT32"), "interpolate", "Interpolation.")

    @setting(":ACQuire:POINts[:ANALog]", RealOr(None, 16, 1e12, fmt="{:.0f}", words=("AUTO",)))
    def acquire_points(self) -> int:
        """Record length, samples (AUTO: the screen width at the sample rate)."""
        return self.record_length()

    @acquire_points.setter
    def acquire_points(self, points: float | str) -> None:
        if points != "AUTO" and points > self.spec.max_record_length:
            raise ScpiError(-222)
        self.points = None if points == "AUTO" else int(round(points))

    @setting(":ACQuire:SRATe[:ANALog]", RealOr("HZ", 10.0, None, fmt=NR3, words=("AUTO", "MAXimum")))
    def acquire_rate(self) -> float:
        """Sample rate, Hz (AUTO: the highest that fits the record)."""
        return self.sample_rate_hz()

    @acquire_rate.setter
    def acquire_rate(self, rate: float | str) -> None:
        if rate not in ("AUTO", "MAX") and rate > self.spec.max_sample_rate_hz:
            raise ScpiError(-222)
        self.srate_hz = None if rate == "AUTO" else self.spec.max_sample_rate_hz if rate == "MAX" else rate

    @setting(":ACQuire:BANDwidth", RealOr("HZ", 1e6, None, fmt=NR3, words=("AUTO", "MAXimum")))
    def acquire_bandwidth(self) -> float:
        """Acquisition bandwidth (a brick-wall filter on all channels), Hz; AUTO: full."""
        return self.bandwidth_hz or self.spec.analog_bandwidth_hz

    @acquire_bandwidth.setter
    def acquire_bandwidth(self, hertz: float | str) -> None:
        if hertz not in ("AUTO", "MAX") and hertz > self.spec.analog_bandwidth_hz * 1.0001:
            raise ScpiError(-222)
        self.bandwidth_hz = None if hertz in ("AUTO", "MAX") else hertz

    @query(":ACQuire:POINts[:ANALog]:AUTO")
    def points_auto(self) -> str:
        """1 when the record length follows the time base."""
        return "1" if self.points is None else "0"

    @query(":ACQuire:SRATe[:ANALog]:AUTO")
    def rate_auto(self) -> str:
        """1 when the sample rate is chosen automatically."""
        return "1" if self.srate_hz is None else "0"

    @query(":ACQuire:POINts[:ANALog]:TESTLIMITS")
    def points_limits(self) -> str:
        """Allowed record lengths, as `1,<numeric>min:max`."""
        return f"1,<numeric>16:{self.spec.max_record_length}"

    @query(":ACQuire:SRATe[:ANALog]:TESTLIMITS")
    def rate_limits(self) -> str:
        """Allowed sample rates, Hz."""
        return f"1,<numeric>{LIMIT.format(10.0)}:{LIMIT.format(self.spec.max_sample_rate_hz)}"

    @query(":ACQuire:BANDwidth:TESTLIMITS")
    def bandwidth_limits(self) -> str:
        """Allowed bandwidths, Hz."""
        return f"1,<numeric>{LIMIT.format(1e6)}:{LIMIT.format(self.spec.analog_bandwidth_hz)}"

    # -- functions and measurements ------------------------------------------------------------

    function_display = stored(":FUNCtion#:DISPlay", Boolean(), "functions", "Math function shown or not.")

    @query(":FUNCtion#")
    def function_definition(self, number: int) -> str:
        """The function's operator and operands (none is set up: the default ADD)."""
        return (f":FUNC{number}:ADD " if self.header_on else "ADD ") + "CHAN1,CHAN2"


PERSONALITIES = (KeysightInfiniium,)
