"""Keysight Infiniium oscilloscopes (S-Series, MXR/EXR): the SCPI the stock QCoDeS driver speaks.

Horizontal: `:TIMebase:RANGe` is the screen width (10 div), `:TIMebase:POSition` the time from
the trigger to the reference point (LEFT/CENTer/RIGHt of the screen). The record holds
`:ACQuire:POINts` samples at `:ACQuire:SRATe`, centred on the screen; AUTO points fill the
screen. Vertical: `:CHANnel#:RANGe` is the full scale (8 div) around `:CHANnel#:OFFSet`.
WORD data carry the 8-bit ADC codes in the high byte (16 bits when averaging): volts =
value * YINCrement + YORigin, time = XORigin + i * XINCrement.
"""

from __future__ import annotations

import numpy as np

from sim_backend.scpi.commands import command, query, setting
from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.ieee488 import Identity
from sim_backend.scpi.models._scope_common import (
    RealOr, ScopeModel, ScopePersonality, channel_field, measure, stored,
)
from sim_backend.scpi.params import Boolean, Choice, Integer, Raw, Real
from sim_backend.scpi.responses import definite_block, indefinite_block

NR3 = "{:.10E}"
LIMIT = "{:.5E}"          # TESTLIMITS answers: the driver's regex wants d.dddddE+dd
UNDEFINED = 9.99999e37    # what Infiniium answers for a measurement it cannot make
_REFERENCE = {"LEFT": 0.0, "CENT": 0.5, "RIGH": 1.0}
_SOURCES = Choice(*(f"CHANnel{n}" for n in range(1, 5)), *(f"FUNCtion{n}" for n in range(1, 17)),
                  *(f"WMEMory{n}" for n in range(1, 5)))
_EDGE_SOURCES = Choice(*(f"CHANnel{n}" for n in range(1, 5)), "AUX", "LINE")
_LEVEL_SOURCES = Choice(*(f"CHANnel{n}" for n in range(1, 5)), "AUX")
_FORMATS = {"ASC": 0, "BYTE": 1, "WORD": 2}
_COUPLING = {"AC": 0, "DC": 1, "DC50": 2, "LFR1": 3, "LFR2": 3}
# :MEASure:<header>? -> shared measurement kind (volts, seconds, hertz, percent)
_MEASUREMENTS = {
    "VAMPlitude": "amplitude", "VAVerage": "mean", "VBASe": "base", "VTOP": "top", "VMAX": "max",
    "VMIN": "min", "VPP": "pk2pk", "VRMS": "rms", "VMIDdle": "middle", "RISetime": "rise",
    "FALLtime": "fall", "PERiod": "period", "FREQuency": "frequency", "PWIDth": "pwidth",
    "NWIDth": "nwidth", "DUTYcycle": "pduty", "VLOWer": "vlow", "VUPPer": "vupp",
    "VOVershoot": "overshoot", "SLEWrate": "slew",
}


def _model(name: str, bandwidth_hz: float, rate_hz: float, points: int) -> ScopeModel:
    return ScopeModel(Identity("KEYSIGHT TECHNOLOGIES", name, "MY00000000", "11.30.00102"),
                      4, rate_hz, bandwidth_hz, points)


def _measurement(kind: str):
    def handler(self, *tokens: object) -> str:
        return self._measure(kind, *tokens)
    handler.__doc__ = f"Measurement {kind!r} (V, s, Hz or %) on a source; 9.99999E+37 when undefined."
    return handler


class KeysightInfiniium(ScopePersonality):
    """Infiniium S-Series / MXR: 4 channels, 8-bit ADC, single/run/stop, :DIGitize."""

    model_table = {
        "keysight_infiniium": _model("DSOS254A", 2.5e9, 20e9, 100_000_000),
        "keysight_dsos254a": _model("DSOS254A", 2.5e9, 20e9, 100_000_000),
        "keysight_dsos404a": _model("DSOS404A", 4e9, 20e9, 100_000_000),
        "keysight_mxr208a": _model("MXR208A", 2e9, 16e9, 200_000_000),
        "keysight_mxr404a": _model("MXR404A", 4e9, 16e9, 200_000_000),
    }
    models = tuple(model_table)
    suffix_limits = {"CHAN": 4, "FUNC": 16}
    _self_headed = frozenset({":FUNCtion#"})

    def __init__(self, world, role_name: str, model: str, settings: dict) -> None:
        self.header_on = True    # power-on state; *RST leaves it alone
        super().__init__(world, role_name, model, settings)

    def reset(self) -> None:
        self.range_s, self.position_s, self.reference = 500e-9, 0.0, "CENT"
        self.roll = False
        self.srate_hz: float | None = None      # None: AUTO
        self.points: int | None = None          # None: AUTO
        self.bandwidth_hz: float | None = None  # None: AUTO (full bandwidth)
        self.averaging, self.average_count, self.acquire_mode, self.interpolate = False, 16, "RTIM", "1"
        self.levels = {source: 0.0 for source in ("CHAN1", "CHAN2", "CHAN3", "CHAN4", "AUX")}
        self.edge_source, self.slope, self.sweep = "CHAN1", "POS", "AUTO"
        self.coupling = {n: "DC" for n in range(1, 5)}
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
        centre_s = self.position_s + (0.5 - _REFERENCE[self.reference]) * self.range_s
        panel.first_sample_s = centre_s - panel.record_length / (2 * panel.sample_rate_hz)
        panel.average_count = self.average_count if self.averaging else 1
        panel.trigger.source_channel = int(self.edge_source[4:]) if self.edge_source.startswith("CHAN") else 0
        panel.trigger.level_v = self.levels.get(self.edge_source, 0.0)
        panel.trigger.slope = "falling" if self.slope == "NEG" else "rising"   # EITHer: rising edges
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

    # -- trigger -------------------------------------------------------------------------------

    edge_source_setting = stored(":TRIGger:EDGE:SOURce", _EDGE_SOURCES, "edge_source",
                                 "Edge trigger source: CHAN1-4, AUX (nothing wired) or LINE.")
    edge_slope = stored(":TRIGger:EDGE:SLOPe", Choice("POSitive", "NEGative", "EITHer"), "slope",
                        "Edge trigger slope (EITHer triggers on rising edges here).")
    trigger_sweep = stored(":TRIGger:SWEep", Choice("AUTO", "TRIGgered", "SINGle"), "sweep",
                           "Sweep mode; the emulator acquires on real triggers only.")

    @setting(":TRIGger:LEVel", _LEVEL_SOURCES, Real("V", -12.0, 12.0, fmt=NR3), query_params=(_LEVEL_SOURCES,))
    def trigger_level(self, source: str) -> float:
        """Trigger level of one source (`:TRIG:LEV CHAN1,0.1`, `:TRIG:LEV? CHAN1`), V."""
        return self.levels[source]

    @trigger_level.setter
    def trigger_level(self, source: str, volts: float) -> None:
        self.levels[source] = volts

    @query(":TRIGger:MODE")
    def trigger_mode(self) -> str:
        """Trigger mode: edge only on this bench."""
        return "EDGE"

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

    measure_source = stored(":MEASure:SOURce", _SOURCES, "measure_source", "Default measurement source.")

    def _measure(self, kind: str, *tokens: object) -> str:
        sources = [t.upper() for t in tokens if isinstance(t, str) and t.upper()[:4] in ("CHAN", "FUNC", "WMEM")]
        source = _SOURCES.convert(sources[0]) if sources else self.measure_source
        channel = int(source[4:]) if source.startswith("CHAN") else None
        value = measure(kind, self.current_record(channel) if channel in self.panel.channels else None)
        return NR3.format(UNDEFINED if value is None else value)

    for _header, _kind in _MEASUREMENTS.items():
        vars()[f"measure_{_kind}"] = query(f":MEASure:{_header}", *(Raw(optional=True),) * 3)(_measurement(_kind))
    del _header, _kind

    # -- waveform transfer ---------------------------------------------------------------------

    waveform_source = stored(":WAVeform:SOURce", _SOURCES, "wave_source", "Source of :WAVeform:DATA?.")
    waveform_format = stored(":WAVeform:FORMat", Choice("ASCii", "BYTE", "WORD"), "wave_format",
                             "Data format: ASCii volts, BYTE int8, WORD int16.")
    waveform_byte_order = stored(":WAVeform:BYTeorder", Choice("LSBFirst", "MSBFirst"), "byte_order",
                                 "Byte order of WORD data.")
    waveform_streaming = stored(":WAVeform:STReaming", Boolean(), "streaming",
                                "ON: :WAVeform:DATA? answers #0 blocks, OFF: definite blocks.")

    def _transfer(self) -> tuple[np.ndarray | None, float, float, float, int, float]:
        """(codes or None, y increment, y origin, x origin, points, x increment) of the source."""
        panel, byte_count = self.panel, 1 if self.wave_format == "BYTE" else 2
        number = int(self.wave_source[4:]) if self.wave_source.startswith("CHAN") else None
        if number is None:
            return None, 0.0, 0.0, 0.0, 0, 0.0
        record = self.current_record(number)
        if record is None:
            channel = panel.channels[number]
            return (None, channel.range_v / 2.0 ** (8 * byte_count), channel.offset_v, panel.first_sample_s,
                    panel.record_length, panel.sample_interval_s)
        codes, lsb_v = self.word_codes(record, byte_count)
        return codes, lsb_v, record.offset_v, record.first_sample_s, codes.size, record.sample_interval_s

    @query(":WAVeform:PREamble")
    def preamble(self) -> str:
        """Format, type, points, count, x inc/origin/ref, y inc/origin/ref, coupling, display
        ranges, date, time, frame, mode, completion, x/y units, bandwidth limits."""
        codes, yinc, yorg, xorg, points, xinc = self._transfer()
        panel = self.panel
        number = int(self.wave_source[4:]) if self.wave_source.startswith("CHAN") else 1
        channel = panel.channels[number]
        seconds = int(self.world.now_s())
        clock = f"{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:00"
        fields = (_FORMATS[self.wave_format], 2 if self.averaging else 1, points,
                  self.average_count if self.averaging else 1, NR3.format(xinc), NR3.format(xorg), 0,
                  NR3.format(yinc), NR3.format(yorg), 0, _COUPLING[self.coupling[number]],
                  NR3.format(self.range_s), NR3.format(self.position_s - _REFERENCE[self.reference] * self.range_s),
                  NR3.format(channel.range_v), NR3.format(channel.offset_v), '"24 NOV 2026"', f'"{clock}"',
                  f'"{self.identity.model}:{self.identity.serial}"', 0, 100, 2, 1,
                  NR3.format(self.bandwidth_hz or self.spec.analog_bandwidth_hz), NR3.format(0.0))
        return ",".join(str(f) for f in fields)

    @query(":WAVeform:DATA")
    def waveform_data(self) -> bytes:
        """The source's record: ASCii volts, BYTE or WORD codes in a #0 or definite block."""
        codes, yinc, yorg, *_ = self._transfer()
        if codes is None:
            self.queue_error(-230, "Data corrupt or stale;no acquired record for this source")
            codes = np.zeros(0, np.int32)
        if self.wave_format == "ASC":
            return ",".join(NR3.format(v) for v in codes * yinc + yorg).encode()
        dtype = np.dtype("i1" if self.wave_format == "BYTE" else "<i2" if self.byte_order == "LSBF" else ">i2")
        data = codes.astype(dtype).tobytes()
        return indefinite_block(data) if self.streaming else definite_block(data)

    @query(":WAVeform:POINts")
    def waveform_points(self) -> int:
        """Points in the source's record."""
        return self._transfer()[4]

    @query(":WAVeform:XINCrement")
    def x_increment(self) -> str:
        """Sample interval, s."""
        return NR3.format(self._transfer()[5])

    @query(":WAVeform:XORigin")
    def x_origin(self) -> str:
        """Time of the first sample relative to the trigger, s."""
        return NR3.format(self._transfer()[3])

    @query(":WAVeform:YINCrement")
    def y_increment(self) -> str:
        """Volts per data code, V."""
        return NR3.format(self._transfer()[1])

    @query(":WAVeform:YORigin")
    def y_origin(self) -> str:
        """Volts at data code 0, V."""
        return NR3.format(self._transfer()[2])

    @query(":WAVeform:YUNits")
    def y_units(self) -> str:
        """Vertical unit."""
        return "VOLT"

    @query(":WAVeform:XUNits")
    def x_units(self) -> str:
        """Horizontal unit."""
        return "SECOND"


PERSONALITIES = (KeysightInfiniium,)
