"""Keysight 81160A 330 MHz pulse/function/arbitrary/noise generator (fast edges).

Commands follow the 81150A/81160A User's Guide, Remote Programming Reference: the channel may
be given on the SOURce (or TRIGger) node or on the command's own keyword (`:SOUR2:PULS:WIDT
5NS` = `:PULS:WIDT2 5NS`, `:TRIG2:COUN 3` = `:TRIG:COUN2 3`). Levels are set as
amplitude/offset or as high/low, the amplitude in the `:VOLT#:UNIT` (VPP; VRMS and DBM for
sine, square and ramp); `:VOLT#:LIM:HIGH/LOW/STAT` are output limits that, when on, refuse
levels beyond them (-221). The pulse settings also answer under `[:SOURce]:FUNCtion#:PULSe`
(`:FUNC2:PULS:DCYC`). Triggered pulses and bursts come from the arming model: `:ARM:SOUR IMM`
runs continuously; MANual (*TRG), EXTernal or INTernal2 arm `:TRIG:COUN` pulses per event.
`:APPLy#:<shape> [freq[,amp[,offset]]]` sets shape and values in one validated step.
`:TRACe:CHANnel1 ON` couples the channels' frequency (channel 2 runs at channel 1's).
User waveforms (`:DATA#`, `:FUNC#:USER`) are in `_keysight_81160a_memory`.

The 33500-family syntax stock drivers send (`:BURSt:*`, `:FUNCtion:ARBitrary:*`,
`:OUTPut:TRIGger`, `:FUNC:PULS:TRAN:BOTH`) is not the 81160A's: -113 Undefined header. A
rejected value changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from sim_backend.scpi.commands import Command, command, query, setting
from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.ieee488 import Identity
from sim_backend.scpi.models._keysight_33500b_model import RMS_PER_VPP, amplitude_in_unit, amplitude_vpp
from sim_backend.scpi.models._keysight_81160a_memory import VOLATILE, WaveformMemory, waveform_name
from sim_backend.scpi.models._keysight_common import (
    NR3, PANEL_BURST_CYCLES_MAX, KeysightPulsePersonality, LoadDependent, RealOrInfinity, check_amplitude, check_levels,
    check_pulse_timing, conflict, field_setting, load_gain, load_setting, out_of_range, real,
)
from sim_backend.scpi.params import Binary, Boolean, Choice, Integer, Raw, Real, mnemonic_forms

WIDTH_MIN_S, EDGE_MIN_S, PERIOD_MIN_S = 1.5e-9, 1e-9, 1 / 330e6
FREQUENCY_MAX_HZ, PULSE_FREQUENCY_MAX_HZ = 500e6, 330e6
# Open-circuit output limits (data sheet: 50 mVpp-5 Vpp, window +-5 V into 50 ohm).
AMPLITUDE_MIN_OPEN_VPP, AMPLITUDE_MAX_OPEN_VPP, WINDOW_OPEN_V = 0.1, 10.0, 10.0
_PANEL_FUNCTION = {"PULS": "PULS", "SQU": "SQU"}   # other shapes are shown as their mean (DC)
_PANEL_SOURCE = {"IMM": "IMM", "MAN": "BUS", "EXT": "EXT", "INT2": "TIM"}
_LEVEL = LoadDependent("V", -5.0, 5.0, 0.0, NR3)
_AMPLITUDE = LoadDependent("V", 0.05, 5.0, 1.0, NR3)
_EDGE = real("S", EDGE_MIN_S, 1e3, 2.5e-9)
_FREQUENCY = real("HZ", 1e-6, FREQUENCY_MAX_HZ, 1e6)


@dataclass(frozen=True)
class Channel:
    """One channel's settings as the instrument holds them (*RST values)."""

    function: str = "SIN"
    frequency_hz: float = 1e6
    amplitude_vpp: float = 1.0
    offset_v: float = 0.0
    width_s: float = 100e-9
    duty_pct: float = 10.0
    hold: str = "WIDT"
    lead_s: float = 2.5e-9
    trail_s: float = 2.5e-9
    trail_auto: bool = True      # the trailing edge follows the leading edge
    output: bool = False
    polarity: str = "NORM"
    load_ohm: float = 50.0
    limit_high_v: float = 5.0
    limit_low_v: float = -5.0
    limits_on: bool = False
    arm_source: str = "IMM"
    trigger_count: int = 1
    trigger_source: str = "IMM"
    unit: str = "VPP"               # VOLTage:UNIT: how the amplitude is given and answered
    phase_deg: float = 0.0
    square_duty_pct: float = 50.0
    ramp_symmetry_pct: float = 100.0
    user_waveform: str = VOLATILE   # FUNCtion:USER: the waveform USER plays

    @property
    def period_s(self) -> float:
        return 1.0 / self.frequency_hz

    @property
    def high_v(self) -> float:
        return self.offset_v + self.amplitude_vpp / 2

    @property
    def low_v(self) -> float:
        return self.offset_v - self.amplitude_vpp / 2


def check_channel(ch: Channel) -> None:
    """Raise -221 if the settings cannot coexist (each value alone is already in range)."""
    if ch.function in ("PULS", "SQU") and ch.frequency_hz > PULSE_FREQUENCY_MAX_HZ * (1 + 1e-12):
        raise conflict("frequency too high for this function")
    check_levels(ch.amplitude_vpp, ch.offset_v, ch.load_ohm, amplitude_min_vpp=AMPLITUDE_MIN_OPEN_VPP,
                 amplitude_max_vpp=AMPLITUDE_MAX_OPEN_VPP, window_v=WINDOW_OPEN_V)
    if ch.limit_high_v <= ch.limit_low_v:
        raise conflict("high limit must exceed low limit")
    if ch.limits_on and (ch.high_v > ch.limit_high_v + 1e-12 or ch.low_v < ch.limit_low_v - 1e-12):
        raise conflict("levels beyond the output limits")
    if ch.function == "PULS":
        check_pulse_timing(ch.period_s, ch.width_s, ch.lead_s, ch.trail_s, WIDTH_MIN_S)
    if ch.function == "SQU" and min(ch.square_duty_pct, 100 - ch.square_duty_pct) / 100 * ch.period_s < WIDTH_MIN_S:
        raise conflict("square duty cycle leaves a pulse shorter than the minimum width")
    if ch.unit != "VPP" and (ch.function not in RMS_PER_VPP or (ch.unit == "DBM" and math.isinf(ch.load_ohm))):
        raise conflict("amplitude unit not available here")


def _apply(shape: str) -> Command:
    """`:APPLy#:<shape> [<frequency>[,<amplitude>[,<offset>]]]`: shape, frequency, amplitude
    and offset in one step (DEF: the *RST value); DC keeps frequency and amplitude, NOISe the
    frequency, as they do not apply."""
    frequency = Real("HZ", _FREQUENCY.min, _FREQUENCY.max, _FREQUENCY.default, NR3, optional=True)
    amplitude = replace(_AMPLITUDE, optional=True)
    offset = replace(_LEVEL, optional=True)

    def apply(self: Any, *args) -> None:
        *suffixes, hertz, amplitude_value, offset_v = args
        number = self.channel_of(*suffixes)
        ch = replace(self.channels[number], function=mnemonic_forms(shape)[0])
        fields: dict[str, object] = {"function": ch.function}
        if ch.function not in ("DC", "NOIS") and hertz is not None:
            fields["frequency_hz"] = hertz
        if ch.function != "DC" and amplitude_value is not None:
            fields["amplitude_vpp"] = self._amplitude_vpp(ch, amplitude_value)
        if offset_v is not None:
            self._window(number, offset_v)
            fields["offset_v"] = offset_v
        self.change(number, **fields)

    apply.__doc__ = f"Apply the {shape} function with frequency, amplitude and offset."
    return command(f"APPLy#:{shape}", frequency, amplitude, offset)(apply)


class Keysight81160A(KeysightPulsePersonality):
    """81160A, one or two channels (`channels:` in the station's emulator settings, default 2)."""

    models = ("keysight_81160a",)
    channel_nodes = ("SOUR", "FUNC", "FREQ", "VOLT", "PER", "WIDT", "DCYC", "HOLD", "TRAN", "OUTP", "COUN", "TRIG",
                     "PHAS", "APPL", "DATA")
    identity = Identity("Agilent Technologies", "81160A", "DE00000000", "2.1.0.0-2.3")

    @classmethod
    def channel_count(cls, model: str, settings: dict) -> int:
        return int(settings.get("channels", 2))

    def __init__(self, world, role_name: str, model: str, settings: dict) -> None:
        self.memory = WaveformMemory()   # survives *RST
        super().__init__(world, role_name, model, settings)

    def reset(self) -> None:
        self.channels = {n: Channel() for n in range(1, self.channel_total + 1)}
        self.frequency_coupled = False
        self.memory.big_endian = True
        for number in self.channels:
            self._show(number)

    def change(self, number: int, **fields: object) -> None:
        """While the channels are coupled (TRACe:CHANnel1) a new frequency applies to both;
        both are validated before either changes."""
        if not (self.frequency_coupled and "frequency_hz" in fields):
            super().change(number, **fields)
            return
        candidates = {n: self.prepare(n, **(fields if n == number else {"frequency_hz": fields["frequency_hz"]}))
                      for n in self.channels}
        for n, candidate in candidates.items():
            self.commit(n, candidate)

    def validate(self, channel: Channel) -> None:
        check_channel(channel)

    def _show(self, number: int) -> None:
        ch = self.channels[number]
        points = self.memory.points(number, ch.user_waveform) if ch.function == "USER" else None
        if points is not None:       # a user waveform plays whole once per period, point by point
            self.show(number, function="ARB", arb_points=tuple(points.tolist()),
                      arb_sample_rate_hz=ch.frequency_hz * points.size, arb_step_s=0.0)
        shape = "ARB" if points is not None else _PANEL_FUNCTION.get(ch.function, "DC")
        square = shape == "SQU"
        self.show(number, function=shape, amplitude_vpp=ch.amplitude_vpp, offset_v=ch.offset_v,
                  frequency_hz=ch.frequency_hz,
                  pulse_width_s=ch.period_s * ch.square_duty_pct / 100 if square else ch.width_s,
                  lead_edge_s=ch.lead_s, trail_edge_s=ch.trail_s, burst_enabled=ch.arm_source != "IMM",
                  burst_cycles=min(ch.trigger_count, PANEL_BURST_CYCLES_MAX), trigger_source=_PANEL_SOURCE[ch.arm_source],
                  output_enabled=ch.output, inverted=ch.polarity == "INV", load_ohm=ch.load_ohm)

    # -- waveform and timing -----------------------------------------------------------------

    function = field_setting("[SOURce#]:FUNCtion#[:SHAPe]", Choice("SINusoid", "SQUare", "RAMP", "PULSe", "NOISe",
                                                                    "DC", "USER"),
                             "function", "Waveform shape (SIN, SQU, RAMP, PULS, NOIS, DC, USER).")

    @setting("[SOURce#]:FREQuency#[:CW]", real("HZ", 1e-6, FREQUENCY_MAX_HZ, 1e6))
    def frequency(self, *suffixes: int) -> float:
        """Frequency, Hz (pulse period = 1/frequency)."""
        return self.channels[self.channel_of(*suffixes)].frequency_hz

    @frequency.setter
    def frequency(self, *args) -> None:
        *suffixes, hertz = args
        self.change(self.channel_of(*suffixes), frequency_hz=hertz)

    @setting("[SOURce#]:PULSe:PERiod#", real("S", PERIOD_MIN_S * (1 - 1e-9), 1e6, 1e-6))
    def period(self, *suffixes: int) -> float:
        """Pulse period, s."""
        return self.channels[self.channel_of(*suffixes)].period_s

    @period.setter
    def period(self, *args) -> None:
        *suffixes, seconds = args
        self.change(self.channel_of(*suffixes), frequency_hz=1.0 / seconds)

    width = field_setting("[SOURce#]:PULSe:WIDTh#", real("S", WIDTH_MIN_S, 1e6, 100e-9), "width_s",
                          "Pulse width at 50 % of the edges, s.")
    hold = field_setting("[SOURce#]:PULSe:HOLD#", Choice("WIDTh", "DCYCle"), "hold",
                         "What a period change keeps: the pulse WIDTh or the DCYCle.")

    @setting("[SOURce#]:PULSe:DCYCle#", real(None, 0, 100, 10))
    def duty(self, *suffixes: int) -> float:
        """Pulse duty cycle, percent of the period."""
        return self.channels[self.channel_of(*suffixes)].duty_pct

    @duty.setter
    def duty(self, *args) -> None:
        *suffixes, percent = args
        number = self.channel_of(*suffixes)
        self.change(number, width_s=self.channels[number].period_s * percent / 100)

    @setting("[SOURce#]:PULSe:TRANsition#[:LEADing]", _EDGE)
    def leading(self, *suffixes: int) -> float:
        """Leading edge time (10-90 %), s; the trailing edge follows while TRA:AUTO is on."""
        return self.channels[self.channel_of(*suffixes)].lead_s

    @leading.setter
    def leading(self, *args) -> None:
        *suffixes, seconds = args
        number = self.channel_of(*suffixes)
        auto = self.channels[number].trail_auto
        self.change(number, lead_s=seconds, trail_s=seconds if auto else self.channels[number].trail_s)

    @setting("[SOURce#]:PULSe:TRANsition#:TRAiling", _EDGE)
    def trailing(self, *suffixes: int) -> float:
        """Trailing edge time (90-10 %), s; setting it turns TRA:AUTO off."""
        return self.channels[self.channel_of(*suffixes)].trail_s

    @trailing.setter
    def trailing(self, *args) -> None:
        *suffixes, seconds = args
        self.change(self.channel_of(*suffixes), trail_s=seconds, trail_auto=False)

    trailing_auto = field_setting("[SOURce#]:PULSe:TRANsition#:TRAiling:AUTO", Boolean(), "trail_auto",
                                  "Trailing edge time follows the leading edge (1) or not (0).")

    # The same pulse settings under the FUNCtion node (`[:SOURce]:FUNCtion[1|2]:PULSe:DCYCle`).
    function_width = replace(width, pattern="[SOURce#]:FUNCtion#:PULSe:WIDTh")
    function_duty = replace(duty, pattern="[SOURce#]:FUNCtion#:PULSe:DCYCle")
    function_hold = replace(hold, pattern="[SOURce#]:FUNCtion#:PULSe:HOLD")
    function_leading = replace(leading, pattern="[SOURce#]:FUNCtion#:PULSe:TRANsition[:LEADing]")
    function_trailing = replace(trailing, pattern="[SOURce#]:FUNCtion#:PULSe:TRANsition:TRAiling")
    function_trailing_auto = replace(trailing_auto, pattern="[SOURce#]:FUNCtion#:PULSe:TRANsition:TRAiling:AUTO")

    square_duty = field_setting("[SOURce#]:FUNCtion#:SQUare:DCYCle", real(None, 0, 100, 50), "square_duty_pct",
                                "Square wave duty cycle, percent (each part at least the minimum width).")
    ramp_symmetry = field_setting("[SOURce#]:FUNCtion#:RAMP:SYMMetry", real(None, 0, 100, 100),
                                  "ramp_symmetry_pct", "Ramp symmetry, percent of the period spent rising.")
    phase = field_setting("[SOURce#]:PHASe#[:ADJust]", real("DEG", -360, 360, 0), "phase_deg",
                          "Phase, degrees (kept as set: the bench's channels share one time base).")

    # -- levels and limits -------------------------------------------------------------------

    @setting("[SOURce#]:VOLTage#[:LEVel][:IMMediate][:AMPLitude]", _AMPLITUDE)
    def amplitude(self, *suffixes: int) -> float:
        """Amplitude into the set load, in the VOLTage:UNIT (Vpp after *RST)."""
        ch = self.channels[self.channel_of(*suffixes)]
        return amplitude_in_unit(ch, ch.amplitude_vpp)

    @amplitude.setter
    def amplitude(self, *args) -> None:
        *suffixes, value = args
        number = self.channel_of(*suffixes)
        self.change(number, amplitude_vpp=self._amplitude_vpp(self.channels[number], value))

    def _amplitude_vpp(self, ch: Channel, value: float) -> float:
        """An amplitude given in the channel's unit, as Vpp within the output's limits (-222)."""
        vpp = amplitude_vpp(ch, value)
        check_amplitude(vpp, ch.load_ohm, amplitude_min_vpp=AMPLITUDE_MIN_OPEN_VPP,
                        amplitude_max_vpp=AMPLITUDE_MAX_OPEN_VPP)
        return vpp

    voltage_unit = field_setting("[SOURce#]:VOLTage#:UNIT", Choice("VPP", "VRMS", "DBM"), "unit",
                                 "Amplitude unit (VPP; VRMS and DBM for sine, square and ramp).")

    @setting("[SOURce#]:VOLTage#[:LEVel][:IMMediate]:OFFSet", _LEVEL)
    def offset(self, *suffixes: int) -> float:
        """Offset into the set load, V."""
        return self.channels[self.channel_of(*suffixes)].offset_v

    @offset.setter
    def offset(self, *args) -> None:
        *suffixes, volts = args
        number = self.channel_of(*suffixes)
        self._window(number, volts)
        self.change(number, offset_v=volts)

    @setting("[SOURce#]:VOLTage#[:LEVel][:IMMediate]:HIGH", _LEVEL)
    def high(self, *suffixes: int) -> float:
        """High level, V; setting it keeps the low level."""
        return self.channels[self.channel_of(*suffixes)].high_v

    @high.setter
    def high(self, *args) -> None:
        *suffixes, volts = args
        number = self.channel_of(*suffixes)
        self._levels(number, volts, self.channels[number].low_v)

    @setting("[SOURce#]:VOLTage#[:LEVel][:IMMediate]:LOW", _LEVEL)
    def low(self, *suffixes: int) -> float:
        """Low level, V; setting it keeps the high level."""
        return self.channels[self.channel_of(*suffixes)].low_v

    @low.setter
    def low(self, *args) -> None:
        *suffixes, volts = args
        number = self.channel_of(*suffixes)
        self._levels(number, self.channels[number].high_v, volts)

    def _window(self, number: int, volts: float) -> None:
        if abs(volts) > WINDOW_OPEN_V * load_gain(self.channels[number].load_ohm) * (1 + 1e-12):
            raise out_of_range("level outside the output window")

    def _levels(self, number: int, high_v: float, low_v: float) -> None:
        self._window(number, high_v)
        self._window(number, low_v)
        if high_v <= low_v:
            raise conflict("high level must exceed low level")
        self.change(number, amplitude_vpp=high_v - low_v, offset_v=(high_v + low_v) / 2)

    limit_high = field_setting("[SOURce#]:VOLTage#:LIMit[:HIGH]", real("V", -9.99, 10, 5), "limit_high_v",
                               "Output high-level limit, V (enforced while LIM:STAT is on).")
    limit_low = field_setting("[SOURce#]:VOLTage#:LIMit:LOW", real("V", -10, 9.99, -5), "limit_low_v",
                              "Output low-level limit, V (enforced while LIM:STAT is on).")
    limits_on = field_setting("[SOURce#]:VOLTage#:LIMit:STATe", Boolean(), "limits_on",
                              "Output limits on (1): levels beyond them are refused.")

    # -- output, arming, triggering ----------------------------------------------------------

    output = field_setting("OUTPut#[:NORMal][:STATe]", Boolean(), "output", "Normal output on (1) or off (0).")
    polarity = field_setting("OUTPut#:POLarity", Choice("NORMal", "INVerted"), "polarity",
                             "Output polarity (NORM, INV).")

    load = load_setting(RealOrInfinity("OHM", 0.3, 1e6, 50, NR3),
                        "Expected load, ohm (INF: high Z); also OUTPut#:IMPedance:EXTernal.")

    external_impedance = replace(load, pattern="OUTPut#:IMPedance:EXTernal")

    arm_source = field_setting("ARM:SOURce#", Choice("IMMediate", "INTernal2", "EXTernal", "MANual"),
                               "arm_source", "Arming source (IMM: continuous; MAN: *TRG; EXT; INT2).")
    trigger_count = field_setting("TRIGger#:COUNt#", Integer(1, 2_147_483_647, 1), "trigger_count",
                                  "Pulses per arming event (burst length).")
    trigger_source = field_setting("TRIGger#:SOURce#", Choice("IMMediate", "INTernal2", "EXTernal"),
                                   "trigger_source", "Pulse trigger source within a burst (IMM, INT2, EXT).")

    @setting("TRACe:CHANnel[1][:STATe]", Boolean())
    def coupling(self) -> bool:
        """Channel coupling (1: channel 2 runs at channel 1's frequency); two-channel models."""
        self._two_channels()
        return self.frequency_coupled

    @coupling.setter
    def coupling(self, state: bool) -> None:
        self._two_channels()
        if state:
            self.commit(2, self.prepare(2, frequency_hz=self.channels[1].frequency_hz))
        self.frequency_coupled = state

    def _two_channels(self) -> None:
        if self.channel_total < 2:
            raise ScpiError(-113)

    # -- user waveforms ---------------------------------------------------------------------

    @setting("[SOURce#]:FUNCtion#:USER", Raw())
    def user_waveform(self, *suffixes: int) -> str:
        """The waveform the USER function plays: VOLATILE or a name in nonvolatile memory."""
        return self.channels[self.channel_of(*suffixes)].user_waveform

    @user_waveform.setter
    def user_waveform(self, *args) -> None:
        *suffixes, token = args
        name = waveform_name(token)
        if not self.memory.holds(name):
            raise ScpiError(-224, "Illegal parameter value;no such waveform")
        self.change(self.channel_of(*suffixes), user_waveform=name)

    @command("DATA#:DAC", Choice("VOLATILE"), Binary())
    def data_dac(self, number: int, _memory: str, block: bytes) -> None:
        """Load 16-bit DAC codes (-8191..+8191, byte order per FORMat:BORDer) into the channel's
        volatile memory."""
        self.memory.load_dac(number, block)
        self._show(number)                   # a channel playing its volatile waveform plays the new one

    @command("DATA#:COPY", Raw(), Choice("VOLATILE", optional=True))
    def data_copy(self, number: int, name: object, _source: str | None) -> None:
        """Copy the channel's volatile waveform into nonvolatile memory under a name."""
        self.memory.copy(number, waveform_name(name))

    @command("DATA#:DELete", Raw())
    def data_delete(self, number: int, token: object) -> None:
        """Delete a named waveform; refused (-221) while a channel plays it."""
        name = waveform_name(token)
        self._not_playing({name})
        self.memory.delete(name)
        self._forget({name})

    @command("DATA#:DELete:ALL")
    def data_delete_all(self, number: int) -> None:
        """Delete every named waveform; refused (-221) while a channel plays one."""
        names = set(self.memory.nonvolatile)
        self._not_playing(names)
        for name in names:
            self.memory.delete(name)
        self._forget(names)

    def _not_playing(self, names: set[str]) -> None:
        if any(ch.function == "USER" and ch.user_waveform in names for ch in self.channels.values()):
            raise conflict("waveform in use")

    def _forget(self, names: set[str]) -> None:
        """A deleted waveform that a channel had selected (not playing) falls back to VOLATILE."""
        for number, ch in self.channels.items():
            if ch.user_waveform in names:
                self.commit(number, replace(ch, user_waveform=VOLATILE))

    @query("DATA#:NVOLatile:CATalog")
    def data_catalog(self, number: int) -> str:
        """Names of the waveforms in nonvolatile memory, as strings ("" when there is none)."""
        return self.memory.catalog()

    @query("DATA#:NVOLatile:FREE")
    def data_free(self, number: int) -> int:
        """Free nonvolatile waveform slots."""
        return self.memory.free()

    @setting("FORMat:BORDer", Choice("NORMal", "SWAPped"))
    def byte_order(self) -> str:
        """Byte order of binary blocks: NORMal (most significant byte first) or SWAPped."""
        return "NORM" if self.memory.big_endian else "SWAP"

    @byte_order.setter
    def byte_order(self, order: str) -> None:
        self.memory.big_endian = order == "NORM"

    apply_sinusoid, apply_square, apply_ramp, apply_pulse = (_apply(shape) for shape in ("SINusoid", "SQUare", "RAMP",
                                                                                       "PULSe"))
    apply_noise, apply_dc, apply_user = (_apply(shape) for shape in ("NOISe", "DC", "USER"))


PERSONALITIES = (Keysight81160A,)
