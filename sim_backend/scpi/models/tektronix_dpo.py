"""Tektronix MSO/DPO5000, DPO7000 and DPO/MSO70000 scopes: the SCPI the stock QCoDeS driver speaks.

Horizontal: in AUTO mode the scale (s/div, 10 div) and record length set the sample rate; in
CONStant mode scale and sample rate set the record length; in MANual mode sample rate and record
length set the scale. The record length answers to `HORizontal:MODE:RECOrdlength` and to
`HORizontal:RECOrdlength` (short form `HOR:RECO`), set and query alike. `HORizontal:POSition`
is the % of the record before the trigger. Vertical: `CH#:SCAle` V/div, the 8-bit ADC spans
10.24 div (25 levels/div), centred at OFFSet - POSition·SCAle. Errors go to the event queue
(`EVMsg?`, `ALLEv?`, `*ESR?`); these scopes have no SYSTem:ERRor. Waveform transfer lives in
_tektronix_dpo_waveform.py, measurement slots and the rest of the panel in _tektronix_dpo_panel.py.
"""

from __future__ import annotations

from dataclasses import replace

from sim_backend.scpi.commands import command, query, setting
from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.ieee488 import Identity
from sim_backend.scpi.models._scope_common import ScopeModel, channel_field, stored
from sim_backend.scpi.models._tektronix_dpo_panel import NR3, LongChoice as Choice
from sim_backend.scpi.models._tektronix_dpo_waveform import ADC_DIVISIONS, TekWaveformTransfer
from sim_backend.scpi.params import Boolean, Integer, Real



def _model(name: str, bandwidth_hz: float, rate_hz: float, points: int) -> ScopeModel:
    return ScopeModel(Identity("TEKTRONIX", name, "C000000", "CF:91.1CT FV:10.8.3 Build 3"),
                      4, rate_hz, bandwidth_hz, points)


class TektronixDPO(TekWaveformTransfer):
    """MSO/DPO5000, DPO7000, DPO/MSO70000: 4 channels, 8-bit ADC, RUN/STOP and single sequence."""

    model_table = {
        "tektronix_dpo7254": _model("DPO7254", 2.5e9, 40e9, 400_000_000),
        "tektronix_dpo7254c": _model("DPO7254C", 2.5e9, 40e9, 500_000_000),
        "tektronix_dpo7104c": _model("DPO7104C", 1e9, 20e9, 500_000_000),
        "tektronix_mso5104": _model("MSO5104", 1e9, 10e9, 250_000_000),
        "tektronix_mso5104b": _model("MSO5104B", 1e9, 10e9, 250_000_000),
        "tektronix_dpo5104b": _model("DPO5104B", 1e9, 10e9, 250_000_000),
        "tektronix_dpo70404c": _model("DPO70404C", 4e9, 25e9, 250_000_000),
        "tektronix_dpo70804c": _model("DPO70804C", 8e9, 25e9, 250_000_000),
    }
    models = tuple(model_table)

    def reset(self) -> None:
        self.horizontal_mode, self.scale_s, self.rate_hz, self.length = "AUTO", 100e-9, 5e9, 5000
        self.position_pct, self.roll = 50.0, "AUTO"
        self.volts_per_div = {n: 0.1 for n in range(1, 5)}
        self.offsets = {n: 0.0 for n in range(1, 5)}
        self.positions = {n: 0.0 for n in range(1, 5)}
        self.terminations = {n: 1e6 for n in range(1, 5)}
        self.bandwidths = {n: self.spec.analog_bandwidth_hz for n in range(1, 5)}
        self.couplings = {n: "DC" for n in range(1, 5)}
        self.thresholds = {n: 0.0 for n in range(1, 5)}
        self.vterm = {n: 0.0 for n in range(1, 5)}
        self.data_source, self.encoding, self.format, self.width, self.byte_order = "CH1", "BIN", "RI", 1, "MSB"
        self.start, self.stop_index = 1, 5000
        self.acquire_mode, self.average_count, self.stop_after = "SAM", 16, "RUNST"
        self.vertical_at_capture: dict[int, tuple[float, float]] = {}
        self.reset_panel_commands()
        for number, channel in self.panel.channels.items():
            channel.displayed = number == 1
        self.arm(continuous=True)

    # -- derived settings ----------------------------------------------------------------------

    def horizontal(self) -> tuple[float, float, int]:
        """(scale s/div, sample rate Hz, record length) as the horizontal mode derives them."""
        top_rate, top_length = self.spec.max_sample_rate_hz, self.spec.max_record_length
        if self.horizontal_mode == "AUTO":
            length = min(self.length, int(round(10 * self.scale_s * top_rate)))
            return self.scale_s, length / (10 * self.scale_s), max(length, 2)
        if self.horizontal_mode == "CONS":
            length = min(int(round(10 * self.scale_s * self.rate_hz)), top_length)
            return self.scale_s, self.rate_hz, max(length, 2)
        return self.length / (10 * self.rate_hz), self.rate_hz, self.length

    def sync_panel(self) -> None:
        panel = self.panel
        _, panel.sample_rate_hz, panel.record_length = self.horizontal()
        panel.first_sample_s = -self.position_pct / 100 * panel.record_length / panel.sample_rate_hz
        panel.average_count = self.average_count if self.acquire_mode == "AVE" else 1
        for number, channel in panel.channels.items():
            channel.range_v = ADC_DIVISIONS * self.volts_per_div[number]
            channel.offset_v = self.offsets[number] - self.positions[number] * self.volts_per_div[number]
            full = self.bandwidths[number] >= self.spec.analog_bandwidth_hz
            channel.bandwidth_limit_hz = None if full else self.bandwidths[number]
        self.sync_trigger()

    def _execute(self, message: bytes) -> None:
        super()._execute(message)
        self.sync_panel()

    def on_acquired(self) -> None:
        self.vertical_at_capture = {n: (self.offsets[n], self.volts_per_div[n]) for n in self.offsets}

    # -- horizontal ----------------------------------------------------------------------------

    horizontal_mode_setting = stored("HORizontal:MODE", Choice("AUTO", "CONStant", "MANual"), "horizontal_mode",
                                     "Which of scale, sample rate and record length follows the others.")
    horizontal_position = stored("HORizontal:POSition", Real(None, 0.0, 100.0, fmt=NR3), "position_pct",
                                 "Share of the record before the trigger, %.")
    horizontal_roll = stored("HORizontal:ROLL", Choice("AUTO", "ON", "OFF"), "roll", "Roll mode.")

    @setting("HORizontal:MODE:SCAle", Real("S", 20e-12, 1000.0, fmt=NR3))
    def horizontal_scale(self) -> float:
        """Time per division (10 divisions), s; read-only in MANual mode."""
        return self.horizontal()[0]

    @horizontal_scale.setter
    def horizontal_scale(self, seconds: float) -> None:
        if self.horizontal_mode == "MAN":
            raise ScpiError(-221, "Settings conflict;scale is set by record length in manual mode")
        self.scale_s = seconds

    @setting("HORizontal:MODE:SAMPLERate", Real("HZ", 1.0, None, fmt=NR3))
    def horizontal_rate(self) -> float:
        """Sample rate, Hz; follows scale and record length in AUTO mode."""
        return self.horizontal()[1]

    @horizontal_rate.setter
    def horizontal_rate(self, hertz: float) -> None:
        if self.horizontal_mode == "AUTO":
            raise ScpiError(-221, "Settings conflict;sample rate follows the scale in auto mode")
        if hertz > self.spec.max_sample_rate_hz:
            raise ScpiError(-222)
        self.rate_hz = hertz

    @setting("HORizontal:MODE:RECOrdlength", Integer(500, None))
    def record_length(self) -> int:
        """Record length, samples; follows scale and sample rate in CONStant mode."""
        return self.horizontal()[2]

    @record_length.setter
    def record_length(self, points: int) -> None:
        if self.horizontal_mode == "CONS":
            raise ScpiError(-221, "Settings conflict;record length follows the scale in constant mode")
        if points > self.spec.max_record_length:
            raise ScpiError(-222)
        self.length = points

    # The programmer manual lists both headers for the one record length.
    horizontal_record_length = replace(record_length, pattern="HORizontal:RECOrdlength")

    @query("HORizontal[:MAIn]:UNIts")
    def horizontal_units(self) -> str:
        """Horizontal unit."""
        return '"s"'

    # -- vertical ------------------------------------------------------------------------------

    channel_scale = stored("CH#:SCAle", Real("V", 1e-3, 10.0, fmt=NR3), "volts_per_div", "Vertical scale, V/div.")
    channel_offset = stored("CH#:OFFSet", Real("V", -10.0, 10.0, fmt=NR3), "offsets",
                            "Offset: the voltage at the graticule position, V.")
    channel_position = stored("CH#:POSition", Real(None, -5.0, 5.0, fmt=NR3), "positions",
                              "Position of the offset on the screen, div.")
    channel_coupling = stored("CH#:COUPling", Choice("AC", "DC", "DCREJect", "GND"), "couplings", "Input coupling.")
    channel_threshold = stored("CH#:THRESHold", Real("V", -10.0, 10.0, fmt=NR3), "thresholds",
                               "Analog-to-digital threshold (MSO), V.")
    channel_vterm = stored("CH#:VTERm:BIAS", Real("V", -3.5, 3.5, fmt=NR3), "vterm", "Termination bias, V.")
    channel_select = channel_field("SELect:CH#", Boolean(), "displayed", "Channel on (acquired) or off.")

    @setting("CH#:TERmination", Real("OHM", 1.0, 1e7, fmt=NR3))
    def termination(self, channel: int) -> float:
        """Input termination: 50 or 1E+6, ohm."""
        return self.terminations[channel]

    @termination.setter
    def termination(self, channel: int, ohms: float) -> None:
        if ohms not in (50.0, 1e6):
            raise ScpiError(-222)
        self.terminations[channel] = ohms

    @setting("CH#:BANdwidth", Real("HZ", 20e6, None, fmt=NR3))
    def bandwidth(self, channel: int) -> float:
        """Bandwidth limit, Hz (FULl or MAX: the analog bandwidth)."""
        return self.bandwidths[channel]

    @bandwidth.setter
    def bandwidth(self, channel: int, hertz: float) -> None:
        if hertz > self.spec.analog_bandwidth_hz * 1.0001:
            raise ScpiError(-222)
        self.bandwidths[channel] = hertz

    @command("CH#:BANdwidth:FULl")
    def bandwidth_full(self, channel: int) -> None:
        """Full bandwidth."""
        self.bandwidths[channel] = self.spec.analog_bandwidth_hz

    # -- acquisition ---------------------------------------------------------------------------

    acquire_mode_setting = stored("ACQuire:MODe", Choice("SAMple", "PEAKdetect", "HIRes", "AVErage", "WFMDB",
                                                         "ENVelope"), "acquire_mode", "Acquisition mode.")
    average_setting = stored("ACQuire:NUMAVg", Integer(2, 10_000), "average_count",
                             "Records averaged in AVErage mode.")
    stop_after_setting = stored("ACQuire:STOPAfter", Choice("RUNSTop", "SEQuence"), "stop_after",
                                "RUNSTop: acquire until stopped; SEQuence: one acquisition per start.")

    @setting("ACQuire:STATE", Choice("RUN", "STOP", "ON", "OFF", "1", "0"))
    def acquire_state(self) -> str:
        """Start (RUN, ON, 1) or stop (STOP, OFF, 0); answers 1 while acquiring."""
        self.complete()
        return "1" if self.panel.state == "armed" else "0"

    @acquire_state.setter
    def acquire_state(self, state: str) -> None:
        if state in ("RUN", "ON", "1"):
            self.arm(continuous=self.stop_after == "RUNST")
        else:
            self.panel.stop()

    @query("ACQuire:NUMACq")
    def acquisitions(self) -> int:
        """Acquisitions completed."""
        self.complete()
        return self.panel.acquisitions_completed


PERSONALITIES = (TektronixDPO,)
