"""Keysight 33500B / 33600A Trueform waveform generators (33511B ... 33622A).

Commands, forms and limits follow the 33500/33600 Series user's guide as the stock QCoDeS
`Keysight33xxx` drivers use them (`SOURce1:FUNCtion:PULSE:WIDTh 5e-08`, `OUTPut1 1`, ...).
A value outside its range is refused and changes nothing (-222). A new period that leaves no
room for the pulse, or a burst that no longer fits its internal period, makes the instrument
adjust the pulse (edges first, then width) or the burst period, as the user's guide describes
(`fit_to_period`); other conflicts are refused (-221). The channel's waveform is shown on the
bench front panel. Arbitrary waveforms (DATA:ARBitrary as values -1..+1, DATA:ARBitrary:DAC as
codes, each a list or a binary block in FORMat:BORDer order) go to each channel's volatile
memory; the one chosen with FUNCtion:ARBitrary plays to the chip at its sample rate.
"""

from __future__ import annotations

import numpy as np

from sim_backend.scpi.commands import command, setting
from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.ieee488 import Identity
from sim_backend.scpi.lexer import Quoted
from sim_backend.scpi.models._keysight_33500b_model import (
    AMPLITUDE_MAX_OPEN_VPP, AMPLITUDE_MIN_OPEN_VPP, DEFAULT_ARB, DEFAULT_ARB_POINTS, EDGE_MAX_S, MODELS,
    PANEL_FUNCTION, WINDOW_OPEN_V,
    Channel,
    amplitude_in_unit, amplitude_vpp, arb_points, check_channel, fit_to_period,
)
from sim_backend.scpi.models._keysight_common import (
    NR3, PANEL_BURST_CYCLES_MAX, IntegerOrInfinity, KeysightPulsePersonality, LoadDependent, RealOrInfinity,
    check_amplitude, conflict, field_setting, load_gain, load_setting, out_of_range, real,
)
from sim_backend.scpi.params import Boolean, Choice, Raw, Repeated, String

_EDGE = real("S", 2.9e-9, EDGE_MAX_S, 10e-9)   # the 33600A minimum; the 33500B's is checked per model
_LEVEL = LoadDependent("V", -5.0, 5.0, 0.0, NR3)


class Keysight33500B(KeysightPulsePersonality):
    """33500B (8.4 ns edges) and 33600A (2.9 ns edges), one or two channels."""

    models = tuple(MODELS)
    channel_nodes = ("SOUR", "OUTP", "TRIG")

    @classmethod
    def channel_count(cls, model: str, settings: dict) -> int:
        return MODELS[model].channels

    def __init__(self, world, role_name: str, model: str, settings: dict) -> None:
        self.spec = MODELS[model]
        self.identity = Identity("Keysight Technologies", self.spec.name, "MY00000000", "4.00-1.19-2.00-58-00")
        super().__init__(world, role_name, model, settings)

    def reset(self) -> None:
        self.channels = {n: Channel() for n in range(1, self.channel_total + 1)}
        self.sync_output, self.sync_source = True, "CH1"
        self.trigger_output = False
        # Each channel's volatile waveform memory: name as loaded -> points in full scale.
        self.arb_memory: dict[int, dict[str, np.ndarray]] = {n: {} for n in self.channels}
        self.big_endian = True                  # FORMat:BORDer NORMal: most significant byte first
        self.display_on, self.display_text = True, ""
        for number in self.channels:
            self._show(number)

    def fit(self, channel: Channel, changed: set[str]) -> Channel:
        return fit_to_period(self.spec, channel, changed)

    def validate(self, channel: Channel) -> None:
        check_channel(self.spec, channel)

    def _show(self, number: int) -> None:
        ch = self.channels[number]
        if ch.function == "ARB":
            self._show_arb(number)
            return
        shape = PANEL_FUNCTION.get(ch.function, "DC")
        square = shape == "SQU"
        self.show(number, function=shape, amplitude_vpp=ch.amplitude_vpp, offset_v=ch.offset_v,
                  frequency_hz=ch.frequency_hz,
                  pulse_width_s=ch.period_s * ch.square_duty_pct / 100 if square else ch.width_s,
                  lead_edge_s=self.spec.edge_min_s if square else ch.lead_s,
                  trail_edge_s=self.spec.edge_min_s if square else ch.trail_s,
                  **_timing_and_output(ch))

    def _show_arb(self, number: int) -> None:
        """An arbitrary waveform on the panel, played at its sample rate. With TRIGger advance
        each trigger steps one point, which the bench does not model: the output holds the
        first point."""
        ch = self.channels[number]
        points = self._arb_points(number, ch.arb_name)
        playing = ch.arb_advance == "SRAT"
        sample_s = 1.0 / ch.arb_srate_hz
        self.show(number, function="ARB" if playing else "DC", amplitude_vpp=ch.amplitude_vpp,
                  offset_v=ch.offset_v if playing else ch.offset_v + points[0] * ch.amplitude_vpp / 2,
                  frequency_hz=ch.arb_srate_hz / points.size, arb_points=tuple(points.tolist()), arb_sample_rate_hz=ch.arb_srate_hz,
                  # Filter OFF: the DAC steps from point to point in the model's edge time.
                  arb_step_s=min(self.spec.edge_min_s, 0.5 * sample_s) if ch.arb_filter == "OFF" else 0.0,
                  **_timing_and_output(ch))

    def _arb_points(self, number: int, name: str) -> np.ndarray:
        loaded = {label.upper(): points for label, points in self.arb_memory[number].items()}
        return loaded.get(name.upper(), DEFAULT_ARB_POINTS)

    # -- waveform ----------------------------------------------------------------------------

    function = field_setting(
        "[SOURce#]:FUNCtion[:SHAPe]", Choice("SINusoid", "SQUare", "TRIangle", "RAMP", "PULSe", "PRBS", "NOISe",
                                             "ARB", "DC"),
        "function", "Waveform shape (SIN, SQU, TRI, RAMP, PULS, PRBS, NOIS, ARB, DC).")

    @setting("[SOURce#]:FREQuency[:CW]", real("HZ", 1e-6, 120e6, 1e3))
    def frequency(self, number: int) -> float:
        """Output frequency, Hz (the pulse period is its inverse)."""
        return self.channels[number].frequency_hz

    @frequency.setter
    def frequency(self, number: int, hertz: float) -> None:
        if hertz > self.spec.frequency_max_hz:
            raise out_of_range("frequency above model maximum")
        self.change(number, frequency_hz=hertz)

    @setting("[SOURce#]:FUNCtion:PULSe:PERiod", real("S", 1 / 120e6, 1e6, 1e-3))
    def pulse_period(self, number: int) -> float:
        """Pulse period, s (the same setting as 1/frequency)."""
        return self.channels[number].period_s

    @pulse_period.setter
    def pulse_period(self, number: int, seconds: float) -> None:
        self.frequency.set_handler(self, number, 1.0 / seconds)  # type: ignore[misc]

    frequency_mode = field_setting("[SOURce#]:FREQuency:MODE", Choice("CW", "LIST", "SWEep", "FIXed"),
                                   "frequency_mode", "Frequency mode (CW, LIST, SWE, FIX).")
    phase = field_setting("[SOURce#]:PHASe", real("DEG", -360, 360, 0), "phase_deg", "Phase offset, degrees.")

    @command("[SOURce#]:PHASe:SYNChronize")
    def phase_synchronize(self, number: int) -> None:
        """Restart both channels in phase (the bench's channels share one time base already)."""

    @setting("[SOURce#]:VOLTage[:LEVel][:IMMediate][:AMPLitude]", LoadDependent("V", 1e-3, 10.0, 0.1, NR3))
    def amplitude(self, number: int) -> float:
        """Amplitude into the set load, in the VOLTage:UNIT (Vpp, Vrms or dBm)."""
        ch = self.channels[number]
        return amplitude_in_unit(ch, ch.amplitude_vpp)

    @amplitude.setter
    def amplitude(self, number: int, value: float) -> None:
        ch = self.channels[number]
        vpp = amplitude_vpp(ch, value)
        check_amplitude(vpp, ch.load_ohm, amplitude_min_vpp=AMPLITUDE_MIN_OPEN_VPP,
                        amplitude_max_vpp=AMPLITUDE_MAX_OPEN_VPP)
        self.change(number, amplitude_vpp=vpp)

    @setting("[SOURce#]:VOLTage[:LEVel][:IMMediate]:OFFSet", _LEVEL)
    def offset(self, number: int) -> float:
        """DC offset into the set load, V."""
        return self.channels[number].offset_v

    @offset.setter
    def offset(self, number: int, volts: float) -> None:
        if abs(volts) > WINDOW_OPEN_V * load_gain(self.channels[number].load_ohm) * (1 + 1e-12):
            raise out_of_range("offset")
        self.change(number, offset_v=volts)

    @setting("[SOURce#]:VOLTage[:LEVel][:IMMediate]:HIGH", _LEVEL)
    def high(self, number: int) -> float:
        """High level, V; setting it keeps the low level."""
        ch = self.channels[number]
        return ch.offset_v + ch.amplitude_vpp / 2

    @high.setter
    def high(self, number: int, volts: float) -> None:
        self._levels(number, volts, self.low.query_handler(self, number))  # type: ignore[misc]

    @setting("[SOURce#]:VOLTage[:LEVel][:IMMediate]:LOW", _LEVEL)
    def low(self, number: int) -> float:
        """Low level, V; setting it keeps the high level."""
        ch = self.channels[number]
        return ch.offset_v - ch.amplitude_vpp / 2

    @low.setter
    def low(self, number: int, volts: float) -> None:
        self._levels(number, self.high.query_handler(self, number), volts)  # type: ignore[misc]

    def _levels(self, number: int, high_v: float, low_v: float) -> None:
        if high_v <= low_v:
            raise conflict("high level must exceed low level")
        self.change(number, amplitude_vpp=high_v - low_v, offset_v=(high_v + low_v) / 2)

    voltage_unit = field_setting("[SOURce#]:VOLTage:UNIT", Choice("VPP", "VRMS", "DBM"), "unit",
                                 "Amplitude unit (VPP, VRMS, DBM).")

    # -- pulse, square, ramp -----------------------------------------------------------------

    @setting("[SOURce#]:FUNCtion:PULSe:WIDTh", real("S", 5e-9, 1e6, 100e-6))
    def pulse_width(self, number: int) -> float:
        """Pulse width at 50 % of the edges, s."""
        return self.channels[number].width_s

    @pulse_width.setter
    def pulse_width(self, number: int, seconds: float) -> None:
        if seconds < self.spec.width_min_s:
            raise out_of_range("pulse width below model minimum")
        self.change(number, width_s=seconds)

    @setting("[SOURce#]:FUNCtion:PULSe:DCYCle", real(None, 0, 100, 10))
    def pulse_duty(self, number: int) -> float:
        """Pulse duty cycle, percent of the period."""
        return self.channels[number].duty_pct

    @pulse_duty.setter
    def pulse_duty(self, number: int, percent: float) -> None:
        ch = self.channels[number]
        self.change(number, width_s=ch.period_s * percent / 100)

    hold = field_setting("[SOURce#]:FUNCtion:PULSe:HOLD", Choice("WIDTh", "DCYCle"), "hold",
                         "What a period change keeps: the pulse WIDTh or the DCYCle.")

    @setting("[SOURce#]:FUNCtion:PULSe:TRANsition[:BOTH]", _EDGE)
    def transition(self, number: int) -> float:
        """Both edge times (10-90 %), s; the query answers the leading edge."""
        return self.channels[number].lead_s

    @transition.setter
    def transition(self, number: int, seconds: float) -> None:
        self.change(number, lead_s=self._edge(seconds), trail_s=seconds)

    @setting("[SOURce#]:FUNCtion:PULSe:TRANsition:LEADing", _EDGE)
    def leading(self, number: int) -> float:
        """Leading edge time (10-90 %), s."""
        return self.channels[number].lead_s

    @leading.setter
    def leading(self, number: int, seconds: float) -> None:
        self.change(number, lead_s=self._edge(seconds))

    @setting("[SOURce#]:FUNCtion:PULSe:TRANsition:TRAiling", _EDGE)
    def trailing(self, number: int) -> float:
        """Trailing edge time (90-10 %), s."""
        return self.channels[number].trail_s

    @trailing.setter
    def trailing(self, number: int, seconds: float) -> None:
        self.change(number, trail_s=self._edge(seconds))

    def _edge(self, seconds: float) -> float:
        if seconds < self.spec.edge_min_s * (1 - 1e-9):
            raise out_of_range("edge time below model minimum")
        return seconds

    square_duty = field_setting("[SOURce#]:FUNCtion:SQUare:DCYCle", real(None, 0.01, 99.99, 50),
                                "square_duty_pct", "Square wave duty cycle, percent.")
    ramp_symmetry = field_setting("[SOURce#]:FUNCtion:RAMP:SYMMetry", real(None, 0, 100, 100),
                                  "ramp_symmetry_pct", "Ramp symmetry, percent of the period spent rising.")

    # -- burst and trigger -------------------------------------------------------------------

    burst = field_setting("[SOURce#]:BURSt:STATe", Boolean(), "burst", "Burst mode on (1) or off (0).")
    burst_mode = field_setting("[SOURce#]:BURSt:MODE", Choice("TRIGgered", "GATed"), "burst_mode",
                               "Burst mode: TRIG (N cycles per trigger) or GAT (gated).")
    burst_cycles = field_setting("[SOURce#]:BURSt:NCYCles", IntegerOrInfinity(1, 100_000_000, 1),
                                 "burst_cycles", "Cycles per burst (INF: until the trigger source stops).")
    burst_phase = field_setting("[SOURce#]:BURSt:PHASe", real("DEG", -360, 360, 0), "burst_phase_deg",
                                "Start phase of a burst, degrees.")
    burst_period = field_setting("[SOURce#]:BURSt:INTernal:PERiod", real("S", 1e-6, 8e3, 10e-3),
                                 "burst_period_s", "Burst repetition period with the IMMediate trigger, s.")
    gate_polarity = field_setting("[SOURce#]:BURSt:GATE:POLarity", Choice("NORMal", "INVerted"),
                                  "gate_polarity", "Gate polarity of a gated burst (NORM, INV).")
    trigger_source = field_setting("TRIGger#:SOURce", Choice("IMMediate", "EXTernal", "TIMer", "BUS"),
                                   "trigger_source", "Trigger source (IMM, EXT, TIM, BUS: *TRG).")
    trigger_slope = field_setting("TRIGger#:SLOPe", Choice("POSitive", "NEGative"), "trigger_slope",
                                  "External trigger edge (POS, NEG).")
    trigger_count = field_setting("TRIGger#:COUNt", IntegerOrInfinity(1, 1_000_000, 1), "trigger_count",
                                  "Triggers accepted before returning to idle.")
    trigger_delay = field_setting("TRIGger#:DELay", real("S", 0, 1e3, 0), "trigger_delay_s",
                                  "Delay from trigger to output, s.")
    trigger_timer = field_setting("TRIGger#:TIMer", real("S", 1e-6, 8e3, 1), "trigger_timer_s",
                                  "Period of the TIMer trigger source, s.")

    @command("TRIGger#[:IMMediate]")
    def trigger_now(self, number: int) -> None:
        """Trigger this channel now, whatever its trigger source."""
        channel = self.panel.channels[number]
        if channel.output_enabled and channel.burst_enabled:
            channel.trigger_times_s.append(self.world.now_s())

    # -- output ------------------------------------------------------------------------------

    output = field_setting("OUTPut#[:STATe]", Boolean(), "output", "Output on (1) or off (0).")
    polarity = field_setting("OUTPut#:POLarity", Choice("NORMal", "INVerted"), "polarity",
                             "Output polarity (NORM, INV: inverted about the offset).")

    load = load_setting(RealOrInfinity("OHM", 1, 10e3, 50, NR3),
                        "Load the levels are specified into, ohm (INF: high Z, answered 9.9E+37).")

    # -- arbitrary waveforms: each channel's volatile memory, played to the chip ---------------

    @setting("[SOURce#]:FUNCtion:ARBitrary", Raw())
    def arb_file(self, number: int) -> str:
        """Arbitrary waveform played from volatile memory (a built-in one after *RST); its
        name quoted or not, as the user's guide's examples write it both ways."""
        return String().format(self.channels[self.channel_of(number)].arb_name)

    @arb_file.setter
    def arb_file(self, number: int, token: object) -> None:
        name = _arb_name(token)
        channel = self.channel_of(number)
        if name.upper() not in {n.upper() for n in (DEFAULT_ARB, *self.arb_memory[channel])}:
            raise ScpiError(-224, "Illegal parameter value;arbitrary waveform not in volatile memory")
        self.change(channel, arb_name=name)

    arb_advance = field_setting("[SOURce#]:FUNCtion:ARBitrary:ADVance", Choice("TRIGger", "SRATe"),
                                "arb_advance", "ARB point advance: SRATe (sample clock) or TRIGger.")
    arb_filter = field_setting("[SOURce#]:FUNCtion:ARBitrary:FILTer", Choice("NORMal", "STEP", "OFF"),
                               "arb_filter", "ARB reconstruction filter: NORMal, STEP or OFF.")
    arb_srate = field_setting("[SOURce#]:FUNCtion:ARBitrary:SRATe", real("SA/S", 1e-6, 1e9, 40e3),
                              "arb_srate_hz", "ARB sample rate, Sa/s.")

    @command("[SOURce#]:DATA:ARBitrary", Raw(), Repeated(Raw()))
    def data_arb(self, number: int, name: object, values: tuple) -> None:
        """Load an arbitrary waveform into the channel's volatile memory: a name and its points
        (values -1 to +1, as a list or a binary block of floats)."""
        self._load_arb(number, name, arb_points(values, dac=False, big_endian=self.big_endian))

    @command("[SOURce#]:DATA:ARBitrary:DAC", Raw(), Repeated(Raw()))
    def data_arb_dac(self, number: int, name: object, values: tuple) -> None:
        """Load an arbitrary waveform as DAC codes (-32767 to +32767, a list or a block of int16)."""
        self._load_arb(number, name, arb_points(values, dac=True, big_endian=self.big_endian))

    def _load_arb(self, number: int, name: object, points: np.ndarray) -> None:
        label = _arb_name(name)
        channel = self.channel_of(number)
        memory = self.arb_memory[channel]
        for existing in [n for n in memory if n.upper() == label.upper()]:
            del memory[existing]
        memory[label] = points
        if self.channels[channel].arb_name.upper() == label.upper():
            self._show(channel)                # the waveform playing now is the one replaced

    @command("[SOURce#]:DATA:VOLatile:CLEar")
    def clear_arb_memory(self, number: int) -> None:
        """Clear the channel's volatile waveform memory; it plays the default waveform again."""
        channel = self.channel_of(number)
        self.arb_memory[channel].clear()
        self.change(channel, arb_name=DEFAULT_ARB)

    @setting("FORMat:BORDer", Choice("NORMal", "SWAPped"))
    def byte_order(self) -> str:
        """Byte order of binary blocks: NORMal (most significant byte first) or SWAPped."""
        return "NORM" if self.big_endian else "SWAP"

    @byte_order.setter
    def byte_order(self, order: str) -> None:
        self.big_endian = order == "NORM"

    # -- front panel: nothing reaches the chip -------------------------------------------------

    @command("SYSTem:BEEPer[:IMMediate]")
    def beep(self) -> None:
        """Sound one beep."""

    @setting("DISPlay[:STATe]", Boolean())
    def display(self) -> bool:
        """Front-panel display on (1) or off (0)."""
        return self.display_on

    @display.setter
    def display(self, state: bool) -> None:
        self.display_on = state

    @setting("DISPlay:TEXT", String())
    def display_message(self) -> str:
        """A message shown across the display ("" after *RST or DISPlay:TEXT:CLEar)."""
        return String().format(self.display_text)

    @display_message.setter
    def display_message(self, text: str) -> None:
        self.display_text = text

    @command("DISPlay:TEXT:CLEar")
    def clear_display_message(self) -> None:
        """Clear the message on the display."""
        self.display_text = ""

    @setting("OUTPut:TRIGger[:STATe]", Boolean())
    def trigger_out(self) -> bool:
        """Trigger out connector on (1) or off (0)."""
        return self.trigger_output

    @trigger_out.setter
    def trigger_out(self, state: bool) -> None:
        self.trigger_output = state

    @setting("OUTPut:SYNC[:STATe]", Boolean())
    def sync(self) -> bool:
        """Sync output connector on (1) or off (0)."""
        return self.sync_output

    @sync.setter
    def sync(self, state: bool) -> None:
        self.sync_output = state

    @setting("OUTPut:SYNC:SOURce", Choice("CH1", "CH2"))
    def sync_channel(self) -> str:
        """Channel the sync output follows (two-channel models)."""
        if self.channel_total < 2:
            raise ScpiError(-113)
        return self.sync_source

    @sync_channel.setter
    def sync_channel(self, source: str) -> None:
        if self.channel_total < 2:
            raise ScpiError(-113)
        self.sync_source = source


def _timing_and_output(ch: Channel) -> dict:
    """The panel fields every shape shows alike: burst, trigger and output."""
    # A gated burst waits for a gate the bench never gives: shown as a burst nobody triggers.
    return dict(burst_enabled=ch.burst, burst_cycles=int(min(ch.burst_cycles, PANEL_BURST_CYCLES_MAX)),
                trigger_source="EXT" if ch.burst_mode == "GAT" else ch.trigger_source,
                output_enabled=ch.output, inverted=ch.polarity == "INV", load_ohm=ch.load_ohm)


def _arb_name(token: object) -> str:
    """A waveform's name, quoted ("my_arb") or not (my_arb); -224 for anything else."""
    name = token.text if isinstance(token, Quoted) else token
    if not isinstance(name, str) or not name:
        raise ScpiError(-224)
    return name


PERSONALITIES = (Keysight33500B,)
