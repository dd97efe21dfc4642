"""Keysight Infiniium as the oscilloscope: the stock QCoDeS driver plus the role verbs.

Commands (Infiniium Oscilloscopes Programmer's Guide, "Root Level", "Channel", "Timebase",
"Trigger", "Acquire" and "Waveform" command chapters): `:STOP`, `:SINGle`, `:ASTate?`,
`:CHANnel<n>:DISPlay|RANGe|OFFSet`, `:ACQuire:SRATe:ANALog`, `:ACQuire:POINts:ANALog`,
`:ACQuire:AVERage[:COUNt]`, `:TIMebase:REFerence|RANGe|POSition`,
`:TRIGger:EDGE:SOURce|SLOPe`, `:TRIGger:LEVel CHANnel<n>,<level>`, `:TRIGger:SWEep`,
`:WAVeform:SOURce|FORMat|BYTeorder|STReaming`, `:WAVeform:PREamble?`, `:WAVeform:DATA?`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qcodes.instrument_drivers.Keysight import KeysightInfiniium as _StockInfiniium

from drivers._scope import AcquisitionSettings, ScopeRole, ranges_unseen_rules
from drivers._write_guard import Admission, Rule, number
from contracts.envelope import Envelope
from contracts.records import Quantized


class KeysightInfiniium(ScopeRole, _StockInfiniium):
    """Oscilloscope role on a Keysight Infiniium (S-Series, MXR/EXR)."""

    def __init__(self, name: str, address: str, *, envelope: Envelope | None = None, **kwargs: Any) -> None:
        self.envelope = envelope or Envelope("oscilloscope")
        kwargs.setdefault("silence_pyvisapy_warning", True)
        super().__init__(name, address, **kwargs)
        self.remember_address(address, kwargs.get("visalib"))
        self.channel_count = self.no_channels
        # Definite-length blocks: a #0 block ends only at LF+END, which a socket cannot mark.
        self.write(":WAVeform:STReaming OFF")

    def _write_acquisition(self, s: AcquisitionSettings) -> None:
        self.write(":STOP")
        shown = set(s.channel_ranges_v) | {s.trigger_channel}
        for channel in range(1, self.channel_count + 1):
            self.write(f":CHANnel{channel}:DISPlay {'ON' if channel in shown else 'OFF'}")
        for channel, range_v in sorted(s.channel_ranges_v.items()):
            self.write(f":CHANnel{channel}:RANGe {range_v:.6g}")
            self.write(f":CHANnel{channel}:OFFSet 0")
        self.write(f":ACQuire:SRATe:ANALog {s.sample_rate_hz:.9g}")
        self.write(f":ACQuire:POINts:ANALog {s.record_length:d}")
        # The record spans the screen: left edge (the reference) at -pretrigger from the trigger.
        self.write(":TIMebase:REFerence LEFT")
        self.write(f":TIMebase:RANGe {s.duration_s:.9g}")
        self.write(f":TIMebase:POSition {-s.pretrigger_s:.9g}")
        self.write(f":TRIGger:EDGE:SOURce CHANnel{s.trigger_channel}")
        self.write(f":TRIGger:EDGE:SLOPe {'POSitive' if s.trigger_slope == 'rising' else 'NEGative'}")
        self.write(f":TRIGger:LEVel CHANnel{s.trigger_channel},{s.trigger_level_v:.6g}")
        self.write(":TRIGger:SWEep TRIGgered")
        if s.average_count > 1:
            self.write(f":ACQuire:AVERage:COUNt {s.average_count:d}")
            self.write(":ACQuire:AVERage ON")
        else:
            self.write(":ACQuire:AVERage OFF")
        self.write(":WAVeform:FORMat WORD")
        self.write(":WAVeform:BYTeorder LSBFirst")
        self.write(":WAVeform:STReaming OFF")

    def _write_arm(self) -> None:
        self.write(":SINGle")

    def _write_stop(self) -> None:
        self.write(":STOP")

    def _read_acquired(self) -> bool:
        return self.ask(":ASTate?").strip().upper() == "ADONE"

    def _read_record(self, channel: int) -> tuple[np.ndarray, Quantized]:
        # The source and its preamble in one exchange, the data in a second: the source written
        # alone was a round trip of its own for every channel of every capture.
        points, x_increment_s, x_origin_s, y_increment_v, y_origin_v = self.ask_parsed(
            f":WAVeform:SOURce CHANnel{channel};:WAVeform:PREamble?", _preamble)
        codes = self._read_int16_block(":WAVeform:DATA?", channel, points, "its preamble")
        return x_origin_s + np.arange(points) * x_increment_s, Quantized(codes, y_increment_v, y_origin_v)

    # --- the write guard's rule ---------------------------------------------------------------
    def write_rules(self) -> list[Rule]:
        def channel_range(admission: Admission) -> None:
            self.envelope.check_at_most("input_range_max_v", number(admission, 0, "input range", "V"),
                                        f"channel {admission.channel} input range", "V")

        def channel_scale(admission: Admission) -> None:
            # The scale sets the range too: full scale is 8 divisions.
            range_v = SCREEN_DIVISIONS * number(admission, 0, "vertical scale", "V/div")
            self.envelope.check_at_most("input_range_max_v", range_v,
                                        f"channel {admission.channel} input range (8 x its scale)", "V")
        # *RST: 0.8 V full scale on every channel; :AUToscale: what the signals call for.
        return [Rule(":CHANnel{n}:RANGe", channel_range), Rule(":CHANnel{n}:SCALe", channel_scale),
                *ranges_unseen_rules(self.envelope, ("*RST", ":AUToscale*"))]


#: Vertical divisions on an Infiniium's screen: `:CHANnel<n>:RANGe` = 8 x `:CHANnel<n>:SCALe`.
SCREEN_DIVISIONS = 8


def _preamble(reply: str) -> tuple[int, float, float, float, float]:
    """(points, x increment s, x origin s, y increment V, y origin V) of a :WAVeform:PREamble? reply."""
    fields = reply.split(",")
    return int(float(fields[2])), float(fields[4]), float(fields[5]), float(fields[7]), float(fields[8])
